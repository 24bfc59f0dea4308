//! deploy/prometheus/: promtool accepts the alert rules and passes their unit
//! tests, and the rules and the tests' input series use only the series (and
//! label sets) the real service serves.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::scrape::{served_series, start_with_manifest_settings, Series};
use crate::tools::{promtool, root, run, said, yaml_document};

/// Named by a rule and a panel before the service exports it: the circuit
/// breaker's state per worker (0 closed, above 0 open or probing) is still to come.
pub const NOT_YET_SERVED: [&str; 1] = ["blog_breaker_state"];
/// Labels Prometheus itself (and a Kubernetes scrape's relabelling) attaches.
pub const SCRAPE_LABELS: [&str; 3] = ["job", "instance", "namespace"];

/// The service's metric names in a PromQL expression (all of them start with `blog_`).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    for (start, _) in expr.match_indices("blog_") {
        if expr[..start].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let end = expr[start..].find(|c: char| !is_ident(c)).map_or(expr.len(), |e| start + e);
        names.insert(expr[start..end].to_owned());
    }
    names
}

/// The label names of every `by (…)` and `without (…)` in `expr`.
pub fn grouping_labels(expr: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    for keyword in ["by (", "by(", "without (", "without("] {
        for (start, _) in expr.match_indices(keyword) {
            let rest = &expr[start + keyword.len()..];
            let list = rest.split(')').next().unwrap_or_default();
            labels.extend(list.split(',').map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()));
        }
    }
    labels
}

/// Checks that `exprs` name only served series, and group only by labels those series have.
pub fn assert_uses_only_served(what: &str, exprs: &[String], served: &[Series]) {
    let names: BTreeSet<&str> = served.iter().map(|s| s.name.as_str()).collect();
    let labels: BTreeSet<&str> = served.iter().flat_map(|s| s.labels.keys().map(String::as_str)).chain(SCRAPE_LABELS).collect();
    for expr in exprs {
        let used = metric_names(expr);
        assert!(!used.is_empty(), "{what}: no metric of the service in {expr}");
        for name in &used {
            assert!(names.contains(name.as_str()) || NOT_YET_SERVED.contains(&name.as_str()), "{what}: /metrics serves no {name} ({expr})");
        }
        for label in grouping_labels(expr) {
            assert!(labels.contains(label.as_str()), "{what}: no served series has a label {label} ({expr})");
        }
    }
}

fn rules() -> Vec<Value> {
    let rules = yaml_document(&root().join("deploy/prometheus/alerts.yml"));
    rules["groups"].as_array().expect("groups").iter().flat_map(|g| g["rules"].as_array().expect("rules").clone()).collect()
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let output = run(&promtool(), &["check", "rules", "alerts.yml"], &root().join("deploy/prometheus"));
    assert!(output.status.success(), "promtool check rules: {}", said(&output));
    let count = rules().len();
    assert!(said(&output).contains(&format!("SUCCESS: {count} rules found")), "{}", said(&output));
}

#[test]
fn every_alert_passes_its_promtool_unit_tests_firing_and_quiet() {
    let output = run(&promtool(), &["test", "rules", "alerts.test.yml"], &root().join("deploy/prometheus"));
    assert!(output.status.success(), "promtool test rules: {}", said(&output));

    let tests = yaml_document(&root().join("deploy/prometheus/alerts.test.yml"));
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for case in tests["tests"].as_array().expect("tests").iter().flat_map(|t| t["alert_rule_test"].as_array().expect("cases")) {
        let (fires, quiet) = seen.entry(case["alertname"].as_str().expect("an alert").to_owned()).or_default();
        let expected = case["exp_alerts"].as_array().map_or(0, Vec::len);
        *fires |= expected > 0;
        *quiet |= expected == 0;
    }
    for rule in rules() {
        let alert = rule["alert"].as_str().expect("alerting rules only");
        assert_eq!(seen.get(alert), Some(&(true, true)), "{alert} needs a test where it fires and one where it does not");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_and_their_test_series_use_only_series_and_labels_the_service_serves() {
    let running = start_with_manifest_settings().await;
    let served = served_series(&running).await;
    let exprs: Vec<String> = rules().iter().map(|r| r["expr"].as_str().expect("an expression").to_owned()).collect();
    assert_uses_only_served("alerts.yml", &exprs, &served);

    let tests = yaml_document(&root().join("deploy/prometheus/alerts.test.yml"));
    for input in tests["tests"].as_array().expect("tests").iter().flat_map(|t| t["input_series"].as_array().expect("inputs")) {
        let text = input["series"].as_str().expect("a series");
        let series = Series::parse(text).unwrap_or_else(|| panic!("not a series: {text}"));
        if NOT_YET_SERVED.contains(&series.name.as_str()) {
            continue;
        }
        let mut labels = series.label_names();
        labels.retain(|l| !SCRAPE_LABELS.contains(l));
        let same_shape = served.iter().any(|s| s.name == series.name && s.label_names() == labels);
        assert!(same_shape, "/metrics serves no {} with exactly the labels {labels:?}", series.name);
    }
}

#[test]
fn metric_names_and_grouping_labels_are_found_in_promql() {
    let expr = "sum by (actor, le) (rate(blog_actor_handling_seconds_bucket[5m])) / max without(pod) (xblog_y) + blog_outbox_backlog";
    assert_eq!(metric_names(expr), ["blog_actor_handling_seconds_bucket", "blog_outbox_backlog"].map(str::to_owned).into());
    assert_eq!(grouping_labels(expr), ["actor", "le", "pod"].map(str::to_owned).into());
}
