//! Authorization of one request: the one way handlers ask what the request's principal may do
//! ([`RequestContext::authz`]). It takes the authorizer and one snapshot of the ACLs when the
//! handler asks, so every decision of a request sees the same ACLs. Without an authorizer
//! (`authorizer.class.name` empty) every check passes and the authorized-operation sets are
//! every operation of the resource type, as Kafka answers without one.
//!
//! Each handler performs exactly the checks Kafka's `KafkaApis` / `ControllerApis` perform for
//! its API, in Kafka's order and with Kafka's error shapes (its header comment says which;
//! docs/research/kafka-authorization-checks.md has the table they come from). A handler that
//! makes no check says why in its header; the registry test
//! `every_handler_consults_the_authorizer_or_says_why_not` keeps that true.

use std::collections::HashMap;
use std::sync::Arc;

use crate::handlers::RequestContext;
use crate::security::acl::{resource, AclBinding};
use crate::security::authorizer::{Action, Authorizer, Requester};

pub use crate::security::acl::op;

struct Inner {
    az: Arc<Authorizer>,
    acls: Arc<Vec<AclBinding>>,
    principal: String,
    host: String,
    api: &'static str,
}

impl Inner {
    fn requester(&self) -> Requester<'_> {
        Requester {
            principal: &self.principal,
            host: &self.host,
            api: self.api,
        }
    }
}

/// What the principal of one request may do.
#[derive(Clone)]
pub struct Authz(Option<Arc<Inner>>);

impl RequestContext {
    /// The authorization of this request (cheap: an `Arc` clone of the ACLs).
    pub fn authz(&self) -> Authz {
        Authz(self.broker.authorizer.as_ref().map(|az| {
            Arc::new(Inner {
                az: az.clone(),
                acls: self.broker.metadata.acls(),
                principal: self.session.principal.to_string(),
                host: self.peer.ip().to_string(),
                api: self.api_key.name(),
            })
        }))
    }
}

impl Authz {
    /// No authorizer: everything allowed (unit tests of handler internals).
    #[cfg(test)]
    pub fn none() -> Authz {
        Authz(None)
    }

    /// Whether an authorizer is configured.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    fn check(&self, operation: i8, resource_type: i8, name: &str, log_if_denied: bool) -> bool {
        let Some(i) = &self.0 else {
            return true;
        };
        i.az.authorize(
            &i.acls,
            &i.requester(),
            &Action {
                operation,
                resource_type,
                name,
                log_if_allowed: true,
                log_if_denied,
            },
        )
    }

    /// May the principal perform `operation` on the resource? (A denial is audited.)
    pub fn allows(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        self.check(operation, resource_type, name, true)
    }

    /// As [`Authz::allows`], for probes and filters whose denial is not a refusal (Kafka's
    /// `logIfDenied=false`: the denial is audited at TRACE only).
    pub fn allows_quietly(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        self.check(operation, resource_type, name, false)
    }

    pub fn topic(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::TOPIC, name)
    }

    pub fn group(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::GROUP, name)
    }

    pub fn transactional_id(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::TRANSACTIONAL_ID, name)
    }

    pub fn cluster(&self, operation: i8) -> bool {
        self.allows(
            operation,
            resource::CLUSTER,
            crate::security::acl::CLUSTER_NAME,
        )
    }

    pub fn cluster_quietly(&self, operation: i8) -> bool {
        self.allows_quietly(
            operation,
            resource::CLUSTER,
            crate::security::acl::CLUSTER_NAME,
        )
    }

    /// `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config resource, as Kafka maps them:
    /// a topic or group on itself, the broker, broker logger and client-metrics resources on
    /// the cluster. The error to answer for that resource when denied (with Kafka's default
    /// message), None when allowed or of a type the handler refuses anyway.
    pub fn config_resource(
        &self,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> Option<(crate::protocol::WireError, &'static str)> {
        use crate::protocol::WireError;
        match resource_type {
            CONFIG_TOPIC => (!self.topic(operation, name)).then_some((
                WireError::TopicAuthorizationFailed,
                "Topic authorization failed.",
            )),
            CONFIG_GROUP => (!self.group(operation, name)).then_some((
                WireError::GroupAuthorizationFailed,
                "Group authorization failed.",
            )),
            CONFIG_BROKER | CONFIG_BROKER_LOGGER | CONFIG_CLIENT_METRICS => {
                (!self.cluster(operation)).then_some((
                    WireError::ClusterAuthorizationFailed,
                    "Cluster authorization failed.",
                ))
            }
            _ => None,
        }
    }

    /// Kafka's `authorizeByResourceType`: `operation` on some resource of the type.
    pub fn any_of_type(&self, operation: i8, resource_type: i8) -> bool {
        let Some(i) = &self.0 else {
            return true;
        };
        i.az.authorize_by_resource_type(&i.acls, &i.requester(), operation, resource_type)
    }

    /// The KIP-430 authorized-operations bit set of a resource for this principal.
    pub fn operations(&self, resource_type: i8, name: &str) -> i32 {
        let Some(i) = &self.0 else {
            return crate::security::authorizer::supported_operations(resource_type)
                .iter()
                .fold(0, |bits, o| bits | 1 << o);
        };
        i.az.authorized_operations(&i.acls, &i.requester(), resource_type, name)
    }

    /// Decisions for many items of one operation and resource type, one decision (and audit
    /// line) per distinct name, as Kafka's `filterByAuthorized`.
    pub fn names(&self, operation: i8, resource_type: i8) -> Names {
        Names {
            authz: self.clone(),
            operation,
            resource_type,
            quiet: false,
            seen: HashMap::new(),
        }
    }

    /// As [`Authz::names`] with denials audited at TRACE only (filters of listings).
    pub fn names_quietly(&self, operation: i8, resource_type: i8) -> Names {
        Names {
            quiet: true,
            ..self.names(operation, resource_type)
        }
    }
}

/// Config resource types (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs).
const CONFIG_TOPIC: i8 = 2;
const CONFIG_BROKER: i8 = 4;
const CONFIG_BROKER_LOGGER: i8 = 8;
const CONFIG_CLIENT_METRICS: i8 = 16;
const CONFIG_GROUP: i8 = 32;

/// A share-partition the principal may READ: Kafka's ShareFetch / ShareAcknowledge topic
/// check (an unknown topic id stays UNKNOWN_TOPIC_ID, never authorized).
pub fn readable_share_target(
    broker: &crate::broker::Broker,
    readable: &mut Names,
    group: &str,
    topic_id: uuid::Uuid,
    partition: i32,
) -> Result<crate::coordinator::share::Target, i16> {
    if let Some(meta) = broker.metadata.topic_by_id(&topic_id) {
        if !readable.allows(&meta.name) {
            return Err(crate::protocol::WireError::TopicAuthorizationFailed.code());
        }
    }
    broker.share_target(group, topic_id, partition)
}

/// Memoized decisions for one operation on names of one resource type.
pub struct Names {
    authz: Authz,
    operation: i8,
    resource_type: i8,
    quiet: bool,
    seen: HashMap<String, bool>,
}

impl Names {
    pub fn allows(&mut self, name: &str) -> bool {
        if self.authz.0.is_none() {
            return true;
        }
        if let Some(&ok) = self.seen.get(name) {
            return ok;
        }
        let ok = self
            .authz
            .check(self.operation, self.resource_type, name, !self.quiet);
        self.seen.insert(name.to_string(), ok);
        ok
    }
}
