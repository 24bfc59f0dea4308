//! What the broker (or our side of a channel) said, as an error a
//! [`TransportError`](blog_actors::delivery::TransportError) keeps as its source.

/// A close or refusal the broker sent: its reply code and text.
#[derive(Debug, thiserror::Error)]
#[error("{code} {text}")]
pub(super) struct BrokerReply {
    pub code: u16,
    pub text: String,
}

/// A reason known only as text: why a publisher channel stopped confirming,
/// or a value the broker would refuse.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Said(pub String);

/// Why a channel call failed: the broker's reply when the channel closed with
/// one (it says more), else the client library's error.
#[derive(Debug, thiserror::Error)]
pub(super) enum ChannelFailure {
    #[error(transparent)]
    Reply(BrokerReply),
    #[error(transparent)]
    Client(amqprs::error::Error),
}

pub(super) fn reply_or(reply: Option<(u16, String)>, error: amqprs::error::Error) -> ChannelFailure {
    match reply {
        Some((code, text)) => ChannelFailure::Reply(BrokerReply { code, text }),
        None => ChannelFailure::Client(error),
    }
}
