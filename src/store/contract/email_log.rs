//! The email log: at most one mail per order, claims that expire and are released.

use std::time::Duration;

use blog_actors::ports::MailClaim;

use super::TestStore;

const STALE: Duration = Duration::from_secs(30);

pub(crate) async fn an_order_is_sendable_until_it_is_marked_mailed(store: impl TestStore) {
    assert_eq!(store.claim_order_mail("A-1", "me", STALE).await.unwrap(), MailClaim::Send);
    // The holder may try again after a failed send.
    assert_eq!(store.claim_order_mail("A-1", "me", STALE).await.unwrap(), MailClaim::Send);
    // Another instance waits while the claim is fresh…
    assert_eq!(store.claim_order_mail("A-1", "other", STALE).await.unwrap(), MailClaim::HeldElsewhere);
    // …and takes it over once it is stale (its holder died mid-send).
    assert_eq!(store.claim_order_mail("A-1", "other", Duration::ZERO).await.unwrap(), MailClaim::Send);
    assert_eq!(store.claim_order_mail("A-1", "me", STALE).await.unwrap(), MailClaim::HeldElsewhere);
    store.mark_order_mailed("A-1", "ada@example.com", "<a-1@blog>").await.unwrap();
    assert_eq!(store.claim_order_mail("A-1", "me", STALE).await.unwrap(), MailClaim::AlreadySent);
}

pub(crate) async fn orders_are_logged_independently(store: impl TestStore) {
    store.claim_order_mail("A-1", "me", STALE).await.unwrap();
    store.mark_order_mailed("A-1", "ada@example.com", "<a-1@blog>").await.unwrap();
    assert_eq!(store.claim_order_mail("A-2", "me", STALE).await.unwrap(), MailClaim::Send);
}

pub(crate) async fn marking_without_a_claim_still_records_the_mail(store: impl TestStore) {
    store.mark_order_mailed("B-7", "bob@example.com", "<b-7@blog>").await.unwrap();
    assert_eq!(store.claim_order_mail("B-7", "me", STALE).await.unwrap(), MailClaim::AlreadySent);
}

pub(crate) async fn a_released_claim_lets_another_instance_send_at_once_but_a_sent_order_stays_sent(
    store: impl TestStore,
) {
    assert_eq!(store.claim_order_mail("A-1", "me", STALE).await.unwrap(), MailClaim::Send);
    store.release_order_mail("A-1", "other").await.unwrap();
    assert_eq!(store.claim_order_mail("A-1", "other", STALE).await.unwrap(), MailClaim::HeldElsewhere, "not theirs to release");
    store.release_order_mail("A-1", "me").await.unwrap();
    assert_eq!(store.claim_order_mail("A-1", "other", STALE).await.unwrap(), MailClaim::Send);
    store.mark_order_mailed("A-1", "ada@example.com", "<a-1@blog>").await.unwrap();
    store.release_order_mail("A-1", "other").await.unwrap();
    assert_eq!(store.claim_order_mail("A-1", "me", STALE).await.unwrap(), MailClaim::AlreadySent);
}
