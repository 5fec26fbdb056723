//! The client link: connect, handshake, connect step, up, down, back off, reconnect; with
//! heartbeats, a transactional queue and in-flight call tracking.

use super::backlog::Backlog;
use super::backoff::BackoffState;
use super::calls::{Calls, Outgoing};
use super::error::{CallFailure, LinkError, SendError, TransactError};
use super::event::{LinkCounters, LinkEvent};
use super::heartbeat::{remote_ping, with_ping, Heartbeat};
use super::ids::{CallId, ConnId, TxId};
use super::queue::{EntryId, TxQueue};
use super::route::{Route, Routed};
use super::timers::{after, earliest, Timer, TimerTable};
use crate::config::{ClientConfig, OutputLimits, PolicyError};
use crate::protocol::{CallArgs, LocalFn, RemoteFn, Value};
use crate::session::{Session, Target};
use bytes::Bytes;
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

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
    /// When bytes last came from the server.
    last_input: Instant,
    /// What the transport has not taken yet.
    backlog: Backlog,
}

/// Where the link is, with what each place holds. Its deadlines (connect, handshake,
/// connect step, reconnect) are in the link's [`TimerTable`].
#[derive(Debug)]
enum State {
    Connecting { id: ConnId },
    Handshaking { conn: Conn },
    Authenticating { conn: Conn },
    Up { conn: Conn, since: Instant },
    Waiting,
    Closed,
}

