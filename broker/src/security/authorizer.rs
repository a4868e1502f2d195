//! Authorization decisions as Kafka's `StandardAuthorizer` makes them, over the ACLs in the
//! metadata image: super users may do anything; a resource no ACL applies to is open only with
//! `allow.everyone.if.no.acl.found`; otherwise a matching DENY wins over any ALLOW, and an
//! ALLOW of the operation (or ALL, or for DESCRIBE one of READ/WRITE/DELETE/ALTER, for
//! DESCRIBE_CONFIGS ALTER_CONFIGS) is needed. A binding matches a principal by name or `User:*`
//! and a host by address or `*`.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use kafka_core::acl::{
    AclBinding, AclOperation, AclPermission, ResourceType, WILDCARD_HOST, WILDCARD_PRINCIPAL,
};

use super::principal::KafkaPrincipal;

/// The broker's authorizer settings (`authorizer.class.name`, `super.users`,
/// `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    enabled: bool,
    super_users: HashSet<String>,
    allow_if_no_acl: bool,
}

/// The operations that imply `operation` when allowed (Kafka's implied-operation rules).
fn implying(operation: AclOperation) -> &'static [AclOperation] {
    use AclOperation::*;
    match operation {
        Describe => &[Describe, Read, Write, Delete, Alter],
        DescribeConfigs => &[DescribeConfigs, AlterConfigs],
        Read => &[Read],
        Write => &[Write],
        Create => &[Create],
        Delete => &[Delete],
        Alter => &[Alter],
        ClusterAction => &[ClusterAction],
        AlterConfigs => &[AlterConfigs],
        IdempotentWrite => &[IdempotentWrite],
        CreateTokens => &[CreateTokens],
        DescribeTokens => &[DescribeTokens],
        Any | All => &[],
    }
}

impl Authorizer {
    /// Authorization on, with these super users (`User:admin` strings) and default.
    pub fn new(super_users: impl IntoIterator<Item = String>, allow_if_no_acl: bool) -> Authorizer {
        Authorizer {
            enabled: true,
            super_users: super_users.into_iter().collect(),
            allow_if_no_acl,
        }
    }

