//! The simulated world: the client link, the server's connections, the virtual network and
//! the virtual clock, driven by the link's driving contract.

use super::plan::{Op, Plan, Split, Step, TxPlan, AUTH, BEEP, ECHO, TIME};
use crate::harness::{
    earliest_timer, poll_output, CallFailure, CallId, ClientLink, Clock, ConnId, Duration,
    Function, LinkEvent, LinkState, LocalFn, Machine, Output, RemoteFn, SendError, ServerConn,
    SplitMix64, Target, TransactError, TxId, Value,
};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};

/// One end of a connection; a delivery goes *to* a side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client link.
    Client,
    /// The server connection.
    Server,
}

impl Side {
    fn idx(self) -> usize {
        self as usize
    }
    fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// What one transport of the virtual network is and what happens to it.
// Some fields are only read through `Debug`, when a log is printed.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct NetConn {
    /// The client's id for it.
    pub client: ConnId,
    /// The server connection, once accepted.
    pub sconn: Option<usize>,
    /// When the client asked for it.
    pub opened_at: Duration,
    /// The client's end is open (not closed by the link, no FIN delivered to it).
    pub client_open: bool,
    /// When the client's end closed.
    pub client_closed_at: Option<Duration>,
    /// The server's end is open (accepted, not closed).
    pub server_open: bool,
    /// The connect never completes.
    pub hang: bool,
    /// The connect is refused even if the server is up.
    pub refuse: bool,
    /// Cut after this many bytes toward this side: both sides then get FIN.
    pub cut: Option<(Side, usize)>,
    cut_done: bool,
    /// A newline injected after this many bytes toward this side.
    pub garbage: Option<(Side, usize)>,
    garbage_done: bool,
    /// From this time on, nothing arrives toward the sides marked (indexed by `Side`).
    pub black_hole: Option<(Duration, [bool; 2])>,
    /// How writes are chunked.
    pub split: Split,
    last: [Duration; 2],
    sent: [usize; 2],
}

impl NetConn {
    fn holed(&self, to: Side, now: Duration) -> bool {
        matches!(self.black_hole, Some((t, dirs)) if now >= t && dirs[to.idx()])
    }
}

/// One connection the server accepted.
#[derive(Debug)]
pub struct SConn {
    /// Its state machine.
    pub conn: ServerConn,
    /// Its transport.
    pub net: usize,
    /// When it was accepted.
    pub accepted_at: Duration,
    /// When its `Closed` came.
    pub closed_at: Option<Duration>,
}

/// What the client did with a tracked call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFor {
    /// The connect step's `auth`.
    Auth(ConnId),
    /// A transaction's call.
    Tx(TxId),
}

/// A driver action, recorded in the log between the link's events.
// Many fields are only read through `Debug`, when a log is printed.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub enum Act {
    /// `transact` and what it returned.
    Transact {
        /// The result.
        tx: Result<TxId, TransactError>,
        /// Its wait limit.
        timeout: Option<Duration>,
        /// At-least-once.
        retry: bool,
    },
    /// `cancel` and what it returned.
    Cancel {
        /// Which.
        tx: TxId,
        /// The result.
        was_waiting: bool,
    },
    /// `finish`.
    Finish {
        /// Which.
        tx: TxId,
    },
    /// A tracked client call was made.
    Call {
        /// On which connection.
        conn: ConnId,
        /// Its id.
        id: CallId,
        /// Its time limit.
        timeout: Option<Duration>,
        /// What for.
        what: CallFor,
    },
    /// A client call was refused by the link.
    CallRefused {
        /// On which connection.
        conn: ConnId,
        /// Why.
        err: SendError,
        /// What for.
        what: CallFor,
    },
    /// A transaction's answer.
    Answer {
        /// Which.
        tx: TxId,
        /// The first argument of the callback.
        value: Value,
    },
    /// `signal_up`.
    SignalUp {
        /// On which connection.
        conn: ConnId,
    },
    /// `fail_connect_step`.
    FailStep {
        /// On which connection.
        conn: ConnId,
        /// Why.
        detail: String,
    },
    /// `close`.
    Close,
    /// The transport opened (`handle_connected`; the server accepted it as `s`).
    Connected {
        /// Client id.
        conn: ConnId,
        /// Server connection.
        s: usize,
    },
    /// The connect was refused (`handle_connect_failed`).
    Refused {
        /// Client id.
        conn: ConnId,
    },
    /// A connect was asked for; faults drawn for it.
    Open {
        /// Client id.
        conn: ConnId,
        /// Network index.
        net: usize,
        /// The faults, for the reader.
        faults: String,
    },
    /// Bytes handed to the client (`handle_input`).
    ClientInput {
        /// Client id.
        conn: ConnId,
        /// How many.
        len: usize,
    },
    /// FIN handed to the client (`handle_transport_closed`).
    ClientFin {
        /// Client id.
        conn: ConnId,
    },
    /// Bytes handed to a server connection.
    ServerInput {
        /// Which.
        s: usize,
        /// How many.
        len: usize,
    },
    /// FIN handed to a server connection.
    ServerFin {
        /// Which.
        s: usize,
    },
    /// Bytes that fell into a black hole.
    Lost {
        /// Network index.
        net: usize,
        /// Toward which side.
        to: Side,
        /// How many (0 for a FIN).
        len: usize,
    },
    /// A tracked server call was made.
    ServerCall {
        /// Which server connection.
        s: usize,
        /// Its id.
        id: CallId,
    },
    /// The server stopped listening and cut its connections.
    ServerDown,
    /// The server listens again.
    ServerUp,
    /// The server ended connection `s` on its own.
    ServerEnd {
        /// Which.
        s: usize,
    },
    /// A spurious `handle_timeout` on the client and every open server connection.
    Spurious,
}

