//! The client link: connect, handshake, connect step, up, down, back off, reconnect; with
//! heartbeats, a transactional queue and in-flight call tracking.

use super::backlog::Backlog;
use super::backoff::{BackoffState, PolicyError, ReconnectPolicy};
use super::calls::Calls;
use super::common::{
    remote_ping, route_session_event, with_ping, CallFailure, CallId, ConnId, Heartbeat, LinkError,
    PONG_CALLBACK,
};
use super::queue::{TxId as QueueId, TxQueue};
use super::{CallError, LinkCounters, LinkEvent, TransactError, TxId};
use crate::config::{
    CallLimits, OutputLimits, SessionConfig, DEFAULT_CONNECT_STEP_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, DEFAULT_QUEUE_CAP,
    DEFAULT_STABLE_AFTER,
};
use crate::protocol::{LocalFn, RemoteFn, Value};
use crate::session::{Session, Target};
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Settings of a [`ClientLink`]. Every default is a named constant in [`crate::config`].
///
/// ```
/// use std::time::Duration;
/// let mut c = upnode_core::link::ClientConfig::default();
/// assert_eq!(c.ping_interval, Some(Duration::from_secs(10)));
/// c.ping_interval = None; // no heartbeat
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// How often to ping the server once its `methods` arrived; `None` (or zero) disables
    /// (upnode's `ping: 0`).
    pub ping_interval: Option<Duration>,
    /// How long an answer to a ping may take before the link is declared dead.
    pub ping_timeout: Duration,
    /// How long opening the transport may take, at most: see
    /// [`liveness_bound`](Self::liveness_bound).
    pub connect_timeout: Duration,
    /// How long the server's `methods` may take after the transport opened, at most: see
    /// [`liveness_bound`](Self::liveness_bound).
    pub handshake_timeout: Duration,
    /// Whether the driver runs a connect step (upnode's connect callback) on
    /// [`LinkEvent::Remote`] and then calls [`ClientLink::signal_up`]. When `false` the link
    /// goes up with the server's interface itself as soon as it arrives.
    pub connect_step: bool,
    /// How long the connect step may take to signal up; `None` waits as long as the
    /// transport lives (upnode's behaviour).
    pub connect_step_timeout: Option<Duration>,
    /// Delays between attempts.
    pub reconnect: ReconnectPolicy,
    /// How long the link must have been proven alive (by traffic from the server) after
    /// going up before a drop starts the backoff afresh. A server that goes silent right
    /// after the handshake therefore never resets the backoff, however long the heartbeat
    /// takes to notice.
    pub stable_after: Duration,
    /// Most transactions waiting at once.
    pub queue_cap: usize,
    /// Seed of the jitter's random numbers.
    pub seed: u64,
    /// Protocol limits of each connection's session.
    pub session: SessionConfig,
    /// Bounds on our calls in flight on each connection.
    pub calls: CallLimits,
    /// Bounds on what each connection holds for the server to read.
    pub output: OutputLimits,
}

impl ClientConfig {
    /// How long a link may go without hearing from the server when the heartbeat runs:
    /// `ping_interval + ping_timeout`, or `None` with the heartbeat off.
    ///
    /// A connection attempt is held to the same bound: opening the transport and the
    /// server's `methods` each take at most the smaller of their own timeout and this. A
    /// user who shortens the heartbeat to find a dead link within a second also gets a
    /// reconnect attempt that gives up within a second (through a healed partition, the
    /// link recovers in about that time, not in the 10 s handshake default).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut c = upnode_core::link::ClientConfig::default();
    /// assert_eq!(c.liveness_bound(), Some(Duration::from_secs(15)));
    /// assert_eq!(c.effective_handshake_timeout(), Duration::from_secs(10));
    /// c.ping_interval = Some(Duration::from_millis(1000));
    /// c.ping_timeout = Duration::from_millis(300);
    /// assert_eq!(c.effective_handshake_timeout(), Duration::from_millis(1300));
    /// ```
    pub fn liveness_bound(&self) -> Option<Duration> {
        self.ping_interval
            .filter(|i| !i.is_zero())
            .map(|i| i.saturating_add(self.ping_timeout))
    }

