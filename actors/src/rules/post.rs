//! What a valid post is: the API checks what clients write, the workers check
//! the post events they take with the same rules.

use chrono::{DateTime, Utc};

use super::{tag, text};

pub const TITLE_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 20_000;
/// Versions count edits from 1; beyond 2^53 a version would not survive a JSON
/// reader that keeps numbers as doubles, and no real post gets there.
pub const VERSION_MAX: i64 = 1 << 53;

pub fn check_title(title: &str) -> Result<(), String> {
    text::check_line(title, TITLE_MAX_CHARS)
}

pub fn check_description(description: &str) -> Result<(), String> {
    text::check_multiline(description, DESCRIPTION_MAX_CHARS)
}

pub fn check_version(version: i64) -> Result<(), String> {
    if (1..=VERSION_MAX).contains(&version) {
        Ok(())
    } else {
        Err(format!("version must be between 1 and {VERSION_MAX}"))
    }
}

/// A post as an event carries it: fields as the API stores them, canonical tags.
pub struct PostFields<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub tags: &'a [String],
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The first rule the post breaks, naming its field.
pub fn check_post(post: &PostFields<'_>) -> Result<(), String> {
    check_title(post.title).map_err(|e| format!("title {e}"))?;
    check_description(post.description).map_err(|e| format!("description {e}"))?;
    check_version(post.version)?;
    tag::check_canonical(post.tags)?;
    if post.updated_at < post.created_at {
        return Err("updated_at is before created_at".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post<'a>(title: &'a str, tags: &'a [String], version: i64) -> PostFields<'a> {
        let at = Utc::now();
        PostFields { title, description: "Body\nmore", tags, version, created_at: at, updated_at: at }
    }

    #[test]
    fn a_post_as_the_api_writes_it_passes() {
        assert!(check_post(&post("Hello", &["rust".into()], 1)).is_ok());
    }

    #[test]
    fn forged_fields_are_refused() {
        let tags = vec!["rust".to_owned()];
        assert!(check_post(&post("Hello", &tags, i64::MAX)).is_err());
        assert!(check_post(&post("Hello", &tags, 0)).is_err());
        assert!(check_post(&post("Hi\r\nthere", &tags, 1)).is_err());
        assert!(check_post(&post(&"t".repeat(201), &tags, 1)).is_err());
        assert!(check_post(&post("Hello", &["<img src=x>".to_owned()], 1)).is_err());
    }
}
