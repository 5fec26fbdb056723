//! Pieces shared by the client and the server link: reserved function keys, the heartbeat,
//! in-flight call tracking and the link's events and errors.

use super::CallError;
use super::LinkEvent;
use crate::error::{LocalError, RemoteError};
use crate::protocol::{Function, LocalFn, RemoteFn, Value};
use crate::session::{Session, SessionEvent, Target};
use std::collections::{BTreeSet, HashMap, VecDeque};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Whether `args` hold a function key from the reserved range.
pub(crate) fn uses_reserved_key(args: &[Value]) -> bool {
    let mut found = false;
    for a in args {
        a.for_each_function(&mut |f| {
            if let Function::Local(LocalFn(k)) = f {
                found |= k >= RESERVED_FN_BASE;
            }
        });
    }
    found
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

/// Calls that wait for an answer: resolved by the first call of any callback they carried, a
/// deadline, or the connection ending.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    calls: HashMap<CallId, (Vec<LocalFn>, Option<Instant>)>,
    by_fn: HashMap<LocalFn, CallId>,
    deadlines: BTreeSet<(Instant, CallId)>,
}

impl InFlight {
    pub fn insert(&mut self, id: CallId, fns: Vec<LocalFn>, deadline: Option<Instant>) {
        for f in &fns {
            self.by_fn.insert(*f, id);
        }
        if let Some(d) = deadline {
            self.deadlines.insert((d, id));
        }
        self.calls.insert(id, (fns, deadline));
    }

    /// A callback was called: the call it belongs to (if still waiting) is answered.
    pub fn answered_by(&mut self, f: LocalFn) -> Option<CallId> {
        let id = *self.by_fn.get(&f)?;
        self.remove(id);
        Some(id)
    }

    /// The peer freed `f` without calling it: the call it belongs to fails once none of its
    /// callbacks is left.
    pub fn released(&mut self, f: LocalFn) -> Option<CallId> {
        let id = self.by_fn.remove(&f)?;
        let left = match self.calls.get(&id) {
            Some((fns, _)) => fns
                .iter()
                .any(|x| *x != f && self.by_fn.get(x) == Some(&id)),
            None => return None,
        };
        if left {
            return None;
        }
        self.remove(id);
        Some(id)
    }

    pub fn remove(&mut self, id: CallId) -> bool {
        let Some((fns, deadline)) = self.calls.remove(&id) else {
            return false;
        };
        for f in fns {
            if self.by_fn.get(&f) == Some(&id) {
                self.by_fn.remove(&f);
            }
        }
        if let Some(d) = deadline {
            self.deadlines.remove(&(d, id));
        }
        true
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    /// Calls whose deadline is at or before `now`, in deadline order.
    pub fn expire(&mut self, now: Instant) -> Vec<CallId> {
        let mut out = Vec::new();
        while let Some(&(d, id)) = self.deadlines.first() {
            if d > now {
                break;
            }
            self.remove(id);
            out.push(id);
        }
        out
    }

    /// Every waiting call, in the order they were made; the table is left empty.
    pub fn drain(&mut self) -> Vec<CallId> {
        let mut ids: Vec<CallId> = self.calls.keys().copied().collect();
        ids.sort_unstable();
        self.calls.clear();
        self.by_fn.clear();
        self.deadlines.clear();
        ids
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }
}

/// The local functions in `args`, for in-flight tracking.
pub(crate) fn local_fns(args: &[Value]) -> Vec<LocalFn> {
    let mut out = Vec::new();
    for a in args {
        a.for_each_function(&mut |f| {
            if let Function::Local(l) = f {
                if !out.contains(&l) {
                    out.push(l);
                }
            }
        });
    }
    out
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
    in_flight: &mut InFlight,
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
            if let Some(rtt) = hb.answered(now) {
                events.push_back(LinkEvent::Ping { rtt });
            }
        }
        SessionEvent::Call { function, args } => {
            let answers = in_flight.answered_by(function);
            events.push_back(LinkEvent::Call {
                conn,
                function,
                args,
                answers,
            });
        }
        SessionEvent::Released { function } => {
            if let Some(call) = in_flight.released(function) {
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

/// Sends a call through `session`, refusing the link's reserved keys; when the arguments
/// carry functions of ours, the call is tracked until one of them is called, its timeout
/// passes, or the connection ends.
pub(crate) fn send_tracked(
    session: &mut Session,
    in_flight: &mut InFlight,
    next_call: &mut u64,
    now: Instant,
    target: Target,
    args: Vec<Value>,
    timeout: Option<Duration>,
) -> Result<Option<CallId>, CallError> {
    if uses_reserved_key(&args) {
        return Err(CallError::ReservedKey);
    }
    let fns = local_fns(&args);
    session.call(target, args).map_err(CallError::Local)?;
    if fns.is_empty() {
        return Ok(None);
    }
    let id = CallId(*next_call);
    *next_call += 1;
    in_flight.insert(id, fns, timeout.map(|t| now + t));
    Ok(Some(id))
}

/// The peer's `ping` in its interface, if it exports one.
pub(crate) fn remote_ping(session: &Session) -> Option<RemoteFn> {
    match session.remote()?.get("ping") {
        Some(Value::Function(Function::Remote(r))) => Some(*r),
        _ => None,
    }
}
