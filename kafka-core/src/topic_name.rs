//! Kafka's topic name rules (`org.apache.kafka.common.internals.Topic.validate`).

/// Longest legal topic name.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Why a topic name is illegal; the messages are Kafka's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTopicName {
    #[error("Topic name is illegal, it can't be empty")]
    Empty,
    #[error("Topic name cannot be \".\" or \"..\"")]
    Dots,
    #[error("Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, topic name: {0}")]
    TooLong(String),
    #[error("Topic name \"{0}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'")]
    IllegalCharacter(String),
}

/// Checks a topic name: 1..=249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), InvalidTopicName> {
    if name.is_empty() {
        return Err(InvalidTopicName::Empty);
    }
    if name == "." || name == ".." {
        return Err(InvalidTopicName::Dots);
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return Err(InvalidTopicName::TooLong(name.to_string()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(InvalidTopicName::IllegalCharacter(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_names() {
        for ok in [
            "a",
            "my-topic",
            "orders.v1_eu-west",
            "__consumer_offsets",
            "A.b_c-9",
            &"x".repeat(249),
        ] {
            assert_eq!(validate_topic_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn illegal_names_say_why() {
        assert_eq!(validate_topic_name(""), Err(InvalidTopicName::Empty));
        assert_eq!(validate_topic_name("."), Err(InvalidTopicName::Dots));
        assert_eq!(validate_topic_name(".."), Err(InvalidTopicName::Dots));
        assert!(matches!(
            validate_topic_name(&"x".repeat(250)),
            Err(InvalidTopicName::TooLong(_))
        ));
        for bad in ["has space", "ü", "a/b"] {
            assert_eq!(
                validate_topic_name(bad),
                Err(InvalidTopicName::IllegalCharacter(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(
            InvalidTopicName::IllegalCharacter("a b".into()).to_string(),
            "Topic name \"a b\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        );
    }
}
