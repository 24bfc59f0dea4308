//! deploy/kubernetes/ as the API server and kubectl would take it: every
//! manifest valid for one named Kubernetes version (KEDA's kinds against
//! tests/deploy/keda-schema.json), the kustomization naming each of them, and
//! all of deploy/ clean under yamllint.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::tools::{python, root, run, said, yaml_document, yamllint};

/// The Kubernetes release the manifests are written for; the preStop `sleep`
/// action needs 1.30 or later.
pub const KUBERNETES_VERSION: &str = "1.32.0";

/// Every manifest file in deploy/kubernetes/ but the kustomization.
pub fn manifest_files() -> Vec<PathBuf> {
    let dir = root().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    files
}

/// Runs tests/deploy/validate_manifests.py on `files`: its exit status and its `ok`/`error` lines.
fn validate(files: &[PathBuf]) -> (bool, Vec<String>) {
    let script = root().join("tests/deploy/validate_manifests.py");
    let mut args = vec![script.to_str().expect("UTF-8"), KUBERNETES_VERSION];
    args.extend(files.iter().map(|f| f.to_str().expect("UTF-8")));
    let output = run(&python(), &args, root());
    let lines = String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect();
    assert!(output.stderr.is_empty(), "the validator failed: {}", said(&output));
    (output.status.success(), lines)
}

#[test]
fn every_manifest_validates_against_the_schemas_of_the_named_kubernetes_version_and_of_keda() {
    let (valid, lines) = validate(&manifest_files());
    assert!(valid, "invalid manifests:\n{}", lines.join("\n"));
    let kinds: BTreeSet<&str> = lines.iter().filter_map(|l| l.strip_prefix("ok ")?.split(' ').nth(1)?.split('/').next()).collect();
    let expected = [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "ScaledObject",
        "Secret",
        "Service",
        "ServiceAccount",
        "TriggerAuthentication",
    ];
    assert_eq!(kinds, expected.into_iter().collect(), "{lines:#?}");
}

/// Writes `document` as a manifest (JSON is YAML) into `dir`.
fn write_manifest(dir: &Path, name: &str, document: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(document).expect("JSON")).expect("written");
    path
}

#[test]
fn the_validation_rejects_a_misspelt_field_a_numeric_trigger_value_and_an_unknown_kind() {
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = yaml_document(&root().join("deploy/kubernetes/deployment.yaml"));
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = json!({});
    let mut scaled = yaml_document(&root().join("deploy/kubernetes/keda-scaledobject.yaml"));
    scaled["spec"]["triggers"][0]["metadata"]["value"] = json!(200);
    let unknown = json!({ "apiVersion": "example.com/v1", "kind": "Widget", "metadata": { "name": "w" } });
    let files = [
        write_manifest(dir.path(), "deployment.json", &deployment),
        write_manifest(dir.path(), "scaled.json", &scaled),
        write_manifest(dir.path(), "widget.json", &unknown),
    ];
    let (valid, lines) = validate(&files);
    assert!(!valid, "{lines:#?}");
    let error_of = |what: &str| lines.iter().find(|l| l.starts_with("error") && l.contains(what)).cloned();
    assert!(error_of("Deployment/blog").is_some_and(|l| l.contains("'readinesProbe' was unexpected")), "{lines:#?}");
    assert!(error_of("ScaledObject/blog").is_some_and(|l| l.contains("is not of type 'string'")), "{lines:#?}");
    assert!(error_of("Widget/w").is_some_and(|l| l.contains("Couldn't find schema")), "{lines:#?}");
}

#[test]
fn the_kustomization_applies_every_manifest_and_nothing_else() {
    let kustomization = yaml_document(&root().join("deploy/kubernetes/kustomization.yaml"));
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .expect("a resources list")
        .iter()
        .map(|r| r.as_str().expect("a file name").to_owned())
        .collect();
    let present: BTreeSet<String> =
        manifest_files().iter().map(|p| p.file_name().expect("a name").to_string_lossy().into_owned()).collect();
    assert_eq!(listed, present);
}

#[test]
fn yamllint_finds_nothing_in_deploy() {
    let output = run(&yamllint(), &["--strict", "--format", "parsable", "-c", "deploy/.yamllint.yaml", "deploy"], root());
    assert!(output.status.success(), "yamllint:\n{}", said(&output));
    let linted = run(&yamllint(), &["--list-files", "-c", "deploy/.yamllint.yaml", "deploy"], root());
    let files = String::from_utf8_lossy(&linted.stdout);
    for file in ["deploy/kubernetes/deployment.yaml", "deploy/prometheus/alerts.yml", "deploy/prometheus/alerts.test.yml"] {
        assert!(files.lines().any(|l| l == file), "yamllint skipped {file}: {files}");
    }
}
