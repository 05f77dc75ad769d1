//! ACLs with the semantics of Kafka's `StandardAuthorizer` (KRaft): bindings of a resource
//! pattern (type, name, LITERAL or PREFIXED) to an entry (principal, host, operation,
//! ALLOW/DENY); filters as `AclBindingFilter` matches them (DescribeAcls, DeleteAcls); and the
//! decision for one action (`StandardAuthorizerData.findAclRule` / `findResult`):
//!
//! - a super user may do anything;
//! - the ACLs of the resource are those whose pattern matches its name (LITERAL equal, the
//!   LITERAL wildcard `*`, or PREFIXED a prefix of the name), of the same resource type;
//! - among them, those of the principal (or `User:*`) and host (or `*`) whose operation is
//!   the action's, or ALL, or — for ALLOW only — one that implies it (READ, WRITE, DELETE and
//!   ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS);
//! - any DENY wins; else any ALLOW allows; else denied if the resource has ACLs at all, and
//!   when it has none, `allow.everyone.if.no.acl.found` decides (false: deny by default).
//!
//! Codes are Kafka's (`ResourceType`, `PatternType`, `AclOperation`, `AclPermissionType`).
//! Enforcement is not wired yet: this is the decision procedure the authorizer will use.

use serde::{Deserialize, Serialize};

pub mod resource {
    pub const ANY: i8 = 1;
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
    pub const DELEGATION_TOKEN: i8 = 6;
    pub const USER: i8 = 7;
}

pub mod pattern {
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

pub mod op {
    pub const ANY: i8 = 1;
    pub const ALL: i8 = 2;
    pub const READ: i8 = 3;
    pub const WRITE: i8 = 4;
    pub const CREATE: i8 = 5;
    pub const DELETE: i8 = 6;
    pub const ALTER: i8 = 7;
    pub const DESCRIBE: i8 = 8;
    pub const CLUSTER_ACTION: i8 = 9;
    pub const DESCRIBE_CONFIGS: i8 = 10;
    pub const ALTER_CONFIGS: i8 = 11;
    pub const IDEMPOTENT_WRITE: i8 = 12;
    pub const CREATE_TOKENS: i8 = 13;
    pub const DESCRIBE_TOKENS: i8 = 14;
    pub const TWO_PHASE_COMMIT: i8 = 15;
}

pub mod permission {
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// The one name a CLUSTER resource has.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A LITERAL pattern with this name matches every resource of its type; as a principal or
/// host, every principal or host.
pub const WILDCARD: &str = "*";

/// One ACL (Kafka's `AclBinding`, stored as its `AccessControlEntryRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: i8,
    pub name: String,
    pub pattern: i8,
    /// `User:alice`, `User:*`.
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

impl AclBinding {
    /// Why this binding cannot be created (Kafka's CreateAcls checks), if it cannot.
    pub fn invalid(&self) -> Option<String> {
        if !(resource::TOPIC..=resource::USER).contains(&self.resource_type) {
            return Some(format!("Invalid resource type {}", self.resource_type));
        }
        if !matches!(self.pattern, pattern::LITERAL | pattern::PREFIXED) {
            return Some(format!("Invalid pattern type {}", self.pattern));
        }
        if self.resource_type == resource::CLUSTER && self.name != CLUSTER_NAME {
            return Some(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if self.name.is_empty() {
            return Some("Invalid empty resource name".into());
        }
        if !(op::ALL..=op::TWO_PHASE_COMMIT).contains(&self.operation) {
            return Some(format!("Invalid operation {}", self.operation));
        }
        if !matches!(self.permission, permission::DENY | permission::ALLOW) {
            return Some(format!("Invalid permission type {}", self.permission));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => None,
            _ => Some(format!(
                "Could not parse principal from `{}` (no colon is present separating the \
                 principal type from the principal name)",
                self.principal
            )),
        }
    }
}

/// Kafka's `AclBindingFilter`: `None` names match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: i8,
    pub name: Option<String>,
    pub pattern: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl AclFilter {
    pub fn matches(&self, b: &AclBinding) -> bool {
        if self.resource_type != resource::ANY && self.resource_type != b.resource_type {
            return false;
        }
        if !matches!(self.pattern, pattern::ANY | pattern::MATCH) && self.pattern != b.pattern {
            return false;
        }
        let name_ok = match &self.name {
            None => true,
            Some(n) if self.pattern == pattern::ANY || self.pattern == b.pattern => *n == b.name,
            Some(n) => match b.pattern {
                pattern::LITERAL => *n == b.name || b.name == WILDCARD,
                pattern::PREFIXED => n.starts_with(&b.name),
                _ => false,
            },
        };
        name_ok
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == op::ANY || self.operation == b.operation)
            && (self.permission == permission::ANY || self.permission == b.permission)
    }
}

/// What decided an authorization (for the audit line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    SuperUser,
    Allow(AclBinding),
    Deny(AclBinding),
    /// The resource has ACLs, none allowing this.
    NoMatch,
    /// The resource has no ACLs: `allow.everyone.if.no.acl.found`.
    NoAcls {
        allowed: bool,
    },
}

impl Rule {
    pub fn allowed(&self) -> bool {
        matches!(
            self,
            Rule::SuperUser | Rule::Allow(_) | Rule::NoAcls { allowed: true }
        )
    }
}

/// The decision procedure over a set of ACLs.
pub struct Decider<'a> {
    pub acls: &'a [AclBinding],
    pub super_users: &'a [String],
    pub allow_if_no_acls: bool,
}

impl Decider<'_> {
    /// May `principal` connected from `host` perform `operation` on the resource
    /// (`resource_type`, `name`)?
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> Rule {
        if self.super_users.iter().any(|s| s == principal) {
            return Rule::SuperUser;
        }
        let mut has_acls = false;
        let mut allow = None;
        for acl in self.acls {
            if acl.resource_type != resource_type {
                continue;
            }
            let applies = match acl.pattern {
                pattern::LITERAL => acl.name == name || acl.name == WILDCARD,
                pattern::PREFIXED => name.starts_with(&acl.name),
                _ => false,
            };
            if !applies {
                continue;
            }
            has_acls = true;
            if acl.principal != principal && acl.principal != "User:*" {
                continue;
            }
            if acl.host != WILDCARD && acl.host != host {
                continue;
            }
            let op_ok = acl.operation == op::ALL
                || acl.operation == operation
                || (acl.permission == permission::ALLOW && implies(acl.operation, operation));
            if !op_ok {
                continue;
            }
            if acl.permission == permission::DENY {
                return Rule::Deny(acl.clone());
            }
            if allow.is_none() {
                allow = Some(acl.clone());
            }
        }
        match (allow, has_acls) {
            (Some(a), _) => Rule::Allow(a),
            (None, true) => Rule::NoMatch,
            (None, false) => Rule::NoAcls {
                allowed: self.allow_if_no_acls,
            },
        }
    }
}