/// One line of the log.
#[derive(Debug, Clone)]
pub enum Entry {
    /// An event the client link reported.
    Client {
        /// Virtual time.
        t: Duration,
        /// The event.
        ev: LinkEvent,
    },
    /// An event a server connection reported.
    Server {
        /// Virtual time.
        t: Duration,
        /// Which connection.
        s: usize,
        /// The event.
        ev: LinkEvent,
    },
    /// Something the driver did.
    Act {
        /// Virtual time.
        t: Duration,
        /// What.
        act: Act,
    },
}

impl Entry {
    /// Its virtual time.
    pub fn t(&self) -> Duration {
        match self {
            Entry::Client { t, .. } | Entry::Server { t, .. } | Entry::Act { t, .. } => *t,
        }
    }
}

#[derive(Debug)]
enum Item {
    ConnectArrives {
        net: usize,
    },
    Deliver {
        net: usize,
        to: Side,
        data: Bytes,
    },
    Fin {
        net: usize,
        to: Side,
    },
    Transact(usize),
    Cancel(u64),
    Close,
    ServerDown,
    ServerUp,
    ServerReply {
        s: usize,
        cb: RemoteFn,
        args: Vec<Value>,
    },
    ServerEnd {
        s: usize,
    },
    Spurious,
}

/// The whole simulated world of one run.
pub struct World {
    /// The plan being run.
    pub plan: Plan,
    /// Virtual time.
    pub clock: Clock,
    rng: SplitMix64,
    /// The client link.
    pub client: ClientLink,
    /// Every transport ever asked for.
    pub net: Vec<NetConn>,
    by_conn: HashMap<ConnId, usize>,
    /// Every connection the server ever accepted.
    pub sconns: Vec<SConn>,
    /// Whether the server listens.
    pub server_up: bool,
    agenda: BTreeMap<(Duration, u64), Item>,
    seq: u64,
    /// The full log.
    pub log: Vec<Entry>,
    /// Problems seen while running (the rest is found by `check`).
    pub violations: Vec<String>,
    /// Plans of transactions made, by number.
    pub tx_plans: Vec<TxPlan>,
    /// Ids of transactions made, by number.
    pub tx_ids: Vec<TxId>,
    calls: HashMap<CallId, CallFor>,
    /// The reply callback of each call made with one and not resolved yet: a failure must
    /// name it.
    reply_of: HashMap<CallId, LocalFn>,
    next_fn: u64,
    /// The client's view of the server interface at each `Remote`, for scenarios.
    pub remotes_seen: Vec<(ConnId, Value)>,
    /// The server's view of the client interface at each `Remote`, for scenarios.
    pub server_remotes_seen: Vec<(usize, Value)>,
    /// What `up_value()` was when each transaction became ready, for scenarios.
    pub ready_values: Vec<(TxId, ConnId, Option<Value>)>,
    /// Steps taken.
    pub steps: u64,
}

/// Most steps one run may take before it is declared stuck.
const MAX_STEPS: u64 = 5_000_000;

