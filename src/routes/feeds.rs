//! The Atom feeds the feed writer keeps: `GET /feed.xml` (the newest posts) and
//! `GET /tags/{tag}/feed.xml` (the newest posts with that tag). Each answer
//! carries a strong `ETag` (a hash of the document) and `Last-Modified` (the
//! newest entry's update), and a conditional request that matches gets 304.

use atom_syndication::{Category, Entry, Feed, FixedDateTime, Link, Text};
use actix_web::http::header::{self, EntityTag, HttpDate};
use actix_web::{web, HttpRequest, HttpResponse};
use blog_actors::feed_writer::{FeedEntry, FEED_ENTRIES};
use blog_actors::rules::tag;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use super::problem_responses::StoreUnavailable;
use super::resource::get_only;
use super::{AppState, Problem};

const ATOM: &str = "application/atom+xml; charset=utf-8";
/// Hex digits of the document's SHA-256 in its ETag.
const ETAG_HEX: usize = 32;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/feed.xml", site_feed)).service(get_only("/tags/{tag}/feed.xml", tag_feed));
}

/// The newest posts as an Atom feed.
#[utoipa::path(
    get, path = "/feed.xml", tag = "feeds",
    responses(
        (status = 200, description = "An Atom 1.0 feed of the 50 newest posts, newest first", body = String,
            content_type = "application/atom+xml"),
        (status = 304, description = "Unchanged since the given ETag or date"),
        StoreUnavailable,
    )
)]
#[tracing::instrument(skip_all)]
async fn site_feed(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    serve(&req, &state, None).await
}

/// The newest posts with one tag as an Atom feed.
#[utoipa::path(
    get, path = "/tags/{tag}/feed.xml", tag = "feeds",
    params(("tag" = String, Path, description = "A tag, in any spelling the API accepts (it is normalised)")),
    responses(
        (status = 200, description = "An Atom 1.0 feed of the 50 newest posts with the tag, newest first", body = String,
            content_type = "application/atom+xml"),
        (status = 304, description = "Unchanged since the given ETag or date"),
        (status = 404, description = "Not a tag the API would accept", body = Problem, content_type = "application/problem+json"),
        StoreUnavailable,
    )
)]
#[tracing::instrument(skip_all)]
async fn tag_feed(req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, Problem> {
    let tag = match tag::normalise_all(&[path.into_inner()]) {
        Ok(mut tags) if tags.len() == 1 => tags.remove(0),
        _ => return Err(Problem::not_found("no feed for that tag: it is not a tag the API accepts")),
    };
    serve(&req, &state, Some(&tag)).await
}

async fn serve(req: &HttpRequest, state: &AppState, tag: Option<&str>) -> Result<HttpResponse, Problem> {
    let entries = state.store.feed_entries(tag, FEED_ENTRIES).await?;
    let updated = entries.iter().map(|e| e.updated).max().unwrap_or(DateTime::UNIX_EPOCH);
    let body = feed(tag, &entries, updated).to_string();
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let etag = EntityTag::new_strong(hex[..ETAG_HEX].to_owned());
    let last_modified = HttpDate::from(std::time::SystemTime::from(updated));
    if unchanged(req, &etag, updated) {
        return Ok(HttpResponse::NotModified().insert_header(header::ETag(etag)).insert_header(header::LastModified(last_modified)).finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header(header::ETag(etag))
        .insert_header(header::LastModified(last_modified))
        .content_type(ATOM)
        .body(body))
}

/// RFC 9110: `If-None-Match` decides when present; else `If-Modified-Since`, to the second.
fn unchanged(req: &HttpRequest, etag: &EntityTag, updated: DateTime<Utc>) -> bool {
    if let Some(header) = req.headers().get(header::IF_NONE_MATCH) {
        return header.to_str().is_ok_and(|value| {
            value.trim() == "*" || value.split(',').filter_map(|t| t.trim().parse::<EntityTag>().ok()).any(|t| t.weak_eq(etag))
        });
    }
    let since = req.headers().get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<HttpDate>().ok());
    since.is_some_and(|since| DateTime::<Utc>::from(std::time::SystemTime::from(since)).timestamp() >= updated.timestamp())
}

/// The Atom document. Links are relative (to the feed's own address), so no
/// `Host` a client sends ends up in it.
fn feed(tag: Option<&str>, entries: &[FeedEntry], updated: DateTime<Utc>) -> Feed {
    let (title, id, self_href) = match tag {
        None => ("Blog: newest posts".to_owned(), "urn:blog:feed".to_owned(), "/feed.xml".to_owned()),
        Some(tag) => (format!("Blog: posts tagged {tag}"), format!("urn:blog:feed:tag:{}", urlencoding(tag)), format!("/tags/{}/feed.xml", urlencoding(tag))),
    };
    Feed {
        title: Text::plain(title),
        id,
        updated: fixed(updated),
        links: vec![link("self", &self_href), link("alternate", "/")],
        entries: entries.iter().map(entry).collect(),
        ..Default::default()
    }
}

fn entry(e: &FeedEntry) -> Entry {
    Entry {
        title: Text::plain(e.title.clone()),
        id: format!("urn:uuid:{}", e.id),
        updated: fixed(e.updated),
        published: Some(fixed(e.published)),
        summary: Some(Text::plain(e.summary.clone())),
        categories: e.tags.iter().map(|t| Category { term: t.clone(), ..Default::default() }).collect(),
        links: vec![link("alternate", &format!("/posts/{}", e.id))],
        ..Default::default()
    }
}

fn link(rel: &str, href: &str) -> Link {
    Link { rel: rel.to_owned(), href: href.to_owned(), ..Default::default() }
}

fn fixed(t: DateTime<Utc>) -> FixedDateTime {
    t.fixed_offset()
}

/// What a tag keeps as is in a path segment: ASCII letters, digits and `- _ .`;
/// `#`, `+` and non-ASCII letters are escaped (the latter as UTF-8).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// A tag as a path segment.
fn urlencoding(tag: &str) -> String {
    utf8_percent_encode(tag, PATH_SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_escaped_as_a_path_segment() {
        assert_eq!(urlencoding("c++"), "c%2B%2B");
        assert_eq!(urlencoding("c#"), "c%23");
        assert_eq!(urlencoding("straße-1.0_x"), "stra%C3%9Fe-1.0_x");
    }
}