    /// The handshake timeout in force: `handshake_timeout`, capped by
    /// [`liveness_bound`](Self::liveness_bound).
    pub fn effective_handshake_timeout(&self) -> Duration {
        self.liveness_bound()
            .map_or(self.handshake_timeout, |b| b.min(self.handshake_timeout))
    }

    /// The connect timeout in force: `connect_timeout`, capped by
    /// [`liveness_bound`](Self::liveness_bound).
    pub fn effective_connect_timeout(&self) -> Duration {
        self.liveness_bound()
            .map_or(self.connect_timeout, |b| b.min(self.connect_timeout))
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            connect_step: false,
            connect_step_timeout: Some(DEFAULT_CONNECT_STEP_TIMEOUT),
            reconnect: ReconnectPolicy::default(),
            stable_after: DEFAULT_STABLE_AFTER,
            queue_cap: DEFAULT_QUEUE_CAP,
            seed: 0,
            session: SessionConfig::default(),
            calls: CallLimits::default(),
            output: OutputLimits::default(),
        }
    }
}

/// Where a [`ClientLink`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Waiting for the driver to open the transport.
    Connecting,
    /// Transport open, waiting for the server's `methods`.
    Handshaking,
    /// Interface received; the connect step runs until it signals up.
    Authenticating,
    /// Up: transactions run at once.
    Up,
    /// Down, waiting for the next attempt.
    Waiting,
    /// Closed for good.
    Closed,
}

#[derive(Debug)]
struct Conn {
    id: ConnId,
    session: Session,
    hb: Heartbeat,
    /// When bytes last came from the server.
    last_input: Instant,
    /// What the transport has not taken yet.
    backlog: Backlog,
}

#[derive(Debug)]
enum State {
    Connecting {
        id: ConnId,
        deadline: Instant,
    },
    Handshaking {
        conn: Conn,
        deadline: Instant,
    },
    Authenticating {
        conn: Conn,
        deadline: Option<Instant>,
    },
    Up {
        conn: Conn,
        since: Instant,
    },
    Waiting {
        until: Instant,
    },
    Closed,
}

impl State {
    /// The connection of the states that hold one.
    fn conn_mut(&mut self) -> Option<&mut Conn> {
        match self {
            State::Handshaking { conn, .. }
            | State::Authenticating { conn, .. }
            | State::Up { conn, .. } => Some(conn),
            _ => None,
        }
    }
}

/// The client side of an upnode link, as a pure state machine.
///
/// # Driving contract
/// - After [`new`](Self::new) and after every `handle_*` call, [`transact`](Self::transact),
///   [`call`](Self::call), [`signal_up`](Self::signal_up), [`release`](Self::release) or
///   [`close`](Self::close): drain [`poll_event`](Self::poll_event) and
///   [`poll_transmit`](Self::poll_transmit) until both return `None`, then (re)arm one timer
///   at [`poll_timeout`](Self::poll_timeout).
/// - [`LinkEvent::OpenTransport`]: open a transport (TCP, TLS, anything) and report
///   [`handle_connected`](Self::handle_connected) or
///   [`handle_connect_failed`](Self::handle_connect_failed) with the same [`ConnId`].
///   Then feed every received chunk to [`handle_input`](Self::handle_input); when the
///   transport ends, report [`handle_transport_closed`](Self::handle_transport_closed).
/// - [`LinkEvent::CloseTransport`]: close that transport; report nothing more for it.
/// - When the timer fires, call [`handle_timeout`](Self::handle_timeout) (early or repeated
///   calls are harmless).
/// - `now` must never go backwards.
///
/// Reports for a transport that is no longer current are ignored.
///
/// ```
/// use std::time::{Duration, Instant};
/// use upnode_core::link::{ClientConfig, ClientLink, LinkEvent, LinkState};
/// use upnode_core::Value;
///
/// let t0 = Instant::now(); // the driver's clock, not the core's
/// let mut link = ClientLink::new(ClientConfig::default(), Value::Null, t0).unwrap();
/// let Some(LinkEvent::OpenTransport { conn, .. }) = link.poll_event() else { panic!() };
/// link.handle_connected(conn, t0);
/// // Our `methods` (with the link's own `ping`) is ready to write.
/// let (_, hello) = link.poll_transmit().unwrap();
/// assert!(hello.starts_with(b"{\"method\":\"methods\""));
/// // A transaction made now waits for the link.
/// let tx = link.transact(t0, Some(Duration::from_secs(5)), false).unwrap();
/// link.handle_input(conn, t0, b"{\"method\":\"methods\",\"arguments\":[{\"ping\":\"[Function]\"}],\"callbacks\":{\"0\":[\"0\",\"ping\"]},\"links\":[]}\n");
/// assert!(matches!(link.poll_event(), Some(LinkEvent::Remote { .. })));
/// assert_eq!(link.poll_event(), Some(LinkEvent::TransactionReady { tx, conn }));
/// assert_eq!(link.poll_event(), Some(LinkEvent::Up { conn }));
/// assert_eq!(link.state(), LinkState::Up);
/// ```
#[derive(Debug)]
pub struct ClientLink {
    config: ClientConfig,
    exports: Value,
    state: State,
    next_conn: u64,
    attempt: u32,
    backoff: BackoffState,
    queue: TxQueue<TxId>,
    /// Where each waiting transaction sits in the queue (for `cancel`).
    waiting: HashMap<TxId, QueueId>,
    next_tx: u64,
    /// Transactions with retry that ran and are not finished yet.
    running: BTreeSet<TxId>,
    up_value: Option<Value>,
    calls: Calls,
    events: VecDeque<LinkEvent>,
}

