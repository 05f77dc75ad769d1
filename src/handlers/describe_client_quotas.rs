//! DescribeClientQuotas (key 48), versions 0-1.
//!
//! The quotas stored by AlterClientQuotas whose entity matches every component of the filter:
//! match type 0 (EXACT) the entity names that type with that name, 1 (DEFAULT) names its
//! default, 2 (SPECIFIED) names it with any name; `strict`: the entity has no other types. A
//! component of an unknown entity type, or a type given twice, is INVALID_REQUEST for the
//! whole request, as Kafka answers.
//!
//! Authorization: DESCRIBE_CONFIGS on the cluster, else CLUSTER_AUTHORIZATION_FAILED (no
//! entries).

use bytes::Bytes;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{ApiKey, DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};
use crate::quota::{CLIENT_ID, IP, USER};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DescribeClientQuotas),
    min: 0,
    max: 1,
};

const EXACT: i8 = 0;
const DEFAULT: i8 = 1;
const SPECIFIED: i8 = 2;

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeClientQuotasRequest = ctx.decode(body)?;
    let error = |e: WireError, msg: String| {
        ctx.reply(
            &DescribeClientQuotasResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(msg)))
                .with_entries(None),
        )
    };
    if !ctx.authz().cluster(op::DESCRIBE_CONFIGS) {
        return error(
            WireError::ClusterAuthorizationFailed,
            "Cluster authorization failed.".into(),
        );
    }
    let mut types = Vec::new();
    for c in &req.components {
        let t = c.entity_type.as_str();
        if ![USER, CLIENT_ID, IP].contains(&t) {
            return error(
                WireError::InvalidRequest,
                format!("Custom entity type {t} not supported"),
            );
        }
        if types.contains(&t) {
            return error(
                WireError::InvalidRequest,
                format!("Duplicate {t} filter component entity type"),
            );
        }
        let ok = match c.match_type {
            EXACT => c._match.is_some(),
            DEFAULT | SPECIFIED => c._match.is_none(),
            _ => false,
        };
        if !ok {
            return error(
                WireError::InvalidRequest,
                format!("Invalid match type {} for entity type {t}", c.match_type),
            );
        }
        types.push(t);
    }
    let quotas = ctx.broker.metadata.client_quotas();
    let entries = quotas
        .iter()
        .filter(|(entity, _)| {
            let all = req.components.iter().all(|c| {
                let name = entity
                    .iter()
                    .find(|(t, _)| t == c.entity_type.as_str())
                    .map(|(_, n)| n.as_deref());
                match (c.match_type, name) {
                    (EXACT, Some(Some(n))) => c._match.as_ref().is_some_and(|m| m.as_str() == n),
                    (DEFAULT, Some(None)) => true,
                    (SPECIFIED, Some(Some(_))) => true,
                    _ => false,
                }
            });
            let strict_ok =
                !req.strict || entity.iter().all(|(t, _)| types.contains(&t.as_str()));
            all && strict_ok
        })
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .iter()
                        .map(|(t, n)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_string(t.clone()))
                                .with_entity_name(n.clone().map(StrBytes::from_string))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(k, v)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(k.clone()))
                                .with_value(*v)
                        })
                        .collect(),
                )
        })
        .collect();
    ctx.reply(&DescribeClientQuotasResponse::default().with_entries(Some(entries)))
}
