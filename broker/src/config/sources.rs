//! Where broker properties come from: a Kafka-style properties file, `KAFKA_*` / `RIVULET_*`
//! environment variables and `--override key=value` flags, merged in that order (later wins).

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;

/// Where an explicitly set property came from (DescribeConfigs reports it as the source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    File,
    Environment,
    CommandLine,
}

/// Explicitly set properties and their origins.
#[derive(Clone, Debug, Default)]
pub struct Properties {
    values: BTreeMap<String, (String, Origin)>,
}

impl Properties {
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>, origin: Origin) {
        self.values.insert(key.into(), (value.into(), origin));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    pub fn origin(&self, key: &str) -> Option<Origin> {
        self.values.get(key).map(|(_, o)| *o)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(k, (v, _))| (k.as_str(), v.as_str()))
    }

    /// Parses Java-properties text: `key=value` or `key: value`, `#`/`!` comments, blank lines,
    /// backslash line continuations.
    pub fn parse_properties_text(&mut self, text: &str, origin: Origin) -> Result<(), ConfigError> {
        let mut logical = String::new();
        for (number, raw) in text.lines().enumerate() {
            let line = raw.trim_start();
            if logical.is_empty()
                && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
            {
                continue;
            }
            if let Some(stripped) = line.strip_suffix('\\') {
                logical.push_str(stripped);
                continue;
            }
            logical.push_str(line);
            let entry = std::mem::take(&mut logical);
            let split = entry.find(['=', ':']).ok_or_else(|| ConfigError::Syntax {
                line: number + 1,
                text: entry.clone(),
            })?;
            let key = entry[..split].trim();
            let value = entry[split + 1..].trim();
            if key.is_empty() {
                return Err(ConfigError::Syntax {
                    line: number + 1,
                    text: entry.clone(),
                });
            }
            self.set(key, value, origin);
        }
        Ok(())
    }

    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.parse_properties_text(&text, Origin::File)
    }

    /// `KAFKA_LOG_DIRS=/data` -> `log.dirs=/data`, the convention of the common Kafka images:
    /// `_` is a dot, `__` an underscore, `___` a dash. `RIVULET_` works the same and wins.
    pub fn load_environment<I>(&mut self, vars: I)
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut kafka = Vec::new();
        let mut rivulet = Vec::new();
        for (name, value) in vars {
            if let Some(rest) = name.strip_prefix("RIVULET_") {
                rivulet.push((env_name_to_property(rest), value));
            } else if let Some(rest) = name.strip_prefix("KAFKA_") {
                kafka.push((env_name_to_property(rest), value));
            }
        }
        for (key, value) in kafka.into_iter().chain(rivulet) {
            if super::definitions::definition(&key).is_some()
                || super::connections::split_listener_key(&key).is_some()
            {
                self.set(key, value, Origin::Environment);
            }
        }
    }

    /// `key=value` pairs from the command line.
    pub fn load_overrides(&mut self, overrides: &[String]) -> Result<(), ConfigError> {
        for entry in overrides {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| ConfigError::Override(entry.clone()))?;
            self.set(key.trim(), value.trim(), Origin::CommandLine);
        }
        Ok(())
    }
}

fn env_name_to_property(name: &str) -> String {
    name.to_ascii_lowercase()
        .replace("___", "\u{1}")
        .replace("__", "\u{2}")
        .replace('_', ".")
        .replace('\u{1}', "-")
        .replace('\u{2}', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_properties_file_syntax() {
        let mut p = Properties::default();
        p.parse_properties_text(
            "# comment\n! also comment\n\nlog.dirs=/a,\\\n  /b\nnum.partitions : 6\nbroker.rack=eu-west-1a\n",
            Origin::File,
        )
        .unwrap();
        assert_eq!(p.get("log.dirs"), Some("/a,/b"));
        assert_eq!(p.get("num.partitions"), Some("6"));
        assert_eq!(p.get("broker.rack"), Some("eu-west-1a"));
        assert_eq!(p.origin("num.partitions"), Some(Origin::File));
    }

    #[test]
    fn rejects_lines_without_separator() {
        let mut p = Properties::default();
        assert!(p.parse_properties_text("justakey\n", Origin::File).is_err());
    }

    #[test]
    fn maps_environment_names_and_rivulet_wins() {
        let mut p = Properties::default();
        p.load_environment(vec![
            ("KAFKA_LOG_DIRS".to_string(), "/kafka".to_string()),
            ("RIVULET_LOG_DIRS".to_string(), "/rivulet".to_string()),
            ("KAFKA_NUM_PARTITIONS".to_string(), "3".to_string()),
            ("KAFKA_UNKNOWN_THING".to_string(), "x".to_string()),
            (
                "KAFKA_LISTENER_NAME_CLIENT_MAX_CONNECTIONS".to_string(),
                "7".to_string(),
            ),
            ("HOME".to_string(), "/root".to_string()),
        ]);
        assert_eq!(p.get("log.dirs"), Some("/rivulet"));
        assert_eq!(p.get("num.partitions"), Some("3"));
        assert_eq!(p.get("unknown.thing"), None);
        assert_eq!(p.get("listener.name.client.max.connections"), Some("7"));
        assert_eq!(env_name_to_property("A__B___C_D"), "a_b-c.d");
    }

    #[test]
    fn overrides_need_an_equals_sign() {
        let mut p = Properties::default();
        p.load_overrides(&["num.partitions=4".to_string()]).unwrap();
        assert_eq!(p.get("num.partitions"), Some("4"));
        assert!(p.load_overrides(&["oops".to_string()]).is_err());
    }
}
