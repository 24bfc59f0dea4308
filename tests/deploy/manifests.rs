//! What the manifests say agrees with the service they run: the drain fits in
//! the grace period, the probes hit the health endpoints, the pod runs as the
//! image's user writing only its data dir, every variable is a setting the
//! service reads with the credentials from the Secret, and KEDA watches the
//! queues the service really declares.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use amqprs::channel::QueueDeclareArguments;
use amqprs::connection::{Connection, OpenConnectionArguments};
use blog::configuration::SETTING_KEYS;
use serde_json::Value;

use crate::kubernetes::manifest_files;
use crate::scrape::start_with_manifest_settings;
use crate::tools::{root, yaml_documents};

/// What the process needs to exit once the drain is over (flush logs, close connections).
const EXIT_MARGIN: Duration = Duration::from_secs(5);

/// The manifests by kind (one resource of each kind).
pub struct Manifests(BTreeMap<String, Value>);

impl Manifests {
    pub fn load() -> Self {
        let mut by_kind = BTreeMap::new();
        for document in manifest_files().iter().flat_map(|f| yaml_documents(f)) {
            let kind = document["kind"].as_str().expect("every manifest has a kind").to_owned();
            assert!(by_kind.insert(kind.clone(), document).is_none(), "two resources of kind {kind}");
        }
        Self(by_kind)
    }

    pub fn get(&self, kind: &str) -> &Value {
        self.0.get(kind).unwrap_or_else(|| panic!("no {kind} in deploy/kubernetes"))
    }

    fn pod(&self) -> &Value {
        &self.get("Deployment")["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        let containers = self.pod()["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "one container: the service");
        &containers[0]
    }

    /// The ConfigMap's settings, which the container takes whole.
    pub fn settings(&self) -> BTreeMap<String, String> {
        serde_json::from_value(self.get("ConfigMap")["data"].clone()).expect("string settings")
    }

    fn name_of(&self, kind: &str) -> &str {
        self.get(kind)["metadata"]["name"].as_str().expect("a name")
    }
}

fn seconds(value: &Value) -> Duration {
    Duration::from_secs(value.as_u64().unwrap_or_else(|| panic!("whole seconds, not {value}")))
}

#[test]
fn the_grace_period_covers_the_pre_stop_sleep_and_the_whole_shutdown_timeout() {
    let manifests = Manifests::load();
    let grace = seconds(&manifests.pod()["terminationGracePeriodSeconds"]);
    let pre_stop = seconds(&manifests.container()["lifecycle"]["preStop"]["sleep"]["seconds"]);
    let timeout = manifests.settings().get("BLOG_SHUTDOWN_TIMEOUT").cloned().expect("BLOG_SHUTDOWN_TIMEOUT is set");
    let shutdown = humantime::parse_duration(&timeout).expect("a duration the service parses");
    assert_eq!(grace, pre_stop + shutdown + EXIT_MARGIN, "grace {grace:?}, preStop {pre_stop:?}, shutdown {shutdown:?}");
}

#[test]
fn the_probes_ask_the_health_endpoints_on_the_port_the_service_listens_on() {
    let manifests = Manifests::load();
    let container = manifests.container();
    let probe_path = |probe: &str| container[probe]["httpGet"]["path"].as_str().map(str::to_owned);
    assert_eq!(probe_path("livenessProbe").as_deref(), Some("/health/live"));
    assert_eq!(probe_path("startupProbe").as_deref(), Some("/health/live"));
    assert_eq!(probe_path("readinessProbe").as_deref(), Some("/health/ready"));
    // The readiness check's store ping gives up after 2 s; the probe must wait longer.
    assert!(container["readinessProbe"]["timeoutSeconds"].as_u64() > Some(2));

    let listen: std::net::SocketAddr = manifests.settings()["BLOG_HTTP_ADDR"].parse().expect("an address");
    assert!(listen.ip().is_unspecified(), "pods must listen on every interface");
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"].as_u64(), Some(u64::from(listen.port())));
    for probe in ["livenessProbe", "startupProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], port["name"], "{probe}");
    }
    assert_eq!(manifests.get("Service")["spec"]["ports"][0]["targetPort"], port["name"]);
}

#[test]
fn the_pod_runs_as_the_images_user_with_a_read_only_root_and_writes_only_its_data_dir() {
    let manifests = Manifests::load();
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let uid: u64 = dockerfile.split("--uid ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|u| u.parse().ok()).expect("the image's uid");
    let pod = manifests.pod();
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(uid));
    assert_eq!(pod["automountServiceAccountToken"], false);
    let container = manifests.container();
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));

    let mounts = container["volumeMounts"].as_array().expect("volume mounts");
    assert_eq!(mounts.len(), 1, "only the data dir is writable: {mounts:?}");
    assert_eq!(mounts[0]["mountPath"].as_str(), Some(manifests.settings()["BLOG_DATA_DIR"].as_str()));
    let volume = pod["volumes"].as_array().and_then(|v| v.iter().find(|v| v["name"] == mounts[0]["name"])).expect("the mounted volume");
    assert!(volume["emptyDir"].is_object() || volume["persistentVolumeClaim"].is_object(), "{volume}");

    let resources = &container["resources"];
    for (kind, resource) in [("requests", "cpu"), ("requests", "memory"), ("limits", "memory")] {
        assert!(resources[kind][resource].is_string(), "no {kind}.{resource}: {resources}");
    }
}

