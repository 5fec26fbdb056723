//! The server's side of one upnode connection.

use super::backlog::Backlog;
use super::calls::Calls;
use super::common::{
    remote_ping, route_session_event, with_ping, CallFailure, CallId, ConnId, Heartbeat, LinkError,
    PONG_CALLBACK,
};
use super::{CallError, LinkCounters, LinkEvent};
use crate::config::{
    CallLimits, OutputLimits, SessionConfig, DEFAULT_SERVER_HANDSHAKE_TIMEOUT,
    DEFAULT_SERVER_PING_INTERVAL, DEFAULT_SERVER_PING_TIMEOUT,
};
use crate::error::LocalError;
use crate::protocol::{LocalFn, RemoteFn, Value};
use crate::session::{Session, SessionEvent, Target};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Settings of a [`ServerConn`]; defaults are named constants in [`crate::config`].
///
/// ```
/// use std::time::Duration;
/// let c = upnode_core::link::ServerConfig::default();
/// assert_eq!(c.ping_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// How often to ping a client that exports `ping`; `None` (or zero) never pings.
    pub ping_interval: Option<Duration>,
    /// How long an answer may take before the connection is ended. (upnode 0.6 meant 10 s
    /// and wrote 100 s.)
    pub ping_timeout: Duration,
    /// How long the client's `methods` may take after the connection opened.
    pub handshake_timeout: Duration,
    /// Protocol limits of the connection's session.
    pub session: SessionConfig,
    /// Bounds on the server's calls in flight to the client.
    pub calls: CallLimits,
    /// Bounds on what the connection holds for the client to read.
    pub output: OutputLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ping_interval: Some(DEFAULT_SERVER_PING_INTERVAL),
            ping_timeout: DEFAULT_SERVER_PING_TIMEOUT,
            handshake_timeout: DEFAULT_SERVER_HANDSHAKE_TIMEOUT,
            session: SessionConfig::default(),
            calls: CallLimits::default(),
            output: OutputLimits::default(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Handshaking { deadline: Instant },
    Open,
    Closed,
}

/// The server's side of one connection: exports the user's interface plus `ping`, pings the
/// client when it exports `ping`, ends connections whose client never handshakes or stops
/// answering, and tracks calls made to the client.
///
/// # Driving contract
/// Create it when a connection is accepted, then drive it like
/// [`ClientLink`](super::ClientLink): after [`new`](Self::new) and every `handle_*`,
/// [`call`](Self::call), [`release`](Self::release) or [`close`](Self::close), drain
/// [`poll_event`](Self::poll_event) and [`poll_transmit`](Self::poll_transmit), re-arm the
/// timer at [`poll_timeout`](Self::poll_timeout) and call
/// [`handle_timeout`](Self::handle_timeout) when it fires. On
/// [`LinkEvent::CloseTransport`] close the connection; after [`LinkEvent::Closed`] drop
/// this value. When the transport ends by itself, report
/// [`handle_transport_closed`](Self::handle_transport_closed).
///
/// ```
/// use std::time::Instant;
/// use upnode_core::link::{LinkEvent, ServerConfig, ServerConn};
/// use upnode_core::{LocalFn, Value};
///
/// let t0 = Instant::now();
/// let exports = Value::object([("time", Value::from(LocalFn(1)))]);
/// let mut conn = ServerConn::new(ServerConfig::default(), exports, t0);
/// let hello = conn.poll_transmit().unwrap();
/// assert!(hello.starts_with(br#"{"method":"methods","arguments":[{"time":"[Function]","ping":"[Function]"}]"#));
/// conn.handle_input(t0, b"{\"method\":\"time\",\"arguments\":[]}\n");
/// assert!(matches!(conn.poll_event(), Some(LinkEvent::Call { function: LocalFn(1), .. })));
/// ```
#[derive(Debug)]
pub struct ServerConn {
    config: ServerConfig,
    session: Session,
    phase: Phase,
    hb: Heartbeat,
    calls: Calls,
    backlog: Backlog,
    events: VecDeque<LinkEvent>,
}

/// The one connection id a [`ServerConn`] reports (it serves exactly one connection).
const SERVER_CONN: ConnId = ConnId(0);

