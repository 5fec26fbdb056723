//! A `ClientLink` driven by the input, quinn-proto style: five header bytes pick the settings
//! (heartbeat on or off, connect step, tiny in-flight limits with `WhenFull::Wait` or
//! `Fail`, tiny callback caps, the cull policy, the backoff, the queue cap, the line cap),
//! then each op byte's low four bits pick one step (`a`..`o` are ops 1..15, `p` op 0):
//!
//! | op | step | operand bytes |
//! |---|---|---|
//! | 1 `a` | advance virtual time by a step of `STEPS` | step |
//! | 2 `b` | advance by 7 ms × operand | n |
//! | 3 `c` | `handle_timeout(now)` | – |
//! | 4 `d` | advance to `poll_timeout()`, then `handle_timeout` there | – |
//! | 5 `e` | `handle_connected` | conn |
//! | 6 `f` | `handle_connect_failed` | conn |
//! | 7 `g` | `handle_transport_closed` (bit 0: with a detail) | conn |
//! | 8 `h` | queue one line of the server's (see `push_line`) | kind, x, y |
//! | 9 `i` | `handle_input` of the next 1..=63 queued bytes (63: all) | conn + size |
//! | 10 `j` | queue up to 31 raw bytes | n, bytes |
//! | 11 `k` | `transact` (bit 2 retry, bits 3-4 timeout) / `cancel` / `finish` | sub-op, [tx] |
//! | 12 `l` | `call` | shape, keys |
//! | 13 `m` | `call_with_reply` | shape, keys |
//! | 14 `n` | `release` a held callback (or, bit 7, a made-up one) | which |
//! | 15 `o` | `signal_up` (bit 0 clear) or `fail_connect_step` | conn + value |
//! | 0 `p` | low bits 0: `close`; 1: `handle_timeout` 1 ns before `poll_timeout()`; else deliver all queued bytes | b |
//!
//! At the end the link is closed. After every step events and transmits are drained and
//! checked against a model built from the events alone:
//! - nothing panics; after `Closed` nothing is reported or sent, `poll_timeout` is `None`,
//!   the state is `Closed` and every counter is 0;
//! - after `handle_timeout(now)`, `poll_timeout()` is not before `now` (it may equal `now`:
//!   a zero backoff or a zero ping timeout makes the next step due at once);
//! - a report for a transport that is not current, a connect report or connect-step signal
//!   in the wrong state, and `handle_timeout` before `poll_timeout()`, change nothing and
//!   report nothing;
//! - every transport the link asked for is, by `Closed`, either closed by the link
//!   (`CloseTransport`, at most once) or reported ended by the driver;
//! - connection ids only grow; `OpenTransport`'s attempt is the one `Reconnecting`
//!   announced; a transport is asked to close at most once; `Remote` at most once per
//!   connection; `Up` only after `Remote` on that connection; `Down` only when up;
//!   `TransactionReady` only on the current connection when up (or just before its `Up`);
//! - every `CallId` is fresh and resolves at most once (an answer by one of its own
//!   functions on its own connection, or `CallFailed`; `TimedOut` not before its deadline);
//!   none is left when its connection is gone or when the link closes; in flight + waiting
//!   = calls not yet resolved; a tracked call waits for a slot exactly when all are taken
//!   or others wait (with `Wait`; `Fail` refuses it), else takes one; a call that fails
//!   sends nothing and changes no counter, and its error is the one the state explains;
//! - every `TxId` resolves exactly once by `Closed` (ready, timed out after its deadline,
//!   closed, or cancelled); one with retry that is ready and not finished when its
//!   connection drops waits again (no timeout) and is ready again on a later connection, or
//!   is closed; nothing is reported after `finish` (retry) or `cancel`; `cancel` says true
//!   exactly for a waiting one; `transactions_queued` is exactly the number waiting, 0 while
//!   up;
//! - counters stay within the caps (in flight ≤ `max(max_in_flight, 1)`, nothing waits for
//!   a slot with `WhenFull::Fail`, callbacks ≤ their caps, transactions ≤ the queue cap);
//! - `state()` agrees with the events (`Up` iff `Up` was reported and no `Down` since,
//!   `Authenticating` only with a connect step, `Waiting` after `Reconnecting`, and so on);
//! - the peer only ever calls or culls functions we gave it; transmitted chunks are whole
//!   lines we can parse back, ASCII with `escape_non_ascii`, on the current transport.

#![no_main]