impl ClientLink {
    /// A link that will export `exports` (an object; the link adds `ping` when absent) on
    /// every connection. It asks for its first transport at once.
    ///
    /// Fails only when the reconnect policy is invalid.
    pub fn new(
        config: ClientConfig,
        exports: Value,
        now: Instant,
    ) -> Result<ClientLink, PolicyError> {
        let backoff = BackoffState::new(config.reconnect, config.seed)?;
        let queue = TxQueue::with_capacity_limit(config.queue_cap);
        let calls = Calls::new(config.calls);
        let mut link = ClientLink {
            exports: with_ping(exports),
            config,
            state: State::Closed,
            next_conn: 0,
            attempt: 0,
            backoff,
            queue,
            waiting: HashMap::new(),
            next_tx: 0,
            running: BTreeSet::new(),
            up_value: None,
            calls,
            events: VecDeque::new(),
        };
        link.open(now);
        Ok(link)
    }

    /// Where the link is.
    pub fn state(&self) -> LinkState {
        match self.state {
            State::Connecting { .. } => LinkState::Connecting,
            State::Handshaking { .. } => LinkState::Handshaking,
            State::Authenticating { .. } => LinkState::Authenticating,
            State::Up { .. } => LinkState::Up,
            State::Waiting { .. } => LinkState::Waiting,
            State::Closed => LinkState::Closed,
        }
    }

    /// The current transport, if one is open or opening.
    pub fn conn(&self) -> Option<ConnId> {
        match &self.state {
            State::Connecting { id, .. } => Some(*id),
            State::Handshaking { conn, .. }
            | State::Authenticating { conn, .. }
            | State::Up { conn, .. } => Some(conn.id),
            _ => None,
        }
    }

    fn conn_mut(&mut self) -> Option<&mut Conn> {
        self.state.conn_mut()
    }

