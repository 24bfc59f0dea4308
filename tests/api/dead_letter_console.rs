//! The dead-letter console in a real browser, clicked like an operator would:
//! Debian's Chromium driven through chromedriver (WebDriver, via fantoccini).
//! Three kinds of failure are parked; the page filters them, counts one group
//! with a dry run, replays it, deletes the rest; the replayed orders are mailed.
//! A screenshot is kept at target/dead-letter-console.png.
//!
//! chromedriver comes from scripts/install-test-tools (Debian's chromium-driver);
//! a missing one fails the test, so a green run means the browser really ran.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::dead_letter_api::{app_with_a_refusing_mailer, park_three_kinds, MALFORMED, PARKED_WARN, SMTP_REFUSED, UNROUTED};
use crate::helpers::{eventually, Backend, API_KEY};

fn executable(env_var: &str, paths: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return path.into();
    }
    paths.iter().map(PathBuf::from).find(|p| p.exists()).unwrap_or_else(|| {
        panic!("{env_var}: none of {paths:?} exists; run scripts/install-test-tools (or set {env_var})")
    })
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let program = executable("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new(&program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        eventually("chromedriver to answer", || async { reqwest::get(&status).await.ok().filter(|r| r.status().is_success()).map(drop) }).await;
        Driver { child, url }
    }

    async fn browser(&self, profile: &Path) -> Client {
        let chromium = executable("CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let options = json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1300",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", profile.display())],
        });
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector).capabilities(caps).connect(&self.url).await.expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn rows(browser: &Client, table: &str) -> usize {
    browser.find_all(Locator::Css(&format!("#{table} tr"))).await.map(|r| r.len()).unwrap_or(0)
}

async fn attr(browser: &Client, css: &str, name: &str) -> Option<String> {
    browser.find(Locator::Css(css)).await.ok()?.attr(name).await.ok()?
}

async fn click(browser: &Client, css: &str) {
    browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}")).click().await.unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

#[actix_web::test]
async fn an_operator_filters_counts_replays_one_group_and_deletes_the_rest_in_a_real_browser() {
    let (app, flaky) = app_with_a_refusing_mailer(Backend::Embedded).await;
    park_three_kinds(&app).await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;

    browser.goto(&format!("{}/console/dead-letters", app.address)).await.unwrap();
    assert_eq!(attr(&browser, "#console", "data-state").await.as_deref(), Some("no-key"), "nothing is shown without the key");
    browser.find(Locator::Css("#api-key")).await.unwrap().send_keys(API_KEY).await.unwrap();
    click(&browser, "#use-key").await;
    eventually("three groups", || async { (rows(&browser, "group-rows").await == 3).then_some(()) }).await;
    assert_eq!(rows(&browser, "message-rows").await, SMTP_REFUSED + MALFORMED + UNROUTED);
    let warning = browser.find(Locator::Css("#warning")).await.unwrap();
    assert!(warning.attr("hidden").await.unwrap().is_none(), "six parked pass BLOG_PARKED_WARN={PARKED_WARN}: the banner shows");
    assert!(warning.text().await.unwrap().contains("BLOG_PARKED_WARN"));
    let emailer_lot = browser.find(Locator::Css(r#"#lot-rows tr[data-worker="emailer"]"#)).await.unwrap().text().await.unwrap();
    assert!(emailer_lot.ends_with(&(SMTP_REFUSED + MALFORMED).to_string()), "{emailer_lot}");

    // Filter by worker: the unrouted event drops out.
    browser.find(Locator::Css("#f-worker")).await.unwrap().send_keys("emailer").await.unwrap();
    click(&browser, "#apply-filter").await;
    eventually("the emailer's two groups", || async { (rows(&browser, "group-rows").await == 2).then_some(()) }).await;

    // Pick the mail server's group, count it with a dry run, then replay it.
    let groups = browser.find_all(Locator::Css("#group-rows tr")).await.unwrap();
    let mut smtp = None;
    for row in groups {
        if row.text().await.unwrap().contains("try again later") {
            smtp = Some(row);
        }
    }
    smtp.expect("the SMTP group is listed").find(Locator::Css("button.select-group")).await.unwrap().click().await.unwrap();
    eventually("the group's messages only", || async { (rows(&browser, "message-rows").await == SMTP_REFUSED).then_some(()) }).await;
    assert_eq!(attr(&browser, "#bulk-replay", "disabled").await.as_deref(), Some("true"), "no bulk action before a count");
    click(&browser, "#bulk-count").await;
    let counted = eventually("the dry-run count", || async { attr(&browser, "#bulk-matched", "data-count").await.filter(|c| !c.is_empty()) }).await;
    assert_eq!(counted, SMTP_REFUSED.to_string());
    assert_eq!(app.dead_letters().await["total"], SMTP_REFUSED + MALFORMED + UNROUTED, "a dry run changes nothing");
    click(&browser, "#bulk-replay").await;
    eventually("the replay's outcome", || async { attr(&browser, "#bulk-result", "data-done").await.filter(|d| d == &format!("replay:{SMTP_REFUSED}")) }).await;
    eventually("the replayed orders mailed", || async { (app.mail_files().len() == SMTP_REFUSED).then_some(()) }).await;
    assert_eq!(flaky.calls.lock().unwrap().len(), 2 * SMTP_REFUSED, "each replayed order was sent once");

    // The rest: clear the filter, count, look, delete.
    click(&browser, "#clear-filter").await;
    eventually("the rest listed", || async { (rows(&browser, "message-rows").await == MALFORMED + UNROUTED).then_some(()) }).await;
    click(&browser, "#bulk-count").await;
    let counted = eventually("the second count", || async { attr(&browser, "#bulk-matched", "data-count").await.filter(|c| !c.is_empty()) }).await;
    assert_eq!(counted, (MALFORMED + UNROUTED).to_string());
    click(&browser, "#message-rows tr button.show").await;
    eventually("a message's details", || async { attr(&browser, "#detail", "hidden").await.is_none().then_some(()) }).await;

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("dead-letter-console.png");
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "not a real screenshot");
    std::fs::write(&shot, &png).unwrap();
    println!("dead-letter console screenshot: {}", shot.display());

    click(&browser, "#bulk-delete").await;
    eventually("the delete's outcome", || async { attr(&browser, "#bulk-result", "data-done").await.filter(|d| d == &format!("delete:{}", MALFORMED + UNROUTED)) }).await;
    assert_eq!(app.dead_letters().await["total"], 0);
    eventually("an empty console", || async { (rows(&browser, "group-rows").await == 0).then_some(()) }).await;
    assert!(attr(&browser, "#warning", "hidden").await.is_some(), "under the threshold again: no banner");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for series in [r#"blog_operator_actions_total{action="bulk_replay"} 1"#, r#"blog_operator_actions_total{action="bulk_delete"} 1"#] {
        assert!(metrics.lines().any(|l| l == series), "no {series} in\n{metrics}");
    }
    browser.close().await.unwrap();
}
