//! The Kafka knowledge every Rivulet crate needs, with no Rivulet machinery: protocol error
//! codes, topic-partition identity, topic name rules, the topic config table, access control
//! lists, SCRAM credentials, client quotas and the `controller.quorum.voters` syntax.

pub mod acl;
mod config_type;
mod error_code;
pub mod quota;
pub mod scram;
mod topic_config;
mod topic_name;
mod topic_partition;
mod voters;

pub use config_type::ConfigType;
pub use error_code::ErrorCode;
pub use topic_config::{
    parse_topic_config, topic_config, ConfigValue, Rule, TopicConfig, TopicConfigError,
    TOPIC_CONFIGS,
};
pub use topic_name::{validate_topic_name, InvalidTopicName, MAX_TOPIC_NAME_LENGTH};
pub use topic_partition::TopicPartition;
pub use voters::{parse_voters, InvalidVoters};
