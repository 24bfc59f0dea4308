//! The load generator: a minimal HTTP/1.1 keep-alive client, one task per
//! connection, each request timed into an HDR histogram.
//!
//! Hand-rolled rather than wrk or a full client: a request is one write and a
//! response one buffered read, so the client costs little of the two cores it
//! shares with the server, it needs nothing installed, and the test suite can
//! run it. It speaks just what the measured servers answer: `Content-Length`
//! or chunked bodies, keep-alive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Makes the next request's bytes (a connection's own seeded generator).
pub type MakeRequest = Arc<dyn Fn(&mut StdRng) -> Vec<u8> + Send + Sync>;

/// One response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("a JSON body")
    }
}

/// A request's bytes: `Host`, keep-alive, and a JSON body when given.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        out.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    bytes
}

/// One kept-alive connection.
pub struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self { stream: BufReader::with_capacity(64 * 1024, stream) })
    }

    pub async fn send(&mut self, request: &[u8]) -> anyhow::Result<Response> {
        self.stream.get_mut().write_all(request).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> anyhow::Result<Response> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            bail!("the server closed the connection");
        }
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("a status line")?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else { continue };
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
        let body = if chunked { self.read_chunked().await? } else { self.read_exact(length.unwrap_or(0)).await? };
        Ok(Response { status, body })
    }

    async fn read_exact(&mut self, n: usize) -> anyhow::Result<Vec<u8>> {
        let mut body = vec![0; n];
        self.stream.read_exact(&mut body).await?;
        Ok(body)
    }

    async fn read_chunked(&mut self) -> anyhow::Result<Vec<u8>> {
        let (mut body, mut line) = (Vec::new(), String::new());
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).context("a chunk size")?;
            let mut chunk = self.read_exact(size + 2).await?;
            chunk.truncate(size);
            body.extend_from_slice(&chunk);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

/// One request on a fresh connection (set-up calls, not measured ones).
pub async fn call(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> anyhow::Result<Response> {
    Conn::connect(addr).await?.send(&request(method, path, headers, body)).await
}

/// What to run.
#[derive(Clone)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub connections: usize,
    /// Measured time, after the warm-up.
    pub duration: Duration,
    pub warmup: Duration,
    pub make: MakeRequest,
    /// Any other status counts as an error.
    pub expect_status: u16,
}

/// What a load run measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The typical response body, for sizing the ceiling's fixed body.
    pub body_bytes: usize,
}

/// Runs `spec.connections` closed-loop clients for the warm-up plus the duration.
pub async fn run_load(spec: &LoadSpec) -> anyhow::Result<LoadResult> {
    let started = Instant::now();
    let measure_from = started + spec.warmup;
    let until = measure_from + spec.duration;
    let tasks: Vec<_> = (0..spec.connections)
        .map(|i| {
            let spec = spec.clone();
            tokio::spawn(async move { one_connection(&spec, i as u64, measure_from, until).await })
        })
        .collect();
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut requests, mut errors, mut body_bytes) = (0, 0, 0);
    for task in tasks {
        let (histogram, n, e, bytes) = task.await??;
        total.add(&histogram)?;
        requests += n;
        errors += e;
        body_bytes = body_bytes.max(bytes);
    }
    if requests == 0 {
        bail!("no request completed against {}", spec.addr);
    }
    let micros = |q: f64| total.value_at_quantile(q) as f64 / 1000.0;
    Ok(LoadResult {
        requests,
        errors,
        rps: requests as f64 / spec.duration.as_secs_f64(),
        p50_ms: micros(0.50),
        p99_ms: micros(0.99),
        body_bytes,
    })
}

async fn one_connection(
    spec: &LoadSpec,
    seed: u64,
    measure_from: Instant,
    until: Instant,
) -> anyhow::Result<(Histogram<u64>, u64, u64, usize)> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut rng = StdRng::seed_from_u64(0x5eed ^ seed);
    let mut conn = Conn::connect(spec.addr).await?;
    let (mut requests, mut errors, mut body_bytes) = (0, 0, 0);
    loop {
        let request = (spec.make)(&mut rng);
        let sent = Instant::now();
        if sent >= until {
            break;
        }
        let answer = conn.send(&request).await;
        let took = sent.elapsed();
        let ok = match &answer {
            Ok(r) => {
                body_bytes = r.body.len();
                r.status == spec.expect_status
            }
            Err(_) => false,
        };
        if sent >= measure_from {
            histogram.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
            requests += 1;
            if !ok {
                errors += 1;
            }
        }
        if answer.is_err() {
            conn = Conn::connect(spec.addr).await?;
        }
    }
    Ok((histogram, requests, errors, body_bytes))
}
