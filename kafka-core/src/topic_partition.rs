//! Topic-partition identity, printed and parsed as Kafka names it (`<topic>-<partition>`, also
//! the name of the partition's log directory).

use std::fmt;

/// A partition of a topic.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Parses a directory name `<topic>-<partition>`, splitting at the last '-'.
    /// Returns `None` for names that are not partition directories.
    pub fn from_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || partition.is_empty() || partition.starts_with('+') {
            return None;
        }
        let partition: i32 = partition.parse().ok()?;
        if partition < 0 {
            return None;
        }
        Some(TopicPartition::new(topic, partition))
    }

    /// The directory name of this partition's log.
    pub fn dir_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip_through_last_dash() {
        let tp = TopicPartition::new("my-topic-v2", 13);
        assert_eq!(tp.dir_name(), "my-topic-v2-13");
        assert_eq!(TopicPartition::from_dir_name("my-topic-v2-13"), Some(tp));
        assert_eq!(
            TopicPartition::from_dir_name("topic--1"),
            Some(TopicPartition::new("topic-", 1))
        );
        assert_eq!(
            TopicPartition::from_dir_name("__consumer_offsets-0"),
            Some(TopicPartition::new("__consumer_offsets", 0))
        );
    }

    #[test]
    fn non_partition_names_are_rejected() {
        for name in [
            "topic",
            "-3",
            "topic-",
            "topic-x",
            "topic-+1",
            "t-0.abc-delete",
        ] {
            assert_eq!(TopicPartition::from_dir_name(name), None, "{name}");
        }
    }
}
