//! The HTTP ceiling: a minimal actix-web server that answers every request
//! with a fixed JSON body of a given size, with as many workers as the service
//! has. Nothing can answer faster on this machine with this framework, so each
//! endpoint's throughput is reported as a ratio to this one's at the same
//! response size.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};

/// A ceiling server running on its own thread and actix System.
pub struct Ceiling {
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The bodies served: `/fixed/{size}` answers the one of that size.
fn bodies(sizes: &[usize]) -> HashMap<usize, web::Bytes> {
    sizes.iter().map(|&n| (n, web::Bytes::from(fixed_json(n)))).collect()
}

/// A JSON array of exactly `n` bytes (at least 2).
pub fn fixed_json(n: usize) -> Vec<u8> {
    let n = n.max(2);
    let mut body = Vec::with_capacity(n);
    body.push(b'[');
    // Filled with a string of the right length; the shape does not matter to the server.
    if n >= 4 {
        body.push(b'"');
        body.resize(n - 2, b'x');
        body.push(b'"');
    }
    body.push(b']');
    body
}

async fn fixed(bodies: web::Data<HashMap<usize, web::Bytes>>, size: web::Path<usize>, _body: web::Bytes) -> HttpResponse {
    match bodies.get(&size) {
        Some(body) => HttpResponse::Ok().content_type("application/json").body(body.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}

impl Ceiling {
    /// Serves `sizes` on a free port with `workers` workers.
    pub fn start(sizes: &[usize], workers: usize) -> anyhow::Result<Ceiling> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let bodies = web::Data::new(bodies(sizes));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let server = HttpServer::new(move || {
                    App::new().app_data(bodies.clone()).route("/fixed/{size}", web::route().to(fixed))
                })
                .workers(workers)
                .disable_signals()
                .listen(listener);
                match server {
                    Ok(server) => {
                        let server = server.run();
                        let _ = tx.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let handle = rx.recv()??;
        Ok(Ceiling { addr, handle, thread: Some(thread) })
    }

    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Shared by the HTTP sections: the path answering `size` bytes.
pub fn path(size: usize) -> Arc<str> {
    format!("/fixed/{size}").into()
}
