//! The invariants, checked by walking a run's log against a model of what the link
//! promises:
//!
//! - transactions: numbered in order; each ready, timed out, cancelled or closed exactly
//!   once (retry ones ready again only after their connection dropped unfinished, and never
//!   after `finish`/`cancel`); ready in FIFO order of the model queue (re-queued retry ones
//!   at the back, in number order); ready only on the connection that is up or goes up at
//!   that instant; flushed before `Up`; first ready no later than its deadline; timed out
//!   exactly at made + timeout; closed in FIFO order and only when closing or giving up;
//!   `cancel`'s answer matches the model; `transact` fails exactly after `Closed`;
//! - calls: ids fresh, tracked only on the current connection; each answered or failed
//!   exactly once, answers on the call's connection; `TimedOut` exactly at made + timeout;
//!   `LinkDown` only as its connection ends; `Closed` only when closing; none pending at
//!   `Down`, at a connection error, at `Reconnecting` or at `Closed`;
//! - connections: `OpenTransport` at 0 as attempt 1, later ones exactly when the announced
//!   delay ends with the announced attempt number; `Up` only after that connection's
//!   `Remote`, Up/Down strictly alternate; every connection error is followed at the same
//!   instant by `Reconnecting` or by giving up; connect, handshake and connect-step timeouts
//!   exactly on time; reconnect delays within `ReconnectPolicy::bounds(n)` for the model's
//!   backoff index `n` (reset when the server was proven alive for `stable_after`);
//!   `GaveUp` exactly when `max_attempts` delays are used up, with the right count;
//! - the end: `Closed` after `close()` or giving up, with nothing unresolved, and nothing
//!   after it; every server connection closed with its calls resolved and nothing after its
//!   `Closed`; every transport closed at both ends; dead links (black holes) given up by
//!   the client within ping interval + ping timeout of the last proof of life, by the server
//!   likewise (or by its handshake timeout).

use super::world::{Act, Entry, World};
use crate::harness::{CallFailure, CallId, ConnId, Duration, LinkError, LinkEvent, TxId};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq)]
enum TxState {
    Waiting,
    Running,
    Done(&'static str),
}

#[derive(Debug)]
struct TxModel {
    id: TxId,
    created: Duration,
    /// Log index of its `transact`.
    created_idx: usize,
    timeout: Option<Duration>,
    state: TxState,
    readies: u32,
    /// When the driver called `finish`.
    finished_at: Option<Duration>,
}

#[derive(Debug)]
struct CallModel {
    conn: ConnId,
    at: Duration,
    timeout: Option<Duration>,
    resolved: bool,
}

struct Checker<'a> {
    w: &'a World,
    v: Vec<String>,
    txs: Vec<TxModel>,
    waiting: VecDeque<TxId>,
    closing: bool,
    closed: bool,
    up: Option<ConnId>,
    up_since: Duration,
    current: Option<ConnId>,
    open_at: HashMap<ConnId, Duration>,
    connected_at: HashMap<ConnId, Duration>,
    remote_at: HashMap<ConnId, Duration>,
    /// Log index of the current connection's `Remote`.
    remote_idx: usize,
    calls: BTreeMap<CallId, CallModel>,
    backoff_idx: u32,
    attempt_reset: bool,
    last_attempt: u32,
    pending_reconnect: Option<(Duration, u32)>,
    /// A connection ended at this time: `Reconnecting` or the closing must follow at once.
    failed_at: Option<Duration>,
    gave_up: bool,
    server_calls: HashMap<(usize, CallId), bool>,
    server_closed: HashSet<usize>,
    server_down: HashSet<usize>,
    server_remote_at: HashMap<usize, Duration>,
    /// When the last answer to a ping arrived, per client connection / server connection.
    last_pong: HashMap<ConnId, Duration>,
    /// When bytes were last handed to the link for a client connection.
    last_input: HashMap<ConnId, Duration>,
    server_last_pong: HashMap<usize, Duration>,
}

