//! A post as written by clients, validated and normalised.

use serde::Deserialize;

pub use blog_actors::rules::post::{DESCRIPTION_MAX_CHARS, TITLE_MAX_CHARS};
pub use blog_actors::rules::tag::{TAGS_MAX, TAG_MAX_CHARS};
use blog_actors::rules::{post, tag};

/// The body of `POST /posts` and `PUT /posts/{id}`, as sent.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostInput {
    /// Not blank; at most 200 characters once trimmed; no control characters.
    pub title: String,
    /// Not blank; at most 20,000 characters once trimmed; no control characters but newlines and tabs.
    pub description: String,
    /// At most 10 distinct tags of at most 32 letters, marks, digits or `- _ . + #`; trimmed,
    /// NFKC-normalised, case-folded, de-duplicated (at most 40 may be sent).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A post that passed validation: title and body trimmed, tags in their
/// canonical form ([`tag::normalise`]), de-duplicated (first occurrence kept).
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
        if let Err(e) = post::check_title(&title) {
            problems.push(("title", e));
        }
        if let Err(e) = post::check_description(&description) {
            problems.push(("description", e));
        }
        let tags = tag::normalise_all(&self.tags).unwrap_or_else(|tag_problems| {
            problems.extend(tag_problems.into_iter().map(|p| ("tags", p)));
            Vec::new()
        });
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
        let post = input(" Hi ", &[" Rust", "rust ", "Actix", "RUST", "ＲＵＳＴ"]).validate().unwrap();
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
    fn a_title_with_a_line_break_is_refused() {
        let err = input("Hi\r\nthere", &[]).validate().unwrap_err();
        assert_eq!(err.0[0].0, "title");
    }

    proptest::proptest! {
        #[test]
        fn validation_never_panics_and_what_it_accepts_is_canonical_and_bounded(
            title in "\\PC{0,210}", description in "\\PC{0,50}", tags in proptest::collection::vec("\\PC{0,40}", 0..50)
        ) {
            let input = PostInput { title, description, tags };
            if let Ok(post) = input.validate() {
                proptest::prop_assert!(post.title.chars().count() <= TITLE_MAX_CHARS);
                proptest::prop_assert!(post.tags.len() <= TAGS_MAX);
                proptest::prop_assert!(blog_actors::rules::tag::check_canonical(&post.tags).is_ok());
                let again = PostInput { title: post.title.clone(), description: post.description.clone(), tags: post.tags.clone() };
                proptest::prop_assert_eq!(again.validate(), Ok(post));
            }
        }
    }

    #[test]
    fn too_many_tags_are_refused() {
        let tags: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        assert!(input("T", &refs).validate().is_err());
    }
}
