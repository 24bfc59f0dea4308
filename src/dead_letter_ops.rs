//! What the dead-letter console needs beside the transport: the pace of bulk
//! replays, the parked-message warning threshold, and the count of operator
//! actions (`blog_operator_actions_total{action}`: on the parking lot, and the
//! workers paused and resumed by hand), each logged as well.

use prometheus::{IntCounterVec, Opts, Registry};

use crate::transport::replay_throttle::ReplayThrottle;

/// Shared by every HTTP worker of the process.
#[derive(Clone)]
pub struct DeadLetterOps {
    /// One pace for every bulk replay of the process (`BLOG_REPLAY_RATE`).
    pub throttle: ReplayThrottle,
    /// `BLOG_PARKED_WARN`; 0 when off. Shown by the console beside the count.
    pub parked_warn: u64,
    actions: IntCounterVec,
}

/// The operator actions that change the parking lot or steer a worker, as counted and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorAction {
    ReplayOne,
    DeleteOne,
    ReplayBulk,
    DeleteBulk,
    Pause,
    Resume,
}

impl OperatorAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorAction::ReplayOne => "replay",
            OperatorAction::DeleteOne => "delete",
            OperatorAction::ReplayBulk => "bulk_replay",
            OperatorAction::DeleteBulk => "bulk_delete",
            OperatorAction::Pause => "pause",
            OperatorAction::Resume => "resume",
        }
    }
}

impl DeadLetterOps {
    pub fn new(registry: &Registry, throttle: ReplayThrottle, parked_warn: u64) -> prometheus::Result<Self> {
        let opts = Opts::new("blog_operator_actions_total", "Operator actions (parking lot, worker pause and resume), by kind");
        let actions = IntCounterVec::new(opts, &["action"])?;
        registry.register(Box::new(actions.clone()))?;
        use OperatorAction::*;
        for action in [ReplayOne, DeleteOne, ReplayBulk, DeleteBulk, Pause, Resume] {
            actions.with_label_values(&[action.as_str()]);
        }
        Ok(Self { throttle, parked_warn, actions })
    }

    /// Counts and logs an action that took `messages` messages. The log names the
    /// filter's fields (or the worker), never a body or the reason text (it may
    /// quote customer data).
    pub fn record(&self, action: OperatorAction, messages: u64, scope: &str) {
        self.actions.with_label_values(&[action.as_str()]).inc();
        tracing::info!(action = action.as_str(), messages, scope, "operator action");
    }
}
