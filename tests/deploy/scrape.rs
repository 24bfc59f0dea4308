//! The real service, started with the ConfigMap's settings on RabbitMQ, and
//! the series its GET /metrics serves.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::manifests::Manifests;
use crate::service::{start, Service};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672";
/// How long the service may take to connect, declare its topology and say ready.
const READY_WAIT: Duration = Duration::from_secs(30);
/// Settings of the ConfigMap that a test must not take: where to listen and write.
const LOCAL_SETTINGS: [&str; 2] = ["BLOG_HTTP_ADDR", "BLOG_DATA_DIR"];

/// A running service with its own exchange and queue names.
pub struct Running {
    pub service: Service,
    /// Stands for the ConfigMap's BLOG_AMQP_PREFIX, so parallel tests never share queues.
    pub prefix: String,
    /// The settings it runs with: they name its retry queues, deleted at the end.
    settings: BTreeMap<String, String>,
    /// Holds the embedded store; removed when the test ends.
    _data: TempDir,
}

impl Drop for Running {
    /// Deletes the run's queues and exchanges, so the shared broker does not
    /// pile up a topology per test run (CI runs on the same node, session after session).
    fn drop(&mut self) {
        let _ = self.service.child.kill();
        let _ = self.service.child.wait();
        // Read as the environment would be: "5" a number, "1s" a duration.
        let overrides: BTreeMap<String, figment::value::Value> = self
            .settings
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("BLOG_")?.to_lowercase(), v.parse().ok()?)))
            .collect();
        let delays = blog::configuration::Settings::load(None, figment::Figment::from(figment::providers::Serialized::defaults(overrides)))
            .expect("the ConfigMap's settings load")
            .retry_policy()
            .delay_levels();
        if let Err(e) = blog::transport::rabbitmq::RabbitTransport::delete_topology_blocking(AMQP_URL, &self.prefix, &delays, blog::startup::registered_workers()) {
            eprintln!("could not delete the queues of {}: {e}", self.prefix);
        }
    }
}

/// Starts the binary with every ConfigMap setting but the address and data dir, on
/// the machine's RabbitMQ under a prefix of its own, and waits until it is ready.
pub async fn start_with_manifest_settings() -> Running {
    let data = tempfile::tempdir().expect("a data dir");
    let prefix = format!("t_deploy_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut settings = Manifests::load().settings();
    settings.retain(|k, _| !LOCAL_SETTINGS.contains(&k.as_str()));
    settings.insert("BLOG_AMQP_PREFIX".into(), prefix.clone());
    settings.insert("BLOG_BROKER_URL".into(), AMQP_URL.into());
    let env: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let service = start(data.path(), &env);
    let settings = settings.into_iter().collect();
    let deadline = Instant::now() + READY_WAIT;
    loop {
        let ready = reqwest::get(format!("{}/health/ready", service.address)).await.is_ok_and(|r| r.status() == 200);
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {:?}", service.log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval under a deadline
    }
    Running { service, prefix, settings, _data: data }
}

/// One sample line of the text format: its name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl Series {
    /// Parses `name{label="value",…}` (the part of a sample line before its value).
    pub fn parse(text: &str) -> Option<Series> {
        let text = text.trim();
        let name_end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(text.len());
        let (name, mut rest) = text.split_at(name_end);
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            rest = inner;
            loop {
                rest = rest.trim_start_matches([',', ' ']);
                if let Some(after) = rest.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let (label, after) = rest.split_once("=\"")?;
                let (value, after) = quoted(after)?;
                labels.insert(label.trim().to_owned(), value);
                rest = after;
            }
        }
        (!name.is_empty() && rest.trim().is_empty()).then(|| Series { name: name.to_owned(), labels })
    }

    pub fn label_names(&self) -> BTreeSet<&str> {
        self.labels.keys().map(String::as_str).collect()
    }
}

/// A label value up to its closing quote (escapes undone), and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// Every series GET /metrics serves now.
pub async fn served_series(running: &Running) -> Vec<Series> {
    let response = reqwest::get(format!("{}/metrics", running.service.address)).await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("the metrics text");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            // The value (and an optional timestamp) follow the last `}` or the name.
            let head = l.rfind('}').map_or_else(|| l.split(' ').next().unwrap_or(l), |end| &l[..=end]);
            Series::parse(head).unwrap_or_else(|| panic!("not a sample line: {l}"))
        })
        .collect()
}

#[test]
fn a_series_parses_with_braces_commas_and_escapes_in_its_label_values() {
    let series = Series::parse(r#"blog_http_requests_total{method="GET",route="/posts/{id}",status="a\"b,c"}"#).expect("parses");
    assert_eq!(series.name, "blog_http_requests_total");
    assert_eq!(series.labels["route"], "/posts/{id}");
    assert_eq!(series.labels["status"], "a\"b,c");
    assert_eq!(Series::parse("blog_outbox_backlog").map(|s| s.labels.len()), Some(0));
    assert_eq!(Series::parse(r#"x{a="unterminated}"#), None);
}
