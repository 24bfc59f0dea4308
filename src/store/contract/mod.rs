//! The store contract: every behaviour the service relies on, written once as a
//! generic test function over [`Store`], and run against each adapter by
//! [`store_contract_suite!`]. A new adapter inherits every test by calling the
//! macro with a function that gives it a fresh store; no test is written twice.
//! Tests of one adapter's own workings (file upgrades, connections) stay with it.

pub(crate) mod email_log;
pub(crate) mod feeds;
pub(crate) mod leases;
pub(crate) mod outbox;
pub(crate) mod posts;
pub(crate) mod queries;
pub(crate) mod read_model;
pub(crate) mod tag_cloud;

use blog_actors::event::{Envelope, Event};
use blog_actors::ports::{PostView, TagCount};
use uuid::Uuid;

use super::Store;
use crate::domain::post::ValidPost;

/// A store under test: every adapter's handle is cheap to clone and shareable
/// between tasks, which the racing tests need.
pub(crate) trait TestStore: Store + Clone {}
impl<S: Store + Clone> TestStore for S {}

/// Declares one `#[tokio::test]` per contract test, grouped by area, each on a
/// store from `$fresh` (an async fn in the calling module returning `(guard, store)`,
/// the guard kept alive for the test, e.g. a temporary dir).
macro_rules! store_contract_suite {
    ($fresh:ident) => {
        $crate::store::contract::store_contract_suite!(@areas $fresh;
            posts: [
                creating_a_post_stores_version_one_and_enqueues_post_created,
                updating_a_post_bumps_its_version_and_enqueues_the_previous_tags,
                an_update_naming_a_stale_version_conflicts_and_enqueues_nothing,
                writing_a_missing_post_answers_not_found,
                deleting_a_post_enqueues_post_deleted_with_the_next_version_and_its_tags,
                concurrent_writes_each_commit_with_their_own_event_in_seq_order,
                an_import_stores_new_posts_once_without_events_and_its_views_in_bulk,
            ]
            outbox: [
                pending_gives_the_oldest_unsent_entries_in_order,
                marked_entries_leave_the_backlog,
                binary_bodies_round_trip_byte_for_byte,
                pending_with_limit_zero_gives_nothing,
                every_write_with_an_event_wakes_the_relay,
                an_event_keeps_the_trace_context_of_its_write,
            ]
            email_log: [
                an_order_is_sendable_until_it_is_marked_mailed,
                orders_are_logged_independently,
                marking_without_a_claim_still_records_the_mail,
                a_released_claim_lets_another_instance_send_at_once_but_a_sent_order_stays_sent,
            ]
            feeds: [
                feed_entries_are_newest_first_by_tag_and_limited,
                a_feed_entry_changes_only_for_a_newer_version_and_a_deletion_is_final,
                a_rebuild_brings_the_feeds_to_the_posts_and_keeps_deletions,
            ]
            leases: [
                a_lease_held_by_another_instance_is_refused_until_it_expires,
                an_expired_lease_is_taken_over,
                leases_with_different_names_do_not_interfere,
                of_racing_instances_exactly_one_takes_a_free_lease,
            ]
            queries: [
                posts_are_listed_newest_first_in_pages,
                posts_created_at_the_same_instant_are_ordered_by_id_descending,
                a_tag_filter_lists_only_live_posts_with_that_tag,
                a_view_reads_back_exactly_as_stored,
            ]
            read_model: [
                a_view_is_stored_only_when_newer_than_what_is_there,
                a_removed_view_cannot_come_back_with_an_older_or_equal_version,
                a_deletion_arriving_before_the_creation_leaves_a_tombstone,
                removing_an_older_version_than_the_view_changes_nothing,
                a_view_whose_time_changes_moves_under_its_tags,
                racing_versions_of_one_view_leave_the_newest,
            ]
            tag_cloud: [
                the_same_event_twice_counts_once,
                an_older_version_after_a_newer_one_changes_nothing,
                an_update_moves_the_counts_by_the_difference_and_drops_empty_tags,
                a_deletion_before_a_late_creation_keeps_the_post_out,
                concurrent_events_for_many_posts_count_exactly,
                the_cloud_is_limited_and_ordered_by_count_then_tag,
                the_rebuilt_cloud_has_the_aggregated_counts_in_order_and_limited,
                a_rebuild_equals_applying_every_event_in_any_order_and_twice,
                events_arriving_after_a_rebuild_cannot_count_a_deleted_post_again,
                rebuilding_an_empty_store_gives_an_empty_cloud,
            ]
        );
    };
    (@areas $fresh:ident; $( $area:ident: [ $($name:ident),* $(,)? ] )*) => {
        mod contract {
            $(
                mod $area {
                    $(
                        #[tokio::test]
                        async fn $name() {
                            let (_guard, store) = super::super::$fresh().await;
                            $crate::store::contract::$area::$name(store).await;
                        }
                    )*
                }
            )*
        }
    };
}
pub(crate) use store_contract_suite;

pub(crate) fn tags(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|t| t.to_string()).collect()
}

pub(crate) fn post(title: &str, tag_list: &[&str]) -> ValidPost {
    ValidPost { title: title.into(), description: format!("About {title}."), tags: tags(tag_list) }
}

/// Every event in the outbox, oldest first, decoded and validated.
pub(crate) async fn outbox_events(store: &impl Store) -> Vec<(Envelope, Event)> {
    let entries = store.pending(100_000).await.unwrap();
    entries
        .iter()
        .map(|entry| {
            let envelope = Envelope::decode(&entry.message.body).unwrap();
            assert_eq!(envelope.id, entry.message.message_id);
            assert_eq!(envelope.event_type, entry.message.routing_key);
            assert_eq!(envelope.correlation_id, entry.message.correlation_id);
            let event = envelope.event().unwrap();
            (envelope, event)
        })
        .collect()
}

/// A view of post `id` at `version`, created `minute` minutes into 2024.
pub(crate) fn view(id: Uuid, version: i64, minute: i64, tag_list: &[&str]) -> PostView {
    let created_at = chrono::DateTime::from_timestamp_millis(1_704_067_200_000 + minute * 60_000 + 123).unwrap();
    PostView {
        id,
        slug: format!("post-{minute}"),
        title: format!("Post {minute}"),
        description: "Some words here.".into(),
        excerpt: "Some words".into(),
        tags: tags(tag_list),
        word_count: 3,
        reading_time_minutes: 1,
        version,
        created_at,
        updated_at: created_at + chrono::Duration::seconds(version),
    }
}

/// A cloud written as `(tag, count)` pairs.
pub(crate) fn cloud(pairs: &[(&str, i64)]) -> Vec<TagCount> {
    pairs.iter().map(|(tag, n)| TagCount { tag: tag.to_string(), posts_count: *n }).collect()
}