impl World {
    /// A world about to run `plan`: the client is created at time 0 (and asks for its
    /// first transport), the workload is on the agenda.
    pub fn new(plan: Plan) -> World {
        let clock = Clock::shared();
        let client = ClientLink::new(
            plan.client.clone(),
            plan.client_exports.clone(),
            clock.base(),
        )
        .expect("valid policy");
        let mut w = World {
            rng: SplitMix64::new(plan.seed ^ 0x6e65_7477_6f72_6b21),
            clock,
            client,
            net: Vec::new(),
            by_conn: HashMap::new(),
            sconns: Vec::new(),
            server_up: plan.server_up_at_start,
            agenda: BTreeMap::new(),
            seq: 0,
            log: Vec::new(),
            violations: Vec::new(),
            tx_plans: Vec::new(),
            tx_ids: Vec::new(),
            calls: HashMap::new(),
            reply_of: HashMap::new(),
            next_fn: 1000,
            remotes_seen: Vec::new(),
            server_remotes_seen: Vec::new(),
            ready_values: Vec::new(),
            steps: 0,
            plan,
        };
        for i in 0..w.plan.txs.len() {
            let at = w.plan.txs[i].at;
            w.schedule(at, Item::Transact(i));
        }
        for (at, n) in w.plan.cancels.clone() {
            w.schedule(at, Item::Cancel(n));
        }
        for (down, up) in w.plan.restarts.clone() {
            w.schedule(down, Item::ServerDown);
            w.schedule(up, Item::ServerUp);
        }
        for at in w.plan.spurious.clone() {
            w.schedule(at, Item::Spurious);
        }
        if let Some(at) = w.plan.close_at {
            w.schedule(at, Item::Close);
        }
        w.drain_client();
        w
    }

    /// Virtual now.
    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    fn schedule(&mut self, at: Duration, item: Item) {
        self.seq += 1;
        self.agenda.insert((at, self.seq), item);
    }

    fn act(&mut self, act: Act) {
        self.log.push(Entry::Act {
            t: self.clock.now(),
            act,
        });
    }

    fn violation(&mut self, what: String) {
        self.violations
            .push(format!("t={:?}: {what}", self.clock.now()));
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn dur(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo_n = lo.as_nanos() as u64;
        let hi_n = hi.as_nanos() as u64;
        Duration::from_nanos(self.rng.range_inclusive(lo_n, hi_n.max(lo_n)))
    }

    /// Rounds a drawn time up to the plan's quantum, if it has one.
    fn round(&self, d: Duration) -> Duration {
        match self.plan.quantum {
            Some(q) => q * d.as_nanos().div_ceil(q.as_nanos()) as u32,
            None => d,
        }
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = (self.plan.latency_min, self.plan.latency_max);
        // Whole microseconds keep the log readable.
        let d = self.dur(lo, hi);
        Duration::from_micros(d.as_micros() as u64)
    }

    /// Runs until nothing is left to do (or the horizon passes, which is a violation).
    pub fn run(&mut self) {
        self.run_until(self.plan.horizon);
        let settled = self.agenda.is_empty()
            && self.client.poll_timeout().is_none()
            && self.sconns.iter().all(|s| s.conn.poll_timeout().is_none());
        if !settled {
            self.violation(format!(
                "did not settle by the horizon {:?} (client {:?})",
                self.plan.horizon,
                self.client.state()
            ));
        }
    }

    /// Runs every step due up to and including `until`.
    pub fn run_until(&mut self, until: Duration) {
        loop {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                self.violation("too many steps: livelock?".into());
                return;
            }
            let agenda = self.agenda.first_key_value().map(|(k, _)| k.0);
            let client = self.client.timer().map(|i| self.clock.offset(i));
            let server = earliest_timer(&self.clock, self.sconns.iter().map(|s| &s.conn));
            let next = [agenda, client, server.map(|s| s.0)]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { return };
            let next = next.max(self.clock.now());
            if next > until {
                return;
            }
            self.clock.set(next);
            // Everything due now; when several are, the seed picks which goes first.
            let mut due = Vec::new();
            if agenda.is_some_and(|t| t <= next) {
                due.push(0);
            }
            if client.is_some_and(|t| t <= next) {
                due.push(1);
            }
            if server.is_some_and(|s| s.0 <= next) {
                due.push(2);
            }
            let pick = due[self.rng.below(due.len() as u64) as usize];
            match pick {
                0 => {
                    let (_, item) = self.agenda.pop_first().expect("due");
                    self.handle_item(item);
                }
                1 => {
                    let now = self.clock.instant();
                    self.client.fire(now);
                    self.drain_client();
                }
                _ => {
                    let s = server.expect("due").1;
                    let now = self.clock.instant();
                    self.sconns[s].conn.fire(now);
                    self.drain_server(s);
                }
            }
        }
    }

