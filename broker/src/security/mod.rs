//! Who is on the other end of a connection: TLS with client certificates, SASL, and the
//! principal each yields. The network layer runs them when a connection opens (see
//! `server::authentication`); the settings come from `config::security`.

pub mod authorizer;
pub mod jaas;
pub mod oauthbearer;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod scram_bootstrap;
pub mod scram_client;
pub mod tls;

pub use authorizer::Authorizer;
pub use principal::{KafkaPrincipal, PrincipalMapper};
pub use sasl::{Exchange, SaslServer, Step};
pub use scram::CredentialStore;
pub use tls::TlsIdentity;