    fn conn_ref(&self) -> Option<&Conn> {
        match &self.state {
            State::Handshaking { conn, .. }
            | State::Authenticating { conn, .. }
            | State::Up { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// The server's interface on the current connection, once it arrived.
    pub fn remote(&self) -> Option<&Value> {
        self.conn_ref()?.session.remote()
    }

    /// What transactions receive while up: the value given to
    /// [`signal_up`](Self::signal_up), or the server's interface.
    pub fn up_value(&self) -> Option<&Value> {
        match self.state {
            State::Up { .. } => self.up_value.as_ref(),
            _ => None,
        }
    }

    /// Transactions waiting for the link.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Calls waiting for an answer.
    pub fn calls_in_flight(&self) -> usize {
        self.calls.in_flight()
    }

    /// What the link holds now (callbacks of the current connection, calls, transactions).
    pub fn counters(&self) -> LinkCounters {
        let session = self.conn_ref().map(|c| &c.session);
        LinkCounters {
            local_callbacks: session.map_or(0, Session::exported_callbacks),
            remote_callbacks: session.map_or(0, Session::held_callbacks),
            calls_in_flight: self.calls.in_flight(),
            calls_waiting: self.calls.waiting(),
            transactions_queued: self.queue.len(),
            unsent_bytes: self.conn_ref().map_or(0, |c| c.backlog.unsent()),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// Bytes to write to the given transport.
    pub fn poll_transmit(&mut self) -> Option<(ConnId, Bytes)> {
        let conn = self.conn_mut()?;
        let id = conn.id;
        conn.session.poll_transmit().map(|b| (id, b))
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match &self.state {
            State::Connecting { deadline, .. } | State::Handshaking { deadline, .. } => {
                Some(*deadline)
            }
            State::Authenticating { conn, deadline } => min_opt(*deadline, conn.hb.next_deadline()),
            State::Up { conn, .. } => conn.hb.next_deadline(),
            State::Waiting { until } => Some(*until),
            State::Closed => return None,
        };
        let stall = self.conn_ref().and_then(|c| c.backlog.deadline());
        min_opt(
            min_opt(min_opt(state, stall), self.queue.next_deadline()),
            self.calls.next_deadline(),
        )
    }

    /// The driver's count of bytes the transport `conn` has not taken yet; report it after
    /// every write to the transport and every transmit handed to it. At or over
    /// [`OutputLimits::max_unsent`] the link holds tracked calls back (they wait, or fail
    /// with [`CallError::OutputFull`]) and asks the driver to stop reading
    /// ([`is_input_paused`](Self::is_input_paused)); staying there for
    /// [`OutputLimits::stall_timeout`] ends the connection with
    /// [`LinkError::OutputStalled`].
    pub fn handle_unsent(&mut self, conn: ConnId, now: Instant, unsent: usize) {
        let Some(c) = self.state.conn_mut() else {
            return;
        };
        if c.id != conn {
            return;
        }
        if c.backlog.report_and_hold(now, unsent, &mut self.calls) {
            self.refill_calls();
        }
    }

    /// The bounds on each connection's output (for the driver's close flush).
    pub fn output_limits(&self) -> OutputLimits {
        self.config.output
    }

    /// Whether the driver should stop reading the transport: the server is not reading what
    /// we send, so we take no more work from it until it does.
    pub fn is_input_paused(&self) -> bool {
        self.conn_ref().is_some_and(|c| c.backlog.is_full())
    }

    // ---- transport reports ----------------------------------------------------------------

    /// The transport `conn` opened.
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        let State::Connecting { id, .. } = self.state else {
            return;
        };
        if id != conn {
            return;
        }
        match Session::new(self.exports.clone(), self.config.session.clone()) {
            Ok(session) => {
                self.state = State::Handshaking {
                    conn: Conn {
                        id,
                        session,
                        hb: Heartbeat::default(),
                        last_input: now,
                        backlog: Backlog::new(self.config.output),
                    },
                    deadline: now + self.config.effective_handshake_timeout(),
                };
            }
            Err(e) => {
                // Our exports break a limit: no connection can ever work.
                self.events.push_back(LinkEvent::CloseTransport { conn });
                self.events.push_back(LinkEvent::Error(LinkError::Local(e)));
                self.shut(now, None);
            }
        }
    }

    /// Opening the transport `conn` failed.
    pub fn handle_connect_failed(&mut self, conn: ConnId, now: Instant, detail: impl Into<String>) {
        if !matches!(self.state, State::Connecting { id, .. } if id == conn) {
            return;
        }
        self.fail(
            now,
            LinkError::ConnectFailed {
                detail: detail.into(),
            },
            false,
        );
    }

    /// The transport `conn` ended (end of stream or an IO error, with its text).
    pub fn handle_transport_closed(&mut self, conn: ConnId, now: Instant, detail: Option<String>) {
        if self.conn() != Some(conn) {
            return;
        }
        let err = if matches!(self.state, State::Connecting { .. }) {
            LinkError::ConnectFailed {
                detail: detail.unwrap_or_else(|| "closed while connecting".into()),
            }
        } else {
            LinkError::TransportClosed { detail }
        };
        self.fail(now, err, false);
    }

    /// Bytes received on transport `conn`.
    pub fn handle_input(&mut self, conn: ConnId, now: Instant, data: &[u8]) {
        let Some(c) = self.conn_mut() else { return };
        if c.id != conn {
            return;
        }
        c.last_input = now;
        let result = c.session.handle_input(data);
        // Lines before a bad one were whole and valid: report what they did first, so the
        // outcome does not depend on how the bytes were chunked.
        self.pump_session(now);
        if let Err(e) = result {
            self.fail(now, LinkError::Remote(e), true);
        } else {
            self.refill_calls();
        }
    }

    fn pump_session(&mut self, now: Instant) {
        loop {
            let (State::Handshaking { conn: c, .. }
            | State::Authenticating { conn: c, .. }
            | State::Up { conn: c, .. }) = &mut self.state
            else {
                return;
            };
            let Some(ev) = c.session.poll_event() else {
                return;
            };
            let remote = route_session_event(
                ev,
                c.id,
                now,
                &mut c.session,
                &mut c.hb,
                &mut self.calls,
                &mut self.events,
            );
            if remote {
                self.on_remote(now);
            }
        }
    }

    /// Sends the calls that waited for a slot, now that answers or timeouts freed some.
    fn refill_calls(&mut self) {
        let Some(c) = self.state.conn_mut() else {
            return;
        };
        let failed = self.calls.refill(&mut c.session);
        for (call, reason) in failed {
            self.events
                .push_back(LinkEvent::CallFailed { call, reason });
        }
    }

    fn on_remote(&mut self, now: Instant) {
        let step = self.config.connect_step;
        let step_timeout = self.config.connect_step_timeout;
        let interval = self.config.ping_interval;
        let state = std::mem::replace(&mut self.state, State::Closed);
        let State::Handshaking { mut conn, .. } = state else {
            // A repeated `methods`: the session already rebuilt the interface.
            self.state = state;
            return;
        };
        conn.hb = Heartbeat::start(interval, now);
        if conn.hb.due.is_some() && remote_ping(&conn.session).is_none() {
            conn.hb = Heartbeat::default();
            self.events
                .push_back(LinkEvent::Error(LinkError::NoPingMethod));
        }
        let id = conn.id;
        self.events.push_back(LinkEvent::Remote { conn: id });
        if step {
            self.state = State::Authenticating {
                conn,
                deadline: step_timeout.map(|t| now + t),
            };
        } else {
            let remote = conn.session.remote().cloned().unwrap_or_default();
            self.state = State::Authenticating {
                conn,
                deadline: None,
            };
            self.go_up(now, remote);
        }
    }

    /// The connect step finished: the link goes up and transactions receive `value` (for
    /// example the object an `auth` call returned). Every [`RemoteFn`] in `value` must belong
    /// to `conn`; the link keeps the value until the connection ends. Ignored unless the link
    /// is authenticating on `conn`.
    pub fn signal_up(&mut self, conn: ConnId, now: Instant, value: Value) {
        match &self.state {
            State::Authenticating { conn: c, .. } if c.id == conn => self.go_up(now, value),
            _ => {}
        }
    }

    /// The connect step failed: the transport is closed and the link reconnects.
    pub fn fail_connect_step(&mut self, conn: ConnId, now: Instant, detail: impl Into<String>) {
        match &self.state {
            State::Authenticating { conn: c, .. } if c.id == conn => self.fail(
                now,
                LinkError::ConnectStepFailed {
                    detail: detail.into(),
                },
                true,
            ),
            _ => {}
        }
    }

    fn go_up(&mut self, now: Instant, value: Value) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let State::Authenticating { conn, .. } = state else {
            self.state = state;
            return;
        };
        let id = conn.id;
        self.state = State::Up { conn, since: now };
        self.up_value = Some(value);
        // Waits that ended by `now` timed out, even if the driver's timer has not fired yet.
        for (_, tx) in self.queue.expire(now) {
            self.waiting.remove(&tx);
            self.events.push_back(LinkEvent::TransactionTimedOut { tx });
        }
        // The queue is flushed in order before `up` is reported.
        while let Some((_, tx)) = self.queue.pop_front() {
            self.waiting.remove(&tx);
            self.ready(tx, id);
        }
        self.events.push_back(LinkEvent::Up { conn: id });
    }

    fn ready(&mut self, tx: TxId, conn: ConnId) {
        if tx.retry {
            self.running.insert(tx);
        }
        self.events
            .push_back(LinkEvent::TransactionReady { tx, conn });
    }

    // ---- timers -----------------------------------------------------------------------------

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (_, tx) in self.queue.expire(now) {
            self.waiting.remove(&tx);
            self.events.push_back(LinkEvent::TransactionTimedOut { tx });
        }
        let session = self.state.conn_mut().map(|c| &mut c.session);
        for call in self.calls.expire(session, now) {
            self.events.push_back(LinkEvent::CallFailed {
                call,
                reason: CallFailure::TimedOut,
            });
        }
        self.refill_calls();
        match &mut self.state {
            State::Connecting { id, deadline } if *deadline <= now => {
                let id = *id;
                self.events
                    .push_back(LinkEvent::CloseTransport { conn: id });
                self.fail(
                    now,
                    LinkError::ConnectTimeout(self.config.effective_connect_timeout()),
                    false,
                );
            }
            State::Handshaking { deadline, .. } if *deadline <= now => {
                self.fail(
                    now,
                    LinkError::HandshakeTimeout(self.config.effective_handshake_timeout()),
                    true,
                );
            }
            State::Authenticating {
                deadline: Some(d), ..
            } if *d <= now => {
                let t = self.config.connect_step_timeout.unwrap_or_default();
                self.fail(now, LinkError::ConnectStepTimeout(t), true);
            }
            State::Waiting { until } if *until <= now => self.open(now),
            State::Handshaking { conn, .. }
            | State::Authenticating { conn, .. }
            | State::Up { conn, .. }
                if conn.backlog.stalled(now).is_some() =>
            {
                let (unsent, after) = conn.backlog.stalled(now).unwrap_or_default();
                self.fail(now, LinkError::OutputStalled { unsent, after }, true);
            }
            State::Authenticating { .. } | State::Up { .. } => self.heartbeat(now),
            _ => {}
        }
    }

    fn heartbeat(&mut self, now: Instant) {
        let interval = self.config.ping_interval;
        let timeout = self.config.ping_timeout;
        let Some(c) = self.conn_mut() else { return };
        if let Some((_, deadline)) = c.hb.outstanding {
            if deadline <= now {
                self.fail(now, LinkError::PingTimeout(timeout), true);
                return;
            }
        }
        if let (Some(due), Some(interval)) = (c.hb.due, interval) {
            if due <= now {
                c.hb.due = Some(now + interval);
                if c.hb.outstanding.is_none() {
                    if let Some(ping) = remote_ping(&c.session) {
                        if c.session
                            .call(Target::Callback(ping), vec![Value::from(PONG_CALLBACK)])
                            .is_ok()
                        {
                            c.hb.outstanding = Some((now, now + timeout));
                        }
                    }
                }
            }
        }
    }

    // ---- work -------------------------------------------------------------------------------

    /// Queues a transaction. When the link is up it is ready at once
    /// ([`LinkEvent::TransactionReady`] with the next events); otherwise it waits, in FIFO
    /// order, until the link is up, or until `timeout` passes
    /// ([`LinkEvent::TransactionTimedOut`]; the timeout covers only the wait), or until the
    /// link closes ([`LinkEvent::TransactionClosed`]). Exactly one of these is reported.
    ///
    /// With `retry`, a transaction that was ready but not [`finish`](Self::finish)ed when the
    /// connection dropped is queued again (without a timeout) and runs again on the next
    /// connection: at-least-once, as the server may have run it already.
    pub fn transact(
        &mut self,
        now: Instant,
        timeout: Option<Duration>,
        retry: bool,
    ) -> Result<TxId, TransactError> {
        if matches!(self.state, State::Closed) {
            return Err(TransactError::Closed);
        }
        let tx = TxId {
            id: self.next_tx,
            retry,
        };
        if let State::Up { conn, .. } = &self.state {
            if self.queue.is_empty() {
                self.next_tx += 1;
                let id = conn.id;
                self.ready(tx, id);
                return Ok(tx);
            }
        }
        let deadline = timeout.map(|t| now + t);
        match self.queue.push(tx, deadline) {
            Ok(q) => {
                self.next_tx += 1;
                self.waiting.insert(tx, q);
                Ok(tx)
            }
            Err(_) => Err(TransactError::QueueFull {
                cap: self.config.queue_cap,
            }),
        }
    }

    /// Withdraws a waiting transaction (its owner lost interest); nothing is reported for it.
    /// Returns whether it was waiting.
    pub fn cancel(&mut self, tx: TxId) -> bool {
        self.running.remove(&tx);
        match self.waiting.remove(&tx) {
            Some(q) => self.queue.remove(q).is_some(),
            None => false,
        }
    }

    /// A transaction with retry completed; it will not run again, even if the connection it
    /// ran on dropped before this call and it waits again.
    ///
    /// Events already queued are not withdrawn: when one batch of events both answers a
    /// retry transaction's call and closes the link, the driver may see
    /// [`LinkEvent::TransactionClosed`] for a transaction it has already finished. Ignore it.
    pub fn finish(&mut self, tx: TxId) {
        if self.running.remove(&tx) || !tx.retry {
            return;
        }
        if let Some(q) = self.waiting.remove(&tx) {
            self.queue.remove(q);
        }
    }

    /// Calls the server on connection `conn`. Local functions in `args` are callbacks the
    /// server may call; when there is at least one, the call is tracked: the first call of any
    /// of them answers it ([`LinkEvent::Call`] with `answers`), else it fails with
    /// [`LinkEvent::CallFailed`] when `timeout` passes or the connection drops. Returns the
    /// call's id when it is tracked.
    ///
    /// Past [`CallLimits::max_in_flight`] tracked calls, the call waits for a slot (it is
    /// sent, in call order, when an earlier one resolves) or fails with
    /// [`CallError::TooManyInFlight`], as [`CallLimits::when_full`] says.
    pub fn call(
        &mut self,
        conn: ConnId,
        now: Instant,
        target: Target,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, CallError> {
        self.send_call(conn, now, target, args, None, timeout)
    }

    /// Calls the server with `args` followed by `reply`, the dnode answer callback: the call
    /// is answered by the first call of `reply` only, and once it resolves (answered, timed
    /// out, failed) the session forgets `reply`'s wire id, so a peer that never culls
    /// (Node) cannot fill our tables. A later call of it by the peer is a non-fatal
    /// [`RemoteError::NoSuchCallback`](crate::RemoteError::NoSuchCallback) error event.
    /// Limits as [`call`](Self::call).
    ///
    /// `reply` must be a key no other pending call uses (give each call a fresh one, as
    /// `upnode-async` does): two pending calls sharing one reply callback share its wire
    /// id, and the first answer would be credited to the later call.
    pub fn call_with_reply(
        &mut self,
        conn: ConnId,
        now: Instant,
        target: Target,
        args: Vec<Value>,
        reply: LocalFn,
        timeout: Option<Duration>,
    ) -> Result<CallId, CallError> {
        self.send_call(conn, now, target, args, Some(reply), timeout)
            .map(|id| id.expect("a call with a reply is tracked"))
    }

    fn send_call(
        &mut self,
        conn: ConnId,
        now: Instant,
        target: Target,
        args: Vec<Value>,
        reply: Option<LocalFn>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, CallError> {
        let (State::Handshaking { conn: c, .. }
        | State::Authenticating { conn: c, .. }
        | State::Up { conn: c, .. }) = &mut self.state
        else {
            return Err(match self.state {
                State::Closed => CallError::Closed,
                _ => CallError::NotConnected,
            });
        };
        if c.id != conn {
            return Err(CallError::NotConnected);
        }
        self.calls
            .make(&mut c.session, now, target, args, reply, timeout)
    }

    /// Gives back one reference on a server callback received on `conn` (see
    /// [`Session::release`]). Stale connections are ignored: their callbacks died with them.
    pub fn release(&mut self, conn: ConnId, f: RemoteFn) {
        if let Some(c) = self.conn_mut() {
            if c.id == conn {
                c.session.release(f);
            }
        }
    }

    /// Closes the link for good, in any state: the transport is closed, waiting transactions
    /// resolve as closed, calls in flight fail, and nothing more is reported after
    /// [`LinkEvent::Closed`].
    pub fn close(&mut self, now: Instant) {
        if matches!(self.state, State::Closed) {
            return;
        }
        if let Some(conn) = self.conn() {
            self.events.push_back(LinkEvent::CloseTransport { conn });
        }
        self.shut(now, None);
    }

    // ---- transitions ------------------------------------------------------------------------

    fn open(&mut self, now: Instant) {
        self.next_conn += 1;
        self.attempt += 1;
        let id = ConnId(self.next_conn);
        self.state = State::Connecting {
            id,
            deadline: now + self.config.effective_connect_timeout(),
        };
        self.events.push_back(LinkEvent::OpenTransport {
            conn: id,
            attempt: self.attempt,
        });
    }

    /// Ends the current connection for `err` and schedules the next attempt.
    fn fail(&mut self, now: Instant, err: LinkError, close_transport: bool) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let mut was_up_since = None;
        match state {
            State::Connecting { .. } => {}
            State::Handshaking { mut conn, .. } | State::Authenticating { mut conn, .. } => {
                conn.session.close();
                if close_transport {
                    self.events
                        .push_back(LinkEvent::CloseTransport { conn: conn.id });
                }
            }
            State::Up { mut conn, since } => {
                conn.session.close();
                if close_transport {
                    self.events
                        .push_back(LinkEvent::CloseTransport { conn: conn.id });
                }
                was_up_since = Some((since, conn.last_input));
            }
            State::Waiting { .. } | State::Closed => {
                self.state = state;
                return;
            }
        }
        self.up_value = None;
        for call in self.calls.drain() {
            self.events.push_back(LinkEvent::CallFailed {
                call,
                reason: CallFailure::LinkDown,
            });
        }
        for tx in std::mem::take(&mut self.running) {
            // At-least-once: run it again on the next connection. Should the queue be full,
            // the transaction is reported closed rather than dropped silently.
            match self.queue.push(tx, None) {
                Ok(q) => {
                    self.waiting.insert(tx, q);
                }
                Err(_) => self.events.push_back(LinkEvent::TransactionClosed { tx }),
            }
        }
        match was_up_since {
            Some((since, last_input)) => {
                if last_input.saturating_duration_since(since) >= self.config.stable_after {
                    self.backoff.reset();
                    self.attempt = 0;
                }
                self.events.push_back(LinkEvent::Down { reason: err });
            }
            None => self.events.push_back(LinkEvent::Error(err)),
        }
        match self.backoff.next_delay() {
            Some(delay) => {
                self.state = State::Waiting { until: now + delay };
                // Reconnects are counted from 1 since the backoff last started afresh (the
                // first connection is not one of them).
                self.events.push_back(LinkEvent::Reconnecting {
                    attempt: self.backoff.attempt(),
                    delay,
                });
            }
            None => {
                let attempts = self.attempt;
                self.shut(now, Some(LinkError::GaveUp { attempts }));
            }
        }
    }

    /// Closed for good: resolve everything.
    fn shut(&mut self, _now: Instant, err: Option<LinkError>) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        // Calls resolve before `Down`, as when a connection fails: nothing is pending once
        // the driver sees the link down.
        for call in self.calls.drain() {
            self.events.push_back(LinkEvent::CallFailed {
                call,
                reason: CallFailure::Closed,
            });
        }
        if let State::Up { mut conn, .. } = state {
            conn.session.close();
            self.events.push_back(LinkEvent::Down {
                reason: LinkError::Local(crate::error::LocalError::Closed),
            });
        } else if let State::Handshaking { mut conn, .. } | State::Authenticating { mut conn, .. } =
            state
        {
            conn.session.close();
        }
        self.up_value = None;
        self.running.clear();
        for (_, tx) in self.queue.drain() {
            self.events.push_back(LinkEvent::TransactionClosed { tx });
        }
        self.waiting.clear();
        if let Some(e) = err {
            self.events.push_back(LinkEvent::Error(e));
        }
        self.events.push_back(LinkEvent::Closed);
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
