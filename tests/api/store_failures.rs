//! How a route answers each kind of store failure, made real on the embedded
//! store's own files: damaged data is a 500 (retrying will not help), a store
//! that cannot take the write is a 503 with `Retry-After`, a stale write a 409.

use serde_json::Value;

use crate::helpers::{post_body, spawn_app};

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/problem+json"), "content type {content_type}");
    response.json().await.unwrap()
}

fn open_main_file(app: &crate::helpers::TestApp) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(app.data_dir.join(blog::store::sqlite::MAIN_FILE)).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    conn
}

#[actix_web::test]
async fn a_damaged_row_is_a_500_that_names_nothing_stored() {
    let app = spawn_app().await;
    let post = app.created_post("Damaged", &["a"]).await;
    let id = post["id"].as_str().unwrap().to_owned();
    // What a damaged or foreign row looks like: a timestamp that is not a number.
    let damaged = open_main_file(&app).execute("UPDATE posts SET created_at = 'not a time' WHERE id = ?1", [&id]).unwrap();
    assert_eq!(damaged, 1);

    let response = app.update_post(&id, &post_body("Changed", &["a"])).await;
    let body = problem(response, 500).await;
    assert!(!body.to_string().contains("not a time"), "the stored value is not served: {body}");
    // The other posts are not affected.
    let other = app.create_post(&post_body("Fine", &["b"])).await;
    assert_eq!(other.status(), 201);
}

#[actix_web::test]
async fn a_store_that_cannot_take_the_write_is_a_503_to_retry() {
    let app = spawn_app().await;
    // Another process holds the write lock past the store's busy timeout.
    let mut holder = open_main_file(&app);
    let lock = holder.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive).unwrap();
    let response = app.create_post(&post_body("Blocked", &["a"])).await;
    assert!(response.headers().contains_key("retry-after"), "{:?}", response.headers());
    problem(response, 503).await;
    lock.rollback().unwrap();

    // Once the lock is gone the same write goes through: nothing was left half done.
    let response = app.create_post(&post_body("Blocked", &["a"])).await;
    assert_eq!(response.status(), 201);
    let stored: i64 = holder.query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 1, "the refused write left nothing behind");
}
