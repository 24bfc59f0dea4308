//! Power cuts: the data dir lives on the `powercut` file system, which forgets
//! every write not fsynced when a cut comes. Posts and orders flow, the service
//! is SIGKILLed at a random acknowledged write, the power is cut, and the
//! restarted service must still hold every write it acknowledged, nothing it
//! was never sent, effects that equal a recount, and one mail per order.
//!
//! `POWER_CUTS` (default 3) and `POWER_CUT_SEED` (default: random) set the run;
//! the seed is printed. `scripts/power-cut` runs the long variant.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use powercut::PowerCutFs;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};

use crate::crash::{all_posts, cloud_of, order, post, served_cloud, wait_until_idle, BackendEnv};
use crate::service::{start, Service, API_KEY};

/// Requests in flight at once, so a cut finds some half-done.
const CONCURRENCY: usize = 8;
/// A cut comes after this many more acknowledged writes (drawn per cut).
const WRITES_BETWEEN_CUTS: std::ops::RangeInclusive<usize> = 5..=60;

/// What the clients sent and what the service acknowledged.
#[derive(Default, Clone)]
struct Ledger {
    /// Titles of every post sent.
    posts_sent: HashSet<String>,
    /// id → title of every post answered 201.
    posts_created: HashMap<String, String>,
    /// Order ids sent, and those answered 202.
    orders_sent: HashSet<String>,
    orders_accepted: HashSet<String>,
}

impl Ledger {
    fn acknowledged(&self) -> usize {
        self.posts_created.len() + self.orders_accepted.len()
    }
}

