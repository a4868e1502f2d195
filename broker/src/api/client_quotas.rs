//! DescribeClientQuotas and AlterClientQuotas: client quotas live in the metadata log, written
//! through the controller, and every broker enforces them from its image (`quota/`).
//! Describing needs DESCRIBE_CONFIGS on the cluster and altering ALTER_CONFIGS, as in Kafka;
//! a bad filter fails the whole describe with INVALID_REQUEST, a bad entry fails only itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use kafka_core::acl::AclOperation;
use kafka_core::quota::{EntityName, QuotaEntity, QuotaKey, QuotaValue, CLIENT_ID, IP, USER};
use kafka_core::ErrorCode;
use kafka_protocol::messages::alter_client_quotas_request::EntryData as AlterEntry;
use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AlteredEntity, EntryData as AlteredEntry,
};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::authorization::Check;
use super::topics::quorum_error_code;
use super::{first_error, ready, Pending, RequestContext};
use crate::context::{Context, MetadataView};

/// `match_type` of a DescribeClientQuotas component.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

fn text(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

/// One component of a describe filter: an entity type and which of its names match.
#[derive(Debug, PartialEq, Eq)]
enum Component {
    Exact(EntityName),
    Any,
}

/// A checked DescribeClientQuotas filter.
#[derive(Debug)]
struct Filter {
    user: Option<Component>,
    client_id: Option<Component>,
    strict: bool,
}

impl Filter {
    fn parse(components: &[ComponentData], strict: bool) -> Result<Filter, String> {
        let mut filter = Filter {
            user: None,
            client_id: None,
            strict,
        };
        for c in components {
            let component = match (c.match_type, &c._match) {
                (MATCH_EXACT, Some(name)) => Component::Exact(EntityName::Named(name.to_string())),
                (MATCH_EXACT, None) => {
                    return Err(format!(
                        "an exact match for {} needs a name",
                        c.entity_type.as_str()
                    ))
                }
                (MATCH_DEFAULT, _) => Component::Exact(EntityName::Default),
                (MATCH_ANY, _) => Component::Any,
                (other, _) => return Err(format!("unknown match type {other}")),
            };
            let slot = match c.entity_type.as_str() {
                USER => &mut filter.user,
                CLIENT_ID => &mut filter.client_id,
                IP => return Err("ip quotas are not supported".to_string()),
                other => return Err(format!("unknown entity type {other}")),
            };
            if slot.is_some() {
                return Err(format!(
                    "entity type {} cannot appear more than once in the filter",
                    c.entity_type.as_str()
                ));
            }
            *slot = Some(component);
        }
        Ok(filter)
    }

    fn matches(&self, entity: &QuotaEntity) -> bool {
        fn part(filter: &Option<Component>, name: &Option<EntityName>, strict: bool) -> bool {
            match (filter, name) {
                (None, None) => true,
                (None, Some(_)) => !strict,
                (Some(_), None) => false,
                (Some(Component::Any), Some(_)) => true,
                (Some(Component::Exact(want)), Some(have)) => want == have,
            }
        }
        part(&self.user, &entity.user, self.strict)
            && part(&self.client_id, &entity.client_id, self.strict)
    }
}

pub fn describe(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DescribeClientQuotasRequest,
) -> Pending {
    let fail = |code: ErrorCode, message: String| {
        let body = DescribeClientQuotasResponse::default()
            .with_error_code(code.code())
            .with_error_message(text(message))
            .with_entries(None);
        rc.respond(&body, code)
    };
    if !Check::new(ctx, &rc).cluster(AclOperation::DescribeConfigs) {
        let message = format!("{} may not describe client quotas", rc.connection.principal);
        return ready(fail(ErrorCode::CLUSTER_AUTHORIZATION_FAILED, message));
    }
    let filter = match Filter::parse(&request.components, request.strict) {
        Ok(f) => f,
        Err(message) => return ready(fail(ErrorCode::INVALID_REQUEST, message)),
    };
    let image = ctx.latest_image();
    let entries: Vec<EntryData> = image
        .client_quotas
        .iter()
        .filter(|(entity, _)| filter.matches(entity))
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .parts()
                        .into_iter()
                        .map(|(kind, name)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_static_str(kind))
                                .with_entity_name(name.map(|n| StrBytes::from_string(n.into())))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(key, value)| {
                            ValueData::default()
                                .with_key(StrBytes::from_static_str(key.name()))
                                .with_value(value.get())
                        })
                        .collect(),
                )
        })
        .collect();
    let body = DescribeClientQuotasResponse::default()
        .with_error_message(None)
        .with_entries(Some(entries));
    ready(rc.respond(&body, ErrorCode::NONE))
}

/// One request entry, checked: the entity and its changes, or why it is refused.
type Checked = Result<(QuotaEntity, Vec<(QuotaKey, Option<QuotaValue>)>), String>;

