//! The authorizer: Kafka's `StandardAuthorizer` configured by `authorizer.class.name`,
//! `super.users` and `allow.everyone.if.no.acl.found`, deciding over the ACL bindings of the
//! metadata log ([`acl::Decider`]) and writing the audit line of each decision.
//!
//! Audit lines go to the `strom::audit` target (Kafka's `kafka.authorizer.logger`): a denial at
//! INFO (at TRACE for probes whose denial is not a refusal — filters such as ListGroups' or an
//! all-topics Metadata request, Kafka's `logIfDenied=false`), an allowed action at DEBUG (TRACE
//! for the authorized-operations probes, `logIfAllowed=false`).

use super::acl::{self, op, permission, resource, AclBinding, Decider, Rule};

/// The configured authorizer (None in the broker: no authorizer, everything is allowed).
#[derive(Debug, Clone)]
pub struct Authorizer {
    super_users: Vec<String>,
    allow_if_no_acls: bool,
}

/// One action to decide: an operation on a resource (always a LITERAL resource name).
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    pub operation: i8,
    pub resource_type: i8,
    pub name: &'a str,
    pub log_if_allowed: bool,
    pub log_if_denied: bool,
}

/// Who asks, from where, in which request (for the decision and its audit line).
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// `User:alice`.
    pub principal: &'a str,
    /// The client's IP address as ACL hosts name it (`127.0.0.1`).
    pub host: &'a str,
    /// The API's name (`Produce`).
    pub api: &'a str,
}

impl Authorizer {
    pub fn new(super_users: Vec<String>, allow_if_no_acls: bool) -> Self {
        Authorizer {
            super_users,
            allow_if_no_acls,
        }
    }

    fn decider<'a>(&'a self, acls: &'a [AclBinding]) -> Decider<'a> {
        Decider {
            acls,
            super_users: &self.super_users,
            allow_if_no_acls: self.allow_if_no_acls,
        }
    }

    /// May `who` perform `action`? Writes the audit line.
    pub fn authorize(&self, acls: &[AclBinding], who: &Requester, action: &Action) -> bool {
        let rule = self.decider(acls).authorize(
            who.principal,
            who.host,
            action.operation,
            action.resource_type,
            action.name,
        );
        let allowed = rule.allowed();
        audit(who, action, &rule, allowed, 1);
        allowed
    }

    /// Kafka's `Authorizer.authorizeByResourceType`: may `who` perform `operation` on *some*
    /// resource of `resource_type`? (InitProducerId of an idempotent producer without
    /// IDEMPOTENT_WRITE on the cluster: WRITE on any topic will do.) First the action on a
    /// resource named "hardcode" (super users, a `*` ALLOW, the no-ACL default); then any
    /// ALLOW binding of the principal for that operation (or ALL) whose name no DENY of the
    /// principal dominates: a LITERAL `*` DENY dominates everything, a LITERAL DENY the same
    /// literal name, a PREFIXED DENY every ALLOW name it prefixes. No implied operations here.
    pub fn authorize_by_resource_type(
        &self,
        acls: &[AclBinding],
        who: &Requester,
        operation: i8,
        resource_type: i8,
    ) -> bool {
        let probe = Action {
            operation,
            resource_type,
            name: "hardcode",
            log_if_allowed: true,
            log_if_denied: false,
        };
        let rule = self.decider(acls).authorize(
            who.principal,
            who.host,
            operation,
            resource_type,
            probe.name,
        );
        if rule.allowed() {
            audit(who, &probe, &rule, true, 0);
            return true;
        }
        let mine = acls.iter().filter(|a| {
            a.resource_type == resource_type
                && (a.host == acl::WILDCARD || a.host == who.host)
                && (a.principal == who.principal || a.principal == "User:*")
                && (a.operation == operation || a.operation == op::ALL)
        });
        let (mut deny_literal, mut deny_prefix) = (Vec::new(), Vec::new());
        let mut allows = Vec::new();
        let mut wildcard_allow = false;
        for a in mine {
            let literal = a.pattern == acl::pattern::LITERAL;
            match (a.permission, literal, a.name == acl::WILDCARD) {
                (permission::DENY, true, true) => return false,
                (permission::DENY, true, false) => deny_literal.push(a.name.as_str()),
                (permission::DENY, false, _) => deny_prefix.push(a.name.as_str()),
                (permission::ALLOW, true, true) => wildcard_allow = true,
                (permission::ALLOW, _, _) => allows.push((literal, a.name.as_str())),
                _ => {}
            }
        }
        if wildcard_allow {
            return true;
        }
        allows.iter().any(|(literal, name)| {
            let dominated_literally = *literal && deny_literal.contains(name);
            let dominated_by_prefix = deny_prefix.iter().any(|p| name.starts_with(p));
            !dominated_literally && !dominated_by_prefix
        })
    }

