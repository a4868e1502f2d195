//! TLS for a listener (rustls through tokio-rustls): the broker's key and certificate chain
//! and the CAs client certificates must chain to, read from PEM, with `ssl.client.auth`
//! deciding whether a client certificate is required, asked for, or not asked for. The same
//! identity dials out on the internal listeners: a follower fetching from its leader and a
//! controller talking to its peers present the keystore's certificate and check the peer's
//! against the truststore.
//!
//! Certificates are re-read without a restart: before each handshake the listener compares the
//! PEM files' modification times and sizes with those it loaded (Kubernetes replaces a mounted
//! Secret's files when it rotates them), and builds a new configuration if they changed. A
//! configuration that fails to load keeps the previous one in service and says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tracing::{info, warn};

use crate::config::security::{ClientAuth, Keystore, Pem, TlsSettings};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {reason}")]
    Pem { what: String, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// When a PEM file was last seen, to tell a rotated file from the loaded one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    path: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    fn of(path: &Path) -> Stamp {
        let meta = std::fs::metadata(path).ok();
        Stamp {
            path: path.to_path_buf(),
            modified: meta.as_ref().and_then(|m| m.modified().ok()),
            len: meta.map_or(0, |m| m.len()),
        }
    }
}

#[derive(Debug)]
struct Loaded {
    stamps: Vec<Stamp>,
    config: Arc<ServerConfig>,
    /// The same identity dialling out (replication, the quorum), when there is a truststore
    /// to check peers with.
    client: Option<Arc<ClientConfig>>,
}

/// A listener's TLS configuration, reloaded when its files change.
#[derive(Debug)]
pub struct TlsIdentity {
    listener: String,
    settings: TlsSettings,
    loaded: Mutex<Loaded>,
}

impl TlsIdentity {
    /// Loads the configuration; an error here stops the broker from starting.
    pub fn load(listener: &str, settings: TlsSettings) -> Result<TlsIdentity, TlsError> {
        let stamps = stamps(&settings);
        let (config, client) = build(&settings)?;
        info!(listener, client_auth = ?settings.client_auth, "TLS configured");
        Ok(TlsIdentity {
            listener: listener.to_string(),
            settings,
            loaded: Mutex::new(Loaded {
                stamps,
                config,
                client,
            }),
        })
    }

    /// The configuration in force, rebuilt first if a certificate file changed.
    fn current(&self) -> parking_lot::MutexGuard<'_, Loaded> {
        let mut loaded = self.loaded.lock();
        let now = stamps(&self.settings);
        if now != loaded.stamps {
            match build(&self.settings) {
                Ok((config, client)) => {
                    info!(listener = %self.listener, "certificate files changed; TLS configuration reloaded");
                    loaded.config = config;
                    loaded.client = client;
                }
                Err(e) => {
                    warn!(listener = %self.listener, error = %e, "certificate files changed but do not load; keeping the previous TLS configuration");
                }
            }
            loaded.stamps = now;
        }
        loaded
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current().config.clone())
    }

    /// A connector for dialling another broker's listener of the same kind: it presents this
    /// keystore's certificate and trusts the truststore's CAs. `None` without a truststore.
    pub fn connector(&self) -> Option<tokio_rustls::TlsConnector> {
        self.current()
            .client
            .clone()
            .map(tokio_rustls::TlsConnector::from)
    }
}

/// The controller listener's TLS, for the metadata quorum's connections.
impl raft_controller::RpcTls for TlsIdentity {
    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        TlsIdentity::acceptor(self)
    }

    fn connector(&self) -> Option<tokio_rustls::TlsConnector> {
        TlsIdentity::connector(self)
    }
}

fn stamps(settings: &TlsSettings) -> Vec<Stamp> {
    let mut paths = Vec::new();
    if let Keystore::File(path) = &settings.keystore {
        paths.push(path.as_path());
    }
    if let Some(Pem::File(path)) = &settings.truststore {
        paths.push(path.as_path());
    }
    paths.into_iter().map(Stamp::of).collect()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_bytes(pem: &Pem) -> Result<Vec<u8>, TlsError> {
    match pem {
        Pem::File(path) => read(path),
        Pem::Inline(text) => Ok(text.expose().as_bytes().to_vec()),
    }
}

fn certificates(what: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_string(),
            reason: "no CERTIFICATE block".to_string(),
        });
    }
    Ok(certs)
}

fn private_key(what: &str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        what: what.to_string(),
        reason: format!("no unencrypted private key ({e})"),
    })
}

/// The server configuration, and the client one when there is a truststore.
type Built = (Arc<ServerConfig>, Option<Arc<ClientConfig>>);

fn build(settings: &TlsSettings) -> Result<Built, TlsError> {
    let (chain, key) = match &settings.keystore {
        Keystore::File(path) => {
            let pem = read(path)?;
            let what = format!("keystore {}", path.display());
            (certificates(&what, &pem)?, private_key(&what, &pem)?)
        }
        Keystore::Inline { chain, key } => (
            certificates("ssl.keystore.certificate.chain", chain.expose().as_bytes())?,
            private_key("ssl.keystore.key", key.expose().as_bytes())?,
        ),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = settings
        .protocols
        .iter()
        .filter_map(|p| match p.as_str() {
            "TLSv1.2" => Some(&rustls::version::TLS12),
            "TLSv1.3" => Some(&rustls::version::TLS13),
            _ => None,
        })
        .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match (&settings.client_auth, &settings.truststore) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(truststore)) => {
            let verifier = client_verifier(*auth, truststore, provider.clone())?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let client = match &settings.truststore {
        None => None,
        Some(truststore) => {
            let client = ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&versions)
                .map_err(|e| TlsError::Rustls(e.to_string()))?
                .with_root_certificates(roots(truststore)?)
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            Some(Arc::new(client))
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok((Arc::new(config), client))
}

fn roots(truststore: &Pem) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("truststore", &pem_bytes(truststore)?)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::Rustls(format!("truststore certificate: {e}")))?;
    }
    Ok(roots)
}

fn client_verifier(
    auth: ClientAuth,
    truststore: &Pem,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(truststore)?), provider);
    let builder = if auth == ClientAuth::Requested {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder.build().map_err(|e| TlsError::Rustls(e.to_string()))
}