    fn handle_item(&mut self, item: Item) {
        let now = self.clock.instant();
        match item {
            Item::ConnectArrives { net } => self.connect_arrives(net),
            Item::Deliver { net, to, data } => self.deliver(net, to, data),
            Item::Fin { net, to } => self.fin(net, to),
            Item::Transact(i) => {
                let p = self.plan.txs[i].clone();
                self.transact(p);
            }
            Item::Cancel(n) => {
                let Some(&tx) = self.tx_ids.get(n as usize) else {
                    return;
                };
                let was_waiting = self.client.cancel(tx);
                self.act(Act::Cancel { tx, was_waiting });
                self.drain_client();
            }
            Item::Close => {
                self.act(Act::Close);
                self.client.close(now);
                self.drain_client();
            }
            Item::ServerDown => {
                self.server_up = false;
                self.act(Act::ServerDown);
                for s in 0..self.sconns.len() {
                    if !self.sconns[s].conn.is_closed() {
                        self.sconns[s].conn.close(now);
                        self.drain_server(s);
                    }
                }
            }
            Item::ServerUp => {
                self.server_up = true;
                self.act(Act::ServerUp);
            }
            Item::ServerReply { s, cb, args } => {
                self.server_reply(s, cb, args);
                self.sconns[s].conn.release(cb);
                self.drain_server(s);
            }
            Item::ServerEnd { s } => {
                if !self.sconns[s].conn.is_closed() {
                    self.act(Act::ServerEnd { s });
                    self.sconns[s].conn.close(now);
                    self.drain_server(s);
                }
            }
            Item::Spurious => {
                self.act(Act::Spurious);
                self.client.handle_timeout(now);
                self.drain_client();
                for s in 0..self.sconns.len() {
                    if !self.sconns[s].conn.is_closed() {
                        self.sconns[s].conn.handle_timeout(now);
                        self.drain_server(s);
                    }
                }
            }
        }
    }

    // ---- the client's driver ----------------------------------------------------------------

    /// Makes a transaction now, as the workload does.
    pub fn transact(&mut self, p: TxPlan) {
        self.make_transaction(p, true);
        self.drain_client();
    }

    /// Drains the client's events and output, reacting to each event, then checks what
    /// must hold whenever the link is quiet.
    fn drain_client(&mut self) {
        while let Some(out) = poll_output(&mut self.client) {
            match out {
                Output::Event(ev) => {
                    self.log.push(Entry::Client {
                        t: self.clock.now(),
                        ev: ev.clone(),
                    });
                    self.on_client_event(ev);
                }
                Output::Transmit(conn, bytes) => match self.by_conn.get(&conn) {
                    Some(&net) => self.send(net, Side::Server, bytes),
                    None => self.violation(format!("transmit on unknown transport {conn:?}")),
                },
            }
        }
        let state = self.client.state();
        let live = matches!(
            state,
            LinkState::Handshaking | LinkState::Authenticating | LinkState::Up
        );
        if !live && self.client.calls_in_flight() != 0 {
            self.violation(format!(
                "{} calls in flight while {state:?}",
                self.client.calls_in_flight()
            ));
        }
        if state == LinkState::Up && self.client.queued() != 0 {
            self.violation(format!(
                "{} transactions queued while up",
                self.client.queued()
            ));
        }
        if state == LinkState::Closed {
            if self.client.queued() != 0 || self.client.calls_in_flight() != 0 {
                self.violation("closed link still holds work".into());
            }
            if self.client.poll_timeout().is_some() {
                self.violation("closed link still wants a timer".into());
            }
            if self.client.conn().is_some() || self.client.remote().is_some() {
                self.violation("closed link still has a connection".into());
            }
        }
    }

