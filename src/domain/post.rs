//! A post as written by clients, validated and normalised.

use serde::Deserialize;

pub const TITLE_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 20_000;
pub const TAGS_MAX: usize = 10;
pub const TAG_MAX_CHARS: usize = 32;

/// The body of `POST /posts` and `PUT /posts/{id}`, as sent.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostInput {
    /// Not blank; at most 200 characters once trimmed.
    pub title: String,
    /// Not blank; at most 20,000 characters once trimmed.
    pub description: String,
    /// At most 10 distinct tags of at most 32 letters, digits or `- _ . + #`; trimmed, lower-cased, de-duplicated.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A post that passed validation: title and body trimmed, tags trimmed,
/// lower-cased, de-duplicated (first occurrence kept).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidPost {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
}

/// Every problem found in one input, each naming its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
pub struct InvalidPost(pub Vec<(&'static str, String)>);

impl PostInput {
    pub fn validate(self) -> Result<ValidPost, InvalidPost> {
        let mut problems = Vec::new();
        let title = self.title.trim().to_owned();
        let description = self.description.trim().to_owned();
        if title.is_empty() {
            problems.push(("title", "must not be empty".to_owned()));
        } else if title.chars().count() > TITLE_MAX_CHARS {
            problems.push(("title", format!("must be at most {TITLE_MAX_CHARS} characters")));
        }
        if description.is_empty() {
            problems.push(("description", "must not be empty".to_owned()));
        } else if description.chars().count() > DESCRIPTION_MAX_CHARS {
            problems.push(("description", format!("must be at most {DESCRIPTION_MAX_CHARS} characters")));
        }
        let mut tags: Vec<String> = Vec::new();
        for raw in &self.tags {
            let tag = raw.trim().to_lowercase();
            if tag.is_empty() {
                problems.push(("tags", "a tag must not be empty".to_owned()));
            } else if tag.chars().count() > TAG_MAX_CHARS {
                problems.push(("tags", format!("tag {tag:?} is longer than {TAG_MAX_CHARS} characters")));
            } else if !tag.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '#')) {
                problems.push(("tags", format!("tag {tag:?} may hold only letters, digits and - _ . + #")));
            } else if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if tags.len() > TAGS_MAX {
            problems.push(("tags", format!("at most {TAGS_MAX} distinct tags")));
        }
        if problems.is_empty() {
            Ok(ValidPost { title, description, tags })
        } else {
            Err(InvalidPost(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(title: &str, tags: &[&str]) -> PostInput {
        PostInput { title: title.into(), description: "Body".into(), tags: tags.iter().map(|t| t.to_string()).collect() }
    }

    #[test]
    fn tags_are_trimmed_lowercased_and_deduplicated() {
        let post = input(" Hi ", &[" Rust", "rust ", "Actix", "RUST"]).validate().unwrap();
        assert_eq!(post.title, "Hi");
        assert_eq!(post.tags, vec!["rust", "actix"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let err = input("", &["bad tag", &"x".repeat(40)]).validate().unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, vec!["title", "tags", "tags"]);
    }

    #[test]
    fn too_many_tags_are_refused() {
        let tags: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        assert!(input("T", &refs).validate().is_err());
    }
}
