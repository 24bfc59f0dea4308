//! Typed settings. Layers, later ones winning: built-in defaults (the embedded
//! mode) → an optional TOML file → `BLOG_*` environment variables → CLI flags.
//! A bad value stops the start with one line naming the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use blog_actors::breaker::BreakerSettings;
use blog_actors::retry::RetryPolicy;
use crate::transport::rabbitmq::{QueueOptions, QueueType, RabbitOptions, DEFAULT_DELIVERY_LIMIT};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Every setting of the service; each default gives the embedded mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// Holds the embedded store, the embedded queue and (by default) the mail folder.
    pub data_dir: PathBuf,
    /// `sqlite://<dir>` (embedded) or `mongodb://…`; unset means the embedded store in the data dir.
    pub store_url: Option<String>,
    /// `embedded`, or `amqp://…` / `amqps://…`: one URL or a comma-separated list
    /// of one cluster's nodes (the connection fails over between them).
    pub broker_url: String,
    /// Prefix of every RabbitMQ exchange and queue, so deployments (and tests) can share a broker.
    pub amqp_prefix: String,
    /// `quorum` (replicated; the default) or `classic`: the type of every queue declared.
    pub amqp_queue_type: QueueType,
    /// Quorum worker queues: deliveries of one message (crashes, lost connections,
    /// shutdown hand-backs) before the broker parks it.
    pub amqp_delivery_limit: u32,
    /// PEM CA certificate(s) an `amqps://` broker must chain to; unset: the system's roots.
    pub amqp_ca_file: Option<PathBuf>,
    /// The MongoDB write database (posts, outbox, tag cloud, email log, leases).
    pub db: String,
    /// The MongoDB queries database (the read model).
    pub queries_db: String,
    /// `smtp://user:pass@host:port` (or `smtps://`); unset means .eml files. Never printed.
    #[serde(skip_serializing)]
    pub smtp_url: Option<SecretString>,
    /// Required for writes and admin calls when set; never printed.
    #[serde(skip_serializing)]
    pub api_key: Option<SecretString>,
    /// Where the embedded mailer writes .eml files; unset means `<data_dir>/mail`.
    pub mail_dir: Option<PathBuf>,
    /// The sender of notification mails.
    pub mail_from: String,
    /// How often the tag cloud is rebuilt from scratch; 0 turns the timer off.
    #[serde(with = "humantime_serde")]
    pub tag_rebuild_interval: Duration,
    /// Attempts before a failing message is parked.
    pub max_attempts: u32,
    /// The first retry delay; it doubles per attempt.
    #[serde(with = "humantime_serde")]
    pub retry_base_delay: Duration,
    /// The longest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// Unsettled deliveries per worker queue: the bound on in-flight work and memory.
    pub prefetch: u16,
    /// How long shutdown waits for in-flight work.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// How long a worker may take over one delivery; past it the attempt fails and
    /// its claims are released. Well under RabbitMQ's 30-minute consumer timeout.
    #[serde(with = "humantime_serde")]
    pub handler_timeout: Duration,
    /// How long one store call (a MongoDB transaction, a ping; connecting and
    /// choosing a server) may take before it fails as unavailable and is retried.
    #[serde(with = "humantime_serde")]
    pub store_timeout: Duration,
    /// How long connecting to the mail server, and then one whole send, may take.
    #[serde(with = "humantime_serde")]
    pub mail_timeout: Duration,
    /// How long a rebuild (`POST /admin/rebuild`, the timer's) may run before it
    /// fails and its worker takes events again.
    #[serde(with = "humantime_serde")]
    pub rebuild_timeout: Duration,
    /// A worker with work waiting and no delivery settled for this long is
    /// reported as stalled (readiness 503, `blog_worker_stalled`, the dashboard).
    #[serde(with = "humantime_serde")]
    pub stall_after: Duration,
    /// Downstream-unavailable failures of one worker, within `breaker_window`,
    /// that open its circuit breaker (it then takes no deliveries).
    pub breaker_failures: u32,
    /// How far back a worker's unavailable failures are counted.
    #[serde(with = "humantime_serde")]
    pub breaker_window: Duration,
    /// How long an open breaker waits before one probe delivery is tried.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// `human` or `json` log lines.
    pub log_format: LogFormat,
    /// An OTLP/HTTP collector (`http://host:4318`) the spans go to; unset exports nothing.
    pub otlp_endpoint: Option<String>,
    /// Messages per second a bulk dead-letter replay sends back, so it never floods a worker.
    pub replay_rate: u32,
    /// Parked messages (in all lots) past which a warning is logged and shown; 0 turns it off.
    pub parked_warn: u64,
    /// Bytes of read answers (`GET /posts/{id}`, first list pages) the embedded store
    /// keeps between changes of its read model; 0 keeps none.
    pub read_cache_bytes: u64,
}

