//! Group commit's intake, shared by the SQLite store's writer thread and the
//! embedded queue's ack thread: wait for one item, then take whatever else is
//! already waiting, so one transaction serves the whole burst.

use std::sync::mpsc::Receiver;

/// Blocks for the next item, then adds the items already queued behind it, up
/// to `max` in all. `None` once every sender is gone and the queue is empty.
pub(crate) fn next_group<T>(items: &Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = items.recv().ok()?;
    let mut group = Vec::with_capacity(max.min(64));
    group.push(first);
    group.extend(items.try_iter().take(max.saturating_sub(1)));
    Some(group)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn a_group_is_what_waits_up_to_the_bound_and_none_after_the_senders_go() {
        let (tx, rx) = mpsc::channel();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        assert_eq!(next_group(&rx, 3), Some(vec![0, 1, 2]));
        assert_eq!(next_group(&rx, 3), Some(vec![3, 4]));
        drop(tx);
        assert_eq!(next_group(&rx, 3), None);
    }
}