crate::on_both_transports!(power_cuts_to_the_store_lose_no_acknowledged_write_and_invent_none);
async fn power_cuts_to_the_store_lose_no_acknowledged_write_and_invent_none(backend: BackendEnv) {
    let cuts: usize = std::env::var("POWER_CUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let seed: u64 = std::env::var("POWER_CUT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    let transport = if backend.vars.is_empty() { "embedded" } else { "rabbitmq" };
    eprintln!("power-cut ({transport}): {cuts} cuts, seed {seed} (POWER_CUT_SEED={seed} repeats it)");
    let began = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let (backing, mountpoint) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut fs = PowerCutFs::mount(backing.path(), mountpoint.path()).expect("mount powercut (root and /dev/fuse)");
    let data_dir = fs.path().to_owned();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut cut_reports = Vec::new();
    for round in 0..=cuts {
        let service = start(&data_dir, &backend.as_env());
        let acknowledged = ledger.lock().unwrap().clone();
        check_after_restart(&service, &data_dir, &acknowledged, round).await;
        if round == cuts {
            break;
        }
        let target = ledger.lock().unwrap().acknowledged() + rng.random_range(WRITES_BETWEEN_CUTS);
        let stop = Arc::new(AtomicBool::new(false));
        let writes = tokio::spawn(write_until(service.address.clone(), stop.clone(), ledger.clone(), next.clone()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while ledger.lock().unwrap().acknowledged() < target {
            assert!(Instant::now() < deadline, "writes too slow");
            tokio::time::sleep(Duration::from_millis(2)).await; // poll interval under a deadline
        }
        service.signal(libc::SIGKILL);
        let mut service = service;
        assert_eq!(service.wait_exit(Duration::from_secs(10)).code(), None, "killed by a signal");
        stop.store(true, Ordering::SeqCst);
        writes.await.unwrap();
        drop(service);
        let report = fs.cut().expect("the cut");
        eprintln!("power-cut ({transport}): cut {} after {target} acknowledged writes: {report:?}", round + 1);
        cut_reports.push(report);
    }
    let ledger = ledger.lock().unwrap();
    let rolled_back: usize = cut_reports.iter().map(|r| r.files_rolled_back).sum();
    eprintln!(
        "power-cut ({transport}): {cuts} cuts, seed {seed}: {} posts and {} orders acknowledged and verified after every cut, \
         {rolled_back} file rollbacks, {:.1}s",
        ledger.posts_created.len(),
        ledger.orders_accepted.len(),
        began.elapsed().as_secs_f64()
    );
}

/// Sends posts (even numbers) and orders (odd) until told to stop, noting each.
async fn write_until(address: String, stop: Arc<AtomicBool>, ledger: Arc<Mutex<Ledger>>, next: Arc<AtomicUsize>) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    futures::stream::iter(0..)
        .take_while(|_| futures::future::ready(!stop.load(Ordering::SeqCst)))
        .map(|_| {
            let (client, address, ledger) = (client.clone(), address.clone(), ledger.clone());
            let n = next.fetch_add(1, Ordering::SeqCst);
            async move {
                let is_post = n.is_multiple_of(2);
                let (path, body) = if is_post { ("posts", post(n)) } else { ("events", order(n)) };
                match is_post {
                    true => ledger.lock().unwrap().posts_sent.insert(format!("Post {n}")),
                    false => ledger.lock().unwrap().orders_sent.insert(format!("K-{n}")),
                };
                let Ok(response) = client.post(format!("{address}/{path}")).bearer_auth(API_KEY).json(&body).send().await else {
                    return;
                };
                if !response.status().is_success() {
                    return;
                }
                if !is_post {
                    ledger.lock().unwrap().orders_accepted.insert(format!("K-{n}"));
                } else if let Ok(created) = response.json::<Value>().await {
                    if let Some(id) = created["id"].as_str() {
                        ledger.lock().unwrap().posts_created.insert(id.to_owned(), format!("Post {n}"));
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<()>()
        .await;
}

/// The write model as the store holds it: id → (title, tags).
fn write_model(data_dir: &Path) -> HashMap<String, (String, Vec<String>)> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn = rusqlite::Connection::open_with_flags(data_dir.join("blog.sqlite"), flags).unwrap();
    let mut statement = conn.prepare("SELECT id, title, tags FROM posts").unwrap();
    let rows = statement
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .unwrap();
    rows.map(|row| {
        let (id, title, tags) = row.unwrap();
        (id, (title, serde_json::from_str(&tags).unwrap()))
    })
    .collect()
}

/// Order ids the email log says were mailed.
fn mailed_in_log(data_dir: &Path) -> Vec<String> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn = rusqlite::Connection::open_with_flags(data_dir.join("blog.sqlite"), flags).unwrap();
    let mut statement = conn.prepare("SELECT order_id FROM email_log WHERE status = 'sent'").unwrap();
    let ids = statement.query_map([], |r| r.get::<_, String>(0)).unwrap();
    ids.map(Result::unwrap).collect()
}

/// Once the restarted service has caught up, everything agrees with the ledger.
async fn check_after_restart(service: &Service, data_dir: &Path, ledger: &Ledger, round: usize) {
    let client = reqwest::Client::new();
    wait_until_idle(&client, service).await;
    let posts = write_model(data_dir);
    for (id, title) in &ledger.posts_created {
        assert!(posts.contains_key(id), "after cut {round}: {title} ({id}) got a 201 and is gone");
    }
    for (id, (title, _)) in &posts {
        assert!(ledger.posts_sent.contains(title), "after cut {round}: post {id} ({title}) was never sent");
    }
    let read_model = all_posts(&client, service).await;
    let viewed: HashSet<&str> = read_model.iter().filter_map(|p| p["id"].as_str()).collect();
    let stored: HashSet<&str> = posts.keys().map(String::as_str).collect();
    assert_eq!(viewed, stored, "after cut {round}: the read model holds exactly the stored posts");
    let recount: Vec<Value> = posts.values().map(|(_, tags)| json!({ "tags": tags })).collect();
    assert_eq!(served_cloud(&client, service).await, cloud_of(&recount), "after cut {round}: the tag cloud is a recount");

    let mail_files: Vec<String> = std::fs::read_dir(data_dir.join("mail"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".eml")).collect())
        .unwrap_or_default();
    let mailed_to = |order: &str| mail_files.iter().filter(|m| m.starts_with(&format!("order-{order}-"))).count();
    for order in &ledger.orders_accepted {
        assert_eq!(mailed_to(order), 1, "after cut {round}: accepted order {order} is mailed once");
    }
    for file in &mail_files {
        assert!(ledger.orders_sent.iter().any(|o| file.starts_with(&format!("order-{o}-"))), "after cut {round}: {file} mails an order never sent");
    }
    for order in mailed_in_log(data_dir) {
        assert_eq!(mailed_to(&order), 1, "after cut {round}: the log says {order} was mailed, its file must be there");
    }
    let dead: Value = client.get(format!("{}/dead-letters", service.address)).bearer_auth(API_KEY).send().await.unwrap().json().await.unwrap();
    assert_eq!(dead["total"], 0, "after cut {round}: nothing parked: {dead}");
}