/// Operations an ALLOW ACL for `granted` also allows.
fn implies(granted: i8, wanted: i8) -> bool {
    match wanted {
        op::DESCRIBE => matches!(granted, op::READ | op::WRITE | op::DELETE | op::ALTER),
        op::DESCRIBE_CONFIGS => granted == op::ALTER_CONFIGS,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(rt: i8, name: &str, pat: i8, who: &str, host: &str, o: i8, perm: i8) -> AclBinding {
        AclBinding {
            resource_type: rt,
            name: name.into(),
            pattern: pat,
            principal: who.into(),
            host: host.into(),
            operation: o,
            permission: perm,
        }
    }

    /// Cases after Kafka's StandardAuthorizerTest and the documentation's examples.
    #[test]
    fn decisions_follow_the_standard_authorizer() {
        use permission::*;
        use resource::*;
        let acls = vec![
            acl(
                TOPIC,
                "foo",
                pattern::PREFIXED,
                "User:alice",
                "*",
                op::READ,
                ALLOW,
            ),
            acl(
                TOPIC,
                "foobar",
                pattern::LITERAL,
                "User:alice",
                "*",
                op::READ,
                DENY,
            ),
            acl(
                TOPIC,
                "*",
                pattern::LITERAL,
                "User:bob",
                "*",
                op::WRITE,
                ALLOW,
            ),
            acl(
                TOPIC,
                "baz",
                pattern::LITERAL,
                "User:*",
                "10.0.0.1",
                op::ALL,
                ALLOW,
            ),
            acl(
                GROUP,
                "g",
                pattern::LITERAL,
                "User:alice",
                "*",
                op::ALTER_CONFIGS,
                ALLOW,
            ),
            acl(
                TOPIC,
                "qux",
                pattern::LITERAL,
                "User:carol",
                "*",
                op::READ,
                DENY,
            ),
        ];
        let supers = vec!["User:admin".to_string()];
        let d = |allow_if_none: bool| Decider {
            acls: &acls,
            super_users: &supers,
            allow_if_no_acls: allow_if_none,
        };
        let a =
            |p: &str, h: &str, o: i8, rt: i8, n: &str| d(false).authorize(p, h, o, rt, n).allowed();
        assert!(
            a("User:alice", "1.2.3.4", op::READ, TOPIC, "foo1"),
            "prefixed allow"
        );
        assert!(
            !a("User:alice", "1.2.3.4", op::READ, TOPIC, "foobar"),
            "literal deny wins"
        );
        assert!(
            a("User:alice", "1.2.3.4", op::DESCRIBE, TOPIC, "foo1"),
            "READ implies DESCRIBE"
        );
        assert!(
            a("User:alice", "1.2.3.4", op::DESCRIBE, TOPIC, "foobar"),
            "a DENY of READ does not deny DESCRIBE"
        );
        assert!(
            !a("User:alice", "1.2.3.4", op::WRITE, TOPIC, "foo1"),
            "no WRITE ACL"
        );
        assert!(
            a("User:bob", "1.2.3.4", op::WRITE, TOPIC, "anything"),
            "wildcard resource"
        );
        assert!(!a("User:bob", "1.2.3.4", op::READ, TOPIC, "anything"));
        assert!(
            a("User:dave", "10.0.0.1", op::DELETE, TOPIC, "baz"),
            "User:* and ALL"
        );
        assert!(
            !a("User:dave", "10.0.0.2", op::DELETE, TOPIC, "baz"),
            "other host"
        );
        assert!(
            a("User:alice", "h", op::DESCRIBE_CONFIGS, GROUP, "g"),
            "ALTER_CONFIGS implies"
        );
        assert!(
            !a("User:alice", "h", op::DESCRIBE, GROUP, "g"),
            "but not DESCRIBE"
        );
        assert!(
            a("User:admin", "h", op::ALTER, CLUSTER, CLUSTER_NAME),
            "super user"
        );
        // A resource without any ACL: allow.everyone.if.no.acl.found decides.
        assert!(!a("User:alice", "h", op::READ, TRANSACTIONAL_ID, "t"));
        assert!(d(true)
            .authorize("User:alice", "h", op::READ, TRANSACTIONAL_ID, "t")
            .allowed());
        // A resource with ACLs for others only: denied even with the flag.
        assert_eq!(
            d(true).authorize("User:alice", "h", op::READ, TOPIC, "qux"),
            Rule::NoMatch
        );
    }

    #[test]
    fn filters_match_as_acl_binding_filter() {
        let b = acl(
            resource::TOPIC,
            "foo",
            pattern::PREFIXED,
            "User:a",
            "*",
            op::READ,
            permission::ALLOW,
        );
        let any = AclFilter {
            resource_type: resource::ANY,
            name: None,
            pattern: pattern::ANY,
            principal: None,
            host: None,
            operation: op::ANY,
            permission: permission::ANY,
        };
        assert!(any.matches(&b));
        let mut f = any.clone();
        f.name = Some("foobar".into());
        f.pattern = pattern::MATCH;
        assert!(f.matches(&b), "MATCH: a prefixed pattern covering the name");
        f.pattern = pattern::ANY;
        assert!(!f.matches(&b), "ANY: names compared exactly");
        f.name = Some("foo".into());
        assert!(f.matches(&b));
        f.pattern = pattern::LITERAL;
        assert!(!f.matches(&b), "pattern types differ");
        let mut f = any.clone();
        f.principal = Some("User:b".into());
        assert!(!f.matches(&b));
        let mut f = any;
        f.operation = op::WRITE;
        assert!(!f.matches(&b));
    }

    #[test]
    fn creations_are_checked_as_kafka_checks_them() {
        let ok = acl(
            resource::CLUSTER,
            CLUSTER_NAME,
            pattern::LITERAL,
            "User:a",
            "*",
            op::ALTER,
            permission::ALLOW,
        );
        assert_eq!(ok.invalid(), None);
        let mut b = ok.clone();
        b.name = "other".into();
        assert!(b.invalid().is_some_and(|e| e.contains("CLUSTER")));
        let mut b = ok.clone();
        b.principal = "alice".into();
        assert!(b.invalid().is_some());
        let mut b = ok.clone();
        b.pattern = pattern::MATCH;
        assert!(b.invalid().is_some());
        let mut b = ok;
        b.permission = permission::ANY;
        assert!(b.invalid().is_some());
    }
}