/// How long `POST /admin/rebuild` waits for a rebuild's answer; past it the caller gets 503.
pub const REBUILD_WAIT: Duration = Duration::from_secs(120);
/// The longest rebuild deadline: a margin under [`REBUILD_WAIT`], so a rebuild
/// that runs out of time answers its failure rather than nothing.
const MAX_REBUILD_TIMEOUT: Duration = Duration::from_secs(REBUILD_WAIT.as_secs() - 10);

/// Every setting's key: the env var is `BLOG_` + the key in upper case.
pub const SETTING_KEYS: [&str; 33] = [
    "http_addr",
    "data_dir",
    "store_url",
    "broker_url",
    "amqp_prefix",
    "amqp_queue_type",
    "amqp_delivery_limit",
    "amqp_ca_file",
    "db",
    "queries_db",
    "smtp_url",
    "api_key",
    "mail_dir",
    "mail_from",
    "tag_rebuild_interval",
    "max_attempts",
    "retry_base_delay",
    "retry_max_delay",
    "prefetch",
    "shutdown_timeout",
    "handler_timeout",
    "store_timeout",
    "mail_timeout",
    "rebuild_timeout",
    "stall_after",
    "breaker_failures",
    "breaker_window",
    "breaker_cooldown",
    "log_format",
    "otlp_endpoint",
    "replay_rate",
    "parked_warn",
    "read_cache_bytes",
];

/// A worker takes a few hundred messages a second without strain; a replay stays under that.
pub const DEFAULT_REPLAY_RATE: u32 = 200;
/// Past this a replay is a flood whatever the worker.
pub const MAX_REPLAY_RATE: u32 = 100_000;
/// Past this the read cache is more likely a typo than a plan (the budget is resident memory).
pub const MAX_READ_CACHE_BYTES: u64 = 4 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            store_url: None,
            broker_url: "embedded".into(),
            amqp_prefix: "blog".into(),
            amqp_queue_type: QueueType::Quorum,
            amqp_delivery_limit: DEFAULT_DELIVERY_LIMIT,
            amqp_ca_file: None,
            db: "blog".into(),
            queries_db: "blog_queries".into(),
            smtp_url: None,
            api_key: None,
            mail_dir: None,
            mail_from: "Blog <no-reply@blog.local>".into(),
            tag_rebuild_interval: Duration::from_secs(6 * 3600),
            max_attempts: 5,
            retry_base_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(300),
            prefetch: 200,
            shutdown_timeout: Duration::from_secs(30),
            handler_timeout: Duration::from_secs(120),
            store_timeout: Duration::from_secs(10),
            mail_timeout: Duration::from_secs(30),
            rebuild_timeout: Duration::from_secs(100),
            stall_after: Duration::from_secs(30),
            breaker_failures: BreakerSettings::default().failures,
            breaker_window: BreakerSettings::default().window,
            breaker_cooldown: BreakerSettings::default().cooldown,
            log_format: LogFormat::Human,
            otlp_endpoint: None,
            replay_rate: DEFAULT_REPLAY_RATE,
            parked_warn: 1000,
            read_cache_bytes: crate::store::sqlite::DEFAULT_READ_CACHE_BYTES,
        }
    }
}

/// Where the store lives, as chosen by `BLOG_STORE_URL`.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreChoice {
    Sqlite(PathBuf),
    Mongo { url: String, db: String, queries_db: String },
}

/// Which transport carries events, as chosen by `BLOG_BROKER_URL`.
#[derive(Debug, Clone, PartialEq)]
pub enum BrokerChoice {
    Embedded(PathBuf),
    /// `url`: one AMQP URL or a comma-separated list of a cluster's nodes.
    Rabbit { url: String, prefix: String, options: RabbitOptions },
}

/// A setting that is wrong: names it and says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    fn new(setting: &str, problem: impl Into<String>) -> Self {
        Self { setting: setting.into(), problem: problem.into() }
    }
}

