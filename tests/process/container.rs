//! What can be checked of the container here (no Docker engine on this machine):
//! the compose file parses, and the binary's own health check answers.

use std::process::Command;
use std::time::Duration;

use crate::service::start;

#[test]
fn the_healthcheck_subcommand_says_ready_only_when_the_service_is() {
    let dir = tempfile::tempdir().unwrap();
    let service = start(dir.path(), &[]);
    let addr = service.address.trim_start_matches("http://").to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = Command::new(env!("CARGO_BIN_EXE_blog")).arg("healthcheck").env("BLOG_HTTP_ADDR", &addr).status().unwrap();
        if status.success() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50)); // poll interval under a deadline
    }
    drop(service);
    let output = Command::new(env!("CARGO_BIN_EXE_blog")).arg("healthcheck").env("BLOG_HTTP_ADDR", &addr).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "nothing listens any more");
    assert!(String::from_utf8_lossy(&output.stderr).contains("connecting to"));
}

#[test]
fn the_compose_file_parses_and_names_every_service() {
    let root = env!("CARGO_MANIFEST_DIR");
    let compose = std::env::var("BLOG_TEST_COMPOSE").unwrap_or_else(|_| "docker-compose".into());
    let output = Command::new(&compose)
        .args(["-f", &format!("{root}/docker-compose.yml"), "config", "--services"])
        .env("BLOG_API_KEY", "k")
        .output()
        .unwrap_or_else(|e| panic!("{compose} is missing (scripts/install-test-tools installs docker-compose): {e}"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut services: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect();
    services.sort();
    assert_eq!(services, ["blog", "mail", "mongo", "rabbitmq"]);
}

#[test]
fn the_dockerfile_builds_in_stages_runs_as_non_root_and_checks_itself() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    assert_eq!(dockerfile.matches("\nFROM ").count() + usize::from(dockerfile.starts_with("FROM ")), 2, "two stages");
    assert!(dockerfile.contains("USER blog"));
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("\"healthcheck\"]"));
    assert!(dockerfile.contains("BLOG_HTTP_ADDR=0.0.0.0:8080"));
}

#[test]
fn the_compose_file_refuses_to_start_without_a_key_and_publishes_on_loopback_only() {
    let root = env!("CARGO_MANIFEST_DIR");
    let compose = std::env::var("BLOG_TEST_COMPOSE").unwrap_or_else(|_| "docker-compose".into());
    let config = |key: Option<&str>| {
        let mut command = Command::new(&compose);
        command.args(["-f", &format!("{root}/docker-compose.yml"), "config"]).env_remove("BLOG_API_KEY");
        if let Some(key) = key {
            command.env("BLOG_API_KEY", key);
        }
        command.output().expect("docker-compose runs")
    };
    let keyless = config(None);
    assert!(!keyless.status.success(), "compose must refuse to start without BLOG_API_KEY");
    assert!(String::from_utf8_lossy(&keyless.stderr).contains("BLOG_API_KEY"), "{}", String::from_utf8_lossy(&keyless.stderr));
    let keyed = config(Some("k"));
    assert!(keyed.status.success(), "{}", String::from_utf8_lossy(&keyed.stderr));
    let text = String::from_utf8_lossy(&keyed.stdout);
    assert!(!text.contains("change-me"), "no default key");
    // docker-compose 1 prints `- 127.0.0.1:8080:8080/tcp`; 2 prints `host_ip:` and `published:` keys.
    let short: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("- ") && l.ends_with("/tcp")).collect();
    let host_ips: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("host_ip:")).collect();
    let long = text.lines().filter(|l| l.trim_start().starts_with("published:")).count();
    assert!(short.len() + long > 0, "ports are published:\n{text}");
    assert!(short.iter().all(|l| l.starts_with("- 127.0.0.1:")), "{short:?}");
    assert_eq!(host_ips.len(), long, "every published port names a host ip:\n{text}");
    assert!(host_ips.iter().all(|l| l.contains("127.0.0.1")), "{host_ips:?}");
}
