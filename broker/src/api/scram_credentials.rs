//! DescribeUserScramCredentials and AlterUserScramCredentials: users' SCRAM credentials live
//! in the metadata log, written through the controller. The client sends the salted password
//! (it runs PBKDF2 itself); the broker keeps only the salt, the iteration count and the keys
//! derived from it. Describing needs DESCRIBE on the cluster, altering ALTER; the per-user
//! errors are Kafka's (DUPLICATE_RESOURCE, RESOURCE_NOT_FOUND, UNACCEPTABLE_CREDENTIAL,
//! UNSUPPORTED_SASL_MECHANISM), and a user with any error keeps its credentials unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::FutureExt;
use kafka_core::acl::AclOperation;
use kafka_core::scram::{ScramCredential, ScramMechanism};
use kafka_core::ErrorCode;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::authorization::Check;
use super::topics::quorum_error_code;
use super::{first_error, ready, Pending, RequestContext};
use crate::context::{Context, MetadataView};
use crate::security::scram;

fn text(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

pub fn describe(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> Pending {
    if !Check::new(ctx, &rc).cluster(AclOperation::Describe) {
        let code = ErrorCode::CLUSTER_AUTHORIZATION_FAILED;
        let body = DescribeUserScramCredentialsResponse::default()
            .with_error_code(code.code())
            .with_error_message(text(format!(
                "{} may not describe SCRAM credentials",
                rc.connection.principal
            )));
        return ready(rc.respond(&body, code));
    }
    let image = ctx.latest_image();
    let described = |user: &str, credentials: &BTreeMap<ScramMechanism, ScramCredential>| {
        DescribeUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user.to_string()))
            .with_credential_infos(
                credentials
                    .iter()
                    .map(|(mechanism, c)| {
                        CredentialInfo::default()
                            .with_mechanism(mechanism.code())
                            .with_iterations(c.iterations)
                    })
                    .collect(),
            )
    };
    let failed = |user: &str, code: ErrorCode, message: &str| {
        DescribeUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user.to_string()))
            .with_error_code(code.code())
            .with_error_message(text(message))
    };
    let results: Vec<DescribeUserScramCredentialsResult> = match request.users {
        Some(users) if !users.is_empty() => {
            let mut seen = BTreeMap::new();
            for u in &users {
                *seen.entry(u.name.as_str()).or_insert(0) += 1;
            }
            seen.into_iter()
                .map(|(user, count)| match image.scram.get(user) {
                    _ if count > 1 => failed(
                        user,
                        ErrorCode::DUPLICATE_RESOURCE,
                        "Cannot describe SCRAM credentials for the same user twice in a single request",
                    ),
                    Some(credentials) => described(user, credentials),
                    None => failed(
                        user,
                        ErrorCode::RESOURCE_NOT_FOUND,
                        "Attempt to describe a user credential that does not exist",
                    ),
                })
                .collect()
        }
        _ => image
            .scram
            .iter()
            .map(|(user, credentials)| described(user, credentials))
            .collect(),
    };
    let code = first_error(results.iter().map(|r| r.error_code));
    let body = DescribeUserScramCredentialsResponse::default().with_results(results);
    ready(rc.respond(&body, code))
}

/// One requested change, checked.
struct Change {
    user: String,
    mechanism: Option<ScramMechanism>,
    /// `None` for a deletion.
    credential: Option<ScramCredential>,
}

/// Why a change is refused, if it is.
fn refusal(
    change: &Change,
    iterations: i32,
    salt: &[u8],
    salted: &[u8],
) -> Option<(ErrorCode, &'static str)> {
    if change.user.is_empty() {
        return Some((
            ErrorCode::UNACCEPTABLE_CREDENTIAL,
            "Username must not be empty",
        ));
    }
    if change.mechanism.is_none() {
        return Some((
            ErrorCode::UNSUPPORTED_SASL_MECHANISM,
            "Unknown SCRAM mechanism",
        ));
    }
    if change.credential.is_some() {
        if let Err(reason) = ScramMechanism::check_iterations(iterations) {
            return Some((ErrorCode::UNACCEPTABLE_CREDENTIAL, reason));
        }
        if salt.is_empty() || salted.is_empty() {
            return Some((
                ErrorCode::UNACCEPTABLE_CREDENTIAL,
                "Salt and salted password must not be empty",
            ));
        }
    }
    None
}