/// Every invariant the run broke (empty when it is right).
pub fn check(w: &World) -> Vec<String> {
    let mut c = Checker {
        w,
        v: Vec::new(),
        txs: Vec::new(),
        waiting: VecDeque::new(),
        closing: false,
        closed: false,
        up: None,
        up_since: Duration::ZERO,
        current: None,
        open_at: HashMap::new(),
        connected_at: HashMap::new(),
        remote_at: HashMap::new(),
        remote_idx: 0,
        calls: BTreeMap::new(),
        backoff_idx: 0,
        attempt_reset: false,
        last_attempt: 0,
        pending_reconnect: None,
        failed_at: None,
        gave_up: false,
        server_calls: HashMap::new(),
        server_closed: HashSet::new(),
        server_down: HashSet::new(),
        server_remote_at: HashMap::new(),
        last_pong: HashMap::new(),
        last_input: HashMap::new(),
        server_last_pong: HashMap::new(),
    };
    for i in 0..w.log.len() {
        c.entry(i);
    }
    c.finish();
    let mut v = w.violations.clone();
    v.extend(c.v);
    v
}

/// Whether this error ends the connection it happened on.
fn ends_connection(e: &LinkError) -> bool {
    match e {
        LinkError::ConnectFailed { .. }
        | LinkError::ConnectTimeout(_)
        | LinkError::HandshakeTimeout(_)
        | LinkError::ConnectStepTimeout(_)
        | LinkError::ConnectStepFailed { .. }
        | LinkError::PingTimeout(_)
        | LinkError::TransportClosed { .. } => true,
        LinkError::Remote(r) => r.is_fatal(),
        _ => false,
    }
}

