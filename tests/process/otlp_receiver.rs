//! A real OTLP/HTTP receiver: takes `POST /v1/traces` (protobuf), decodes each
//! body with the official OpenTelemetry definitions and keeps the spans.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

/// How long the spans of a flow may take to arrive.
const WAIT: Duration = Duration::from_secs(30);

/// One received span, its ids in lower-case hex as in a `traceparent`.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// The OTLP `SpanKind` number: 2 server, 4 producer, 5 consumer.
    pub kind: i32,
    /// String and integer attributes, as text.
    pub attributes: HashMap<String, String>,
}

/// The receiver; it stops with the test process.
pub struct OtlpReceiver {
    pub endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

impl OtlpReceiver {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let kept = kept.clone();
                std::thread::spawn(move || serve(stream, &kept));
            }
        });
        Self { endpoint, spans }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until `found` accepts the spans of trace `trace_id`; returns them.
    pub fn wait_for_trace(&self, trace_id: &str, what: &str, found: impl Fn(&[ReceivedSpan]) -> bool) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + WAIT;
        loop {
            let trace: Vec<ReceivedSpan> =
                self.spans.lock().unwrap().iter().filter(|s| s.trace_id == trace_id).cloned().collect();
            if found(&trace) {
                return trace;
            }
            assert!(Instant::now() < deadline, "trace {trace_id} never held {what}; it holds {trace:#?}");
            std::thread::sleep(Duration::from_millis(25)); // poll interval under a deadline
        }
    }
}

/// Answers the requests of one connection (the exporter keeps it alive).
fn serve(stream: TcpStream, spans: &Mutex<Vec<ReceivedSpan>>) {
    let mut writer = stream.try_clone().expect("clone the stream");
    let mut reader = BufReader::new(stream);
    while let Some((path, body)) = read_request(&mut reader) {
        let status = match ExportTraceServiceRequest::decode(body.as_slice()) {
            Ok(request) if path == "/v1/traces" => {
                spans.lock().unwrap().extend(received(request));
                "200 OK"
            }
            _ => "400 Bad Request",
        };
        let answer = format!("HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// The path and body of the next request; `None` when the connection ends.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let path = line.split(' ').nth(1)?.to_owned();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            assert!(!name.eq_ignore_ascii_case("transfer-encoding"), "the exporter sent a chunked body");
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, body))
}

fn received(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let spans = request.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
    spans
        .map(|span| ReceivedSpan {
            trace_id: hex(&span.trace_id),
            span_id: hex(&span.span_id),
            parent_span_id: hex(&span.parent_span_id),
            name: span.name,
            kind: span.kind,
            attributes: span
                .attributes
                .into_iter()
                .filter_map(|kv| {
                    let value = match kv.value?.value? {
                        Value::StringValue(s) => s,
                        Value::IntValue(i) => i.to_string(),
                        _ => return None,
                    };
                    Some((kv.key, value))
                })
                .collect(),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