fn check_entry(entry: &AlterEntry) -> Checked {
    let entity = QuotaEntity::from_parts(
        entry
            .entity
            .iter()
            .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref())),
    )
    .map_err(|e| e.to_string())?;
    let mut changes: BTreeMap<QuotaKey, Option<QuotaValue>> = BTreeMap::new();
    for op in &entry.ops {
        let key = QuotaKey::from_name(op.key.as_str())
            .ok_or_else(|| format!("unknown quota key {}", op.key.as_str()))?;
        let value = if op.remove {
            None
        } else {
            Some(key.check(op.value).map_err(|e| e.to_string())?)
        };
        if changes.insert(key, value).is_some() {
            return Err(format!(
                "quota key {} appears more than once for {entity}",
                key.name()
            ));
        }
    }
    Ok((entity, changes.into_iter().collect()))
}

pub fn alter(ctx: &Arc<Context>, rc: RequestContext, request: AlterClientQuotasRequest) -> Pending {
    let allowed = Check::new(ctx, &rc).cluster(AclOperation::AlterConfigs);
    let mut results: Vec<(ErrorCode, Option<String>)> = Vec::with_capacity(request.entries.len());
    let mut writes = Vec::new();
    for entry in &request.entries {
        if !allowed {
            let message = format!("{} may not alter client quotas", rc.connection.principal);
            results.push((ErrorCode::CLUSTER_AUTHORIZATION_FAILED, Some(message)));
            continue;
        }
        match check_entry(entry) {
            Ok(change) => {
                results.push((ErrorCode::NONE, None));
                writes.push((results.len() - 1, change));
            }
            Err(message) => results.push((ErrorCode::INVALID_REQUEST, Some(message))),
        }
    }
    let ctx = ctx.clone();
    async move {
        if !request.validate_only && !writes.is_empty() {
            let (slots, entries): (Vec<usize>, Vec<_>) = writes.into_iter().unzip();
            let described: Vec<String> = entries.iter().map(|(e, _)| e.to_string()).collect();
            match ctx.controller().alter_client_quotas(entries).await {
                Ok(()) => {
                    info!(principal = %rc.connection.principal, entities = ?described, "client quotas altered");
                }
                Err(e) => {
                    for slot in slots {
                        results[slot] = (quorum_error_code(&e), Some(e.to_string()));
                    }
                }
            }
        }
        let entries: Vec<AlteredEntry> = request
            .entries
            .iter()
            .zip(results)
            .map(|(entry, (code, message))| {
                AlteredEntry::default()
                    .with_error_code(code.code())
                    .with_error_message(message.map(StrBytes::from_string))
                    .with_entity(
                        entry
                            .entity
                            .iter()
                            .map(|e| {
                                AlteredEntity::default()
                                    .with_entity_type(e.entity_type.clone())
                                    .with_entity_name(e.entity_name.clone())
                            })
                            .collect(),
                    )
            })
            .collect();
        let code = first_error(entries.iter().map(|e| e.error_code));
        let body = AlterClientQuotasResponse::default().with_entries(entries);
        rc.respond(&body, code)
    }
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(kind: &str, match_type: i8, name: Option<&str>) -> ComponentData {
        ComponentData::default()
            .with_entity_type(StrBytes::from_string(kind.into()))
            .with_match_type(match_type)
            .with_match(name.map(|n| StrBytes::from_string(n.into())))
    }

    fn entity(parts: &[(&str, Option<&str>)]) -> QuotaEntity {
        QuotaEntity::from_parts(parts.iter().copied()).expect("a valid entity")
    }

    #[test]
    fn filters_match_like_kafka() {
        let alice = entity(&[(USER, Some("alice"))]);
        let alice_app = entity(&[(USER, Some("alice")), (CLIENT_ID, Some("app"))]);
        let default_user = entity(&[(USER, None)]);
        let app = entity(&[(CLIENT_ID, Some("app"))]);

        let exact =
            Filter::parse(&[component(USER, MATCH_EXACT, Some("alice"))], false).expect("valid");
        assert!(exact.matches(&alice) && exact.matches(&alice_app));
        assert!(!exact.matches(&default_user) && !exact.matches(&app));

        let strict =
            Filter::parse(&[component(USER, MATCH_EXACT, Some("alice"))], true).expect("valid");
        assert!(strict.matches(&alice) && !strict.matches(&alice_app));

        let default = Filter::parse(&[component(USER, MATCH_DEFAULT, None)], false).expect("ok");
        assert!(default.matches(&default_user) && !default.matches(&alice));

        let any = Filter::parse(&[component(USER, MATCH_ANY, None)], true).expect("valid");
        assert!(any.matches(&alice) && any.matches(&default_user) && !any.matches(&app));

        let everything = Filter::parse(&[], false).expect("valid");
        assert!([&alice, &alice_app, &default_user, &app]
            .iter()
            .all(|e| everything.matches(e)));
    }

    #[test]
    fn bad_filters_are_refused() {
        let twice = [
            component(USER, MATCH_ANY, None),
            component(USER, MATCH_DEFAULT, None),
        ];
        assert!(Filter::parse(&twice, false).is_err());
        assert!(Filter::parse(&[component("group", MATCH_ANY, None)], false).is_err());
        assert!(Filter::parse(&[component(USER, 7, None)], false).is_err());
        assert!(Filter::parse(&[component(USER, MATCH_EXACT, None)], false).is_err());
    }
}