    /// The KIP-430 bit set of the operations `who` may perform on a resource: one bit per
    /// operation code of those the resource type supports (Kafka's
    /// `AclEntry.supportedOperations`). Decisions logged at TRACE only.
    pub fn authorized_operations(
        &self,
        acls: &[AclBinding],
        who: &Requester,
        resource_type: i8,
        name: &str,
    ) -> i32 {
        let mut bits = 0i32;
        for &o in supported_operations(resource_type) {
            let a = Action {
                operation: o,
                resource_type,
                name,
                log_if_allowed: false,
                log_if_denied: false,
            };
            if self.authorize(acls, who, &a) {
                bits |= 1 << o;
            }
        }
        bits
    }
}

/// The operations a resource type has (Kafka's `AclEntry.supportedOperations`).
pub fn supported_operations(resource_type: i8) -> &'static [i8] {
    use op::*;
    match resource_type {
        resource::TOPIC => &[
            READ,
            WRITE,
            CREATE,
            DELETE,
            ALTER,
            DESCRIBE,
            DESCRIBE_CONFIGS,
            ALTER_CONFIGS,
        ],
        resource::GROUP => &[READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS],
        resource::CLUSTER => &[
            CREATE,
            ALTER,
            DESCRIBE,
            CLUSTER_ACTION,
            DESCRIBE_CONFIGS,
            ALTER_CONFIGS,
            IDEMPOTENT_WRITE,
        ],
        resource::TRANSACTIONAL_ID => &[DESCRIBE, WRITE],
        resource::DELEGATION_TOKEN => &[DESCRIBE],
        resource::USER => &[CREATE_TOKENS, DESCRIBE_TOKENS],
        _ => &[],
    }
}

/// Kafka's `AclOperation` names.
pub fn operation_name(o: i8) -> &'static str {
    match o {
        op::ANY => "ANY",
        op::ALL => "ALL",
        op::READ => "READ",
        op::WRITE => "WRITE",
        op::CREATE => "CREATE",
        op::DELETE => "DELETE",
        op::ALTER => "ALTER",
        op::DESCRIBE => "DESCRIBE",
        op::CLUSTER_ACTION => "CLUSTER_ACTION",
        op::DESCRIBE_CONFIGS => "DESCRIBE_CONFIGS",
        op::ALTER_CONFIGS => "ALTER_CONFIGS",
        op::IDEMPOTENT_WRITE => "IDEMPOTENT_WRITE",
        op::CREATE_TOKENS => "CREATE_TOKENS",
        op::DESCRIBE_TOKENS => "DESCRIBE_TOKENS",
        op::TWO_PHASE_COMMIT => "TWO_PHASE_COMMIT",
        _ => "UNKNOWN",
    }
}

/// Kafka's `ResourceType` names as its audit line prints them.
pub fn resource_name(r: i8) -> &'static str {
    match r {
        resource::TOPIC => "Topic",
        resource::GROUP => "Group",
        resource::CLUSTER => "Cluster",
        resource::TRANSACTIONAL_ID => "TransactionalId",
        resource::DELEGATION_TOKEN => "DelegationToken",
        resource::USER => "User",
        _ => "Unknown",
    }
}

