//! DescribeUserScramCredentials (key 50), version 0 (all Kafka 4.4 serves).
//!
//! Which SCRAM mechanisms (and iteration counts) each user has credentials for, from the
//! metadata log; never the credentials. No users (null or empty list): every user with a
//! credential. A user named twice: DUPLICATE_RESOURCE; one without credentials:
//! RESOURCE_NOT_FOUND — with Kafka's messages (`ScramImage.describe`).
//! Authorization (DESCRIBE on CLUSTER) comes with the authorizer.
//!
//! Authorization: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED at the top and for
//! each user asked for (unnamed, as Kafka).

use bytes::Bytes;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    ApiKey, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DescribeUserScramCredentials),
    min: 0,
    max: 0,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeUserScramCredentialsRequest = ctx.decode(body)?;
    // DESCRIBE on the cluster, else the top-level error and one result per user asked for
    // (without the user's name, as Kafka answers).
    if !ctx.authz().cluster(op::DESCRIBE) {
        let code = WireError::ClusterAuthorizationFailed.code();
        let results = req.users.iter().flatten().map(|_| DescribeUserScramCredentialsResult::default().with_error_code(code)).collect();
        return ctx.reply(&DescribeUserScramCredentialsResponse::default().with_error_code(code).with_results(results));
    }
    let all = ctx.broker.metadata.scram_users();
    // (user, named twice) in the order asked.
    let mut asked: Vec<(String, bool)> = Vec::new();
    match req.users.as_deref() {
        None | Some([]) => asked.extend(all.keys().map(|u| (u.clone(), false))),
        Some(users) => {
            for u in users {
                let name = u.name.as_str().to_string();
                match asked.iter_mut().find(|(n, _)| *n == name) {
                    Some(seen) => seen.1 = true,
                    None => asked.push((name, false)),
                }
            }
        }
    }
    let results = asked
        .into_iter()
        .map(|(user, twice)| {
            let r = DescribeUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user.clone()));
            if twice {
                return r
                    .with_error_code(WireError::DuplicateResource.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                    ))));
            }
            match all.get(&user) {
                Some(creds) => r.with_credential_infos(
                    creds
                        .iter()
                        .map(|(m, i)| CredentialInfo::default().with_mechanism(*m).with_iterations(*i))
                        .collect(),
                ),
                None => r
                    .with_error_code(WireError::ResourceNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    )))),
            }
        })
        .collect();
    ctx.reply(&DescribeUserScramCredentialsResponse::default().with_results(results))
}