impl Settings {
    /// Loads the layers: defaults, `file` (if any), `BLOG_*` env vars, then `overrides` (CLI flags).
    pub fn load(file: Option<&Path>, overrides: Figment) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::new("BLOG_CONFIG", format!("no such file {}", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only our own names: other BLOG_* variables in the environment (a test
        // harness's, say) are not settings. A TOML file stays strict.
        let figment = figment.merge(Env::prefixed("BLOG_").only(&SETTING_KEYS)).merge(overrides);
        let settings: Settings = figment.extract().map_err(|e| {
            let key = e.path.join("_");
            let setting = if key.is_empty() { "configuration".into() } else { format!("BLOG_{}", key.to_uppercase()) };
            ConfigError::new(&setting, blog_actors::redact::urls_in(&e.kind.to_string()))
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new("BLOG_MAX_ATTEMPTS", "must be at least 1"));
        }
        if self.amqp_delivery_limit == 0 {
            return Err(ConfigError::new("BLOG_AMQP_DELIVERY_LIMIT", "must be at least 1"));
        }
        if self.prefetch == 0 {
            return Err(ConfigError::new("BLOG_PREFETCH", "must be at least 1"));
        }
        if self.retry_base_delay > self.retry_max_delay {
            return Err(ConfigError::new("BLOG_RETRY_BASE_DELAY", "must not exceed BLOG_RETRY_MAX_DELAY"));
        }
        if !(1..=MAX_REPLAY_RATE).contains(&self.replay_rate) {
            return Err(ConfigError::new("BLOG_REPLAY_RATE", format!("must be between 1 and {MAX_REPLAY_RATE} messages per second")));
        }
        if self.read_cache_bytes > MAX_READ_CACHE_BYTES {
            return Err(ConfigError::new("BLOG_READ_CACHE_BYTES", format!("must be at most {MAX_READ_CACHE_BYTES} bytes")));
        }
        if self.handler_timeout.is_zero() {
            return Err(ConfigError::new("BLOG_HANDLER_TIMEOUT", "must be more than 0s"));
        }
        self.check_timeouts()?;
        if self.breaker_failures == 0 {
            return Err(ConfigError::new("BLOG_BREAKER_FAILURES", "must be at least 1"));
        }
        if self.breaker_window.is_zero() {
            return Err(ConfigError::new("BLOG_BREAKER_WINDOW", "must be more than 0s"));
        }
        if self.breaker_cooldown.is_zero() {
            return Err(ConfigError::new("BLOG_BREAKER_COOLDOWN", "must be more than 0s"));
        }
        if self.api_key.as_ref().is_some_and(|key| key.expose_secret().trim().is_empty()) {
            return Err(ConfigError::new("BLOG_API_KEY", "must not be empty or blank (unset it to run keyless on loopback)"));
        }
        if self.api_key.is_none() && !self.http_addr.ip().is_loopback() {
            return Err(ConfigError::new(
                "BLOG_API_KEY",
                format!("must be set when listening on {}, which is not loopback", self.http_addr),
            ));
        }
        self.store()?;
        self.broker()?;
        self.otlp_endpoint()?;
        Ok(())
    }

    /// Each timeout is more than 0; a rebuild ends before the admin route stops waiting for it.
    fn check_timeouts(&self) -> Result<(), ConfigError> {
        for (setting, value) in [
            ("BLOG_STORE_TIMEOUT", self.store_timeout),
            ("BLOG_MAIL_TIMEOUT", self.mail_timeout),
            ("BLOG_REBUILD_TIMEOUT", self.rebuild_timeout),
            ("BLOG_STALL_AFTER", self.stall_after),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(setting, "must be more than 0s"));
            }
        }
        if self.rebuild_timeout > MAX_REBUILD_TIMEOUT {
            return Err(ConfigError::new(
                "BLOG_REBUILD_TIMEOUT",
                format!("must be at most {}s (the admin route waits {}s for the answer)", MAX_REBUILD_TIMEOUT.as_secs(), REBUILD_WAIT.as_secs()),
            ));
        }
        Ok(())
    }

