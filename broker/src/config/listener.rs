//! A listener as written in `listeners` / `advertised.listeners`: `NAME://host:port`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Empty or `0.0.0.0` binds every interface.
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn parse(text: &str) -> Result<Listener, String> {
        let (name, rest) = text
            .split_once("://")
            .ok_or_else(|| "expected NAME://host:port".to_string())?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("listener name {name:?} is not valid"));
        }
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| "expected NAME://host:port".to_string())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port
            .parse()
            .map_err(|_| format!("port {port:?} is not a number between 0 and 65535"))?;
        Ok(Listener {
            name: name.to_ascii_uppercase(),
            host: host.to_string(),
            port,
        })
    }

    /// The address to bind.
    pub fn bind_address(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The listener as clients should see it when nothing is advertised: a wildcard host is
    /// replaced by this machine's host name.
    pub fn advertisable(&self) -> Listener {
        let host = if self.host.is_empty() || self.host == "0.0.0.0" || self.host == "::" {
            hostname().unwrap_or_else(|| "localhost".to_string())
        } else {
            self.host.clone()
        };
        Listener {
            name: self.name.clone(),
            host,
            port: self.port,
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.name, self.host, self.port)
    }
}

fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let l = Listener::parse("plaintext://127.0.0.2:9092").unwrap();
        assert_eq!(l.name, "PLAINTEXT");
        assert_eq!(l.host, "127.0.0.2");
        assert_eq!(l.port, 9092);
        assert_eq!(l.to_string(), "PLAINTEXT://127.0.0.2:9092");
        assert_eq!(l.bind_address(), "127.0.0.2:9092");
        let any = Listener::parse("PLAINTEXT://:9092").unwrap();
        assert_eq!(any.bind_address(), "0.0.0.0:9092");
        let v6 = Listener::parse("PLAINTEXT://[::1]:9092").unwrap();
        assert_eq!(v6.bind_address(), "[::1]:9092");
    }

    #[test]
    fn rejects_malformed() {
        assert!(Listener::parse("127.0.0.1:9092").is_err());
        assert!(Listener::parse("PLAINTEXT://host").is_err());
        assert!(Listener::parse("PLAINTEXT://host:99999").is_err());
        assert!(Listener::parse("BAD-NAME://host:1").is_err());
    }
}
