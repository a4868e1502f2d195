//! Kafka's access control lists: the resource types, pattern types, operations and permission
//! types with their protocol codes, an ACL binding, a binding filter (DescribeAcls, DeleteAcls)
//! and the rules by which a binding applies to a resource — the knowledge Kafka's
//! `StandardAuthorizer` and `AclControlManager` share.

use serde::{Deserialize, Serialize};

/// Codes Kafka sends on the wire for each ACL enum.
macro_rules! codes {
    ($name:ident { $($variant:ident = $code:literal => $text:literal,)* }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            /// The protocol code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                }
            }

            /// The value of a protocol code; `None` for codes Kafka does not define.
            pub fn from_code(code: i8) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// Kafka's name (`TOPIC`, `PREFIXED`, `DESCRIBE_CONFIGS`, `ALLOW`).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }
    };
}

codes!(ResourceType {
    Any = 1 => "ANY",
    Topic = 2 => "TOPIC",
    Group = 3 => "GROUP",
    Cluster = 4 => "CLUSTER",
    TransactionalId = 5 => "TRANSACTIONAL_ID",
    DelegationToken = 6 => "DELEGATION_TOKEN",
    User = 7 => "USER",
});

codes!(PatternType {
    Any = 1 => "ANY",
    Match = 2 => "MATCH",
    Literal = 3 => "LITERAL",
    Prefixed = 4 => "PREFIXED",
});

codes!(AclOperation {
    Any = 1 => "ANY",
    All = 2 => "ALL",
    Read = 3 => "READ",
    Write = 4 => "WRITE",
    Create = 5 => "CREATE",
    Delete = 6 => "DELETE",
    Alter = 7 => "ALTER",
    Describe = 8 => "DESCRIBE",
    ClusterAction = 9 => "CLUSTER_ACTION",
    DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
    AlterConfigs = 11 => "ALTER_CONFIGS",
    IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
    CreateTokens = 13 => "CREATE_TOKENS",
    DescribeTokens = 14 => "DESCRIBE_TOKENS",
});

codes!(AclPermission {
    Any = 1 => "ANY",
    Deny = 2 => "DENY",
    Allow = 3 => "ALLOW",
});

/// The name of the one cluster resource.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// The literal resource name that matches every resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";

/// The principal that matches every user (`User:*`) and the host that matches every host.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
pub const WILDCARD_HOST: &str = "*";

/// One ACL: `principal` from `host` is allowed or denied `operation` on the resources of
/// `resource_type` named by `resource_name` under `pattern_type` (LITERAL or PREFIXED).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclBinding {
    /// Why Kafka would refuse to create this binding (CreateAcls answers INVALID_REQUEST).
    pub fn validate(&self) -> Result<(), String> {
        if matches!(self.resource_type, ResourceType::Any) {
            return Err("the resource type must not be ANY".to_string());
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(format!(
                "the pattern type must be LITERAL or PREFIXED, not {}",
                self.pattern_type.name()
            ));
        }
        if self.resource_name.is_empty() {
            return Err("the resource name must not be empty".to_string());
        }
        if self.resource_type == ResourceType::Cluster
            && self.resource_name != CLUSTER_RESOURCE_NAME
        {
            return Err(format!(
                "the cluster resource is named {CLUSTER_RESOURCE_NAME}"
            ));
        }
        if matches!(self.operation, AclOperation::Any) {
            return Err("the operation must not be ANY".to_string());
        }
        if matches!(self.permission, AclPermission::Any) {
            return Err("the permission type must be ALLOW or DENY".to_string());
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(format!(
                    "principal {:?} is not of the form Type:name (User:alice)",
                    self.principal
                ))
            }
        }
        if self.host.is_empty() {
            return Err("the host must not be empty (use * for every host)".to_string());
        }
        Ok(())
    }

    /// Whether this binding's pattern covers the resource `name` of `resource_type`.
    pub fn applies_to(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == name || self.resource_name == WILDCARD_RESOURCE
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
                PatternType::Any | PatternType::Match => false,
            }
    }
}