impl ServerConn {
    /// Starts serving a freshly accepted connection with `exports` (the link adds `ping`
    /// when absent); our `methods` is queued at once.
    ///
    /// If `exports` breaks a session limit, the connection is reported closed at once with
    /// the error.
    pub fn new(config: ServerConfig, exports: Value, now: Instant) -> ServerConn {
        let (session, err) = match Session::new(with_ping(exports), config.session.clone()) {
            Ok(s) => (s, None),
            Err(e) => (
                Session::new(Value::Null, config.session.clone()).expect("empty exports fit"),
                Some(e),
            ),
        };
        let mut c = ServerConn {
            phase: Phase::Handshaking {
                deadline: now + config.handshake_timeout,
            },
            session,
            hb: Heartbeat::default(),
            calls: Calls::new(config.calls),
            backlog: Backlog::new(config.output),
            config,
            events: VecDeque::new(),
        };
        if let Some(e) = err {
            c.end(LinkError::Local(e), true);
        }
        c
    }

    /// The client's interface, once it arrived.
    pub fn remote(&self) -> Option<&Value> {
        self.session.remote()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// Bytes to write to the connection.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.session.poll_transmit()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Handshaking { deadline } => Some(deadline),
            Phase::Open => self.hb.next_deadline(),
            Phase::Closed => return None,
        };
        [phase, self.calls.next_deadline(), self.backlog.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The driver's count of bytes the transport has not taken yet, as for
    /// [`ClientLink::handle_unsent`](super::ClientLink::handle_unsent): at or over the cap
    /// the connection holds the server's calls back and asks the driver to stop reading;
    /// staying there for the stall timeout ends it with [`LinkError::OutputStalled`].
    pub fn handle_unsent(&mut self, now: Instant, unsent: usize) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.backlog.report_and_hold(now, unsent, &mut self.calls) {
            self.refill_calls();
        }
    }

    /// The bounds on the connection's output (for the driver's close flush).
    pub fn output_limits(&self) -> OutputLimits {
        self.config.output
    }

    /// What the connection holds in memory for the peer: a partial input line and unsent
    /// output (as last reported), in bytes.
    pub fn memory_held(&self) -> usize {
        self.session.held_input() + self.backlog.unsent()
    }

    /// Ends the connection for `reason` (a local decision, such as a server-wide budget).
    pub fn close_for(&mut self, _now: Instant, reason: LinkError) {
        if self.phase != Phase::Closed {
            self.end(reason, true);
        }
    }

    /// Whether the driver should stop reading the client: it is not reading what we send.
    pub fn is_input_paused(&self) -> bool {
        self.phase != Phase::Closed && self.backlog.is_full()
    }