pub fn alter(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> Pending {
    let mut users: Vec<String> = Vec::new();
    let mut errors: BTreeMap<String, (ErrorCode, String)> = BTreeMap::new();
    let mut changes: Vec<Change> = Vec::new();
    let mut pairs: BTreeSet<(String, i8)> = BTreeSet::new();
    let mut note = |user: &str, mechanism: i8, users: &mut Vec<String>| {
        if !users.iter().any(|u| u == user) {
            users.push(user.to_string());
        }
        pairs.insert((user.to_string(), mechanism))
    };
    for d in &request.deletions {
        let user = d.name.to_string();
        let fresh = note(&user, d.mechanism, &mut users);
        let change = Change {
            user,
            mechanism: ScramMechanism::from_code(d.mechanism),
            credential: None,
        };
        check(&mut errors, &change, fresh, refusal(&change, 0, &[], &[]));
        changes.push(change);
    }
    for u in &request.upsertions {
        let user = u.name.to_string();
        let fresh = note(&user, u.mechanism, &mut users);
        let mechanism = ScramMechanism::from_code(u.mechanism);
        let change = Change {
            user,
            mechanism,
            credential: mechanism
                .map(|m| scram::credential(m, &u.salted_password, &u.salt, u.iterations)),
        };
        let refused = refusal(&change, u.iterations, &u.salt, &u.salted_password);
        check(&mut errors, &change, fresh, refused);
        changes.push(change);
    }
    if !Check::new(ctx, &rc).cluster(AclOperation::Alter) {
        let message = format!(
            "{} may not alter SCRAM credentials",
            rc.connection.principal
        );
        for user in &users {
            errors.insert(
                user.clone(),
                (ErrorCode::CLUSTER_AUTHORIZATION_FAILED, message.clone()),
            );
        }
    }
    let mut upsertions = Vec::new();
    let mut deletions = Vec::new();
    for change in changes
        .into_iter()
        .filter(|c| !errors.contains_key(&c.user))
    {
        let Some(mechanism) = change.mechanism else {
            continue;
        };
        match change.credential {
            Some(credential) => upsertions.push((change.user, mechanism, credential)),
            None => deletions.push((change.user, mechanism)),
        }
    }
    let ctx = ctx.clone();
    async move {
        let changed: BTreeSet<String> = upsertions
            .iter()
            .map(|(u, _, _)| u.clone())
            .chain(deletions.iter().map(|(u, _)| u.clone()))
            .collect();
        if !changed.is_empty() {
            match ctx
                .controller()
                .alter_scram_credentials(upsertions, deletions)
                .await
            {
                Ok(missing) => {
                    for user in missing {
                        errors.insert(
                            user,
                            (
                                ErrorCode::RESOURCE_NOT_FOUND,
                                "Attempt to delete a user credential that does not exist"
                                    .to_string(),
                            ),
                        );
                    }
                }
                Err(e) => {
                    for user in &changed {
                        errors.insert(user.clone(), (quorum_error_code(&e), e.to_string()));
                    }
                }
            }
        }
        let results: Vec<AlterUserScramCredentialsResult> = users
            .iter()
            .map(|user| {
                let result = AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user.clone()));
                match errors.get(user) {
                    Some((code, message)) => result
                        .with_error_code(code.code())
                        .with_error_message(text(message.clone())),
                    None => {
                        info!(principal = %rc.connection.principal, user, "SCRAM credentials altered");
                        result
                    }
                }
            })
            .collect();
        let code = first_error(results.iter().map(|r| r.error_code));
        let body = AlterUserScramCredentialsResponse::default().with_results(results);
        rc.respond(&body, code)
    }
    .boxed()
}

/// Records the first error of a change's user: a (user, mechanism) pair seen before is a
/// duplicate, else the change's own refusal.
fn check(
    errors: &mut BTreeMap<String, (ErrorCode, String)>,
    change: &Change,
    fresh: bool,
    refused: Option<(ErrorCode, &'static str)>,
) {
    let error = if fresh {
        refused.map(|(code, message)| (code, message.to_string()))
    } else {
        Some((
            ErrorCode::DUPLICATE_RESOURCE,
            "A user credential cannot be altered twice in the same request".to_string(),
        ))
    };
    if let Some(error) = error {
        errors.entry(change.user.clone()).or_insert(error);
    }
}
