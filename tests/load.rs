//! `blog load` as a user runs it: the real binary on a fresh data dir, then the
//! store opened to check the posts, the tag cloud and the read model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use blog::load::synthetic::{Generator, Settings as SyntheticSettings};
use blog::store::sqlite::SqliteStore;
use blog::store::{PostRepository, QueryStore};
use blog_actors::ports::TagCount;

fn blog_load(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blog"))
        .env("BLOG_DATA_DIR", data_dir)
        .env_remove("BLOG_STORE_URL")
        .arg("load")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const ALPHA: &str = "6f1c1d6e-8f43-4c4e-9d7e-0d4f7a0e7a11";

/// Five lines; line 3 is not JSON.
fn jsonl() -> String {
    [
        format!(r#"{{"id":"{ALPHA}","title":"Alpha","description":"About alpha.","tags":["Rust","sqlite"],"created_at":"2024-01-01T00:00:00Z"}}"#),
        r#"{"title":"Beta","description":"About beta.","tags":["rust"]}"#.to_owned(),
        r#"{"title": "Broken", "#.to_owned(),
        r#"{"title":"Gamma","description":"About gamma.","tags":["rust","actix"]}"#.to_owned(),
        r#"{"title":"Delta","description":"About delta.","tags":[]}"#.to_owned(),
    ]
    .join("\n")
}

/// In `dir`: a posts file holding `lines`, and the path of a data dir to load them into.
fn posts_file(dir: &Path, lines: &str) -> (PathBuf, PathBuf) {
    let file = dir.join("posts.jsonl");
    std::fs::write(&file, lines).unwrap();
    (file, dir.join("data"))
}

fn cloud(pairs: &[(&str, i64)]) -> Vec<TagCount> {
    pairs.iter().map(|(tag, n)| TagCount { tag: tag.to_string(), posts_count: *n }).collect()
}

#[tokio::test]
async fn a_jsonl_import_skips_a_malformed_line_naming_it_and_brings_the_cloud_and_read_model_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let (file, data) = posts_file(dir.path(), &jsonl());

    let out = blog_load(&data, &["--file", file.to_str().unwrap(), "--on-error", "skip", "--batch", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("line 3: not a post"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 malformed lines skipped"), "{}", text(&out.stdout));

    let store = SqliteStore::open(&data).await.unwrap();
    assert_eq!(store.count_posts().await.unwrap(), 4);
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("rust", 3), ("actix", 1), ("sqlite", 1)]));
    let rust = store.list_posts(Some("rust"), 1, 10).await.unwrap();
    assert_eq!(rust.total, 3);
    let alpha = store.get_post_view(ALPHA.parse().unwrap()).await.unwrap().expect("alpha is in the read model");
    assert_eq!((alpha.slug.as_str(), alpha.version), ("alpha", 1));
    assert_eq!(alpha.created_at.to_rfc3339(), "2024-01-01T00:00:00+00:00");
    assert_eq!(store.list_posts(None, 1, 10).await.unwrap().total, 4);
}

#[tokio::test]
async fn a_malformed_line_stops_the_load_by_default_after_importing_the_lines_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (file, data) = posts_file(dir.path(), &jsonl());

    let out = blog_load(&data, &["--file", file.to_str().unwrap()]);
    assert!(!out.status.success(), "a malformed line must fail the load");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 3: not a post") && stderr.contains("the load stopped there"), "{stderr}");

    let store = SqliteStore::open(&data).await.unwrap();
    assert_eq!(store.count_posts().await.unwrap(), 2);
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("rust", 2), ("sqlite", 1)]));
    assert_eq!(store.list_posts(None, 1, 10).await.unwrap().total, 2);
}

#[tokio::test]
async fn loading_the_same_posts_again_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (file, data) = posts_file(dir.path(), jsonl().lines().next().unwrap());
    for _ in 0..2 {
        let out = blog_load(&data, &["--file", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let store = SqliteStore::open(&data).await.unwrap();
    assert_eq!(store.count_posts().await.unwrap(), 1);
    assert_eq!(store.tag_cloud(None).await.unwrap(), cloud(&[("rust", 1), ("sqlite", 1)]));
}

#[tokio::test]
async fn synthetic_posts_follow_the_seed_and_their_tags_are_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = blog_load(&data, &["--synthetic", "3000", "--tags", "200", "--seed", "9", "--batch", "700"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The same generator, same seed: the posts the load made.
    let mut generator = Generator::new(&SyntheticSettings { tags: 200, exponent: 1.0, seed: 9 }).unwrap();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut first = None;
    for _ in 0..3000 {
        let post = generator.post();
        first.get_or_insert(post.id);
        for tag in post.post.tags {
            *expected.entry(tag).or_default() += 1;
        }
    }
    let mut expected: Vec<TagCount> =
        expected.into_iter().map(|(tag, posts_count)| TagCount { tag, posts_count }).collect();
    expected.sort_by(|a, b| b.posts_count.cmp(&a.posts_count).then_with(|| a.tag.cmp(&b.tag)));

    let store = SqliteStore::open(&data).await.unwrap();
    assert_eq!(store.count_posts().await.unwrap(), 3000);
    let cloud = store.tag_cloud(None).await.unwrap();
    assert_eq!(cloud, expected);
    assert_eq!(cloud[0].tag, "tag-1", "the Zipf head is the most used tag");
    assert_eq!(store.list_posts(None, 1, 1).await.unwrap().total, 3000);
    assert_eq!(store.list_posts(Some("tag-1"), 1, 1).await.unwrap().total, cloud[0].posts_count as u64);
    assert!(store.get_post_view(first.unwrap()).await.unwrap().is_some());
}

#[tokio::test]
async fn synthetic_posts_can_be_written_as_jsonl_and_loaded_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("synthetic.jsonl");
    let data = dir.path().join("data");
    let out = blog_load(&data, &["--synthetic", "50", "--write-jsonl", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 50);
    let out = blog_load(&data, &["--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let store = SqliteStore::open(&data).await.unwrap();
    assert_eq!(store.count_posts().await.unwrap(), 50);
}