    fn on_client_event(&mut self, ev: LinkEvent) {
        let now = self.clock.instant();
        match ev {
            LinkEvent::OpenTransport { conn, .. } => self.open(conn),
            LinkEvent::CloseTransport { conn } => {
                let Some(&net) = self.by_conn.get(&conn) else {
                    self.violation(format!("close of unknown transport {conn:?}"));
                    return;
                };
                self.client_closes(net);
            }
            LinkEvent::Remote { conn } => {
                if let Some(r) = self.client.remote() {
                    self.remotes_seen.push((conn, r.clone()));
                }
                if let Some(p) = self.plan.transact_on_remote.clone() {
                    self.transact_inside(p);
                }
                match self.plan.step.clone() {
                    Step::None => {}
                    Step::Remote => {
                        let v = self.client.remote().cloned().unwrap_or_default();
                        self.act(Act::SignalUp { conn });
                        self.client.signal_up(conn, now, v);
                    }
                    Step::Auth { call_timeout, .. } => {
                        let f = self.fresh_fn();
                        let args = vec![Value::from("moo"), Value::from("hax"), Value::from(f)];
                        let r = self.client.call(
                            conn,
                            now,
                            Target::Method("auth".into()),
                            args,
                            call_timeout,
                        );
                        self.record_call(conn, r, call_timeout, CallFor::Auth(conn));
                    }
                }
            }
            LinkEvent::TransactionReady { tx, conn } => {
                self.ready_values
                    .push((tx, conn, self.client.up_value().cloned()));
                let p = self.tx_plans[tx.number() as usize].clone();
                let f = self.fresh_fn();
                let beep = match self.client.up_value().and_then(|v| v.get("beep")) {
                    Some(Value::Function(Function::Remote(r))) => Some(*r),
                    _ => None,
                };
                let (target, args) = match (&p.op, beep) {
                    (Op::Echo(s), _) => (
                        Target::Name("echo".into()),
                        vec![Value::from(s.as_str()), Value::from(f)],
                    ),
                    (Op::Beep, Some(b)) => (Target::Callback(b), vec![Value::from(f)]),
                    _ => (Target::Method("time".into()), vec![Value::from(f)]),
                };
                // Half the transactions call with an answer callback the link forgets once
                // the call resolves (what `Remote::call` does), half with a plain callback.
                let r = if tx.number() % 2 == 0 {
                    let mut args = args;
                    args.pop();
                    let r = self
                        .client
                        .call_with_reply(conn, now, target, args, f, p.call_timeout);
                    if let Ok(id) = r {
                        self.reply_of.insert(id, f);
                    }
                    r.map(Some)
                } else {
                    self.client.call(conn, now, target, args, p.call_timeout)
                };
                self.record_call(conn, r, p.call_timeout, CallFor::Tx(tx));
            }
            LinkEvent::Call {
                conn,
                function: _,
                args,
                answers,
            } => {
                let mut keep = None;
                if let Some(id) = answers {
                    self.reply_of.remove(&id);
                    match self.calls.get(&id).copied() {
                        Some(CallFor::Auth(c)) => {
                            if c != conn {
                                self.violation(format!("auth answer for {c:?} on {conn:?}"));
                            }
                            if args.first().is_some_and(Value::is_null) {
                                let v = args.get(1).cloned().unwrap_or_default();
                                keep = Some(1);
                                self.act(Act::SignalUp { conn });
                                self.client.signal_up(conn, now, v);
                            } else {
                                let detail = args
                                    .first()
                                    .and_then(Value::as_str)
                                    .unwrap_or("?")
                                    .to_owned();
                                self.act(Act::FailStep {
                                    conn,
                                    detail: detail.clone(),
                                });
                                self.client.fail_connect_step(conn, now, detail);
                            }
                        }
                        Some(CallFor::Tx(tx)) => {
                            let value = args.first().cloned().unwrap_or_default();
                            self.act(Act::Answer { tx, value });
                            if tx.retries() {
                                self.act(Act::Finish { tx });
                                self.client.finish(tx);
                            }
                        }
                        None => self.violation(format!("answer to unknown call {id:?}")),
                    }
                }
                for (i, a) in args.iter().enumerate() {
                    if keep != Some(i) {
                        for f in remote_fns(a) {
                            self.client.release(conn, f);
                        }
                    }
                }
            }
            LinkEvent::CallFailed {
                call,
                reason,
                reply,
            } => match self.check_reply(call, reply) {
                Some(CallFor::Tx(tx)) => {
                    let finish = tx.retries()
                        && reason == CallFailure::TimedOut
                        && self.tx_plans[tx.number() as usize].finish_on_call_timeout;
                    if finish {
                        self.act(Act::Finish { tx });
                        self.client.finish(tx);
                    }
                }
                Some(CallFor::Auth(conn)) => {
                    if reason == CallFailure::TimedOut {
                        let detail = "auth timed out".to_owned();
                        self.act(Act::FailStep {
                            conn,
                            detail: detail.clone(),
                        });
                        self.client.fail_connect_step(conn, now, detail);
                    }
                }
                None => self.violation(format!("failure of unknown call {call:?}")),
            },
            _ => {}
        }
    }

    /// A transaction made while the driver handles an event (scenario 7).
    fn transact_inside(&mut self, p: TxPlan) {
        self.make_transaction(p, false);
    }

    /// `transact` now, recorded (and, with `check_number`, its number checked); the caller
    /// drains.
    fn make_transaction(&mut self, p: TxPlan, check_number: bool) {
        let now = self.clock.instant();
        let r = self.client.transact(now, p.timeout, p.retry);
        if let Ok(tx) = r {
            if check_number && tx.number() as usize != self.tx_plans.len() {
                self.violation(format!("transaction numbered {tx:?} out of sequence"));
            }
            self.tx_plans.push(p.clone());
            self.tx_ids.push(tx);
        }
        self.act(Act::Transact {
            tx: r,
            timeout: p.timeout,
            retry: p.retry,
        });
    }

    fn fresh_fn(&mut self) -> LocalFn {
        self.next_fn += 1;
        LocalFn(self.next_fn)
    }