/// A filter over bindings (DescribeAcls, DeleteAcls): `None` fields and ANY values match
/// everything; pattern type MATCH matches the bindings that apply to the named resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclFilter {
    pub fn matches(&self, binding: &AclBinding) -> bool {
        let resource_type =
            self.resource_type == ResourceType::Any || self.resource_type == binding.resource_type;
        let pattern = match (self.pattern_type, &self.resource_name) {
            (PatternType::Any, None) => true,
            (PatternType::Any, Some(name)) => &binding.resource_name == name,
            (PatternType::Match, None) => true,
            (PatternType::Match, Some(name)) => binding.applies_to(binding.resource_type, name),
            (kind, name) => {
                binding.pattern_type == kind
                    && name.as_ref().is_none_or(|n| n == &binding.resource_name)
            }
        };
        resource_type
            && pattern
            && self
                .principal
                .as_ref()
                .is_none_or(|p| p == &binding.principal)
            && self.host.as_ref().is_none_or(|h| h == &binding.host)
            && (self.operation == AclOperation::Any || self.operation == binding.operation)
            && (self.permission == AclPermission::Any || self.permission == binding.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(kind: PatternType, name: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.to_string(),
            pattern_type: kind,
            principal: "User:team-a".to_string(),
            host: "*".to_string(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        }
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_are_none() {
        for code in 1..=14 {
            assert_eq!(
                AclOperation::from_code(code).map(AclOperation::code),
                Some(code)
            );
        }
        assert_eq!(ResourceType::from_code(2), Some(ResourceType::Topic));
        assert_eq!(ResourceType::from_code(0), None);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclPermission::Allow.name(), "ALLOW");
    }

    #[test]
    fn literal_wildcard_and_prefixed_patterns_apply_as_kafka_does() {
        assert!(binding(PatternType::Literal, "orders").applies_to(ResourceType::Topic, "orders"));
        assert!(!binding(PatternType::Literal, "orders").applies_to(ResourceType::Topic, "orders2"));
        assert!(binding(PatternType::Literal, "*").applies_to(ResourceType::Topic, "anything"));
        assert!(
            binding(PatternType::Prefixed, "team-a.").applies_to(ResourceType::Topic, "team-a.x")
        );
        assert!(
            !binding(PatternType::Prefixed, "team-a.").applies_to(ResourceType::Topic, "team-b.x")
        );
        assert!(
            !binding(PatternType::Prefixed, "team-a.").applies_to(ResourceType::Group, "team-a.x")
        );
    }

    #[test]
    fn filters_match_by_field_and_by_applicability() {
        let prefixed = binding(PatternType::Prefixed, "team-a.");
        let any = AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        };
        assert!(any.matches(&prefixed));
        let exact = AclFilter {
            pattern_type: PatternType::Prefixed,
            resource_name: Some("team-a.".to_string()),
            ..any.clone()
        };
        assert!(exact.matches(&prefixed));
        let literal = AclFilter {
            pattern_type: PatternType::Literal,
            ..exact.clone()
        };
        assert!(!literal.matches(&prefixed));
        let applicable = AclFilter {
            pattern_type: PatternType::Match,
            resource_name: Some("team-a.orders".to_string()),
            ..any.clone()
        };
        assert!(applicable.matches(&prefixed));
        let other_user = AclFilter {
            principal: Some("User:team-b".to_string()),
            ..any
        };
        assert!(!other_user.matches(&prefixed));
    }

    #[test]
    fn invalid_bindings_are_refused() {
        assert!(binding(PatternType::Prefixed, "x").validate().is_ok());
        assert!(binding(PatternType::Match, "x").validate().is_err());
        let mut cluster = binding(PatternType::Literal, "other");
        cluster.resource_type = ResourceType::Cluster;
        assert!(cluster.validate().is_err());
        let mut principal = binding(PatternType::Literal, "x");
        principal.principal = "alice".to_string();
        assert!(principal.validate().is_err());
    }
}
