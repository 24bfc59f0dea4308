//! The last minutes of each actor, in fixed time slots, so a dashboard opened
//! now already shows what happened before it was opened.
//!
//! Counts are added when they happen (no timer needed); gauges such as a
//! backlog are only known when someone reads them, so a slot keeps the largest
//! value read during it, and stays empty when nobody looked.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Width of one slot.
pub const SLOT: Duration = Duration::from_secs(5);
/// Slots kept: five minutes.
pub const SLOTS: usize = 60;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Which slot since `History::base` this is; a stale one is reset before use.
    index: u64,
    ok: u64,
    failed: u64,
    restarts: u64,
    backlog: Option<u64>,
}

/// One actor's ring of slots.
#[derive(Debug, Clone)]
pub struct History {
    /// Slot 0 starts here; `Instant` so a wall-clock jump cannot scramble the ring.
    base: Instant,
    slots: [Slot; SLOTS],
}

/// The completed slots of the last minutes, oldest first, as `/actors` shows them.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActorHistory {
    /// Seconds each entry covers.
    pub slot_seconds: u64,
    /// Messages handled successfully per slot.
    pub ok: Vec<u64>,
    /// Messages retried or parked per slot.
    pub failed: Vec<u64>,
    /// Supervisor restarts per slot.
    pub restarts: Vec<u64>,
    /// Largest backlog read during the slot; null when nobody read it then.
    pub backlog: Vec<Option<u64>>,
}

impl History {
    pub fn new(base: Instant) -> Self {
        Self { base, slots: [Slot::default(); SLOTS] }
    }

    fn index_at(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.base).as_millis() / SLOT.as_millis()) as u64
    }

    fn slot_mut(&mut self, now: Instant) -> &mut Slot {
        let index = self.index_at(now);
        let slot = &mut self.slots[(index % SLOTS as u64) as usize];
        if slot.index != index {
            *slot = Slot { index, ..Slot::default() };
        }
        slot
    }

    pub fn add_ok(&mut self, now: Instant) {
        self.slot_mut(now).ok += 1;
    }

    pub fn add_failed(&mut self, now: Instant) {
        self.slot_mut(now).failed += 1;
    }

    pub fn add_restart(&mut self, now: Instant) {
        self.slot_mut(now).restarts += 1;
    }

    pub fn observe_backlog(&mut self, now: Instant, backlog: u64) {
        let slot = self.slot_mut(now);
        slot.backlog = Some(slot.backlog.map_or(backlog, |seen| seen.max(backlog)));
    }

    /// The `SLOTS` slots before the current (unfinished) one; slots nothing happened in are zeros.
    pub fn series(&self, now: Instant) -> ActorHistory {
        let current = self.index_at(now);
        let wanted = (0..SLOTS as u64).rev().map(|back| current.checked_sub(back + 1));
        let slots: Vec<Slot> = wanted
            .map(|index| match index {
                Some(index) => {
                    let slot = self.slots[(index % SLOTS as u64) as usize];
                    if slot.index == index { slot } else { Slot { index, ..Slot::default() } }
                }
                // Before the process started: nothing happened.
                None => Slot::default(),
            })
            .collect();
        ActorHistory {
            slot_seconds: SLOT.as_secs(),
            ok: slots.iter().map(|s| s.ok).collect(),
            failed: slots.iter().map(|s| s.failed).collect(),
            restarts: slots.iter().map(|s| s.restarts).collect(),
            backlog: slots.iter().map(|s| s.backlog).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_slot_and_show_once_it_is_complete() {
        let base = Instant::now();
        let mut h = History::new(base);
        h.add_ok(base);
        h.add_ok(base + Duration::from_secs(1));
        h.add_failed(base + SLOT);
        h.observe_backlog(base + SLOT, 3);
        h.observe_backlog(base + SLOT, 1);
        let now = base + SLOT * 2;
        let s = h.series(now);
        assert_eq!(s.ok.len(), SLOTS);
        assert_eq!(s.ok[SLOTS - 2..], [2, 0]);
        assert_eq!(s.failed[SLOTS - 2..], [0, 1]);
        assert_eq!(s.backlog[SLOTS - 2..], [None, Some(3)]);
        // The unfinished slot is not shown yet.
        h.add_ok(now);
        assert_eq!(h.series(now).ok[SLOTS - 1], 0);
    }

    #[test]
    fn a_slot_from_a_previous_lap_is_not_counted_again() {
        let base = Instant::now();
        let mut h = History::new(base);
        h.add_restart(base);
        let later = base + SLOT * (SLOTS as u32 + 1);
        assert!(h.series(later).restarts.iter().all(|&r| r == 0));
        h.add_restart(later - SLOT);
        assert_eq!(h.series(later).restarts.iter().sum::<u64>(), 1);
    }
}