    /// The collector spans go to, checked: plain `http://host[:port][/path]` (the
    /// exporter has no TLS stack of its own; put a collector beside the service).
    pub fn otlp_endpoint(&self) -> Result<Option<&str>, ConfigError> {
        let Some(url) = self.otlp_endpoint.as_deref().filter(|url| !url.trim().is_empty()) else { return Ok(None) };
        let problem = |what: &str| ConfigError::new("BLOG_OTLP_ENDPOINT", format!("{what}: {}", blog_actors::redact::url(url)));
        let uri: actix_web::http::Uri = url.parse().map_err(|_| problem("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(problem("expected http://host:port (an OTLP/HTTP collector such as a sidecar on port 4318)"));
        }
        let host_ok = uri.host().is_some_and(|host| !host.is_empty());
        if !host_ok || uri.query().is_some() {
            return Err(problem("expected http://host:port with no query"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(problem("credentials in the URL are not sent; give them in OTEL_EXPORTER_OTLP_HEADERS"));
        }
        Ok(Some(url))
    }

    pub fn store(&self) -> Result<StoreChoice, ConfigError> {
        match self.store_url.as_deref() {
            None | Some("") | Some("embedded") => Ok(StoreChoice::Sqlite(self.data_dir.clone())),
            Some(url) if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") => {
                if self.db == self.queries_db {
                    return Err(ConfigError::new("BLOG_QUERIES_DB", "must differ from BLOG_DB (the read model has its own database)"));
                }
                Ok(StoreChoice::Mongo { url: url.to_owned(), db: self.db.clone(), queries_db: self.queries_db.clone() })
            }
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(dir) if !dir.is_empty() => Ok(StoreChoice::Sqlite(PathBuf::from(dir))),
                _ => Err(ConfigError::new(
                    "BLOG_STORE_URL",
                    format!(
                        "unsupported store URL {:?}; expected sqlite://<dir>, mongodb://… or leave unset",
                        blog_actors::redact::url(url)
                    ),
                )),
            },
        }
    }

    pub fn broker(&self) -> Result<BrokerChoice, ConfigError> {
        match self.broker_url.as_str() {
            "embedded" => Ok(BrokerChoice::Embedded(self.data_dir.join("queue.sqlite"))),
            url if url.starts_with("amqp://") || url.starts_with("amqps://") => {
                check_node_list(url)?;
                let prefix_ok = !self.amqp_prefix.is_empty()
                    && self.amqp_prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !prefix_ok {
                    return Err(ConfigError::new("BLOG_AMQP_PREFIX", "must be non-empty letters, digits, '-', '_' or '.'"));
                }
                if let Some(file) = self.amqp_ca_file.as_ref().filter(|file| !file.is_file()) {
                    return Err(ConfigError::new("BLOG_AMQP_CA_FILE", format!("no such file {}", file.display())));
                }
                let queues = QueueOptions { kind: self.amqp_queue_type, delivery_limit: self.amqp_delivery_limit };
                let options = RabbitOptions { queues, ca_file: self.amqp_ca_file.clone() };
                Ok(BrokerChoice::Rabbit { url: url.to_owned(), prefix: self.amqp_prefix.clone(), options })
            }
            _ => Err(ConfigError::new(
                "BLOG_BROKER_URL",
                "unsupported broker URL; expected \"embedded\" or amqp://user:pass@host:port/vhost (or a comma-separated list of a cluster's nodes)",
            )),
        }
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.mail_dir.clone().unwrap_or_else(|| self.data_dir.join("mail"))
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { max_attempts: self.max_attempts, base_delay: self.retry_base_delay, max_delay: self.retry_max_delay }
    }

    /// When a worker's circuit breaker opens, and for how long.
    pub fn breaker(&self) -> BreakerSettings {
        BreakerSettings { failures: self.breaker_failures, window: self.breaker_window, cooldown: self.breaker_cooldown }
    }

    /// The pace of bulk replays (checked by `validate`: at least 1).
    pub fn replay_throttle(&self) -> crate::transport::replay_throttle::ReplayThrottle {
        let rate = std::num::NonZeroU32::new(self.replay_rate).unwrap_or(std::num::NonZeroU32::MIN);
        crate::transport::replay_throttle::ReplayThrottle::new(rate)
    }

    /// `None` when the interval is 0 (timer off).
    pub fn rebuild_interval(&self) -> Option<Duration> {
        (!self.tag_rebuild_interval.is_zero()).then_some(self.tag_rebuild_interval)
    }
}

/// Every entry of a node list is an `amqp://` or `amqps://` URL with a host.
fn check_node_list(list: &str) -> Result<(), ConfigError> {
    for (n, url) in list.split(',').map(str::trim).enumerate() {
        let host = url.strip_prefix("amqp://").or_else(|| url.strip_prefix("amqps://")).map(|rest| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            authority.rsplit('@').next().unwrap_or("").to_owned()
        });
        if host.as_deref().is_none_or(|host| host.is_empty() || host.starts_with(':')) {
            let shown = if url.is_empty() { "an empty entry".to_owned() } else { blog_actors::redact::url(url) };
            return Err(ConfigError::new(
                "BLOG_BROKER_URL",
                format!("entry {} of the node list is {shown}; expected amqp://user:pass@host:port/vhost, comma-separated", n + 1),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_list_is_checked_entry_by_entry_and_never_prints_credentials() {
        let ok = load_with(&[("broker_url", "amqp://u:p@a:5701, amqp://u:p@b:5702,amqps://u:p@c:5703/vh")]).unwrap();
        assert!(matches!(ok.broker().unwrap(), BrokerChoice::Rabbit { options: RabbitOptions { queues: QueueOptions { kind: QueueType::Quorum, .. }, .. }, .. }));
        for bad in ["amqp://u:Hunter2pw@a:5701,", "amqp://u:Hunter2pw@a:5701,,amqp://b", "amqp://a,http://u:Hunter2pw@b", "amqp://a, amqp://"] {
            let err = load_with(&[("broker_url", bad)]).unwrap_err();
            assert_eq!(err.setting, "BLOG_BROKER_URL", "{bad}: {err}");
            assert!(!err.to_string().contains("Hunter2pw"), "{err}");
        }
    }

    #[test]
    fn the_queue_type_is_quorum_or_classic() {
        let classic = load_with(&[("broker_url", "amqp://a"), ("amqp_queue_type", "classic")]).unwrap();
        assert!(matches!(classic.broker().unwrap(), BrokerChoice::Rabbit { options: RabbitOptions { queues: QueueOptions { kind: QueueType::Classic, .. }, .. }, .. }));
        let err = load_with(&[("amqp_queue_type", "stream")]).unwrap_err();
        assert_eq!(err.setting, "BLOG_AMQP_QUEUE_TYPE", "{err}");
        let err = load_with(&[("amqp_delivery_limit", "0")]).unwrap_err();
        assert_eq!(err.setting, "BLOG_AMQP_DELIVERY_LIMIT", "{err}");
        let err = load_with(&[("broker_url", "amqps://a"), ("amqp_ca_file", "/no/such/ca.pem")]).unwrap_err();
        assert_eq!(err.setting, "BLOG_AMQP_CA_FILE", "{err}");
    }

    fn load_with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut overrides = Figment::new();
        for (k, v) in pairs {
            overrides = overrides.merge(Serialized::default(k, v));
        }
        Settings::load(None, overrides)
    }

    #[test]
    fn the_defaults_give_the_embedded_mode() {
        let s = load_with(&[]).unwrap();
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.store().unwrap(), StoreChoice::Sqlite(PathBuf::from("./data")));
        assert_eq!(s.rebuild_interval(), Some(Duration::from_secs(21600)));
    }

    #[test]
    fn a_bad_value_names_its_setting() {
        let err = load_with(&[("http_addr", "nowhere")]).unwrap_err();
        assert_eq!(err.setting, "BLOG_HTTP_ADDR", "{err}");
        let err = load_with(&[("shutdown_timeout", "soon")]).unwrap_err();
        assert_eq!(err.setting, "BLOG_SHUTDOWN_TIMEOUT", "{err}");
    }

    #[test]
    fn the_key_list_names_every_setting() {
        let defaults = serde_json::to_value(Settings::default()).unwrap();
        let mut fields: Vec<&str> = defaults.as_object().unwrap().keys().map(String::as_str).collect();
        fields.extend(["api_key", "smtp_url"]); // never serialised: secrets
        fields.sort_unstable();
        let mut keys = SETTING_KEYS.to_vec();
        keys.sort_unstable();
        assert_eq!(fields, keys);
    }

    #[test]
    fn an_empty_or_blank_key_is_refused_by_name() {
        for key in ["", "   "] {
            let err = load_with(&[("api_key", key)]).unwrap_err();
            assert_eq!(err.setting, "BLOG_API_KEY", "{key:?}");
        }
    }

    #[test]
    fn no_url_setting_prints_its_credentials() {
        let err = load_with(&[("store_url", "postgres://admin:Hunter2pw@db.example/blog")]).unwrap_err();
        assert!(!err.to_string().contains("Hunter2pw"), "{err}");
        assert!(err.to_string().contains("postgres://***@db.example/blog"), "{err}");
        let err = load_with(&[("broker_url", "kafka://admin:Hunter2pw@broker")]).unwrap_err();
        assert!(!err.to_string().contains("Hunter2pw"), "{err}");
    }

    #[test]
    fn the_otlp_endpoint_is_checked_by_name_and_never_prints_credentials() {
        assert_eq!(load_with(&[]).unwrap().otlp_endpoint().unwrap(), None);
        let ok = load_with(&[("otlp_endpoint", "http://otel-collector:4318")]).unwrap();
        assert_eq!(ok.otlp_endpoint().unwrap(), Some("http://otel-collector:4318"));
        for bad in ["http://u:p@c:4318", "collector:4318", "https://collector:4318", "grpc://c:4317", "http://", "http://c:4318/?x=1", "http://a b"] {
            let err = load_with(&[("otlp_endpoint", bad)]).unwrap_err();
            assert_eq!(err.setting, "BLOG_OTLP_ENDPOINT", "{bad}: {err}");
        }
        let err = load_with(&[("otlp_endpoint", "https://admin:Hunter2pw@collector:4318")]).unwrap_err();
        assert!(!err.to_string().contains("Hunter2pw"), "{err}");
    }

    #[test]
    fn every_timeout_is_checked_by_name() {
        for key in ["store_timeout", "mail_timeout", "rebuild_timeout", "stall_after"] {
            let err = load_with(&[(key, "0s")]).unwrap_err();
            assert_eq!(err.setting, format!("BLOG_{}", key.to_uppercase()), "{err}");
            let err = load_with(&[(key, "soon")]).unwrap_err();
            assert_eq!(err.setting, format!("BLOG_{}", key.to_uppercase()), "{err}");
        }
        let err = load_with(&[("rebuild_timeout", "1h")]).unwrap_err();
        assert_eq!(err.setting, "BLOG_REBUILD_TIMEOUT", "{err}");
        assert_eq!(load_with(&[("stall_after", "2s")]).unwrap().stall_after, Duration::from_secs(2));
    }

    #[test]
    fn the_breaker_settings_are_checked_by_name() {
        let s = load_with(&[("breaker_window", "20s"), ("breaker_cooldown", "2s")]).unwrap();
        assert_eq!(s.breaker(), BreakerSettings { failures: 5, window: Duration::from_secs(20), cooldown: Duration::from_secs(2) });
        for (key, bad) in [("breaker_failures", "many"), ("breaker_window", "0s"), ("breaker_cooldown", "0s"), ("breaker_cooldown", "later")] {
            let err = load_with(&[(key, bad)]).unwrap_err();
            assert_eq!(err.setting, format!("BLOG_{}", key.to_uppercase()), "{key}={bad}: {err}");
        }
        let err = Settings::load(None, Figment::new().merge(Serialized::default("breaker_failures", 0))).unwrap_err();
        assert_eq!(err.setting, "BLOG_BREAKER_FAILURES", "{err}");
    }

    #[test]
    fn the_replay_rate_is_checked_by_name() {
        assert_eq!(load_with(&[]).unwrap().replay_throttle().rate(), DEFAULT_REPLAY_RATE);
        for bad in ["0", "100001", "-5", "fast"] {
            let err = load_with(&[("replay_rate", bad)]).unwrap_err();
            assert_eq!(err.setting, "BLOG_REPLAY_RATE", "{bad}: {err}");
        }
        let err = load_with(&[("parked_warn", "-1")]).unwrap_err();
        assert_eq!(err.setting, "BLOG_PARKED_WARN", "{err}");
    }

    #[test]
    fn the_read_cache_budget_is_checked_by_name() {
        assert_eq!(load_with(&[]).unwrap().read_cache_bytes, crate::store::sqlite::DEFAULT_READ_CACHE_BYTES);
        let with = |n: u64| Settings::load(None, Figment::new().merge(Serialized::default("read_cache_bytes", n)));
        assert_eq!(with(0).unwrap().read_cache_bytes, 0, "0 turns it off");
        assert_eq!(with(MAX_READ_CACHE_BYTES + 1).unwrap_err().setting, "BLOG_READ_CACHE_BYTES");
        let err = load_with(&[("read_cache_bytes", "lots")]).unwrap_err();
        assert_eq!(err.setting, "BLOG_READ_CACHE_BYTES", "{err}");
    }

    #[test]
    fn a_public_address_without_a_key_is_refused() {
        let err = load_with(&[("http_addr", "0.0.0.0:8080")]).unwrap_err();
        assert_eq!(err.setting, "BLOG_API_KEY");
        assert!(load_with(&[("http_addr", "0.0.0.0:8080"), ("api_key", "s3cret")]).is_ok());
    }
}