    /// The reply callback a failure names must be the one its call was made with; the
    /// call's purpose, for what follows.
    fn check_reply(&mut self, call: CallId, reply: Option<LocalFn>) -> Option<CallFor> {
        let made_with = self.reply_of.remove(&call);
        if reply != made_with {
            self.violation(format!(
                "{call:?} failed naming reply {reply:?}, made with {made_with:?}"
            ));
        }
        self.calls.get(&call).copied()
    }

    fn record_call(
        &mut self,
        conn: ConnId,
        r: Result<Option<CallId>, SendError>,
        timeout: Option<Duration>,
        what: CallFor,
    ) {
        match r {
            Ok(Some(id)) => {
                if self.calls.insert(id, what).is_some() {
                    self.violation(format!("call id {id:?} handed out twice"));
                }
                self.act(Act::Call {
                    conn,
                    id,
                    timeout,
                    what,
                });
            }
            Ok(None) => self.violation("a call with a callback was not tracked".into()),
            Err(err) => {
                // Refusal is right only when that connection is gone.
                if self.client.state() == LinkState::Up && self.client.conn() == Some(conn) {
                    self.violation(format!("call refused while up on its connection: {err}"));
                }
                self.act(Act::CallRefused { conn, err, what });
            }
        }
    }

    // ---- the server's driver ----------------------------------------------------------------

    fn drain_server(&mut self, s: usize) {
        while let Some(out) = poll_output(&mut self.sconns[s].conn) {
            match out {
                Output::Event(ev) => {
                    self.log.push(Entry::Server {
                        t: self.clock.now(),
                        s,
                        ev: ev.clone(),
                    });
                    self.on_server_event(s, ev);
                }
                Output::Transmit(_, bytes) => {
                    let net = self.sconns[s].net;
                    self.send(net, Side::Client, bytes);
                }
            }
        }
        let c = &self.sconns[s];
        if c.closed_at.is_some() && (!c.conn.is_closed() || c.conn.poll_timeout().is_some()) {
            self.violation(format!("server connection {s} reported Closed but is not"));
        }
    }

