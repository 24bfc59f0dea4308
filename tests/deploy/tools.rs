//! Finding and running the checkers scripts/install-test-tools installs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `$env_var`, else `default`; panics naming the install script when it is missing.
fn tool(env_var: &str, default: PathBuf) -> PathBuf {
    let path = std::env::var_os(env_var).map_or(default, PathBuf::from);
    assert!(path.exists(), "{} is missing: run scripts/install-test-tools (or set {env_var})", path.display());
    path
}

/// The Python of target/venv, which holds kubernetes-validate, jsonschema, PyYAML and yamllint.
pub fn python() -> PathBuf {
    tool("BLOG_TEST_PYTHON", root().join("target/venv/bin/python"))
}

pub fn yamllint() -> PathBuf {
    tool("YAMLLINT", root().join("target/venv/bin/yamllint"))
}

pub fn promtool() -> PathBuf {
    tool("PROMTOOL", PathBuf::from("/usr/bin/promtool"))
}

/// Runs `program` in `dir` and returns what it did; panics only when it cannot start.
pub fn run(program: &Path, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

/// Everything `output` printed, for assertion messages.
pub fn said(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The documents of a YAML file as JSON, read by PyYAML (the parser kubernetes-validate uses).
pub fn yaml_documents(path: &Path) -> Vec<Value> {
    let script = "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d], sys.stdout)";
    let file = path.to_str().expect("a UTF-8 path");
    let output = run(&python(), &["-c", script, file], root());
    assert!(output.status.success(), "{} does not parse as YAML: {}", path.display(), said(&output));
    serde_json::from_slice(&output.stdout).expect("PyYAML's JSON")
}

/// The one document of a YAML file.
pub fn yaml_document(path: &Path) -> Value {
    let mut documents = yaml_documents(path);
    assert_eq!(documents.len(), 1, "{} should hold one document", path.display());
    documents.remove(0)
}