    /// No authorizer configured: every request is allowed and the ACL APIs answer
    /// SECURITY_DISABLED, as in Kafka.
    pub fn disabled() -> Authorizer {
        Authorizer::default()
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The principal and host as ACLs write them, or `None` when no check is needed (no
    /// authorizer, or a super user).
    fn checked(&self, principal: &KafkaPrincipal, host: IpAddr) -> Option<(String, String)> {
        let principal = principal.to_string();
        (self.enabled && !self.super_users.contains(&principal))
            .then(|| (principal, host.to_string()))
    }

    /// Whether `principal` connecting from `host` may perform `operation` on the resource.
    pub fn authorize(
        &self,
        acls: &BTreeSet<AclBinding>,
        principal: &KafkaPrincipal,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        let Some((principal, host)) = self.checked(principal, host) else {
            return true;
        };
        let mut applicable = acls
            .iter()
            .filter(|b| b.applies_to(resource_type, resource_name))
            .peekable();
        if applicable.peek().is_none() {
            return self.allow_if_no_acl;
        }
        let mut allowed = false;
        for binding in applicable {
            if !names(binding, &principal, &host) {
                continue;
            }
            match binding.permission {
                AclPermission::Deny
                    if binding.operation == operation || binding.operation == AclOperation::All =>
                {
                    return false;
                }
                AclPermission::Allow
                    if binding.operation == AclOperation::All
                        || implying(operation).contains(&binding.operation) =>
                {
                    allowed = true;
                }
                _ => {}
            }
        }
        allowed
    }

    /// Whether `principal` may perform `operation` on at least one resource of
    /// `resource_type` (Kafka's `authorizeByResourceType`): a matching ALLOW exists and no
    /// matching DENY covers every resource of the type (literal `*`).
    pub fn authorize_any(
        &self,
        acls: &BTreeSet<AclBinding>,
        principal: &KafkaPrincipal,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        let Some((principal, host)) = self.checked(principal, host) else {
            return true;
        };
        let of_type: Vec<&AclBinding> = acls
            .iter()
            .filter(|b| b.resource_type == resource_type)
            .collect();
        if of_type.is_empty() {
            return self.allow_if_no_acl;
        }
        let mut matching = of_type.into_iter().filter(|b| {
            names(b, &principal, &host)
                && (b.operation == operation || b.operation == AclOperation::All)
        });
        let (mut allowed, mut denied_everywhere) = (false, false);
        for b in matching.by_ref() {
            match b.permission {
                AclPermission::Allow => allowed = true,
                AclPermission::Deny => {
                    denied_everywhere |= b.pattern_type == kafka_core::acl::PatternType::Literal
                        && b.resource_name == kafka_core::acl::WILDCARD_RESOURCE;
                }
                AclPermission::Any => {}
            }
        }
        allowed && !denied_everywhere
    }
}

/// Whether `binding` names this principal (or `User:*`) and host (or `*`).
fn names(binding: &AclBinding, principal: &str, host: &str) -> bool {
    (binding.principal == principal || binding.principal == WILDCARD_PRINCIPAL)
        && (binding.host == host || binding.host == WILDCARD_HOST)
}

#[cfg(test)]
mod tests {
    use kafka_core::acl::PatternType;

    use super::*;

    fn acl(
        principal: &str,
        kind: PatternType,
        name: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_string(),
            pattern_type: kind,
            principal: principal.to_string(),
            host: "*".to_string(),
            operation,
            permission,
        }
    }

    fn local() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    fn can(
        authorizer: &Authorizer,
        acls: &BTreeSet<AclBinding>,
        user: &str,
        operation: AclOperation,
        topic: &str,
    ) -> bool {
        authorizer.authorize(
            acls,
            &KafkaPrincipal::user(user),
            local(),
            operation,
            ResourceType::Topic,
            topic,
        )
    }

    #[test]
    fn prefixed_allow_grants_only_its_tenant() {
        let authorizer = Authorizer::new([], false);
        let acls: BTreeSet<_> = [acl(
            "User:team-a",
            PatternType::Prefixed,
            "team-a.",
            AclOperation::All,
            AclPermission::Allow,
        )]
        .into();
        assert!(can(
            &authorizer,
            &acls,
            "team-a",
            AclOperation::Write,
            "team-a.orders"
        ));
        assert!(!can(
            &authorizer,
            &acls,
            "team-b",
            AclOperation::Write,
            "team-a.orders"
        ));
        // No ACL applies to team-b's topics: closed unless allow.everyone.if.no.acl.found.
        assert!(!can(
            &authorizer,
            &acls,
            "team-a",
            AclOperation::Read,
            "team-b.orders"
        ));
        let open = Authorizer::new([], true);
        assert!(can(
            &open,
            &acls,
            "team-b",
            AclOperation::Read,
            "team-b.orders"
        ));
        assert!(!can(
            &open,
            &acls,
            "team-b",
            AclOperation::Read,
            "team-a.orders"
        ));
    }

    #[test]
    fn deny_wins_and_describe_is_implied() {
        let authorizer = Authorizer::new([], false);
        let acls: BTreeSet<_> = [
            acl(
                "User:*",
                PatternType::Literal,
                "*",
                AclOperation::Read,
                AclPermission::Allow,
            ),
            acl(
                "User:mallory",
                PatternType::Literal,
                "payroll",
                AclOperation::Read,
                AclPermission::Deny,
            ),
        ]
        .into();
        assert!(can(
            &authorizer,
            &acls,
            "alice",
            AclOperation::Read,
            "payroll"
        ));
        assert!(can(
            &authorizer,
            &acls,
            "alice",
            AclOperation::Describe,
            "payroll"
        ));
        assert!(!can(
            &authorizer,
            &acls,
            "alice",
            AclOperation::Write,
            "payroll"
        ));
        assert!(!can(
            &authorizer,
            &acls,
            "mallory",
            AclOperation::Read,
            "payroll"
        ));
        assert!(can(
            &authorizer,
            &acls,
            "mallory",
            AclOperation::Read,
            "other"
        ));
    }

    #[test]
    fn super_users_and_a_disabled_authorizer_allow_everything() {
        let acls = BTreeSet::new();
        let authorizer = Authorizer::new(["User:admin".to_string()], false);
        assert!(can(&authorizer, &acls, "admin", AclOperation::Delete, "x"));
        assert!(!can(&authorizer, &acls, "alice", AclOperation::Delete, "x"));
        assert!(can(
            &Authorizer::disabled(),
            &acls,
            "alice",
            AclOperation::Delete,
            "x"
        ));
    }

    #[test]
    fn host_must_match() {
        let authorizer = Authorizer::new([], false);
        let mut binding = acl(
            "User:alice",
            PatternType::Literal,
            "t",
            AclOperation::Read,
            AclPermission::Allow,
        );
        binding.host = "10.0.0.1".to_string();
        let acls: BTreeSet<_> = [binding].into();
        assert!(!can(&authorizer, &acls, "alice", AclOperation::Read, "t"));
        assert!(authorizer.authorize(
            &acls,
            &KafkaPrincipal::user("alice"),
            "10.0.0.1".parse().unwrap(),
            AclOperation::Read,
            ResourceType::Topic,
            "t"
        ));
    }
}
