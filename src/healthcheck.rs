//! `blog healthcheck`: asks the running service whether it is ready, so a
//! container needs no curl. Exit 0 when ready, 1 otherwise.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// GETs `/health/ready` on the service's own address; true on 200.
pub fn is_ready(addr: SocketAddr) -> Result<bool, String> {
    // A service bound to every interface is reached on loopback.
    let target = if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr };
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT).map_err(|e| format!("connecting to {target}: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream
        .write_all(format!("GET /health/ready HTTP/1.0\r\nHost: {target}\r\n\r\n").as_bytes())
        .map_err(|e| format!("asking {target}: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| format!("reading from {target}: {e}"))?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    Ok(status_line.split_whitespace().nth(1) == Some("200"))
}
