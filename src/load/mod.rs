//! `blog load`: bulk import of posts, from a JSON-lines file or generated.
//!
//! - [`jsonl`]: reads `{"title", "description", "tags", "id"?, "created_at"?}`
//!   per line; a malformed line is reported with its number, then skipped or
//!   the load stops, as `--on-error` says.
//! - [`synthetic`]: N posts with a realistic tag distribution (Zipf over
//!   `--tags` distinct tags), seeded so a data set can be made again.
//!
//! Posts are written in batches (`--batch`, one transaction each) through
//! [`PostRepository::import_posts`], and each batch's views through
//! [`ReadModelBulk::upsert_post_views`], the two files written side by side.
//! At the end the tag cloud is rebuilt from the posts (which also records every
//! imported post in its per-post bookkeeping).
//!
//! **An import bypasses the outbox, on purpose.** A million `post.created`
//! events would make the workers redo, one event at a time, what the bulk
//! projection and one rebuild do in a few set-based statements; it would take
//! the live service's queues for minutes and hold the outbox's rows until
//! then. Nothing is lost by skipping them: the events' only subscribers are the
//! tag cloud and the read model, which the load brings up to date itself, and
//! both stay idempotent by version, so later events for these posts (an
//! update, a delete) apply as usual. The price: a service running beside the
//! load sees the imported posts in `GET /posts` as batches land, but in the tag
//! cloud only once the final rebuild ran; and a consumer of post events outside
//! this service would never hear of imported posts.

pub mod jsonl;
pub mod synthetic;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use blog_actors::projector::view_of;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::cli::LoadArgs;
use crate::configuration::Settings;
use crate::adapters::open_store;
use crate::store::{ImportedPost, Store};

/// Batches parsed ahead of the writer: enough to keep it busy, little memory.
const READ_AHEAD: usize = 2;

/// What a reader hands the writer.
pub enum Item {
    Batch(Vec<ImportedPost>),
    /// The progress bar's position (bytes read, or posts made).
    Progress(u64),
}

/// A malformed input line and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct BadLine {
    pub line: u64,
    pub reason: String,
}

/// How a load went.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// Posts read and valid.
    pub read: u64,
    /// Posts stored (the rest existed already, or had been deleted).
    pub stored: u64,
    /// Malformed lines skipped (`--on-error skip`).
    pub skipped: u64,
    pub tags: u64,
    pub views_changed: u64,
    pub write_time: Duration,
    pub rebuild_time: Duration,
    /// How long bringing the feed writer's entries up to the posts took.
    pub feeds_time: Duration,
    /// The malformed line that stopped the load (`--on-error stop`).
    pub stopped_at: Option<BadLine>,
}

/// `blog load --synthetic N --write-jsonl PATH`: the posts as a file instead of an import.
pub fn write_jsonl(args: &LoadArgs, count: u64, path: &std::path::Path) -> anyhow::Result<()> {
    let generator = synthetic::Generator::new(&args.synthetic_settings())?;
    generator.write_jsonl(count, path).with_context(|| format!("writing {}", path.display()))
}

/// Runs `blog load`: imports, then brings the tag cloud up to date. With
/// `--on-error stop` a malformed line ends the reading, and what came before it
/// is still imported and counted in the cloud; the caller reports the line.
pub async fn run(settings: &Settings, args: LoadArgs) -> anyhow::Result<LoadReport> {
    if args.batch == 0 {
        anyhow::bail!("--batch must be at least 1");
    }
    let store = open_store(settings).await?;
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let progress = progress_bar(&args);
    let reader = {
        let (args, progress) = (args.clone(), progress.clone());
        std::thread::spawn(move || read(&args, &tx, &progress))
    };
    let started = Instant::now();
    let written = write(store.clone(), rx, &progress).await;
    // The reader ends once the writer stops taking batches (the channel closes).
    let read = reader.join().map_err(|_| anyhow::anyhow!("the reader thread panicked"))?;
    progress.finish_and_clear();
    let (stored, views_changed) = written?;
    let read = read?;
    let write_time = started.elapsed();

    let rebuilt = Instant::now();
    let cloud = store.rebuild_tag_cloud().await.context("rebuilding the tag cloud")?;
    let rebuild_time = rebuilt.elapsed();
    let feeds = Instant::now();
    store.rebuild_feed_entries().await.context("rebuilding the feeds")?;
    Ok(LoadReport {
        read: read.posts,
        stored,
        skipped: read.skipped,
        tags: cloud.tags,
        views_changed,
        write_time,
        rebuild_time,
        feeds_time: feeds.elapsed(),
        stopped_at: read.stopped_at,
    })
}