fn audit(who: &Requester, action: &Action, rule: &Rule, allowed: bool, ref_count: u32) {
    if !allowed && action.log_if_denied {
        crate::metrics::global()
            .authorization_denials
            .get_or_create(&crate::metrics::ApiLabels {
                api: who.api.to_string(),
            })
            .inc();
    }
    let level = match (allowed, action.log_if_allowed, action.log_if_denied) {
        (false, _, true) => tracing::Level::INFO,
        (true, true, _) => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    // The rule's text is formatted only for a line that is written (one decision per topic
    // of a request: not worth a string when the level is off).
    let enabled = match level {
        tracing::Level::INFO => tracing::enabled!(target: "strom::audit", tracing::Level::INFO),
        tracing::Level::DEBUG => tracing::enabled!(target: "strom::audit", tracing::Level::DEBUG),
        _ => tracing::enabled!(target: "strom::audit", tracing::Level::TRACE),
    };
    if !enabled {
        return;
    }
    let rule_text = match rule {
        Rule::SuperUser => "SuperUser".to_string(),
        Rule::NoAcls { allowed: true } => "DefaultAllow".to_string(),
        Rule::NoAcls { allowed: false } | Rule::NoMatch => "DefaultDeny".to_string(),
        Rule::Allow(b) | Rule::Deny(b) => format!(
            "MatchingAcl({} {} {}:{} principal={} host={} operation={})",
            if b.permission == permission::DENY {
                "DENY"
            } else {
                "ALLOW"
            },
            resource_name(b.resource_type),
            if b.pattern == acl::pattern::PREFIXED {
                "PREFIXED"
            } else {
                "LITERAL"
            },
            b.name,
            b.principal,
            b.host,
            operation_name(b.operation),
        ),
    };
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                target: "strom::audit",
                event = "authorization",
                result = if allowed { "allowed" } else { "denied" },
                principal = who.principal,
                host = who.host,
                api = who.api,
                operation = operation_name(action.operation),
                resource = %format_args!("{}:LITERAL:{}", resource_name(action.resource_type), action.name),
                ref_count = ref_count,
                rule = %rule_text,
            )
        };
    }
    match level {
        tracing::Level::INFO => line!(info),
        tracing::Level::DEBUG => line!(debug),
        _ => line!(trace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::pattern;

    fn acl(name: &str, pat: i8, who: &str, o: i8, perm: i8) -> AclBinding {
        AclBinding {
            resource_type: resource::TOPIC,
            name: name.into(),
            pattern: pat,
            principal: who.into(),
            host: "*".into(),
            operation: o,
            permission: perm,
        }
    }

    fn who(p: &str) -> Requester<'_> {
        Requester {
            principal: p,
            host: "127.0.0.1",
            api: "InitProducerId",
        }
    }

    /// Cases after Kafka's AuthorizerInterfaceDefaultTest / StandardAuthorizerTest for
    /// `authorizeByResourceType`.
    #[test]
    fn by_resource_type_follows_kafkas_default_method() {
        use pattern::*;
        use permission::*;
        let az = Authorizer::new(vec!["User:admin".into()], false);
        let w = op::WRITE;
        let t = resource::TOPIC;
        let by = |acls: &[AclBinding], p: &str| az.authorize_by_resource_type(acls, &who(p), w, t);
        assert!(by(&[], "User:admin"), "super user");
        assert!(!by(&[], "User:a"), "deny by default");
        assert!(
            Authorizer::new(vec![], true).authorize_by_resource_type(&[], &who("User:a"), w, t),
            "allow.everyone.if.no.acl.found"
        );
        assert!(by(&[acl("t1", LITERAL, "User:a", w, ALLOW)], "User:a"));
        assert!(by(
            &[acl("t", PREFIXED, "User:a", op::ALL, ALLOW)],
            "User:a"
        ));
        assert!(!by(
            &[acl("t1", LITERAL, "User:a", op::READ, ALLOW)],
            "User:a"
        ));
        assert!(!by(&[acl("t1", LITERAL, "User:b", w, ALLOW)], "User:a"));
        assert!(by(&[acl("t1", LITERAL, "User:*", w, ALLOW)], "User:a"));
        // Dominated allows.
        let lit = [
            acl("t1", LITERAL, "User:a", w, ALLOW),
            acl("t1", LITERAL, "User:a", w, DENY),
        ];
        assert!(!by(&lit, "User:a"));
        let pre = [
            acl("t1", LITERAL, "User:a", w, ALLOW),
            acl("t", PREFIXED, "User:a", w, DENY),
        ];
        assert!(!by(&pre, "User:a"));
        let pre_lit = [
            acl("t1", PREFIXED, "User:a", w, ALLOW),
            acl("t1", LITERAL, "User:a", w, DENY),
        ];
        assert!(
            by(&pre_lit, "User:a"),
            "a LITERAL deny does not dominate a PREFIXED allow"
        );
        let star = [
            acl("t1", LITERAL, "User:a", w, ALLOW),
            acl("*", LITERAL, "User:a", w, DENY),
        ];
        assert!(!by(&star, "User:a"));
        let unrelated = [
            acl("t1", LITERAL, "User:a", w, ALLOW),
            acl("other", PREFIXED, "User:a", w, DENY),
        ];
        assert!(by(&unrelated, "User:a"));
    }

    fn bits(r: i8) -> i32 {
        supported_operations(r).iter().fold(0, |b, o| b | 1 << o)
    }

    /// The sets Kafka 4.x answers for a principal allowed everything (no authorizer).
    #[test]
    fn supported_operations_are_kafkas() {
        assert_eq!(bits(resource::TOPIC), 3576);
        assert_eq!(bits(resource::GROUP), 3400);
        assert_eq!(bits(resource::CLUSTER), 8096);
    }

    #[test]
    fn authorized_operations_are_the_allowed_supported_ones() {
        use permission::*;
        let az = Authorizer::new(vec!["User:admin".into()], false);
        let acls = [acl("t", pattern::LITERAL, "User:a", op::READ, ALLOW)];
        let ops = az.authorized_operations(&acls, &who("User:a"), resource::TOPIC, "t");
        assert_eq!(ops, (1 << op::READ) | (1 << op::DESCRIBE));
        let all = az.authorized_operations(&acls, &who("User:admin"), resource::TOPIC, "t");
        assert_eq!(all, bits(resource::TOPIC));
        assert_eq!(
            az.authorized_operations(&acls, &who("User:b"), resource::TOPIC, "t"),
            0
        );
    }
}
