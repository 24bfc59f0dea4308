//! Several instances on one store and one broker: competing consumers, and
//! one scheduled rebuild at a time.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::{all_posts, cloud_of, send_writes, served_cloud, wait_until_idle, BackendEnv};
use crate::service::{start, Service};
use crate::smtp_sink::SmtpSink;

/// Messages handled by the workers of one instance.
async fn work_done(service: &Service) -> u64 {
    let actors: Value = reqwest::get(format!("{}/actors", service.address)).await.unwrap().json().await.unwrap();
    actors
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| blog::startup::registered_workers().find(a["name"].as_str().unwrap()).is_some())
        .map(|a| a["handled_ok"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_queues_both_work_and_every_effect_is_exact() {
    let sink = SmtpSink::start(&[]);
    let backend = BackendEnv::rabbit().with("BLOG_SMTP_URL", &sink.url());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (start(dir.path(), &backend.as_env()), start(dir.path(), &backend.as_env()));
    both_work_exactly(&a, &b, &sink).await;
}

/// Writes through both instances, then checks that each post was projected and
/// counted once, each order mailed once, and that both instances did work.
pub async fn both_work_exactly(a: &Service, b: &Service, sink: &SmtpSink) {
    let (posts, orders, accepted) = (Arc::<Mutex<HashSet<String>>>::default(), Arc::<Mutex<HashSet<String>>>::default(), Arc::new(AtomicUsize::new(0)));
    tokio::join!(
        send_writes(a.address.clone(), 400, 0, posts.clone(), orders.clone(), accepted.clone()),
        // The second writer's orders are numbered apart, so none repeats.
        send_writes(b.address.clone(), 400, 10_000, posts.clone(), orders.clone(), accepted.clone()),
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 800);
    let client = reqwest::Client::new();
    wait_until_idle(&client, a).await;
    wait_until_idle(&client, b).await;

    let read_model = all_posts(&client, a).await;
    let ids: HashSet<String> = read_model.iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, *posts.lock().unwrap(), "every post projected once");
    assert_eq!(served_cloud(&client, b).await, cloud_of(&read_model), "the tag cloud counts each post once");

    let mails_per_order = mails_per_subject(sink);
    let orders = orders.lock().unwrap().clone();
    assert_eq!(mails_per_order.len(), orders.len(), "one mail per order");
    assert!(mails_per_order.values().all(|n| *n == 1), "no order mailed twice: {mails_per_order:?}");

    let (work_a, work_b) = (work_done(a).await, work_done(b).await);
    assert!(work_a > 0 && work_b > 0, "both instances consumed: {work_a} and {work_b}");
}

/// How many mails the sink received with each subject (one subject per order).
pub fn mails_per_subject(sink: &SmtpSink) -> HashMap<String, usize> {
    let mut mails: HashMap<String, usize> = HashMap::new();
    for mail in sink.received() {
        let subject = mail.lines().find(|l| l.starts_with("Subject: ")).unwrap().to_owned();
        *mails.entry(subject).or_default() += 1;
    }
    mails
}

/// How many scheduled rebuilds an instance has logged.
fn rebuilds(service: &Service) -> usize {
    service.log.lock().unwrap().iter().filter(|l| l.contains("rebuilt") && l.contains("tag_aggregator")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_at_a_time_runs_the_scheduled_rebuild_and_another_takes_over_when_it_dies() {
    let backend = BackendEnv::rabbit().with("BLOG_TAG_REBUILD_INTERVAL", "200ms");
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), &backend.as_env());
    let b = start(dir.path(), &backend.as_env());

    let deadline = Instant::now() + Duration::from_secs(20);
    while rebuilds(&a) + rebuilds(&b) < 8 {
        assert!(Instant::now() < deadline, "no scheduled rebuilds");
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval under a deadline
    }
    let (holder, other) = if rebuilds(&a) > 0 { (a, b) } else { (b, a) };
    assert_eq!(rebuilds(&other), 0, "only the lease holder rebuilt ({} rebuilds)", rebuilds(&holder));

    holder.signal(libc::SIGKILL);
    let mut holder = holder;
    holder.wait_exit(Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(20);
    while rebuilds(&other) == 0 {
        assert!(Instant::now() < deadline, "the survivor never took the lease over");
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval under a deadline
    }
}
