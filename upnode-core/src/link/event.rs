//! What a link reports to its driver ([`LinkEvent`]) and what it holds ([`LinkCounters`]).

use super::error::{CallFailure, LinkError};
use super::ids::{CallId, ConnId, TxId};
use crate::protocol::{LocalFn, Value};
use std::time::Duration;

/// What a link reports to its driver.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// Open a transport and report it with this id.
    OpenTransport {
        /// The id to report it with.
        conn: ConnId,
        /// Attempt number since the backoff last started afresh (1 for the first).
        attempt: u32,
    },
    /// Close this transport.
    CloseTransport {
        /// Which one.
        conn: ConnId,
    },
    /// The peer's interface arrived (read it with `remote()`); a client with a connect step
    /// runs it now.
    Remote {
        /// On which connection.
        conn: ConnId,
    },
    /// The link is up; transactions queued before were reported ready just before this.
    Up {
        /// On which connection.
        conn: ConnId,
    },
    /// The link that was up went down.
    Down {
        /// Why.
        reason: LinkError,
    },
    /// The next attempt starts after `delay`.
    Reconnecting {
        /// Which reconnect this is, counted from 1 since the backoff last started afresh
        /// (the first connection of a client is not a reconnect: its first reconnect is 1).
        attempt: u32,
        /// How long until then.
        delay: Duration,
    },
    /// A transaction may run now, with the link's up value on `conn`.
    TransactionReady {
        /// Which.
        tx: TxId,
        /// The connection to make its calls on.
        conn: ConnId,
    },
    /// A transaction's wait timed out (upnode's `fn()` with no arguments).
    TransactionTimedOut {
        /// Which.
        tx: TxId,
    },
    /// A transaction will never run: the link was closed.
    TransactionClosed {
        /// Which.
        tx: TxId,
    },
    /// The peer called one of our functions. Every `RemoteFn` inside `args` holds a reference
    /// on `conn`: give it back with `release` when done.
    Call {
        /// On which connection.
        conn: ConnId,
        /// Which function.
        function: LocalFn,
        /// The arguments.
        args: Vec<Value>,
        /// The tracked call this answers, when it is the first call of one of its callbacks.
        answers: Option<CallId>,
    },
    /// A tracked call resolved without an answer.
    CallFailed {
        /// Which.
        call: CallId,
        /// The reply callback the call was made with
        /// ([`ClientLink::call_with_reply`](super::ClientLink::call_with_reply)), if any: the
        /// driver can find the waiting caller by it without keeping a table of its own.
        reply: Option<LocalFn>,
        /// Why.
        reason: CallFailure,
    },
    /// The peer freed one of our functions (it sent `cull`).
    Released {
        /// On which connection.
        conn: ConnId,
        /// Which function.
        function: LocalFn,
    },
    /// A heartbeat was answered.
    Ping {
        /// Round trip time.
        rtt: Duration,
    },
    /// Something went wrong; see [`LinkError::is_remote`] for whose fault.
    Error(LinkError),
    /// Closed for good; nothing more will be reported.
    Closed,
}

/// What one connection of a link holds right now: read it to see a leak without a
/// debugger. An idle connection holds only its exported methods (and the link's `ping`) and
/// the peer's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LinkCounters {
    /// Our functions the peer may call (wire ids handed out and not forgotten), exported
    /// methods included.
    pub local_callbacks: usize,
    /// The peer's callbacks we hold, its interface's methods included.
    pub remote_callbacks: usize,
    /// Our calls sent and waiting for an answer.
    pub calls_in_flight: usize,
    /// Our calls waiting for an in-flight slot, not sent yet.
    pub calls_waiting: usize,
    /// Transactions waiting for the link to be up (always 0 for a server connection).
    pub transactions_queued: usize,
    /// Bytes written for the peer that the transport had not taken at the driver's last
    /// report.
    pub unsent_bytes: usize,
}