#[allow(dead_code)]
mod link_common;

use libfuzzer_sys::fuzz_target;
use link_common::{
    check_transmit, push_line, push_raw, session_config, take_chunk, Clock, Ops, STEPS,
};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use upnode_core::config::WhenFull;
use upnode_core::config::{Backoff, Exponential, Jitter, ReconnectPolicy};
use upnode_core::config::ClientConfig;
use upnode_core::link::{SendError, CallFailure, CallId, ClientLink, ConnId, LinkCounters, LinkError, LinkEvent, LinkState, TransactError, TxId, RESERVED_FN_BASE};
use upnode_core::{Function, LocalError, LocalFn, RemoteFn, Target, Value};

fn config(h: [u8; 5]) -> (ClientConfig, Value) {
    let mut c = ClientConfig::default();
    let [h0, h1, h2, h3, h4] = h;
    let secs = Duration::from_secs;
    c.ping_interval =
        [None, Some(Duration::ZERO), Some(secs(1)), Some(secs(10))][usize::from(h0 & 3)];
    c.ping_timeout =
        [Duration::from_millis(300), secs(5), Duration::ZERO, secs(1)][usize::from((h0 >> 2) & 3)];
    c.connect_step = h0 & 0x10 != 0;
    c.connect_step_timeout = if h0 & 0x20 != 0 { None } else { Some(secs(2)) };
    c.calls.when_full = if h0 & 0x40 != 0 {
        WhenFull::Fail
    } else {
        WhenFull::Wait
    };
    let exports = if h0 & 0x80 != 0 {
        Value::object([
            ("beep", Value::from(LocalFn(1))),
            ("boop", Value::from(LocalFn(2))),
        ])
    } else {
        Value::Null
    };
    c.session = session_config(h1, h2);
    c.calls.max_in_flight = usize::from(h3 & 3);
    c.queue_cap = [0, 1, 3, 1000][usize::from((h3 >> 2) & 3)];
    let policy = match (h3 >> 4) & 3 {
        0 => ReconnectPolicy::fixed(Duration::ZERO),
        1 => ReconnectPolicy::fixed(secs(1)),
        2 => ReconnectPolicy::exponential(),
        _ => ReconnectPolicy::new(Backoff::Exponential(Exponential {
            min: Duration::from_millis(100),
            max: secs(2),
            factor: 3.0,
            jitter: Jitter::Proportional(0.5),
        })),
    };
    c.reconnect = policy.with_max_attempts((h3 & 0x40 != 0).then_some(2));
    c.stable_after = if h3 & 0x80 != 0 {
        Duration::ZERO
    } else {
        secs(10)
    };
    c.connect_timeout = [secs(10), secs(1)][usize::from(h4 & 1)];
    c.handshake_timeout = [secs(10), secs(2)][usize::from((h4 >> 1) & 1)];
    c.seed = u64::from(h4);
    (c, exports)
}

/// What the events said about a transaction.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tx {
    /// Queued; may time out at its deadline.
    Waiting(Option<Instant>),
    /// Ready on this connection, with retry, not finished: queued again (or closed, when the
    /// queue is full) if the connection drops, nothing when the link is closed.
    Running(ConnId),
    /// Nothing more may be reported for it.
    Done,
}

/// A tracked call not resolved yet.
#[derive(Debug)]
struct Pending {
    conn: ConnId,
    fns: Vec<LocalFn>,
    deadline: Option<Instant>,
}

struct Harness {
    link: ClientLink,
    config: ClientConfig,
    clock: Clock,
    /// Bytes from the server not delivered yet.
    pipe: Vec<u8>,
    txs: HashMap<TxId, Tx>,
    tx_list: Vec<TxId>,
    next_tx: u64,
    calls: HashMap<CallId, Pending>,
    resolved: HashSet<CallId>,
    /// The newest transport the link asked for (0 before the first).
    latest: ConnId,
    remote_on: Option<ConnId>,
    up_on: Option<ConnId>,
    /// The attempt `Reconnecting` announced, until its `OpenTransport`.
    next_attempt: Option<u32>,
    close_asked: HashSet<ConnId>,
    /// By when the current attempt (opening, then handshaking, then the connect step) must
    /// end, or the next attempt start, as the settings say.
    deadline: Option<Instant>,
    /// Counts the changes of `deadline`: one set while handling a timeout (a zero backoff)
    /// may fall due at that very `now`.
    deadline_gen: u64,
    deadline_gen_before: u64,
    /// The heartbeat runs on the current connection (it was on at `Remote` and the server
    /// has a `ping`).
    heartbeat: bool,
    /// Transports the driver reported ended (closed or failed to open) while current.
    ended: HashSet<ConnId>,
    closed: bool,
    /// One entry per reference held on a server callback, with its connection.
    held: Vec<(ConnId, RemoteFn)>,
    /// Our functions the server may know.
    known: HashSet<LocalFn>,
}