impl LoadReport {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "loaded {} posts ({} stored, {} already there, {} malformed lines skipped) in {:.1} s; \
             read model: {} views written; tag cloud: {} tags, rebuilt in {:.1} s; feeds rebuilt in {:.1} s",
            self.read,
            self.stored,
            self.read - self.stored,
            self.skipped,
            self.write_time.as_secs_f64(),
            self.views_changed,
            self.tags,
            self.rebuild_time.as_secs_f64(),
            self.feeds_time.as_secs_f64(),
        )
    }
}

/// What the reader found.
struct ReadStats {
    posts: u64,
    skipped: u64,
    stopped_at: Option<BadLine>,
}

fn read(args: &LoadArgs, tx: &mpsc::Sender<Item>, progress: &ProgressBar) -> anyhow::Result<ReadStats> {
    let mut posts = 0;
    let mut emit = |item: Item| {
        if let Item::Batch(batch) = &item {
            posts += batch.len() as u64;
        }
        // A closed channel means the writer failed; it reports why.
        tx.blocking_send(item).is_ok()
    };
    let (skipped, stopped_at) = match (&args.file, args.synthetic) {
        (Some(path), _) => {
            let on_bad = |bad: &BadLine| progress.suspend(|| eprintln!("blog load: {bad}"));
            let outcome = jsonl::read(path, args.batch, args.on_error, on_bad, &mut emit)
                .with_context(|| format!("reading {}", path.display()))?;
            (outcome.skipped, outcome.stopped_at)
        }
        (None, Some(count)) => {
            synthetic::Generator::new(&args.synthetic_settings())?.generate(count, args.batch, &mut emit);
            (0, None)
        }
        (None, None) => anyhow::bail!("give --file PATH or --synthetic N"),
    };
    Ok(ReadStats { posts, skipped, stopped_at })
}

/// Writes each batch's posts and views; answers (posts stored, views changed).
async fn write(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Item>, progress: &ProgressBar) -> anyhow::Result<(u64, u64)> {
    let (mut stored, mut views) = (0, 0);
    while let Some(item) = rx.recv().await {
        let batch = match item {
            Item::Progress(at) => {
                progress.set_position(at);
                continue;
            }
            Item::Batch(batch) => batch,
        };
        let projected = batch.iter().map(|p| view_of(&p.snapshot())).collect();
        // Two files (SQLite) or two databases (MongoDB): written side by side.
        let (posts, viewed) = tokio::join!(store.import_posts(batch), store.upsert_post_views(projected));
        stored += posts.context("importing posts")?;
        views += viewed.context("writing the read model")?;
    }
    Ok((stored, views))
}

fn progress_bar(args: &LoadArgs) -> ProgressBar {
    if args.no_progress {
        return ProgressBar::hidden();
    }
    let (total, unit) = match (&args.file, args.synthetic) {
        (Some(path), _) => (std::fs::metadata(path).map(|m| m.len()).unwrap_or(0), "{bytes}/{total_bytes}"),
        (None, count) => (count.unwrap_or(0), "{human_pos}/{human_len} posts"),
    };
    let template = format!("{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {unit} ({{per_sec}}, eta {{eta}})");
    let style = ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(total).with_style(style)
}
