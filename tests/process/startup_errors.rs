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
    ] {
        let (code, stderr) = run_with(&[env]);
        assert_eq!(code, 2, "{env:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{env:?}: one line, got {stderr}");
        assert!(lines[0].contains(setting), "{env:?}: {stderr}");
    }
}
