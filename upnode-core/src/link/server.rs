//! The server's side of one upnode connection.

use super::backlog::Backlog;
use super::calls::{Calls, Outgoing};
use super::error::{CallFailure, LinkError, SendError};
use super::event::{LinkCounters, LinkEvent};
use super::heartbeat::{remote_ping, with_ping, Heartbeat};
use super::ids::{CallId, ConnId};
use super::route::{Route, Routed};
use super::timers::{earliest, Timer, TimerTable};
use crate::config::{OutputLimits, ServerConfig};
use crate::error::LocalError;
use crate::protocol::{CallArgs, LocalFn, RemoteFn, Value};
use crate::session::{Session, Target};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Where the connection is; the handshake's deadline is [`Timer::Handshake`].
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Handshaking,
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
/// use upnode_core::config::ServerConfig;
/// use upnode_core::link::{LinkEvent, ServerConn};
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
    timers: TimerTable,
    heartbeat: Heartbeat,
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
        let mut timers = TimerTable::default();
        timers.set_after(Timer::Handshake, now, config.handshake_timeout);
        let mut c = ServerConn {
            phase: Phase::Handshaking,
            timers,
            session,
            heartbeat: Heartbeat::new(config.ping_interval, config.ping_timeout),
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

    /// Like [`poll_transmit`](Self::poll_transmit), but only output set aside full (see
    /// [`ClientLink::poll_transmit_full`](super::ClientLink::poll_transmit_full)).
    pub fn poll_transmit_full(&mut self) -> Option<Bytes> {
        self.session.poll_transmit_full()
    }

    /// Hands back output the transport has taken all of (see
    /// [`Session::reuse_output`](crate::Session::reuse_output)).
    pub fn reuse_output(&mut self, done: Bytes) {
        self.session.reuse_output(done);
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        earliest([self.timers.next(), self.calls.next_deadline()])
    }

    /// The driver's count of bytes the transport has not taken yet, as for
    /// [`ClientLink::handle_unsent`](super::ClientLink::handle_unsent): at or over the cap
    /// the connection holds the server's calls back and asks the driver to stop reading;
    /// staying there for the stall timeout ends it with [`LinkError::OutputStalled`].
    pub fn handle_unsent(&mut self, now: Instant, unsent: usize) {
        if self.phase == Phase::Closed {
            return;
        }
        if self
            .backlog
            .report_and_hold(now, unsent, &mut self.calls, &mut self.timers)
        {
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
        for (ended, reason) in self.calls.refill(&mut self.session) {
            self.events.push_back(ended.failed(reason));
        }
    }

    /// Calls waiting for an answer.
    pub fn calls_in_flight(&self) -> usize {
        self.calls.in_flight()
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
            let routed = Route {
                conn: SERVER_CONN,
                now,
                session: &mut self.session,
                heartbeat: &mut self.heartbeat,
                timers: &mut self.timers,
                calls: &mut self.calls,
                events: &mut self.events,
            }
            .route(ev);
            if routed == Routed::Remote {
                if self.phase == Phase::Handshaking {
                    self.phase = Phase::Open;
                    self.timers.stop(Timer::Handshake);
                    // Only clients that export `ping` are pinged, as upnode does.
                    if remote_ping(&self.session).is_some() {
                        self.heartbeat.start(&mut self.timers, now);
                    }
                }
                self.events
                    .push_back(LinkEvent::Remote { conn: SERVER_CONN });
            }
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for ended in self.calls.expire(Some(&mut self.session), now) {
            self.events.push_back(ended.failed(CallFailure::TimedOut));
        }
        if self.phase == Phase::Closed {
            return;
        }
        self.refill_calls();
        let Some(timer) = self.timers.first_expired(now) else {
            return;
        };
        match timer {
            Timer::Handshake => {
                let t = self.config.handshake_timeout;
                self.end(LinkError::HandshakeTimeout(t), true);
            }
            Timer::OutputStall => {
                let (unsent, after) = self.backlog.stalled(now).unwrap_or_default();
                self.end(LinkError::OutputStalled { unsent, after }, true);
            }
            Timer::PingAnswer => {
                let t = self.heartbeat.timeout();
                self.end(LinkError::PingTimeout(t), true);
            }
            Timer::PingDue => self
                .heartbeat
                .ping(&mut self.timers, &mut self.session, now),
            // A client's timers; never armed here.
            Timer::Connect | Timer::ConnectStep | Timer::Reconnect => self.timers.stop(timer),
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
        args: impl Into<CallArgs>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, SendError> {
        self.check_open()?;
        let call = Outgoing {
            target,
            args: args.into(),
            timeout,
        };
        self.calls.make(&mut self.session, now, call)
    }

    /// Calls the client with an answer callback, like
    /// [`ClientLink::call_with_reply`](super::ClientLink::call_with_reply).
    pub fn call_with_reply(
        &mut self,
        now: Instant,
        target: Target,
        args: impl Into<CallArgs>,
        reply: LocalFn,
        timeout: Option<Duration>,
    ) -> Result<CallId, SendError> {
        self.check_open()?;
        let call = Outgoing {
            target,
            args: args.into(),
            timeout,
        };
        self.calls
            .make_with_reply(&mut self.session, now, call, reply)
    }

    fn check_open(&self) -> Result<(), SendError> {
        match self.phase {
            Phase::Closed => Err(SendError::Closed),
            _ => Ok(()),
        }
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
        self.heartbeat.stop(&mut self.timers);
        self.timers.stop_all();
        for ended in self.calls.drain() {
            self.events.push_back(ended.failed(failure.clone()));
        }
        if close_transport {
            self.events
                .push_back(LinkEvent::CloseTransport { conn: SERVER_CONN });
        }
        self.events.push_back(LinkEvent::Down { reason });
        self.events.push_back(LinkEvent::Closed);
    }
}
