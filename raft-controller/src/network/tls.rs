//! TLS on the quorum's connections. The embedding process owns the certificates (it loads and
//! reloads them); the RPC layer asks it for an acceptor per incoming connection and a
//! connector per outgoing one, so a rotated certificate is used by the next connection.

use std::fmt::Debug;

use rustls_pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where the quorum's TLS configuration comes from.
pub trait RpcTls: Send + Sync + Debug {
    /// The acceptor for the next incoming connection.
    fn acceptor(&self) -> TlsAcceptor;

    /// The connector for dialling a peer; `None` when there is nothing to check peers with.
    fn connector(&self) -> Option<TlsConnector>;
}

/// The name a peer's certificate must carry: the host part of `host:port` (a DNS name or an IP
/// address).
pub(crate) fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| format!("bad server name {host}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host_part() {
        assert!(matches!(
            server_name("127.0.0.2:9093"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("rivulet-0.rivulet.svc:9093"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("[::1]:9093"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(server_name("bad name:1").is_err());
    }
}