    /// Bytes received from the client.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        let result = self.session.handle_input(data);
        // Lines before a bad one were whole and valid: report what they did first, so the
        // outcome does not depend on how the bytes were chunked.
        self.pump_session(now);
        if let Err(e) = result {
            self.end(LinkError::Remote(e), true);
        } else {
            self.refill_calls();
        }
    }

    /// Sends the calls that waited for a slot, now that answers or timeouts freed some.
    fn refill_calls(&mut self) {
        for (call, reason) in self.calls.refill(&mut self.session) {
            self.events
                .push_back(LinkEvent::CallFailed { call, reason });
        }
    }

    /// What the connection holds now.
    pub fn counters(&self) -> LinkCounters {
        LinkCounters {
            local_callbacks: self.session.exported_callbacks(),
            remote_callbacks: self.session.held_callbacks(),
            calls_in_flight: self.calls.in_flight(),
            calls_waiting: self.calls.waiting(),
            transactions_queued: 0,
            unsent_bytes: self.backlog.unsent(),
        }
    }

    fn pump_session(&mut self, now: Instant) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                SessionEvent::Remote => {
                    if matches!(self.phase, Phase::Handshaking { .. }) {
                        self.phase = Phase::Open;
                        // Only clients that export `ping` are pinged, as upnode does.
                        if remote_ping(&self.session).is_some() {
                            self.hb = Heartbeat::start(self.config.ping_interval, now);
                        }
                    }
                    self.events
                        .push_back(LinkEvent::Remote { conn: SERVER_CONN });
                }
                ev => {
                    route_session_event(
                        ev,
                        SERVER_CONN,
                        now,
                        &mut self.session,
                        &mut self.hb,
                        &mut self.calls,
                        &mut self.events,
                    );
                }
            }
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for call in self.calls.expire(Some(&mut self.session), now) {
            self.events.push_back(LinkEvent::CallFailed {
                call,
                reason: CallFailure::TimedOut,
            });
        }
        if let Some((unsent, after)) = self.backlog.stalled(now) {
            if self.phase != Phase::Closed {
                self.end(LinkError::OutputStalled { unsent, after }, true);
                return;
            }
        }
        if self.phase != Phase::Closed {
            self.refill_calls();
        }
        match self.phase {
            Phase::Handshaking { deadline } if deadline <= now => {
                self.end(
                    LinkError::HandshakeTimeout(self.config.handshake_timeout),
                    true,
                );
            }
            Phase::Open => {
                if let Some((_, deadline)) = self.hb.outstanding {
                    if deadline <= now {
                        self.end(LinkError::PingTimeout(self.config.ping_timeout), true);
                        return;
                    }
                }
                if let (Some(due), Some(interval)) = (self.hb.due, self.config.ping_interval) {
                    if due <= now {
                        self.hb.due = Some(now + interval);
                        if self.hb.outstanding.is_none() {
                            if let Some(ping) = remote_ping(&self.session) {
                                let pong = vec![Value::from(PONG_CALLBACK)];
                                if self.session.call(Target::Callback(ping), pong).is_ok() {
                                    self.hb.outstanding =
                                        Some((now, now + self.config.ping_timeout));
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The connection ended by itself (end of stream or an IO error).
    pub fn handle_transport_closed(&mut self, _now: Instant, detail: Option<String>) {
        if self.phase != Phase::Closed {
            self.end(LinkError::TransportClosed { detail }, false);
        }
    }

    /// Calls the client; tracked and limited like
    /// [`ClientLink::call`](super::ClientLink::call).
    pub fn call(
        &mut self,
        now: Instant,
        target: Target,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, CallError> {
        self.send_call(now, target, args, None, timeout)
    }

    /// Calls the client with an answer callback, like
    /// [`ClientLink::call_with_reply`](super::ClientLink::call_with_reply).
    pub fn call_with_reply(
        &mut self,
        now: Instant,
        target: Target,
        args: Vec<Value>,
        reply: LocalFn,
        timeout: Option<Duration>,
    ) -> Result<CallId, CallError> {
        self.send_call(now, target, args, Some(reply), timeout)
            .map(|id| id.expect("a call with a reply is tracked"))
    }

    fn send_call(
        &mut self,
        now: Instant,
        target: Target,
        args: Vec<Value>,
        reply: Option<LocalFn>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, CallError> {
        if self.phase == Phase::Closed {
            return Err(CallError::Closed);
        }
        self.calls
            .make(&mut self.session, now, target, args, reply, timeout)
    }

    /// Gives back one reference on a client callback.
    pub fn release(&mut self, f: RemoteFn) {
        self.session.release(f);
    }

    /// Ends the connection (graceful shutdown of one connection).
    pub fn close(&mut self, _now: Instant) {
        if self.phase != Phase::Closed {
            self.end(LinkError::Local(LocalError::Closed), true);
        }
    }

    fn end(&mut self, reason: LinkError, close_transport: bool) {
        let failure = if matches!(reason, LinkError::Local(LocalError::Closed)) {
            CallFailure::Closed
        } else {
            CallFailure::LinkDown
        };
        self.phase = Phase::Closed;
        self.session.close();
        self.hb = Heartbeat::default();
        for call in self.calls.drain() {
            self.events.push_back(LinkEvent::CallFailed {
                call,
                reason: failure.clone(),
            });
        }
        if close_transport {
            self.events
                .push_back(LinkEvent::CloseTransport { conn: SERVER_CONN });
        }
        self.events.push_back(LinkEvent::Down { reason });
        self.events.push_back(LinkEvent::Closed);
    }
}
