//! `amqps://` against a RabbitMQ TLS listener (scripts/rabbit-cluster start-tls:
//! a standalone node, TLS on 5714) serving a CA and certificate this test makes.

use std::path::Path;
use std::time::Duration;

use blog::transport::rabbitmq::{RabbitOptions, RabbitTransport};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::helpers::{eventually, spawn_app_with, unique_name, Backend};
use crate::support_cluster::{run_script, run_script_here};

const TLS_URL: &str = "amqps://guest:guest@localhost:5714";

/// A CA (`<name>.pem`); with `server`, also a certificate for localhost it signed.
fn make_ca(dir: &Path, name: &str, server: bool) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, format!("blog test {name}"));
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), ca.pem()).unwrap();
    if server {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    }
}

/// The TLS node, stopped when the test ends.
struct TlsNode;

impl TlsNode {
    async fn start(certs: &Path) -> TlsNode {
        run_script(&["start-tls", &certs.display().to_string()]).await;
        TlsNode
    }
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        run_script_here(&["stop-tls"]);
    }
}

#[actix_web::test]
async fn events_flow_over_amqps_and_a_broker_whose_certificate_another_ca_signed_is_refused_clearly() {
    let certs = tempfile::tempdir().unwrap();
    make_ca(certs.path(), "ca", true);
    make_ca(certs.path(), "other-ca", false);
    let _node = TlsNode::start(certs.path()).await;

    let wrong = RabbitOptions { ca_file: Some(certs.path().join("other-ca.pem")), ..RabbitOptions::default() };
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        RabbitTransport::connect_with(TLS_URL, &unique_name("tls"), vec![], blog::startup::registered_workers(), wrong),
    )
    .await
    .expect("refused in time, not hanging");
    let error = refused.err().expect("a server signed by another CA is refused");
    assert!(matches!(error, blog_actors::delivery::TransportError::Refused { .. }), "{error}");
    let error = error.to_string();
    assert!(error.contains("certificate") && error.contains("BLOG_AMQP_CA_FILE"), "{error}");
    assert!(!error.contains("guest:guest"), "{error}");

    let ca = certs.path().join("ca.pem");
    let app = spawn_app_with(
        Backend::Rabbit,
        |s| {
            s.broker_url = TLS_URL.into();
            s.amqp_ca_file = Some(ca);
        },
        |_| {},
    )
    .await;
    let node = app.handles.transport.broker_node().expect("connected");
    assert_eq!(node, "amqps://***@localhost:5714");
    app.created_post("Over TLS", &["tls"]).await;
    app.created_post("Over TLS again", &["tls"]).await;
    app.wait_for_cloud(&[("tls", 2)]).await;
    eventually("both posts projected", || async { (app.get_json("/posts?tag=tls").await["total"] == 2).then_some(()) }).await;
    app.wait_until_idle().await;
}
