//! Posts from a JSON-lines file: one object per line,
//! `{"title", "description", "tags", "id"?, "created_at"?}`. Other fields are
//! ignored, so an export with more fields (`slug`, `version`, …) loads as is.
//! Blank lines are skipped silently; every other line must be a valid post.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{BadLine, Item};
use crate::cli::OnError;
use crate::domain::post::PostInput;
use crate::store::ImportedPost;

/// One line as written.
#[derive(Debug, Deserialize)]
struct Line {
    /// Kept when given, so loading the same file twice stores nothing twice.
    id: Option<Uuid>,
    title: String,
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    /// When the post was written; the load's start when absent.
    created_at: Option<DateTime<Utc>>,
}

/// What reading the file found, besides the posts it emitted.
pub struct Outcome {
    pub skipped: u64,
    pub stopped_at: Option<BadLine>,
}

/// Reads `path` (`-` is stdin) in batches of `batch` valid posts. A malformed
/// line goes to `on_bad`, then is skipped or ends the reading (the posts before
/// it are still emitted). `emit` answers false when nobody takes batches any more.
pub fn read(
    path: &Path,
    batch: usize,
    on_error: OnError,
    on_bad: impl Fn(&BadLine),
    emit: &mut dyn FnMut(Item) -> bool,
) -> std::io::Result<Outcome> {
    let input: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, File::open(path)?))
    };
    read_from(input, batch, on_error, on_bad, emit)
}

fn read_from(
    mut input: Box<dyn BufRead>,
    batch: usize,
    on_error: OnError,
    on_bad: impl Fn(&BadLine),
    emit: &mut dyn FnMut(Item) -> bool,
) -> std::io::Result<Outcome> {
    let stamp = now();
    let mut outcome = Outcome { skipped: 0, stopped_at: None };
    let (mut posts, mut raw, mut number, mut offset) = (Vec::with_capacity(batch), Vec::new(), 0u64, 0u64);
    loop {
        raw.clear();
        let n = input.read_until(b'\n', &mut raw)?;
        if n == 0 {
            break;
        }
        number += 1;
        offset += n as u64;
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse(&raw, stamp) {
            Ok(post) => posts.push(post),
            Err(reason) => {
                let bad = BadLine { line: number, reason };
                on_bad(&bad);
                if on_error == OnError::Stop {
                    outcome.stopped_at = Some(bad);
                    break;
                }
                outcome.skipped += 1;
            }
        }
        if posts.len() == batch {
            let full = std::mem::replace(&mut posts, Vec::with_capacity(batch));
            if !emit(Item::Batch(full)) || !emit(Item::Progress(offset)) {
                return Ok(outcome);
            }
        }
    }
    if !posts.is_empty() && emit(Item::Batch(posts)) {
        emit(Item::Progress(offset));
    }
    Ok(outcome)
}

/// One line into a post, or why it is not one.
fn parse(raw: &[u8], stamp: DateTime<Utc>) -> Result<ImportedPost, String> {
    let line: Line = serde_json::from_slice(raw).map_err(|e| format!("not a post: {e}"))?;
    let input = PostInput { title: line.title, description: line.description, tags: line.tags };
    let post = input.validate().map_err(|e| format!("invalid post: {e}"))?;
    let created_at = line.created_at.map_or(stamp, to_ms);
    Ok(ImportedPost { id: line.id.unwrap_or_else(Uuid::now_v7), post, created_at })
}

/// Both stores keep milliseconds; a post must read back as it was loaded.
fn to_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn now() -> DateTime<Utc> {
    to_ms(Utc::now())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn load(text: &str, on_error: OnError) -> (Vec<ImportedPost>, Vec<BadLine>, Outcome) {
        let (mut posts, bad) = (Vec::new(), RefCell::new(Vec::new()));
        let outcome = read_from(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            2,
            on_error,
            |b: &BadLine| bad.borrow_mut().push(b.clone()),
            &mut |item| {
                if let Item::Batch(b) = item {
                    posts.extend(b);
                }
                true
            },
        )
        .unwrap();
        (posts, bad.into_inner(), outcome)
    }

    const TEXT: &str = concat!(
        r#"{"title":"One","description":"First","tags":["Rust"," rust "]}"#,
        "\n\n",
        "{not json\n",
        r#"{"title":"","description":"No title"}"#,
        "\n",
        r#"{"id":"6f1c1d6e-8f43-4c4e-9d7e-0d4f7a0e7a11","title":"Four","description":"x","created_at":"2024-05-01T10:00:00.123456Z","slug":"ignored"}"#,
        "\n",
    );

    #[test]
    fn a_malformed_line_is_reported_with_its_number_and_skipped() {
        let (posts, bad, outcome) = load(TEXT, OnError::Skip);
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![3, 4]);
        assert!(bad[1].reason.contains("title"), "{:?}", bad[1]);
        assert_eq!(outcome.skipped, 2);
        assert_eq!(posts.len(), 2);
        assert_eq!(posts[0].post.tags, vec!["rust"]);
        assert_eq!(posts[1].id.to_string(), "6f1c1d6e-8f43-4c4e-9d7e-0d4f7a0e7a11");
        assert_eq!(posts[1].created_at.to_rfc3339(), "2024-05-01T10:00:00.123+00:00");
    }

    #[test]
    fn a_malformed_line_stops_the_load_after_the_posts_before_it() {
        let (posts, bad, outcome) = load(TEXT, OnError::Stop);
        assert_eq!(bad.len(), 1);
        assert_eq!(outcome.stopped_at.map(|b| b.line), Some(3));
        assert_eq!(posts.len(), 1);
    }
}