#[test]
fn every_variable_is_a_setting_the_service_reads_and_the_credentials_come_from_the_secret() {
    let manifests = Manifests::load();
    let container = manifests.container();
    assert_eq!(container["envFrom"][0]["configMapRef"]["name"].as_str(), Some(manifests.name_of("ConfigMap")));
    let env = container["env"].as_array().expect("env");
    let env_names: Vec<&str> = env.iter().map(|e| e["name"].as_str().expect("a name")).collect();
    let settings = manifests.settings();
    let known = |name: &str| name == "RUST_LOG" || name.strip_prefix("BLOG_").is_some_and(|k| SETTING_KEYS.contains(&k.to_lowercase().as_str()));
    for name in settings.keys().map(String::as_str).chain(env_names.iter().copied()) {
        assert!(known(name), "{name} is no setting of the service (configuration.rs)");
    }
    assert!(env_names.iter().all(|n| !settings.contains_key(*n)), "set twice: {env_names:?}");

    let secret = manifests.get("Secret");
    let secret_keys: BTreeSet<&str> = secret["stringData"].as_object().expect("stringData").keys().map(String::as_str).collect();
    for credential in ["BLOG_API_KEY", "BLOG_STORE_URL", "BLOG_BROKER_URL", "BLOG_SMTP_URL"] {
        let from = env.iter().find(|e| e["name"] == credential).map(|e| &e["valueFrom"]["secretKeyRef"]).expect(credential);
        assert_eq!(from["name"].as_str(), Some(manifests.name_of("Secret")), "{credential}");
        assert!(from["key"].as_str().is_some_and(|k| secret_keys.contains(k)), "{credential}: no such key in the Secret");
    }

    let auth = &manifests.get("TriggerAuthentication")["spec"]["secretTargetRef"][0];
    assert_eq!(auth["parameter"], "host");
    assert_eq!(auth["name"].as_str(), Some(manifests.name_of("Secret")));
    assert!(auth["key"].as_str().is_some_and(|k| secret_keys.contains(k)), "{auth}");
}

#[test]
fn the_selectors_and_references_all_find_the_deployments_pods() {
    let manifests = Manifests::load();
    let pod_labels = &manifests.get("Deployment")["spec"]["template"]["metadata"]["labels"];
    let matches = |selector: &Value| selector.as_object().expect("labels").iter().all(|(k, v)| &pod_labels[k] == v);
    assert!(matches(&manifests.get("Deployment")["spec"]["selector"]["matchLabels"]));
    assert!(matches(&manifests.get("Service")["spec"]["selector"]));
    assert!(matches(&manifests.get("PodDisruptionBudget")["spec"]["selector"]["matchLabels"]));
    assert_eq!(manifests.pod()["serviceAccountName"].as_str(), Some(manifests.name_of("ServiceAccount")));
    let scaled = &manifests.get("ScaledObject")["spec"];
    assert_eq!(scaled["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(scaled["scaleTargetRef"]["name"].as_str(), Some(manifests.name_of("Deployment")));
    for trigger in scaled["triggers"].as_array().expect("triggers") {
        assert_eq!(trigger["authenticationRef"]["name"].as_str(), Some(manifests.name_of("TriggerAuthentication")), "{trigger}");
    }
}

/// Whether `queue` exists on the broker (a passive declare; a missing queue closes the channel).
async fn queue_exists(connection: &Connection, queue: &str) -> bool {
    let channel = connection.open_channel(None).await.expect("a channel");
    let found = channel.queue_declare(QueueDeclareArguments::new(queue).passive(true).finish()).await.is_ok();
    if channel.is_open() {
        channel.close().await.expect("channel closed");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_watches_one_queue_per_worker_named_as_the_service_declares_them() {
    let manifests = Manifests::load();
    let prefix = manifests.settings()["BLOG_AMQP_PREFIX"].clone();
    let mut watched: Vec<String> = manifests.get("ScaledObject")["spec"]["triggers"]
        .as_array()
        .expect("triggers")
        .iter()
        .inspect(|t| assert_eq!(t["type"], "rabbitmq", "{t}"))
        .map(|t| t["metadata"]["queueName"].as_str().expect("a queue name").to_owned())
        .collect();
    watched.sort();
    let mut workers: Vec<String> = blog::startup::registered_workers().iter().map(|w| format!("{prefix}.{}", w.name())).collect();
    workers.sort();
    assert_eq!(watched, workers, "one trigger per worker queue");

    // The running service, under a prefix of its own, declares exactly those names.
    let running = start_with_manifest_settings().await;
    let connection = Connection::open(&OpenConnectionArguments::new("127.0.0.1", 5672, "guest", "guest")).await.expect("RabbitMQ");
    for queue in &watched {
        let ours = queue.replacen(&prefix, &running.prefix, 1);
        assert!(queue_exists(&connection, &ours).await, "the service declared no queue {ours}");
    }
    assert!(!queue_exists(&connection, &format!("{}.no_such_worker", running.prefix)).await, "the check cannot fail");
    connection.close().await.expect("connection closed");
}
