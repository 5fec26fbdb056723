//! Pieces shared by the client and the server link: reserved function keys, the heartbeat,
//! in-flight call tracking and the link's events and errors.

use super::calls::Calls;
use super::LinkEvent;
use crate::error::{LocalError, RemoteError};
use crate::protocol::{Function, LocalFn, RemoteFn, Value};
use crate::session::{Session, SessionEvent};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Function keys from here up are the link's own (its exported `ping`, its ping callbacks).
/// Keys a driver chooses must stay below.
pub const RESERVED_FN_BASE: u64 = u64::MAX - 255;

/// The `ping` the link exports (answers the peer's heartbeat).
pub(crate) const PING_EXPORT: LocalFn = LocalFn(u64::MAX);
/// The callback the link passes with its own pings.
pub(crate) const PONG_CALLBACK: LocalFn = LocalFn(u64::MAX - 1);

/// Which transport (connection attempt) an event belongs to. Events for a transport that is no
/// longer current are ignored, so a driver may report late without harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// One outgoing call that waits for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

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

/// Adds the link's own `ping` to an exported interface when the user's has none, after the
/// user's keys (as upnode does).
pub(crate) fn with_ping(exports: Value) -> Value {
    let mut m = match exports {
        Value::Object(m) => m,
        _ => crate::protocol::Map::new(),
    };
    if !m.contains_key("ping") {
        m.insert("ping".to_owned(), Value::from(PING_EXPORT));
    }
    Value::Object(m)
}

/// Answers a call to our exported `ping`: calls the first argument back with nothing, then
/// gives back every callback reference the call carried.
pub(crate) fn answer_ping(session: &mut Session, args: &[Value]) {
    if let Some(Value::Function(Function::Remote(cb))) = args.first() {
        let _ = session.call(*cb, Vec::new());
    }
    for a in args {
        session.release_value(a);
    }
}

/// Heartbeat state of one connection.
#[derive(Debug, Default)]
pub(crate) struct Heartbeat {
    /// When the next ping goes out.
    pub due: Option<Instant>,
    /// When the outstanding ping was sent, and by when its answer must come.
    pub outstanding: Option<(Instant, Instant)>,
}

impl Heartbeat {
    /// A zero interval disables the heartbeat, as upnode's `ping: 0` does.
    pub fn start(interval: Option<Duration>, now: Instant) -> Heartbeat {
        Heartbeat {
            due: interval.filter(|i| !i.is_zero()).map(|i| now + i),
            outstanding: None,
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let out = self.outstanding.map(|(_, d)| d);
        match (self.due, out) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The answer arrived: the round trip time.
    pub fn answered(&mut self, now: Instant) -> Option<Duration> {
        self.outstanding
            .take()
            .map(|(sent, _)| now.saturating_duration_since(sent))
    }
}

/// Routes one session event other than `Remote` into link events, the same way on both
/// sides: answers the peer's ping, completes our own, reports calls to our functions (with
/// the tracked call each answers) and releases (failing a call whose every callback the
/// peer freed unanswered). Returns `true` for `Remote`, which each side handles itself.
pub(crate) fn route_session_event(
    ev: SessionEvent,
    conn: ConnId,
    now: Instant,
    session: &mut Session,
    hb: &mut Heartbeat,
    calls: &mut Calls,
    events: &mut VecDeque<LinkEvent>,
) -> bool {
    match ev {
        SessionEvent::Remote => return true,
        SessionEvent::Call { function, args } if function == PING_EXPORT => {
            answer_ping(session, &args);
        }
        SessionEvent::Call { function, args } if function == PONG_CALLBACK => {
            for a in &args {
                session.release_value(a);
            }
            // Each ping gets a fresh callback id: a Node peer with `weak` culls the id of an
            // earlier ping whenever its garbage collector frees it, and a reused id would
            // then be gone when the next ping's answer comes.
            session.forget(PONG_CALLBACK);
            if let Some(rtt) = hb.answered(now) {
                events.push_back(LinkEvent::Ping { rtt });
            }
        }
        SessionEvent::Call { function, args } => {
            let answers = calls.answered_by(session, function);
            events.push_back(LinkEvent::Call {
                conn,
                function,
                args,
                answers,
            });
        }
        SessionEvent::Released { function } => {
            if let Some(call) = calls.released(function) {
                events.push_back(LinkEvent::CallFailed {
                    call,
                    reason: CallFailure::Dropped,
                });
            }
            if function.0 < RESERVED_FN_BASE {
                events.push_back(LinkEvent::Released { conn, function });
            }
        }
        SessionEvent::Error(e) => events.push_back(LinkEvent::Error(e.into())),
    }
    false
}

/// The peer's `ping` in its interface, if it exports one.
pub(crate) fn remote_ping(session: &Session) -> Option<RemoteFn> {
    match session.remote()?.get("ping") {
        Some(Value::Function(Function::Remote(r))) => Some(*r),
        _ => None,
    }
}
