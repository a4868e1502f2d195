//! The value types of Kafka configs, with the codes DescribeConfigs reports (`configType`).

/// The type of a config value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Password,
}

impl ConfigType {
    /// Kafka's `DescribeConfigsResponse` config type code.
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Password => 9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(ConfigType::Boolean.code(), 1);
        assert_eq!(ConfigType::Long.code(), 5);
        assert_eq!(ConfigType::List.code(), 7);
        assert_eq!(ConfigType::Password.code(), 9);
    }
}
