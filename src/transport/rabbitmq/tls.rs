//! `amqps://`: the rustls client config every TLS connection uses.
//!
//! The server is trusted when its certificate chains to `BLOG_AMQP_CA_FILE` (PEM,
//! one or more certificates) or, without it, to the system's roots. Built here
//! rather than by amqprs' own helper, whose CA loader panics on a certificate it
//! cannot use and which knows only the bundled Mozilla roots.

use std::path::Path;
use std::sync::Arc;

use amqprs::tls::TlsAdaptor;
use blog_actors::delivery::TransportError;
use blog_actors::ports::Reason;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio_rustls::TlsConnector;

use super::broker_said::Said;

/// The certificates a server may chain to.
pub(super) fn roots(ca_file: Option<&Path>) -> Result<Arc<RootCertStore>, TransportError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let problem = |why: String| TransportError::misconfigured(format!("BLOG_AMQP_CA_FILE {}", path.display()), Said(why));
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| problem(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| problem(format!("not PEM certificates: {e}")))?;
            if certs.is_empty() {
                return Err(problem("holds no certificate".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| problem(format!("not a usable CA certificate: {e}")))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(TransportError::misconfigured(
                    "amqps:// needs CA certificates",
                    Reason("the system has none; set BLOG_AMQP_CA_FILE"),
                ));
            }
        }
    }
    Ok(Arc::new(roots))
}

/// The TLS side of a connection to `host` (checked against the server's certificate).
pub(super) fn adaptor(roots: Arc<RootCertStore>, host: &str) -> Result<TlsAdaptor, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::misconfigured("cannot set up TLS", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsAdaptor::new(TlsConnector::from(Arc::new(config)), host.to_owned()))
}