fn local_keys(args: &[Value]) -> Vec<LocalFn> {
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

impl Harness {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The connection an operand names: the current one, the one before, the next one.
    fn pick(&self, b: u8) -> ConnId {
        match b >> 6 {
            0 | 1 => self.link.conn().unwrap_or(self.latest),
            2 => ConnId(self.latest.0.saturating_sub(1)),
            _ => ConnId(self.latest.0 + 1),
        }
    }

    fn set_deadline(&mut self, d: Option<Instant>) {
        self.deadline = d;
        self.deadline_gen += 1;
    }

    fn max_in_flight(&self) -> usize {
        self.config.calls.max_in_flight.max(1)
    }

    /// Drains and checks events and transmits, then the state; returns how many of each.
    fn settle(&mut self, after_timeout: bool) -> (usize, usize) {
        let now = self.now();
        let evs: Vec<LinkEvent> = std::iter::from_fn(|| self.link.poll_event()).collect();
        for (i, ev) in evs.iter().enumerate() {
            if link_common::tracing() {
                eprintln!("    {ev:?}");
            }
            assert!(!self.closed, "{ev:?} after Closed");
            let last = i.checked_sub(1).map(|j| &evs[j]);
            self.event(ev, last, &evs[i + 1..], now);
        }
        let mut sent = 0;
        while let Some((conn, bytes)) = self.link.poll_transmit() {
            assert!(!self.closed, "sent after Closed: {bytes:?}");
            assert_eq!(
                Some(conn),
                self.link.conn(),
                "sent on a transport not current"
            );
            check_transmit(&bytes, self.config.session.escape_non_ascii);
            if link_common::tracing() {
                eprintln!("    sent {}", String::from_utf8_lossy(&bytes).trim_end());
            }
            sent += 1;
        }
        self.check_state(now, after_timeout);
        (evs.len(), sent)
    }

    fn event(
        &mut self,
        ev: &LinkEvent,
        last: Option<&LinkEvent>,
        rest: &[LinkEvent],
        now: Instant,
    ) {
        match ev {
            LinkEvent::OpenTransport { conn, attempt } => {
                assert!(*conn > self.latest, "{conn:?} after {:?}", self.latest);
                assert!(self.up_on.is_none(), "a new transport while up");
                let expected = if self.latest == ConnId(0) {
                    1
                } else {
                    self.next_attempt
                        .take()
                        .expect("OpenTransport without Reconnecting")
                };
                assert_eq!(*attempt, expected);
                self.latest = *conn;
                self.remote_on = None;
                self.heartbeat = false;
                self.set_deadline(Some(now + self.config.effective_connect_timeout()));
            }
            LinkEvent::CloseTransport { conn } => {
                assert!(conn.0 >= 1 && *conn <= self.latest, "{conn:?}");
                assert!(self.close_asked.insert(*conn), "{conn:?} closed twice");
            }
            LinkEvent::Remote { conn } => {
                assert_eq!(*conn, self.latest);
                assert_ne!(self.remote_on, Some(*conn), "Remote twice on {conn:?}");
                self.remote_on = Some(*conn);
                self.set_deadline(self.config.connect_step_timeout.map(|t| now + t));
                // Without a `ping` of the server's, `NoPingMethod` came just before.
                let no_ping = matches!(last, Some(LinkEvent::Error(LinkError::NoPingMethod)));
                self.heartbeat =
                    self.config.ping_interval.is_some_and(|i| !i.is_zero()) && !no_ping;
            }
            LinkEvent::Up { conn } => {
                assert_eq!(self.remote_on, Some(*conn), "Up before Remote");
                assert!(self.up_on.is_none(), "Up twice");
                self.up_on = Some(*conn);
            }
            LinkEvent::Down { reason } => {
                let up = self.up_on.take().expect("Down while not up");
                // The connection dropped (not closed by us): what ran with retry and is not
                // finished waits again, without a timeout; those that did not fit the queue
                // were reported closed just before.
                if *reason != LinkError::Local(LocalError::Closed) {
                    for st in self.txs.values_mut() {
                        if let Tx::Running(c) = *st {
                            assert_eq!(c, up, "running on a connection that was not up");
                            *st = Tx::Waiting(None);
                        }
                    }
                }
            }
            LinkEvent::Reconnecting { attempt, delay } => {
                assert!(self.up_on.is_none(), "Reconnecting before Down");
                assert!(self.next_attempt.replace(*attempt).is_none());
                let (_, max) = self.config.reconnect.bounds(u32::MAX);
                assert!(*delay <= max, "{delay:?} above the policy's {max:?}");
                self.set_deadline(Some(now + *delay));
            }
            LinkEvent::TransactionReady { tx, conn } => {
                assert_eq!(*conn, self.latest);
                assert_eq!(self.remote_on, Some(*conn));
                let up_next = rest.iter().find(|e| {
                    !matches!(
                        e,
                        LinkEvent::TransactionReady { .. } | LinkEvent::TransactionTimedOut { .. }
                    )
                }) == Some(&LinkEvent::Up { conn: *conn });
                assert!(
                    self.up_on == Some(*conn) || up_next,
                    "{tx:?} ready while not up"
                );
                let st = self.txs.get_mut(tx).expect("an unknown transaction");
                *st = match *st {
                    Tx::Waiting(_) if tx.retries() => Tx::Running(*conn),
                    Tx::Waiting(_) => Tx::Done,
                    s => panic!("{tx:?} ready in state {s:?}"),
                };
            }
            LinkEvent::TransactionTimedOut { tx } => {
                let st = self.txs.get_mut(tx).expect("an unknown transaction");
                match *st {
                    Tx::Waiting(Some(d)) => assert!(d <= now, "{tx:?} timed out early"),
                    s => panic!("{tx:?} timed out in state {s:?}"),
                }
                *st = Tx::Done;
            }
            LinkEvent::TransactionClosed { tx } => {
                let st = self.txs.get_mut(tx).expect("an unknown transaction");
                assert_ne!(*st, Tx::Done, "{tx:?} closed after it was done");
                *st = Tx::Done;
            }
            LinkEvent::Call {
                conn,
                function,
                args,
                answers,
            } => {
                assert_eq!(*conn, self.latest);
                assert!(
                    function.0 < RESERVED_FN_BASE,
                    "{function:?} is the link's own"
                );
                assert!(self.known.contains(function), "{function:?} was never sent");
                for a in args {
                    a.for_each_function(&mut |f| match f {
                        Function::Remote(r) => self.held.push((*conn, r)),
                        Function::Local(l) => panic!("our {l:?} in received arguments"),
                    });
                }
                if let Some(id) = answers {
                    let p = self
                        .calls
                        .remove(id)
                        .unwrap_or_else(|| panic!("{id:?} answered but not pending"));
                    assert!(self.resolved.insert(*id));
                    assert!(p.fns.contains(function), "{id:?} answered by {function:?}");
                    assert_eq!(p.conn, *conn);
                }
            }
            LinkEvent::CallFailed { call, reason, .. } => {
                let p = self
                    .calls
                    .remove(call)
                    .unwrap_or_else(|| panic!("{call:?} failed but not pending"));
                assert!(self.resolved.insert(*call));
                if *reason == CallFailure::TimedOut {
                    assert!(
                        p.deadline.is_some_and(|d| d <= now),
                        "{call:?} timed out early"
                    );
                }
            }
            LinkEvent::Released { conn, function } => {
                assert_eq!(*conn, self.latest);
                assert!(function.0 < RESERVED_FN_BASE);
                assert!(self.known.contains(function), "{function:?} was never sent");
            }
            LinkEvent::Ping { .. } => {
                assert_eq!(self.remote_on, Some(self.latest), "a ping before Remote");
            }
            LinkEvent::Error(_) => {}
            LinkEvent::Closed => {
                assert!(rest.is_empty(), "events after Closed: {rest:?}");
                self.closed = true;
                assert!(
                    self.calls.is_empty(),
                    "unresolved at close: {:?}",
                    self.calls
                );
                for (tx, st) in &self.txs {
                    assert!(!matches!(st, Tx::Waiting(_)), "{tx:?} unresolved at close");
                }
                for c in (1..=self.latest.0).map(ConnId) {
                    assert!(
                        self.close_asked.contains(&c) || self.ended.contains(&c),
                        "{c:?} never closed"
                    );
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn check_state(&self, now: Instant, after_timeout: bool) {
        let link = &self.link;
        let st = link.state();
        assert_eq!(st == LinkState::Closed, self.closed, "{st:?}");
        assert_eq!(st == LinkState::Up, self.up_on.is_some(), "{st:?}");
        assert_eq!(link.up_value().is_some(), st == LinkState::Up);
        match st {
            LinkState::Up => {
                assert_eq!(link.conn(), self.up_on);
                assert!(link.remote().is_some());
            }
            LinkState::Connecting | LinkState::Handshaking | LinkState::Authenticating => {
                assert_eq!(link.conn(), Some(self.latest));
                assert!(self.next_attempt.is_none());
            }
            LinkState::Waiting | LinkState::Closed => assert_eq!(link.conn(), None),
        }
        match st {
            LinkState::Handshaking => {
                assert_ne!(self.remote_on, Some(self.latest));
                assert!(link.remote().is_none(), "an interface without Remote");
            }
            LinkState::Authenticating => {
                assert!(
                    self.config.connect_step,
                    "resting in Authenticating without a step"
                );
                assert_eq!(self.remote_on, Some(self.latest));
                assert!(link.remote().is_some());
            }
            LinkState::Waiting => assert!(self.next_attempt.is_some()),
            _ => {}
        }
        let timeout = link.poll_timeout();
        match st {
            LinkState::Closed => assert_eq!(timeout, None),
            LinkState::Connecting | LinkState::Handshaking | LinkState::Waiting => {
                assert!(timeout.is_some(), "{st:?} without a timer")
            }
            _ => {}
        }
        if after_timeout {
            if let Some(t) = timeout {
                assert!(t >= now, "poll_timeout {:?} before now", now - t);
            }
        }
        // Each attempt, and each wait before one, ends by its deadline: the timer is never
        // later, and handling the timeout at or after it moves the link on.
        let timed = match st {
            LinkState::Connecting | LinkState::Handshaking | LinkState::Waiting => true,
            LinkState::Authenticating => self.config.connect_step_timeout.is_some(),
            _ => false,
        };
        if timed {
            let d = self.deadline.expect("an attempt without a deadline");
            let t = timeout.expect("an attempt without a timer");
            assert!(t <= d, "{st:?}: timer {:?} after its deadline", t - d);
            if after_timeout && self.deadline_gen == self.deadline_gen_before {
                assert!(now < d, "{st:?} outlived its deadline");
            }
        }
        if self.heartbeat && matches!(st, LinkState::Authenticating | LinkState::Up) {
            assert!(timeout.is_some(), "a heartbeat without a timer");
        }

        let c = link.counters();
        if self.closed {
            assert_eq!(c, LinkCounters::default());
        }
        assert!(c.calls_in_flight <= self.max_in_flight(), "{c:?}");
        if self.config.calls.when_full == WhenFull::Fail {
            assert_eq!(c.calls_waiting, 0);
        }
        assert_eq!(
            c.calls_in_flight + c.calls_waiting,
            self.calls.len(),
            "{c:?}"
        );
        assert!(
            c.local_callbacks <= self.config.session.max_local_callbacks,
            "{c:?}"
        );
        assert!(
            c.remote_callbacks <= self.config.session.max_callbacks,
            "{c:?}"
        );
        assert!(c.transactions_queued <= self.config.queue_cap, "{c:?}");
        let waiting = self
            .txs
            .values()
            .filter(|s| matches!(s, Tx::Waiting(_)))
            .count();
        assert_eq!(c.transactions_queued, waiting, "{c:?}");
        if st == LinkState::Up {
            assert_eq!(c.transactions_queued, 0, "transactions wait while up");
        }
        let live = matches!(
            st,
            LinkState::Handshaking | LinkState::Authenticating | LinkState::Up
        );
        for (id, p) in &self.calls {
            assert!(
                live && p.conn == self.latest,
                "{id:?} outlived {:?}",
                p.conn
            );
        }
    }

    fn step(&mut self, op: u8, ops: &mut Ops) {
        let before = (
            self.link.state(),
            self.link.conn(),
            self.link.poll_timeout(),
            self.link.counters(),
        );
        let now = self.now();
        self.deadline_gen_before = self.deadline_gen;
        let mut after_timeout = false;
        // Set when the step must change nothing and report nothing.
        let mut ignored = false;
        match op & 15 {
            1 => self
                .clock
                .advance(STEPS[usize::from(ops.byte()) % STEPS.len()]),
            2 => self
                .clock
                .advance(Duration::from_millis(7 * u64::from(ops.byte()))),
            3 => {
                self.link.handle_timeout(now);
                after_timeout = true;
            }
            4 => {
                if let Some(t) = self.link.poll_timeout() {
                    self.clock.advance_to(t);
                }
                self.link.handle_timeout(self.now());
                after_timeout = true;
            }
            5 => {
                let c = self.pick(ops.byte());
                ignored = before.0 != LinkState::Connecting || before.1 != Some(c);
                self.link.handle_connected(c, now);
                if self.link.state() == LinkState::Handshaking {
                    self.set_deadline(Some(now + self.config.effective_handshake_timeout()));
                }
            }
            6 => {
                let c = self.pick(ops.byte());
                ignored = before.0 != LinkState::Connecting || before.1 != Some(c);
                if !ignored {
                    self.ended.insert(c);
                }
                self.link.handle_connect_failed(c, now, "refused");
            }
            7 => {
                let b = ops.byte();
                let c = self.pick(b);
                ignored = before.1 != Some(c);
                if !ignored {
                    self.ended.insert(c);
                }
                let detail = (b & 1 != 0).then(|| "reset by peer".to_owned());
                self.link.handle_transport_closed(c, now, detail);
            }
            8 => {
                let max = self.config.session.max_line_len;
                push_line(&mut self.pipe, ops, max);
            }
            9 => {
                let b = ops.byte();
                let c = self.pick(b);
                ignored = before.1 != Some(c) || before.0 == LinkState::Connecting;
                let chunk = take_chunk(&mut self.pipe, b);
                self.link.handle_input(c, now, &chunk);
            }
            10 => push_raw(&mut self.pipe, ops),
            11 => self.transaction(ops),
            12 => self.call(ops, false),
            13 => self.call(ops, true),
            14 => {
                let b = ops.byte();
                let (c, f) = if b & 0x80 == 0 && !self.held.is_empty() {
                    self.held.swap_remove(usize::from(b) % self.held.len())
                } else {
                    (self.pick(b << 1), RemoteFn(u64::from(b & 7)))
                };
                ignored = before.1 != Some(c) || before.0 == LinkState::Connecting;
                self.link.release(c, f);
            }
            15 => {
                let b = ops.byte();
                let c = self.pick(b);
                let ours = before.0 == LinkState::Authenticating && before.1 == Some(c);
                ignored = !ours;
                if b & 1 == 0 {
                    let value = match (b >> 1) & 3 {
                        0 => Value::Null,
                        1 => self.link.remote().cloned().unwrap_or_default(),
                        _ => match self.held.iter().find(|(hc, _)| *hc == c) {
                            Some((_, r)) => Value::object([("beep", Value::from(*r))]),
                            None => Value::from("up"),
                        },
                    };
                    self.link.signal_up(c, now, value);
                    if ours {
                        assert_eq!(self.link.state(), LinkState::Up);
                    }
                } else {
                    self.link.fail_connect_step(c, now, "denied");
                    if ours {
                        assert!(matches!(
                            self.link.state(),
                            LinkState::Waiting | LinkState::Closed
                        ));
                    }
                }
            }
            _ => {
                let b = ops.byte();
                if b & 3 == 0 {
                    self.link.close(now);
                    assert_eq!(self.link.state(), LinkState::Closed);
                } else if b & 3 == 1 {
                    // One nanosecond before the timer: nothing is due yet.
                    let early = before
                        .2
                        .and_then(|t| t.checked_sub(Duration::from_nanos(1)));
                    if let Some(early) = early.filter(|e| *e >= now) {
                        self.clock.advance_to(early);
                        ignored = true;
                    }
                    self.link.handle_timeout(self.now());
                } else {
                    let c = self.link.conn().unwrap_or(self.latest);
                    let chunk = std::mem::take(&mut self.pipe);
                    self.link.handle_input(c, now, &chunk);
                }
            }
        }
        let (events, sent) = self.settle(after_timeout);
        if ignored {
            assert_eq!((events, sent), (0, 0), "an ignored report did something");
            let after = (
                self.link.state(),
                self.link.conn(),
                self.link.poll_timeout(),
                self.link.counters(),
            );
            assert_eq!(before, after, "an ignored report changed the link");
        }
    }

    fn pick_tx(&self, b: u8) -> Option<TxId> {
        match self.tx_list.len() {
            0 => None,
            n => Some(self.tx_list[usize::from(b) % n]),
        }
    }

    fn transaction(&mut self, ops: &mut Ops) {
        let now = self.now();
        let b = ops.byte();
        match b & 3 {
            0 | 1 => {
                let retry = b & 4 != 0;
                let timeout = link_common::timeout(b >> 3);
                let queued = self.link.counters().transactions_queued;
                match self.link.transact(now, timeout, retry) {
                    Ok(tx) => {
                        assert!(!self.closed);
                        assert_eq!(tx.number(), self.next_tx);
                        assert_eq!(tx.retries(), retry);
                        self.next_tx += 1;
                        self.txs.insert(tx, Tx::Waiting(timeout.map(|t| now + t)));
                        self.tx_list.push(tx);
                    }
                    Err(TransactError::Closed) => assert!(self.closed),
                    Err(TransactError::QueueFull { cap }) => {
                        assert!(!self.closed);
                        assert_eq!(cap, self.config.queue_cap);
                        assert_eq!(queued, cap);
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            2 => {
                if let Some(tx) = self.pick_tx(ops.byte()) {
                    let was = self.link.cancel(tx);
                    let st = self.txs.get_mut(&tx).expect("made");
                    match *st {
                        Tx::Waiting(_) => assert!(was, "{tx:?} was waiting"),
                        Tx::Done => assert!(!was, "{tx:?} was done"),
                        Tx::Running(_) => assert!(!was, "{tx:?} was running"),
                    }
                    *st = Tx::Done;
                }
            }
            _ => {
                if let Some(tx) = self.pick_tx(ops.byte()) {
                    self.link.finish(tx);
                    if tx.retries() {
                        *self.txs.get_mut(&tx).expect("made") = Tx::Done;
                    }
                }
            }
        }
    }

    fn call(&mut self, ops: &mut Ops, with_reply: bool) {
        let now = self.now();
        let (b, k) = (ops.byte(), ops.byte());
        let current = self.link.conn().unwrap_or(self.latest);
        let conn = if b & 0x80 != 0 { self.pick(k) } else { current };
        let target = match b & 3 {
            0 => Target::Method("time".into()),
            1 => Target::Method(if k & 1 == 0 { "auth" } else { "ping" }.into()),
            2 => Target::Name("beep".into()),
            _ => match self.held.len() {
                0 => Target::Callback(RemoteFn(u64::from(k & 7))),
                n => Target::Callback(self.held[usize::from(k) % n].1),
            },
        };
        let mut args = Vec::new();
        for i in 0..(b >> 2) & 3 {
            let key = if k & 0x40 != 0 && i == 0 {
                RESERVED_FN_BASE + u64::from(k & 15)
            } else {
                u64::from(k.wrapping_add(i) & 7)
            };
            args.push(Value::from(LocalFn(key)));
        }
        if b & 0x10 != 0 && !self.held.is_empty() {
            let r = self.held[usize::from(k >> 1) % self.held.len()].1;
            args.push(Value::array([Value::from(r), Value::from(1)]));
        }
        if k & 0x20 != 0 {
            args.push(Value::from("\u{e9}\u{2028}"));
        }
        let timeout = link_common::timeout(b >> 5);
        let reply = LocalFn(if k & 0xc0 == 0xc0 {
            RESERVED_FN_BASE + u64::from(k & 3)
        } else {
            8 + u64::from(k & 7)
        });
        let mut keys = local_keys(&args);
        let fns = if with_reply {
            keys.push(reply);
            vec![reply]
        } else {
            keys.clone()
        };
        let reserved = keys.iter().any(|f| f.0 >= RESERVED_FN_BASE);
        let st = self.link.state();
        let connected = self.link.conn() == Some(conn)
            && matches!(
                st,
                LinkState::Handshaking | LinkState::Authenticating | LinkState::Up
            );
        let c0 = self.link.counters();
        let r = if with_reply {
            self.link
                .call_with_reply(conn, now, target, args, reply, timeout)
                .map(Some)
        } else {
            self.link.call(conn, now, target, args, timeout)
        };
        let c1 = self.link.counters();
        match r {
            Ok(id) => {
                assert!(connected && !reserved, "{st:?} {conn:?} {keys:?}");
                assert_eq!(id.is_some(), !fns.is_empty());
                if let Some(id) = id {
                    assert!(!self.resolved.contains(&id) && !self.calls.contains_key(&id));
                    self.calls.insert(
                        id,
                        Pending {
                            conn,
                            fns,
                            deadline: timeout.map(|t| now + t),
                        },
                    );
                }
                // A tracked call waits exactly when every slot is taken or others wait
                // (never with `Fail`), else it takes a slot; an untracked one takes none.
                let full = c0.calls_in_flight >= self.max_in_flight() || c0.calls_waiting > 0;
                let slots = |c: LinkCounters| (c.calls_in_flight, c.calls_waiting);
                match (id.is_some(), full) {
                    (false, _) => assert_eq!(slots(c1), slots(c0)),
                    (true, true) => {
                        assert_eq!(self.config.calls.when_full, WhenFull::Wait);
                        assert_eq!(slots(c1), (c0.calls_in_flight, c0.calls_waiting + 1));
                    }
                    (true, false) => {
                        assert_eq!(slots(c1), (c0.calls_in_flight + 1, c0.calls_waiting))
                    }
                }
                self.known.extend(keys);
                let sent = self.link.poll_transmit();
                if c1.calls_waiting > c0.calls_waiting {
                    assert!(sent.is_none(), "a waiting call was sent");
                } else {
                    let (_, bytes) = sent.expect("a call was made but nothing sent");
                    check_transmit(&bytes, self.config.session.escape_non_ascii);
                    if link_common::tracing() {
                        eprintln!("    sent {}", String::from_utf8_lossy(&bytes).trim_end());
                    }
                }
            }
            Err(e) => {
                if link_common::tracing() {
                    eprintln!("    call failed: {e:?}");
                }
                match e {
                    SendError::Closed => assert!(self.closed),
                    SendError::NotConnected => assert!(!self.closed && !connected),
                    SendError::ReservedKey => assert!(connected && reserved),
                    SendError::TooManyInFlight { limit } => {
                        assert!(!reserved);
                        assert!(connected && !fns.is_empty());
                        assert_eq!(self.config.calls.when_full, WhenFull::Fail);
                        assert_eq!(limit, self.config.calls.max_in_flight);
                        assert!(c0.calls_in_flight >= self.max_in_flight());
                    }
                    SendError::Local(_) => assert!(!reserved && connected),
                    e => panic!("unexpected {e:?}"),
                }
                assert!(self.link.poll_transmit().is_none(), "a failed call sent");
                assert_eq!(c0, c1, "a failed call changed the counters");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut ops = Ops(data);
    let header: [u8; 5] = std::array::from_fn(|_| ops.byte());
    let (config, exports) = config(header);
    let clock = Clock::start();
    let link = ClientLink::new(config.clone(), exports.clone(), clock.now()).expect("valid policy");
    let mut known: HashSet<LocalFn> = HashSet::new();
    exports.for_each_function(&mut |f| {
        if let Function::Local(l) = f {
            known.insert(l);
        }
    });
    let mut h = Harness {
        link,
        config,
        clock,
        pipe: Vec::new(),
        txs: HashMap::new(),
        tx_list: Vec::new(),
        next_tx: 0,
        calls: HashMap::new(),
        resolved: HashSet::new(),
        latest: ConnId(0),
        remote_on: None,
        up_on: None,
        next_attempt: None,
        close_asked: HashSet::new(),
        deadline: None,
        deadline_gen: 0,
        deadline_gen_before: 0,
        heartbeat: false,
        ended: HashSet::new(),
        closed: false,
        held: Vec::new(),
        known,
    };
    h.settle(false);
    assert_eq!(
        h.latest,
        ConnId(1),
        "the first transport is asked for at once"
    );
    while !ops.is_empty() {
        let op = ops.byte();
        if link_common::tracing() {
            let letter = char::from(b'a' + (op.wrapping_sub(1) & 15));
            let next = &ops.0[..ops.0.len().min(3)];
            eprintln!("{:?} op {letter} then {next:02x?}", h.clock.elapsed());
        }
        h.step(op, &mut ops);
    }
    // Everything resolves by close.
    let now = h.now();
    h.link.close(now);
    h.settle(false);
    assert!(h.closed);
    assert_eq!(
        h.link.transact(now, None, false),
        Err(TransactError::Closed)
    );
    assert_eq!(
        h.link.call(
            ConnId(h.latest.0),
            now,
            Target::Name("x".into()),
            vec![],
            None
        ),
        Err(SendError::Closed)
    );
    h.link.handle_timeout(now + Duration::from_secs(3600));
    assert_eq!(h.settle(true), (0, 0));
});
