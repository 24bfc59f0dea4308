use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use crate::faults::PanickingReadModel;
use crate::helpers::{eventually, spawn_app_with, Backend};
use crate::on_every_backend;

on_every_backend!(a_worker_panic_restarts_the_actor_and_loses_nothing);
async fn a_worker_panic_restarts_the_actor_and_loses_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}, |adapters| {
        adapters.read_model =
            Arc::new(PanickingReadModel { inner: adapters.read_model.clone(), panics_left: AtomicU32::new(2) });
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.created_post(&format!("Post {i}"), &["panic"]).await["id"].as_str().unwrap().to_owned());
    }
    eventually("all five posts in the read model", || async {
        (app.get_json("/posts").await["total"] == 5).then_some(())
    })
    .await;
    assert_eq!(app.restarts("projector").await, 2);
    let actors = app.get_authed("/actors").await;
    let projector = actors.as_array().unwrap().iter().find(|a| a["name"] == "projector").unwrap().clone();
    assert_eq!(projector["restarts"], 2, "{projector}");
    assert!(projector["last_error"].as_str().unwrap().contains("injected projector panic"), "{projector}");
    assert!(projector["retried"].as_u64().unwrap() >= 2, "the panicking deliveries counted as failed attempts");
    app.wait_for_cloud(&[("panic", 5)]).await;
    for id in ids {
        assert_eq!(app.get(&format!("/posts/{id}")).await.status(), 200);
    }
    assert_eq!(app.dead_letters().await["total"], 0);
}
