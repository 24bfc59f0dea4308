//! The broker becomes unreachable while the service runs: readiness says so,
//! writes keep being accepted into the outbox, and when the broker is back
//! everything flows and every effect is exact.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::helpers::{eventually, spawn_app_with, Backend};

/// A TCP proxy in front of RabbitMQ that can cut every connection, like a network partition.
struct CuttableProxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl CuttableProxy {
    /// Runs on a thread of its own, so it keeps forwarding while the test's
    /// runtime is busy (the app's clean-up on drop blocks it).
    fn start(target: &'static str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, cut) = (Arc::new(AtomicBool::new(true)), Arc::new(Notify::new()));
        let (up2, cut2) = (up.clone(), cut.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up2.load(Ordering::SeqCst) {
                        continue; // refused: dropped at once
                    }
                    let cut = cut2.clone();
                    tokio::spawn(async move {
                        let Ok(mut broker) = TcpStream::connect(target).await else { return };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut broker) => {}
                            _ = cut.notified() => {}
                        }
                    });
                }
            });
        });
        Self { port, up, cut }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[actix_web::test]
async fn while_the_broker_is_unreachable_readiness_fails_writes_wait_in_the_outbox_and_all_flows_after() {
    let proxy = CuttableProxy::start("127.0.0.1:5672");
    let url = format!("amqp://guest:guest@127.0.0.1:{}", proxy.port);
    let app = spawn_app_with(Backend::Rabbit, |s| s.broker_url = url, |_| {}).await;
    eventually("ready", || async { (app.get("/health/ready").await.status() == 200).then_some(()) }).await;

    proxy.cut();
    let ready = eventually("readiness to report the outage", || async {
        let response = app.get("/health/ready").await;
        (response.status() == 503).then_some(response)
    })
    .await;
    let checks: serde_json::Value = ready.json().await.unwrap();
    assert_ne!(checks["checks"]["broker"], "ok", "{checks}");
    for i in 0..20 {
        app.created_post(&format!("Written during the outage {i}"), &["outage"]).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("blog_broker_connected 0"), "metrics show the outage");
    assert!(app.handles.store.backlog().await.unwrap() > 0, "the writes wait in the outbox");

    proxy.restore();
    app.wait_for_cloud(&[("outage", 20)]).await;
    app.wait_until_idle().await;
    assert_eq!(app.get_json("/posts").await["total"], 20);
    eventually("ready again", || async { (app.get("/health/ready").await.status() == 200).then_some(()) }).await;
}