    fn on_server_event(&mut self, s: usize, ev: LinkEvent) {
        match ev {
            LinkEvent::CloseTransport { .. } => {
                let net = self.sconns[s].net;
                self.server_closes(net);
            }
            LinkEvent::Remote { .. } => {
                if let Some(r) = self.sconns[s].conn.remote() {
                    self.server_remotes_seen.push((s, r.clone()));
                }
            }
            LinkEvent::Closed => {
                if self.sconns[s].closed_at.is_some() {
                    self.violation(format!("server connection {s} closed twice"));
                }
                self.sconns[s].closed_at = Some(self.clock.now());
            }
            LinkEvent::Call { function, args, .. } => {
                let cb = args.iter().rev().find_map(|a| match a {
                    Value::Function(Function::Remote(r)) => Some(*r),
                    _ => None,
                });
                let mut pending = None;
                if let Some(cb) = cb {
                    let reply = match function {
                        f if f == TIME => Some(vec![Value::from(format!(
                            "time {}",
                            self.clock.now().as_millis()
                        ))]),
                        f if f == ECHO => Some(vec![args.first().cloned().unwrap_or_default()]),
                        f if f == BEEP => Some(vec![Value::from("boop")]),
                        f if f == AUTH => self.auth_reply(&args),
                        _ => None,
                    };
                    let delay = match (function, &self.plan.step) {
                        (f, Step::Auth { delay_max, .. }) if f == AUTH => *delay_max,
                        _ => self.plan.reply_delay_max,
                    };
                    let delay = self.dur(Duration::ZERO, delay);
                    let delay = if delay.is_zero() {
                        delay
                    } else {
                        self.round(delay)
                    };
                    match reply {
                        Some(r) if delay.is_zero() => self.server_reply(s, cb, r),
                        Some(r) => {
                            pending = Some(cb);
                            self.schedule(
                                self.clock.now() + delay,
                                Item::ServerReply { s, cb, args: r },
                            );
                        }
                        // A hanging auth keeps the callback and never calls it.
                        None if function == AUTH => pending = Some(cb),
                        None => {}
                    }
                }
                for a in &args {
                    for f in remote_fns(a) {
                        if Some(f) != pending {
                            self.sconns[s].conn.release(f);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn auth_reply(&mut self, args: &[Value]) -> Option<Vec<Value>> {
        let Step::Auth { p_fail, p_hang, .. } = self.plan.step.clone() else {
            // A server without a plan for auth accepts moo/hax.
            return Some(ok_auth(args));
        };
        if self.chance(p_hang) {
            return None;
        }
        if self.chance(p_fail) {
            return Some(vec![Value::from("ACCESS DENIED")]);
        }
        Some(ok_auth(args))
    }

    fn server_reply(&mut self, s: usize, cb: RemoteFn, args: Vec<Value>) {
        let now = self.clock.instant();
        let c = &mut self.sconns[s].conn;
        if c.is_closed() {
            return;
        }
        match c.call(now, Target::Callback(cb), args, None) {
            Ok(Some(id)) => self.act(Act::ServerCall { s, id }),
            Ok(None) => {}
            Err(e) => self.violation(format!("server reply on open connection {s} failed: {e}")),
        }
    }

    // ---- the network ------------------------------------------------------------------------

    fn open(&mut self, conn: ConnId) {
        let net = self.net.len();
        let hang = self.chance(self.plan.p_hang);
        let refuse = !hang && self.chance(self.plan.p_refuse);
        let cut = if self.chance(self.plan.p_cut) {
            let side = if self.chance(0.5) {
                Side::Client
            } else {
                Side::Server
            };
            Some((side, self.rng.below(self.plan.cut_max as u64 + 1) as usize))
        } else {
            None
        };
        let garbage = if self.chance(self.plan.p_garbage) {
            let side = if self.chance(0.5) {
                Side::Client
            } else {
                Side::Server
            };
            Some((
                side,
                self.rng.below(self.plan.garbage_max as u64 + 1) as usize,
            ))
        } else {
            None
        };
        let black_hole = if self.chance(self.plan.p_black_hole) {
            let at = self.clock.now()
                + self.plan.black_hole_after
                + self.dur(Duration::ZERO, self.plan.black_hole_within);
            let at = self.round(Duration::from_millis(at.as_millis() as u64));
            let dirs = match self.rng.below(3) {
                0 => [true, true],
                1 => [true, false],
                _ => [false, true],
            };
            let dirs = self.plan.black_hole_dirs.unwrap_or(dirs);
            Some((at, dirs))
        } else {
            None
        };
        let split = if self.chance(self.plan.p_bytewise) {
            Split::Bytewise
        } else {
            self.plan.split
        };
        let faults = format!(
            "hang={hang} refuse={refuse} cut={cut:?} garbage={garbage:?} black_hole={black_hole:?} split={split:?}"
        );
        self.net.push(NetConn {
            client: conn,
            sconn: None,
            opened_at: self.clock.now(),
            client_open: true,
            client_closed_at: None,
            server_open: false,
            hang,
            refuse,
            cut,
            cut_done: false,
            garbage,
            garbage_done: false,
            black_hole,
            split,
            last: [self.clock.now(); 2],
            sent: [0; 2],
        });
        self.by_conn.insert(conn, net);
        self.act(Act::Open { conn, net, faults });
        if !hang {
            let at = self.clock.now() + self.latency();
            self.schedule(at, Item::ConnectArrives { net });
        }
    }

    fn connect_arrives(&mut self, net: usize) {
        let now = self.clock.instant();
        let c = &self.net[net];
        if !c.client_open {
            // The client gave up on it meanwhile.
            return;
        }
        let conn = c.client;
        if !self.server_up || c.refuse {
            self.net[net].client_open = false;
            self.net[net].client_closed_at = Some(self.clock.now());
            self.act(Act::Refused { conn });
            self.client
                .handle_connect_failed(conn, now, "connection refused");
            self.drain_client();
            return;
        }
        let s = self.sconns.len();
        let conn_s = ServerConn::new(
            self.plan.server.clone(),
            self.plan.server_exports.clone(),
            now,
        );
        self.sconns.push(SConn {
            conn: conn_s,
            net,
            accepted_at: self.clock.now(),
            closed_at: None,
        });
        self.net[net].sconn = Some(s);
        self.net[net].server_open = true;
        self.act(Act::Connected { conn, s });
        if let Some(after) = self.plan.server_end_after {
            self.schedule(self.clock.now() + after, Item::ServerEnd { s });
        }
        self.drain_server(s);
        self.client.handle_connected(conn, now);
        self.drain_client();
    }

    fn send(&mut self, net: usize, to: Side, bytes: Bytes) {
        let from_open = match to {
            Side::Server => self.net[net].client_open,
            Side::Client => self.net[net].server_open,
        };
        if !from_open {
            self.violation(format!(
                "{:?} wrote to transport {net} after closing it",
                to.other()
            ));
            return;
        }
        if self.net[net].cut_done {
            return;
        }
        let mut data = bytes.to_vec();
        let sent = self.net[net].sent[to.idx()];
        if let Some((side, off)) = self.net[net].garbage {
            if side == to && !self.net[net].garbage_done && sent + data.len() > off {
                data.insert(off - sent, b'\n');
                self.net[net].garbage_done = true;
            }
        }
        let mut cut_now = false;
        if let Some((side, off)) = self.net[net].cut {
            if side == to && sent + data.len() >= off {
                data.truncate(off - sent);
                cut_now = true;
            }
        }
        self.net[net].sent[to.idx()] += data.len();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = match self.net[net].split {
                Split::Whole => rest.len(),
                Split::Bytewise => 1,
                Split::Chunks(max) => 1 + self.rng.below(max as u64) as usize,
            }
            .min(rest.len());
            let chunk = Bytes::copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            let at = self.arrival(net, to);
            self.schedule(
                at,
                Item::Deliver {
                    net,
                    to,
                    data: chunk,
                },
            );
        }
        if cut_now {
            self.net[net].cut_done = true;
            let at = self.arrival(net, to);
            self.schedule(at, Item::Fin { net, to });
            let at = self.arrival(net, to.other());
            self.schedule(
                at,
                Item::Fin {
                    net,
                    to: to.other(),
                },
            );
        }
    }

    /// When the next chunk toward `to` arrives: after a latency, never before the last one.
    fn arrival(&mut self, net: usize, to: Side) -> Duration {
        let lat = self.latency();
        let at = (self.clock.now() + lat).max(self.net[net].last[to.idx()]);
        self.net[net].last[to.idx()] = at;
        at
    }

    fn client_closes(&mut self, net: usize) {
        let c = &mut self.net[net];
        if !c.client_open {
            return;
        }
        c.client_open = false;
        c.client_closed_at = Some(self.clock.now());
        if c.server_open {
            let at = self.arrival(net, Side::Server);
            self.schedule(
                at,
                Item::Fin {
                    net,
                    to: Side::Server,
                },
            );
        }
    }

    fn server_closes(&mut self, net: usize) {
        let c = &mut self.net[net];
        if !c.server_open {
            return;
        }
        c.server_open = false;
        let at = self.arrival(net, Side::Client);
        self.schedule(
            at,
            Item::Fin {
                net,
                to: Side::Client,
            },
        );
    }

    fn deliver(&mut self, net: usize, to: Side, data: Bytes) {
        let now = self.clock.instant();
        if self.net[net].holed(to, self.clock.now()) {
            self.act(Act::Lost {
                net,
                to,
                len: data.len(),
            });
            return;
        }
        match to {
            Side::Client => {
                let c = &self.net[net];
                if !c.client_open && !self.plan.late_reports {
                    return;
                }
                let conn = c.client;
                self.act(Act::ClientInput {
                    conn,
                    len: data.len(),
                });
                self.client.handle_input(conn, now, &data);
                self.drain_client();
            }
            Side::Server => {
                let c = &self.net[net];
                if !c.server_open {
                    return;
                }
                let s = c.sconn.expect("accepted");
                self.act(Act::ServerInput { s, len: data.len() });
                self.sconns[s].conn.handle_input(now, &data);
                self.drain_server(s);
            }
        }
    }

    fn fin(&mut self, net: usize, to: Side) {
        let now = self.clock.instant();
        if self.net[net].holed(to, self.clock.now()) {
            self.act(Act::Lost { net, to, len: 0 });
            return;
        }
        match to {
            Side::Client => {
                let c = &mut self.net[net];
                let was_open = c.client_open;
                if !was_open && !self.plan.late_reports {
                    return;
                }
                c.client_open = false;
                if was_open {
                    c.client_closed_at = Some(self.clock.now());
                }
                let conn = c.client;
                self.act(Act::ClientFin { conn });
                self.client.handle_transport_closed(conn, now, None);
                self.drain_client();
            }
            Side::Server => {
                let c = &mut self.net[net];
                if !c.server_open {
                    return;
                }
                c.server_open = false;
                let s = c.sconn.expect("accepted");
                self.act(Act::ServerFin { s });
                self.sconns[s].conn.handle_transport_closed(now, None);
                self.drain_server(s);
            }
        }
    }

    /// The log, one line per entry.
    pub fn render_log(&self) -> String {
        let mut out = String::new();
        for e in &self.log {
            let line = match e {
                Entry::Client { t, ev } => format!("{:>12?} C  {ev:?}", t),
                Entry::Server { t, s, ev } => format!("{:>12?} S{s} {ev:?}", t),
                Entry::Act { t, act } => format!("{:>12?} -> {act:?}", t),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

fn ok_auth(args: &[Value]) -> Vec<Value> {
    if args.first().and_then(Value::as_str) == Some("moo")
        && args.get(1).and_then(Value::as_str) == Some("hax")
    {
        vec![Value::Null, Value::object([("beep", Value::from(BEEP))])]
    } else {
        vec![Value::from("ACCESS DENIED")]
    }
}

/// Every remote function inside a value (one per occurrence).
pub fn remote_fns(v: &Value) -> Vec<RemoteFn> {
    let mut out = Vec::new();
    v.for_each_function(&mut |f| {
        if let Function::Remote(r) = f {
            out.push(r);
        }
    });
    out
}
