use std::process::Command;

/// Runs the binary with `env` and returns its exit code and stderr.
fn run_with(env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_blog"));
    command.env("BLOG_DATA_DIR", dir.path());
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("runs");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_bad_setting_stops_the_start_with_one_line_naming_it() {
    for (env, setting) in [
        (("BLOG_HTTP_ADDR", "not-an-address"), "BLOG_HTTP_ADDR"),
        (("BLOG_MAX_ATTEMPTS", "0"), "BLOG_MAX_ATTEMPTS"),
        (("BLOG_MAX_ATTEMPTS", "many"), "BLOG_MAX_ATTEMPTS"),
        (("BLOG_SHUTDOWN_TIMEOUT", "soon"), "BLOG_SHUTDOWN_TIMEOUT"),
        (("BLOG_BROKER_URL", "kafka://x"), "BLOG_BROKER_URL"),
        (("BLOG_HTTP_ADDR", "0.0.0.0:0"), "BLOG_API_KEY"),
        (("BLOG_OTLP_ENDPOINT", "collector:4318"), "BLOG_OTLP_ENDPOINT"),
    ] {
        let (code, stderr) = run_with(&[env]);
        assert_eq!(code, 2, "{env:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{env:?}: one line, got {stderr}");
        assert!(lines[0].contains(setting), "{env:?}: {stderr}");
    }
}

/// A start that fails exits non-zero with its one line: no panic, no backtrace, no secret.
fn assert_one_clean_line(what: &str, code: i32, stderr: &str, names: &str) {
    assert_ne!(code, 0, "{what}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line, got {stderr}");
    assert!(lines[0].contains(names), "{what}: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Hunter2pw"), "{what}: {stderr}");
}

#[test]
fn an_empty_key_is_refused_by_name() {
    for key in ["", "  "] {
        let (code, stderr) = run_with(&[("BLOG_API_KEY", key)]);
        assert_eq!(code, 2, "{key:?}: {stderr}");
        assert_one_clean_line("an empty key", code, &stderr, "BLOG_API_KEY");
    }
}

#[test]
fn no_credential_of_a_url_setting_is_printed() {
    for (setting, url) in [
        ("BLOG_STORE_URL", "postgres://admin:Hunter2pw@db.example/blog"),
        ("BLOG_BROKER_URL", "kafka://admin:Hunter2pw@broker.example"),
        ("BLOG_BROKER_URL", "amqp://admin:Hunter2pw@127.0.0.1:1"),
        ("BLOG_OTLP_ENDPOINT", "https://admin:Hunter2pw@collector.example:4318"),
    ] {
        let (code, stderr) = run_with(&[(setting, url)]);
        assert_one_clean_line(url, code, &stderr, setting);
    }
}

#[test]
fn a_port_in_use_or_a_refusing_broker_fails_the_start_with_one_line_and_no_panic() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = run_with(&[("BLOG_HTTP_ADDR", &addr), ("RUST_BACKTRACE", "1")]);
    assert_one_clean_line("a port in use", code, &stderr, "BLOG_HTTP_ADDR");
    let (code, stderr) = run_with(&[("BLOG_BROKER_URL", "amqp://guest:guest@127.0.0.1:1"), ("RUST_BACKTRACE", "1")]);
    assert_one_clean_line("a refusing broker", code, &stderr, "BLOG_BROKER_URL");
}
