//! deploy/grafana/blog.json: it parses as a dashboard, every query is PromQL
//! that promtool accepts, and it shows only series the real service serves,
//! among them every series an alert watches.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::prometheus::{assert_uses_only_served, metric_names};
use crate::scrape::{served_series, start_with_manifest_settings};
use crate::tools::{promtool, root, run, said, yaml_document};

fn dashboard() -> Value {
    let text = std::fs::read_to_string(root().join("deploy/grafana/blog.json")).expect("the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every query of every panel.
fn queries(dashboard: &Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().expect("panels");
    panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("a PromQL target").to_owned())
        .collect()
}

/// The query as Prometheus receives it once Grafana filled in its variables.
fn as_sent(query: &str) -> String {
    query.replace("$__rate_interval", "5m").replace("$namespace", ".*").replace("$instance", ".*")
}

#[test]
fn the_dashboard_parses_with_unique_panels_on_its_datasource_variable_and_promtool_accepts_each_query() {
    let dashboard = dashboard();
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string() && dashboard["schemaVersion"].is_u64());
    let variables = dashboard["templating"]["list"].as_array().expect("variables");
    assert!(variables.iter().any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"));
    let panels = dashboard["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().expect("an id")).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids repeat");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty()).unwrap_or_else(|| panic!("no query: {}", panel["title"]));
        for target in std::iter::once(panel).chain(targets) {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{}", panel["title"]);
        }
    }

    // promtool parses PromQL in rule files: each query becomes a recording rule.
    let rules: Vec<Value> = queries(&dashboard).iter().enumerate().map(|(i, q)| json!({ "record": format!("dashboard:query_{i}"), "expr": as_sent(q) })).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.yml");
    std::fs::write(&file, serde_json::to_vec(&json!({ "groups": [{ "name": "dashboard", "rules": rules }] })).unwrap()).unwrap();
    let output = run(&promtool(), &["check", "rules", file.to_str().expect("UTF-8")], dir.path());
    assert!(output.status.success(), "promtool rejects a dashboard query: {}", said(&output));
    assert!(said(&output).contains(&format!("SUCCESS: {} rules found", rules.len())), "{}", said(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_only_served_series_and_every_series_an_alert_watches() {
    let running = start_with_manifest_settings().await;
    let served = served_series(&running).await;
    let dashboard = dashboard();
    let queries: Vec<String> = queries(&dashboard).iter().map(|q| as_sent(q)).collect();
    assert_uses_only_served("blog.json", &queries, &served);

    let shown: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    let alerts = yaml_document(&root().join("deploy/prometheus/alerts.yml"));
    for rule in alerts["groups"].as_array().expect("groups").iter().flat_map(|g| g["rules"].as_array().expect("rules").clone()) {
        for name in metric_names(rule["expr"].as_str().expect("an expression")) {
            assert!(shown.contains(&name), "{} watches {name}, which no panel shows", rule["alert"]);
        }
    }
}
