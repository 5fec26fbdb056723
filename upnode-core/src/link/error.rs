//! What goes wrong in a link: [`LinkError`] for the link and its connections (whose fault
//! it is: [`LinkError::is_remote`]), [`CallFailure`] for a tracked call that resolved
//! without an answer, [`SendError`] for a call that could not be sent, [`TransactError`] for
//! a transaction that could not be queued.

use crate::error::{LocalError, RemoteError};
use std::time::Duration;

/// Why a call resolved without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallFailure {
    /// The connection it was made on went down before any of its callbacks was called. The
    /// peer may or may not have run it.
    LinkDown,
    /// Its time limit passed first.
    TimedOut,
    /// The peer freed (culled) every callback of the call without calling any: no answer
    /// can come.
    Dropped,
    /// The link was closed.
    Closed,
    /// It waited for a slot (see [`CallLimits`](crate::config::CallLimits)) and, when one
    /// came, the session refused to send it (e.g. a peer callback in its arguments had
    /// been released meanwhile). Nothing was sent.
    Refused(LocalError),
}

/// A problem the link reports, with whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The peer broke the protocol or named something missing ([`RemoteError::is_fatal`] tells
    /// whether the connection was ended for it).
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The peer's interface has no `ping`, so no heartbeat runs on this connection.
    #[error("the peer exports no ping method; heartbeat disabled for this connection")]
    NoPingMethod,
    /// The transport could not be opened.
    #[error("connect failed: {detail}")]
    ConnectFailed {
        /// What the driver reported.
        detail: String,
    },
    /// Opening the transport took longer than the connect timeout.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The peer's `methods` did not arrive within the handshake timeout.
    #[error("no methods from the peer within {0:?}")]
    HandshakeTimeout(Duration),
    /// The connect step did not signal up within its timeout.
    #[error("the connect step did not signal up within {0:?}")]
    ConnectStepTimeout(Duration),
    /// The connect step reported failure.
    #[error("the connect step failed: {detail}")]
    ConnectStepFailed {
        /// What the driver reported.
        detail: String,
    },
    /// No answer to a ping within the timeout: the link was declared dead.
    #[error("no answer to ping within {0:?}")]
    PingTimeout(Duration),
    /// The transport ended.
    #[error("transport closed{}", .detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    TransportClosed {
        /// What the driver reported, if anything.
        detail: Option<String>,
    },
    /// Reconnect attempts are used up; the link is closed.
    #[error("gave up after {attempts} connection attempts")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
    },
    /// Something we did failed locally.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The server's memory budget was spent and this connection held the most of it
    /// (`held` bytes in a partial input line and unsent output), so it was ended.
    #[error("the server's memory budget of {budget} bytes is spent; this connection held {held}")]
    OverBudget {
        /// What the connection held.
        held: usize,
        /// The server's budget.
        budget: usize,
    },
    /// The peer did not read: `unsent` bytes stayed waiting for it, at or over the cap, for
    /// `after`, so the connection was ended ([`OutputLimits`](crate::config::OutputLimits)).
    #[error("the peer stopped reading: {unsent} bytes unsent for {after:?}")]
    OutputStalled {
        /// Bytes waiting when the connection was ended.
        unsent: usize,
        /// How long they had been at or over the cap.
        after: Duration,
    },
}

impl LinkError {
    /// Whether the peer's behaviour caused it (as opposed to ours, a timer or the transport).
    pub fn is_remote(&self) -> bool {
        matches!(self, LinkError::Remote(_) | LinkError::NoPingMethod)
    }
}

/// Why a transaction could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactError {
    /// The queue holds its cap already.
    #[error("transaction queue full ({cap} waiting)")]
    QueueFull {
        /// The cap in force.
        cap: usize,
    },
    /// The link is closed.
    #[error("the link is closed")]
    Closed,
}

/// Why a call could not be sent; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// There is no live connection with that id (the link is down or reconnected since).
    #[error("the link is not connected on that connection")]
    NotConnected,
    /// The link is closed.
    #[error("the link is closed")]
    Closed,
    /// A function key in the arguments is from the link's reserved range.
    #[error("function keys at or above RESERVED_FN_BASE are the link's own")]
    ReservedKey,
    /// The connection's output is over its cap (the peer is not reading) and the link is set
    /// to fail calls rather than hold them ([`WhenFull::Fail`](crate::config::WhenFull::Fail)).
    #[error("the peer is not reading: this connection's output is over its cap")]
    OutputFull,
    /// `limit` calls already wait for an answer on this connection and the link is set to
    /// fail further calls ([`WhenFull::Fail`](crate::config::WhenFull::Fail)).
    #[error("{limit} calls already wait for an answer on this connection")]
    TooManyInFlight {
        /// The limit in force.
        limit: usize,
    },
    /// `limit` calls already wait for a slot on this connection
    /// ([`CallLimits::max_waiting`](crate::config::CallLimits::max_waiting)).
    #[error("{limit} calls already wait for a slot on this connection")]
    TooManyWaiting {
        /// The limit in force.
        limit: usize,
    },
    /// The session refused it.
    #[error(transparent)]
    Local(LocalError),
}