impl Checker<'_> {
    fn bad(&mut self, t: Duration, what: String) {
        self.v.push(format!("t={t:?}: {what}"));
    }

    fn tx(&mut self, tx: TxId) -> Option<&mut TxModel> {
        self.txs.get_mut(tx.number() as usize)
    }

    /// The next client event after entry `i`, skipping driver actions.
    fn next_client(
        &self,
        i: usize,
        skip: impl Fn(&LinkEvent) -> bool,
    ) -> Option<(Duration, &LinkEvent)> {
        self.w.log[i + 1..].iter().find_map(|e| match e {
            Entry::Client { t, ev } if !skip(ev) => Some((*t, ev)),
            _ => None,
        })
    }

    fn exhausted(&self) -> bool {
        self.w
            .plan
            .client
            .reconnect
            .max_attempts
            .is_some_and(|m| self.backoff_idx >= m)
    }

    fn all_calls_resolved(&mut self, t: Duration, at: &str) {
        let open: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.resolved)
            .map(|(id, _)| *id)
            .collect();
        if !open.is_empty() {
            self.bad(t, format!("calls {open:?} still pending at {at}"));
        }
    }

    fn entry(&mut self, i: usize) {
        let e = &self.w.log[i];
        let t = e.t();
        match e {
            Entry::Act { act, .. } => self.act(i, t, act),
            Entry::Client { ev, .. } => self.client(i, t, ev),
            Entry::Server { s, ev, .. } => self.server(t, *s, ev),
        }
    }

    fn act(&mut self, idx: usize, t: Duration, act: &Act) {
        match act {
            Act::Transact { tx, timeout, .. } => match tx {
                Ok(tx) => {
                    if self.closed {
                        self.bad(t, format!("transact succeeded after Closed: {tx:?}"));
                    }
                    if tx.number() as usize != self.txs.len() {
                        self.bad(t, format!("{tx:?} numbered out of order"));
                    }
                    self.txs.push(TxModel {
                        id: *tx,
                        created: t,
                        created_idx: idx,
                        timeout: *timeout,
                        state: TxState::Waiting,
                        readies: 0,
                        finished_at: None,
                    });
                    self.waiting.push_back(*tx);
                }
                Err(e) => {
                    if !(self.closed && *e == crate::harness::TransactError::Closed) {
                        self.bad(t, format!("transact failed: {e}"));
                    }
                }
            },
            Act::Cancel { tx, was_waiting } => {
                let Some(m) = self.tx(*tx) else { return };
                let state = m.state;
                if (state == TxState::Waiting) != *was_waiting {
                    self.bad(
                        t,
                        format!("cancel({tx:?}) said {was_waiting} but it was {state:?}"),
                    );
                }
                if matches!(state, TxState::Waiting | TxState::Running) {
                    self.tx(*tx).expect("seen").state = TxState::Done("cancelled");
                    self.waiting.retain(|w| w != tx);
                }
            }
            Act::Finish { tx } => {
                let Some(m) = self.tx(*tx) else { return };
                m.finished_at = Some(t);
                match m.state {
                    TxState::Running => m.state = TxState::Done("finished"),
                    TxState::Waiting => {
                        // The app finished it after the link queued it again: it must not
                        // run again.
                        m.state = TxState::Done("finished");
                        self.waiting.retain(|w| w != tx);
                    }
                    TxState::Done(_) => {}
                }
            }
            Act::Call {
                conn, id, timeout, ..
            } => {
                if self.closed {
                    self.bad(t, format!("call {id:?} tracked after Closed"));
                }
                if self.current != Some(*conn) {
                    self.bad(t, format!("call {id:?} tracked on stale {conn:?}"));
                }
                let fresh = self
                    .calls
                    .insert(
                        *id,
                        CallModel {
                            conn: *conn,
                            at: t,
                            timeout: *timeout,
                            resolved: false,
                        },
                    )
                    .is_none();
                if !fresh {
                    self.bad(t, format!("call id {id:?} reused"));
                }
            }
            Act::Close => self.closing = true,
            Act::ClientInput { conn, .. } => {
                self.last_input.insert(*conn, t);
            }
            Act::Connected { conn, .. } => {
                self.connected_at.insert(*conn, t);
            }
            Act::ServerCall { s, id } => {
                let fresh = self.server_calls.insert((*s, *id), false).is_none();
                if !fresh {
                    self.bad(t, format!("server {s} call id {id:?} reused"));
                }
            }
            _ => {}
        }
    }

    fn client(&mut self, i: usize, t: Duration, ev: &LinkEvent) {
        if self.closed {
            self.bad(t, format!("client event after Closed: {ev:?}"));
            return;
        }
        let cfg = &self.w.plan.client;
        match ev {
            LinkEvent::OpenTransport { conn, attempt } => {
                if self.failed_at.is_some() {
                    self.bad(t, "transport opened before Reconnecting".into());
                }
                match self.pending_reconnect.take() {
                    Some((due, a)) => {
                        if due != t {
                            self.bad(t, format!("reconnect due at {due:?} came at {t:?}"));
                        }
                        if a != *attempt {
                            self.bad(t, format!("attempt {attempt} announced as {a}"));
                        }
                    }
                    None => {
                        if self.current.is_some() || *attempt != 1 || t != Duration::ZERO {
                            self.bad(t, format!("unannounced OpenTransport {conn:?} #{attempt}"));
                        }
                    }
                }
                self.last_attempt = *attempt;
                self.current = Some(*conn);
                self.open_at.insert(*conn, t);
            }
            LinkEvent::CloseTransport { .. } => {}
            LinkEvent::Ping { .. } => {
                if let Some(c) = self.current {
                    self.last_pong.insert(c, t);
                }
            }
            LinkEvent::Remote { conn } => {
                if self.current != Some(*conn) {
                    self.bad(t, format!("Remote on stale {conn:?}"));
                }
                self.remote_at.insert(*conn, t);
                self.remote_idx = i;
            }
            LinkEvent::Up { conn } => {
                if self.up.is_some() {
                    self.bad(t, format!("Up on {conn:?} while already up"));
                }
                if !self.remote_at.contains_key(conn) {
                    self.bad(t, format!("Up on {conn:?} before its Remote"));
                }
                if self.current != Some(*conn) {
                    self.bad(t, format!("Up on stale {conn:?}"));
                }
                // The queue is flushed before Up. Transactions the driver made while handling
                // this connection's Remote may come after Up: the link was up already.
                let late: Vec<TxId> = self
                    .waiting
                    .iter()
                    .filter(|tx| self.txs[tx.number() as usize].created_idx < self.remote_idx)
                    .copied()
                    .collect();
                if !late.is_empty() {
                    self.bad(t, format!("Up with transactions still waiting: {late:?}"));
                }
                self.up = Some(*conn);
                self.up_since = t;
            }
            LinkEvent::Down { .. } => {
                if self.up.is_none() {
                    self.bad(t, "Down while not up".into());
                }
                self.up = None;
                self.all_calls_resolved(t, "Down");
                let running: Vec<TxId> = self
                    .txs
                    .iter()
                    .filter(|m| m.state == TxState::Running)
                    .map(|m| m.id)
                    .collect();
                if self.closing {
                    for tx in running {
                        self.tx(tx).expect("seen").state = TxState::Done("closed while running");
                    }
                } else {
                    // The backoff starts afresh once the server was proven alive (by its
                    // bytes) for `stable_after` after going up.
                    let last_input = self.last_input.get(&self.current.unwrap_or(ConnId(0)));
                    let alive =
                        last_input.map_or(Duration::ZERO, |l| l.saturating_sub(self.up_since));
                    if alive >= cfg.stable_after {
                        self.backoff_idx = 0;
                        self.attempt_reset = true;
                    }
                    for tx in running {
                        self.tx(tx).expect("seen").state = TxState::Waiting;
                        self.waiting.push_back(tx);
                    }
                    self.failed_at = Some(t);
                }
            }
            LinkEvent::Error(e) => {
                if matches!(e, LinkError::GaveUp { .. }) {
                    let LinkError::GaveUp { attempts } = e else {
                        unreachable!()
                    };
                    if !self.exhausted() {
                        self.bad(t, format!("gave up after {} delays", self.backoff_idx));
                    }
                    // Attempts are counted since the backoff last started afresh: none yet
                    // when it was reset by this very drop.
                    let want = if self.attempt_reset {
                        0
                    } else {
                        self.last_attempt
                    };
                    if *attempts != want {
                        self.bad(
                            t,
                            format!("gave up after {attempts} attempts, expected {want}"),
                        );
                    }
                    if self.failed_at != Some(t) {
                        self.bad(t, "gave up without a failure".into());
                    }
                    self.failed_at = None;
                    self.gave_up = true;
                    return;
                }
                if !ends_connection(e) {
                    return;
                }
                self.all_calls_resolved(t, "a connection error");
                if self.up.is_some() {
                    self.bad(t, format!("connection error {e:?} while up, without Down"));
                }
                let cur = self.current.unwrap_or(ConnId(u64::MAX));
                match e {
                    LinkError::ConnectTimeout(d) => {
                        // Both attempt timeouts are capped by ping interval + timeout.
                        let timeout = cfg.effective_connect_timeout();
                        let want = self.open_at.get(&cur).map(|o| *o + timeout);
                        if want != Some(t) || *d != timeout {
                            self.bad(t, format!("connect timeout at {t:?}, due {want:?}"));
                        }
                    }
                    LinkError::HandshakeTimeout(_) => {
                        let want = self
                            .connected_at
                            .get(&cur)
                            .map(|o| *o + cfg.effective_handshake_timeout());
                        if want != Some(t) {
                            self.bad(t, format!("handshake timeout at {t:?}, due {want:?}"));
                        }
                    }
                    LinkError::ConnectStepTimeout(_) => {
                        let want = self
                            .remote_at
                            .get(&cur)
                            .zip(cfg.connect_step_timeout)
                            .map(|(r, d)| *r + d);
                        if want != Some(t) {
                            self.bad(t, format!("connect step timeout at {t:?}, due {want:?}"));
                        }
                    }
                    _ => {}
                }
                if self.closing {
                    self.bad(t, format!("connection error {e:?} after close()"));
                }
                self.failed_at = Some(t);
            }
            LinkEvent::Reconnecting { attempt, delay } => {
                if self.failed_at != Some(t) {
                    self.bad(
                        t,
                        "Reconnecting without a failure at the same instant".into(),
                    );
                }
                self.failed_at = None;
                self.all_calls_resolved(t, "Reconnecting");
                if self.exhausted() {
                    self.bad(t, format!("reconnecting after {} delays", self.backoff_idx));
                }
                let (lo, hi) = cfg.reconnect.bounds(self.backoff_idx);
                if *delay < lo || *delay > hi {
                    self.bad(
                        t,
                        format!(
                            "delay {delay:?} of backoff attempt {} outside [{lo:?}, {hi:?}]",
                            self.backoff_idx
                        ),
                    );
                }
                // The transport it opens counts the first connection; the reconnect itself
                // is counted from 1 since the backoff started afresh.
                let open = if self.attempt_reset {
                    1
                } else {
                    self.last_attempt + 1
                };
                let want = self.backoff_idx + 1;
                if *attempt != want {
                    self.bad(
                        t,
                        format!("Reconnecting attempt {attempt}, expected {want}"),
                    );
                }
                self.attempt_reset = false;
                self.backoff_idx += 1;
                self.pending_reconnect = Some((t + *delay, open));
            }
            LinkEvent::TransactionReady { tx, conn } => {
                match self.waiting.front() {
                    Some(f) if f == tx => {
                        self.waiting.pop_front();
                    }
                    other => {
                        let other = other.copied();
                        self.bad(t, format!("{tx:?} ready but the front is {other:?}"));
                        self.waiting.retain(|w| w != tx);
                    }
                }
                if self.current != Some(*conn) {
                    self.bad(t, format!("{tx:?} ready on stale {conn:?}"));
                }
                let going_up = self.up.is_none()
                    && matches!(
                        self.next_client(i, |e| matches!(e, LinkEvent::TransactionReady { .. })),
                        Some((ut, LinkEvent::Up { conn: c })) if ut == t && c == conn
                    );
                if self.up != Some(*conn) && !going_up {
                    self.bad(t, format!("{tx:?} ready on {conn:?} which is not up"));
                }
                let Some(m) = self.tx(*tx) else {
                    self.bad(t, format!("{tx:?} ready but never made"));
                    return;
                };
                let (state, created, timeout, readies) = (m.state, m.created, m.timeout, m.readies);
                m.readies += 1;
                m.state = if tx.retries() {
                    TxState::Running
                } else {
                    TxState::Done("ready")
                };
                if state != TxState::Waiting {
                    self.bad(t, format!("{tx:?} ready while {state:?}"));
                }
                if readies == 0 {
                    if let Some(d) = timeout {
                        if t > created + d {
                            self.bad(
                                t,
                                format!("{tx:?} ready after its deadline {:?}", created + d),
                            );
                        }
                    }
                }
            }
            LinkEvent::TransactionTimedOut { tx } => {
                let Some(m) = self.tx(*tx) else {
                    self.bad(t, format!("{tx:?} timed out but never made"));
                    return;
                };
                let (state, created, timeout, readies) = (m.state, m.created, m.timeout, m.readies);
                m.state = TxState::Done("timed out");
                if state != TxState::Waiting || readies != 0 {
                    self.bad(
                        t,
                        format!("{tx:?} timed out while {state:?} after {readies} readies"),
                    );
                }
                match timeout {
                    Some(d) if created + d == t => {}
                    _ => self.bad(
                        t,
                        format!("{tx:?} timed out at {t:?}: made {created:?} with {timeout:?}"),
                    ),
                }
                self.waiting.retain(|w| w != tx);
            }
            LinkEvent::TransactionClosed { tx } => {
                // One call can report a retry transaction's answer and then end the
                // connection and give up: the link queued it again and closes it before the
                // driver, handling the answer, could `finish` it. That close is moot.
                let moot = self.failed_at == Some(t)
                    && self.exhausted()
                    && self.txs.get(tx.number() as usize).is_some_and(|m| {
                        m.state == TxState::Done("finished") && m.finished_at == Some(t)
                    });
                if moot {
                    return;
                }
                if !(self.closing || (self.failed_at == Some(t) && self.exhausted())) {
                    self.bad(t, format!("{tx:?} closed but the link is not closing"));
                }
                if self.waiting.front() != Some(tx) {
                    let f = self.waiting.front().copied();
                    self.bad(t, format!("{tx:?} closed out of order (front {f:?})"));
                }
                self.waiting.retain(|w| w != tx);
                match self.tx(*tx) {
                    Some(m) if m.state == TxState::Waiting => m.state = TxState::Done("closed"),
                    Some(m) => {
                        let s = m.state;
                        self.bad(t, format!("{tx:?} closed while {s:?}"));
                    }
                    None => self.bad(t, format!("{tx:?} closed but never made")),
                }
            }
            LinkEvent::Call {
                conn,
                answers: Some(id),
                ..
            } => match self.calls.get_mut(id) {
                Some(c) if !c.resolved && c.conn == *conn => c.resolved = true,
                Some(c) => {
                    let (r, cc) = (c.resolved, c.conn);
                    self.bad(
                        t,
                        format!("answer to {id:?} (resolved {r}, on {cc:?}) on {conn:?}"),
                    );
                }
                None => self.bad(t, format!("answer to unknown {id:?}")),
            },
            LinkEvent::CallFailed { call, reason, .. } => {
                let Some(c) = self.calls.get_mut(call) else {
                    self.bad(t, format!("failure of unknown {call:?}"));
                    return;
                };
                let (resolved, at, timeout) = (c.resolved, c.at, c.timeout);
                c.resolved = true;
                if resolved {
                    self.bad(t, format!("{call:?} resolved twice"));
                }
                match reason {
                    CallFailure::TimedOut => {
                        let due = timeout.map(|d| at + d);
                        if due != Some(t) {
                            self.bad(
                                t,
                                format!(
                                    "{call:?} timed out at {t:?}, made {at:?} with {timeout:?}"
                                ),
                            );
                        }
                    }
                    CallFailure::Closed if !self.closing => {
                        self.bad(t, format!("{call:?} failed Closed but not closing"));
                    }
                    CallFailure::LinkDown => {
                        let next = self.next_client(i, |e| {
                            matches!(
                                e,
                                LinkEvent::CallFailed { .. } | LinkEvent::TransactionClosed { .. }
                            )
                        });
                        let ok = matches!(next, Some((nt, LinkEvent::Down { .. })) if nt == t)
                            || matches!(next, Some((nt, LinkEvent::Error(e))) if nt == t && ends_connection(e));
                        if !ok {
                            self.bad(
                                t,
                                format!("{call:?} failed LinkDown but no connection ended"),
                            );
                        }
                    }
                    _ => {}
                }
            }
            LinkEvent::Closed => {
                if !self.closing && !self.gave_up {
                    self.bad(t, "Closed without close() or giving up".into());
                }
                if self.up.is_some() {
                    self.bad(t, "Closed while up, without Down".into());
                }
                if self.failed_at.is_some() {
                    self.bad(t, "Closed right after a failure without giving up".into());
                }
                self.all_calls_resolved(t, "Closed");
                let open: Vec<(TxId, TxState)> = self
                    .txs
                    .iter()
                    .filter(|m| !matches!(m.state, TxState::Done(_)))
                    .map(|m| (m.id, m.state))
                    .collect();
                if !open.is_empty() {
                    self.bad(t, format!("Closed with transactions unresolved: {open:?}"));
                }
                self.closed = true;
            }
            _ => {}
        }
    }

    fn server(&mut self, t: Duration, s: usize, ev: &LinkEvent) {
        if self.server_closed.contains(&s) {
            self.bad(t, format!("server {s} event after Closed: {ev:?}"));
            return;
        }
        match ev {
            LinkEvent::Remote { .. } => {
                self.server_remote_at.entry(s).or_insert(t);
            }
            LinkEvent::Ping { .. } => {
                self.server_last_pong.insert(s, t);
            }
            LinkEvent::Call {
                answers: Some(id), ..
            } => match self.server_calls.get_mut(&(s, *id)) {
                Some(r) if !*r => *r = true,
                _ => self.bad(t, format!("server {s}: bad answer to {id:?}")),
            },
            LinkEvent::CallFailed { call, .. } => match self.server_calls.get_mut(&(s, *call)) {
                Some(r) if !*r => *r = true,
                _ => self.bad(t, format!("server {s}: bad failure of {call:?}")),
            },
            LinkEvent::Down { .. } => {
                let first = self.server_down.insert(s);
                if !first {
                    self.bad(t, format!("server {s}: Down twice"));
                }
            }
            LinkEvent::Closed => {
                if !self.server_down.contains(&s) {
                    self.bad(t, format!("server {s}: Closed without Down"));
                }
                let open: Vec<CallId> = self
                    .server_calls
                    .iter()
                    .filter(|((ss, _), r)| *ss == s && !**r)
                    .map(|((_, id), _)| *id)
                    .collect();
                if !open.is_empty() {
                    self.bad(t, format!("server {s}: Closed with calls {open:?} pending"));
                }
                self.server_closed.insert(s);
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        let w = self.w;
        let end = w.now();
        if w.plan.close_at.is_some() && !self.closed {
            self.bad(end, "the client never reported Closed".into());
        }
        if !self.closed {
            return;
        }
        for (s, c) in w.sconns.iter().enumerate() {
            if c.closed_at.is_none() || !self.server_closed.contains(&s) {
                self.bad(end, format!("server connection {s} never closed"));
            }
        }
        for (n, c) in w.net.iter().enumerate() {
            if c.client_open || c.server_open {
                self.bad(
                    end,
                    format!(
                        "transport {n} ({:?}) left open: client {} server {}",
                        c.client, c.client_open, c.server_open
                    ),
                );
            }
        }
        // Dead links are found within one ping interval plus the ping timeout of the last
        // proof of life: the latest of the black hole's start, the heartbeat's start and the
        // last answer to a ping (when only the way to the peer is cut, answers to pings sent
        // before the cut still arrive after it; a ping due while another is outstanding is
        // skipped, so the next one leaves up to one interval after that answer). The driver
        // fires every timer exactly at poll_timeout(), so there is no scheduling slack.
        for (n, c) in w.net.iter().enumerate() {
            let Some((hole, _)) = c.black_hole else {
                continue;
            };
            if let (Some(iv), Some(r)) =
                (w.plan.client.ping_interval, self.remote_at.get(&c.client))
            {
                let pong = self.last_pong.get(&c.client).copied().unwrap_or_default();
                let bound = hole.max(*r).max(pong) + iv + w.plan.client.ping_timeout;
                match c.client_closed_at {
                    Some(at) if at <= bound => {}
                    at => self.bad(
                        end,
                        format!("client kept dead transport {n} until {at:?}, bound {bound:?}"),
                    ),
                }
            }
            if let Some(s) = c.sconn {
                let sc = &w.sconns[s];
                let bound = match (self.server_remote_at.get(&s), w.plan.server.ping_interval) {
                    (Some(r), Some(iv)) => {
                        let pong = self.server_last_pong.get(&s).copied().unwrap_or_default();
                        hole.max(*r).max(pong) + iv + w.plan.server.ping_timeout
                    }
                    _ => sc.accepted_at + w.plan.server.handshake_timeout,
                };
                match sc.closed_at {
                    Some(at) if at <= bound => {}
                    at => self.bad(
                        end,
                        format!("server kept dead connection {s} until {at:?}, bound {bound:?}"),
                    ),
                }
            }
        }
    }
}