impl State {
    /// The connection of the states that hold one (handshaking, authenticating, up).
    fn conn(&self) -> Option<&Conn> {
        match self {
            State::Handshaking { conn }
            | State::Authenticating { conn }
            | State::Up { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// As [`conn`](Self::conn), mutably.
    fn conn_mut(&mut self) -> Option<&mut Conn> {
        match self {
            State::Handshaking { conn }
            | State::Authenticating { conn }
            | State::Up { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// The connection of a state that holds one, taken out of it.
    fn into_conn(self) -> Option<Conn> {
        match self {
            State::Handshaking { conn }
            | State::Authenticating { conn }
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
/// use upnode_core::config::ClientConfig;
/// use upnode_core::link::{ClientLink, LinkEvent, LinkState};
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
    /// Every deadline but those of calls and transactions.
    timers: TimerTable,
    heartbeat: Heartbeat,
    /// Waiting transactions under their numbers (which grow with time, so the queue is in
    /// the order they were made), each with its retry flag.
    queue: TxQueue<bool>,
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
        let heartbeat = Heartbeat::new(config.ping_interval, config.ping_timeout);
        let mut link = ClientLink {
            timers: TimerTable::default(),
            heartbeat,
            exports: with_ping(exports),
            config,
            state: State::Closed,
            next_conn: 0,
            attempt: 0,
            backoff,
            queue,
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
            State::Waiting => LinkState::Waiting,
            State::Closed => LinkState::Closed,
        }
    }

    /// The current transport, if one is open or opening.
    pub fn conn(&self) -> Option<ConnId> {
        match &self.state {
            State::Connecting { id } => Some(*id),
            state => state.conn().map(|c| c.id),
        }
    }

    /// The server's interface on the current connection, once it arrived.
    pub fn remote(&self) -> Option<&Value> {
        self.state.conn()?.session.remote()
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
        let session = self.state.conn().map(|c| &c.session);
        LinkCounters {
            local_callbacks: session.map_or(0, Session::exported_callbacks),
            remote_callbacks: session.map_or(0, Session::held_callbacks),
            calls_in_flight: self.calls.in_flight(),
            calls_waiting: self.calls.waiting(),
            transactions_queued: self.queue.len(),
            unsent_bytes: self.state.conn().map_or(0, |c| c.backlog.unsent()),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// Bytes to write to the given transport.
    pub fn poll_transmit(&mut self) -> Option<(ConnId, Bytes)> {
        let conn = self.state.conn_mut()?;
        let id = conn.id;
        conn.session.poll_transmit().map(|b| (id, b))
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but only output set aside full (about
    /// 64 KiB; see [`Session::poll_transmit_full`](crate::Session::poll_transmit_full)):
    /// for writing a burst of calls from the caller's side while it is being made.
    pub fn poll_transmit_full(&mut self) -> Option<(ConnId, Bytes)> {
        let conn = self.state.conn_mut()?;
        let id = conn.id;
        conn.session.poll_transmit_full().map(|b| (id, b))
    }

    /// Hands back output of connection `conn` that the transport has taken all of (see
    /// [`Session::reuse_output`](crate::Session::reuse_output)); output of an older
    /// connection is dropped.
    pub fn reuse_output(&mut self, conn: ConnId, done: Bytes) {
        if let Some(c) = self.state.conn_mut() {
            if c.id == conn {
                c.session.reuse_output(done);
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, State::Closed) {
            return None;
        }
        earliest([
            self.timers.next(),
            self.queue.next_deadline(),
            self.calls.next_deadline(),
        ])
    }

    /// The driver's count of bytes the transport `conn` has not taken yet; report it after
    /// every write to the transport and every transmit handed to it. At or over
    /// [`OutputLimits::max_unsent`] the link holds tracked calls back (they wait, or fail
    /// with [`SendError::OutputFull`]) and asks the driver to stop reading
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
        if c.backlog
            .report_and_hold(now, unsent, &mut self.calls, &mut self.timers)
        {
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
        self.state.conn().is_some_and(|c| c.backlog.is_full())
    }

    // ---- transport reports ----------------------------------------------------------------

    /// The transport `conn` opened.
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        let State::Connecting { id } = self.state else {
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
                        last_input: now,
                        backlog: Backlog::new(self.config.output),
                    },
                };
                self.timers.stop(Timer::Connect);
                self.timers.set_after(
                    Timer::Handshake,
                    now,
                    self.config.effective_handshake_timeout(),
                );
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
        let Some(c) = self.state.conn_mut() else {
            return;
        };
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
            let Some(c) = self.state.conn_mut() else {
                return;
            };
            let Some(ev) = c.session.poll_event() else {
                return;
            };
            let routed = Route {
                conn: c.id,
                now,
                session: &mut c.session,
                heartbeat: &mut self.heartbeat,
                timers: &mut self.timers,
                calls: &mut self.calls,
                events: &mut self.events,
            }
            .route(ev);
            if routed == Routed::Remote {
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
        for (ended, reason) in failed {
            self.events.push_back(ended.failed(reason));
        }
    }

    fn on_remote(&mut self, now: Instant) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let State::Handshaking { conn } = state else {
            // A repeated `methods`: the session already rebuilt the interface.
            self.state = state;
            return;
        };
        self.timers.stop(Timer::Handshake);
        if self.heartbeat.is_enabled() {
            if remote_ping(&conn.session).is_some() {
                self.heartbeat.start(&mut self.timers, now);
            } else {
                self.events
                    .push_back(LinkEvent::Error(LinkError::NoPingMethod));
            }
        }
        let id = conn.id;
        self.events.push_back(LinkEvent::Remote { conn: id });
        if self.config.connect_step {
            self.timers.set_or_stop(
                Timer::ConnectStep,
                self.config.connect_step_timeout.and_then(|t| after(now, t)),
            );
            self.state = State::Authenticating { conn };
        } else {
            let remote = conn.session.remote().cloned().unwrap_or_default();
            self.state = State::Authenticating { conn };
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
        let State::Authenticating { conn } = state else {
            self.state = state;
            return;
        };
        self.timers.stop(Timer::ConnectStep);
        let id = conn.id;
        self.state = State::Up { conn, since: now };
        self.up_value = Some(value);
        // Waits that ended by `now` timed out, even if the driver's timer has not fired yet.
        self.expire_transactions(now);
        // The queue is flushed in order before `up` is reported.
        while let Some(entry) = self.queue.pop_front() {
            self.ready(waiting_tx(entry), id);
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

    /// Reports the transactions whose wait ended by `now`.
    fn expire_transactions(&mut self, now: Instant) {
        for entry in self.queue.expire(now) {
            let tx = waiting_tx(entry);
            self.events.push_back(LinkEvent::TransactionTimedOut { tx });
        }
    }

    // ---- timers -----------------------------------------------------------------------------

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_transactions(now);
        let session = self.state.conn_mut().map(|c| &mut c.session);
        for ended in self.calls.expire(session, now) {
            self.events.push_back(ended.failed(CallFailure::TimedOut));
        }
        self.refill_calls();
        let Some(timer) = self.timers.first_expired(now) else {
            return;
        };
        match timer {
            Timer::Connect => {
                if let Some(conn) = self.conn() {
                    self.events.push_back(LinkEvent::CloseTransport { conn });
                }
                let t = self.config.effective_connect_timeout();
                self.fail(now, LinkError::ConnectTimeout(t), false);
            }
            Timer::Handshake => {
                let t = self.config.effective_handshake_timeout();
                self.fail(now, LinkError::HandshakeTimeout(t), true);
            }
            Timer::ConnectStep => {
                let t = self.config.connect_step_timeout.unwrap_or_default();
                self.fail(now, LinkError::ConnectStepTimeout(t), true);
            }
            Timer::Reconnect => self.open(now),
            Timer::OutputStall => {
                let stalled = self.state.conn().and_then(|c| c.backlog.stalled(now));
                let (unsent, after) = stalled.unwrap_or_default();
                self.fail(now, LinkError::OutputStalled { unsent, after }, true);
            }
            Timer::PingAnswer => {
                let t = self.heartbeat.timeout();
                self.fail(now, LinkError::PingTimeout(t), true);
            }
            Timer::PingDue => {
                if let Some(c) = self.state.conn_mut() {
                    self.heartbeat.ping(&mut self.timers, &mut c.session, now);
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
        let deadline = timeout.and_then(|t| after(now, t));
        match self.queue.insert(queue_key(tx), tx.retry, deadline) {
            Ok(_) => {
                self.next_tx += 1;
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
        self.queue.remove(queue_key(tx)).is_some()
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
        self.queue.remove(queue_key(tx));
    }

    /// Calls the server on connection `conn`. Local functions in `args` are callbacks the
    /// server may call; when there is at least one, the call is tracked: the first call of any
    /// of them answers it ([`LinkEvent::Call`] with `answers`), else it fails with
    /// [`LinkEvent::CallFailed`] when `timeout` passes or the connection drops. Returns the
    /// call's id when it is tracked.
    ///
    /// Past [`CallLimits::max_in_flight`] tracked calls, the call waits for a slot (it is
    /// sent, in call order, when an earlier one resolves) or fails with
    /// [`SendError::TooManyInFlight`], as [`CallLimits::when_full`] says.
    ///
    /// [`CallLimits::max_in_flight`]: crate::config::CallLimits::max_in_flight
    /// [`CallLimits::when_full`]: crate::config::CallLimits::when_full
    pub fn call(
        &mut self,
        conn: ConnId,
        now: Instant,
        target: Target,
        args: impl Into<CallArgs>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, SendError> {
        let (calls, session) = self.calls_and_session(conn)?;
        let call = Outgoing {
            target,
            args: args.into(),
            timeout,
        };
        calls.make(session, now, call)
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
        args: impl Into<CallArgs>,
        reply: LocalFn,
        timeout: Option<Duration>,
    ) -> Result<CallId, SendError> {
        let (calls, session) = self.calls_and_session(conn)?;
        let call = Outgoing {
            target,
            args: args.into(),
            timeout,
        };
        calls.make_with_reply(session, now, call, reply)
    }

    /// The call table and the session of connection `conn`, if it is the current one.
    fn calls_and_session(&mut self, conn: ConnId) -> Result<(&mut Calls, &mut Session), SendError> {
        let closed = matches!(self.state, State::Closed);
        match self.state.conn_mut() {
            Some(c) if c.id == conn => Ok((&mut self.calls, &mut c.session)),
            None if closed => Err(SendError::Closed),
            _ => Err(SendError::NotConnected),
        }
    }

    /// Gives back one reference on a server callback received on `conn` (see
    /// [`Session::release`]). Stale connections are ignored: their callbacks died with them.
    pub fn release(&mut self, conn: ConnId, f: RemoteFn) {
        if let Some(c) = self.state.conn_mut() {
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
        self.state = State::Connecting { id };
        self.timers.stop_all();
        self.timers
            .set_after(Timer::Connect, now, self.config.effective_connect_timeout());
        self.events.push_back(LinkEvent::OpenTransport {
            conn: id,
            attempt: self.attempt,
        });
    }

    /// Ends the current connection for `err` and schedules the next attempt.
    fn fail(&mut self, now: Instant, err: LinkError, close_transport: bool) {
        if matches!(self.state, State::Waiting | State::Closed) {
            return;
        }
        let state = std::mem::replace(&mut self.state, State::Closed);
        let was_up_since = match &state {
            State::Up { conn, since } => Some((*since, conn.last_input)),
            _ => None,
        };
        if let Some(mut conn) = state.into_conn() {
            conn.session.close();
            if close_transport {
                self.events
                    .push_back(LinkEvent::CloseTransport { conn: conn.id });
            }
        }
        self.heartbeat.stop(&mut self.timers);
        self.timers.stop_all();
        self.up_value = None;
        for ended in self.calls.drain() {
            self.events.push_back(ended.failed(CallFailure::LinkDown));
        }
        for tx in std::mem::take(&mut self.running) {
            // At-least-once: run it again on the next connection. Should the queue be full,
            // the transaction is reported closed rather than dropped silently.
            if self.queue.insert(queue_key(tx), tx.retry, None).is_err() {
                self.events.push_back(LinkEvent::TransactionClosed { tx });
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
                self.state = State::Waiting;
                self.timers.set_after(Timer::Reconnect, now, delay);
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
        self.heartbeat.stop(&mut self.timers);
        self.timers.stop_all();
        // Calls resolve before `Down`, as when a connection fails: nothing is pending once
        // the driver sees the link down.
        for ended in self.calls.drain() {
            self.events.push_back(ended.failed(CallFailure::Closed));
        }
        let was_up = matches!(state, State::Up { .. });
        if let Some(mut conn) = state.into_conn() {
            conn.session.close();
        }
        if was_up {
            self.events.push_back(LinkEvent::Down {
                reason: LinkError::Local(crate::error::LocalError::Closed),
            });
        }
        self.up_value = None;
        self.running.clear();
        for entry in self.queue.drain() {
            let tx = waiting_tx(entry);
            self.events.push_back(LinkEvent::TransactionClosed { tx });
        }
        if let Some(e) = err {
            self.events.push_back(LinkEvent::Error(e));
        }
        self.events.push_back(LinkEvent::Closed);
    }
}

/// Where a transaction waits in the queue: under its own number.
fn queue_key(tx: TxId) -> EntryId {
    EntryId::from_u64(tx.id)
}

/// The transaction of a queue entry.
fn waiting_tx((key, retry): (EntryId, bool)) -> TxId {
    TxId {
        id: key.as_u64(),
        retry,
    }
}
