//! A `ServerConn` driven by the input, quinn-proto style: four header bytes pick the settings
//! (heartbeat on or off, timeouts, tiny in-flight limits with `WhenFull::Wait` or `Fail`,
//! tiny callback caps, the cull policy, the line cap, the exports), then each op byte's low
//! four bits pick one step (`a`..`o` are ops 1..15, `p` op 0):
//!
//! | op | step | operand bytes |
//! |---|---|---|
//! | 1 `a` | advance virtual time by a step of `STEPS` | step |
//! | 2 `b` | advance by 7 ms × operand | n |
//! | 3 `c` | `handle_timeout(now)` | – |
//! | 4 `d` | advance to `poll_timeout()`, then `handle_timeout` there | – |
//! | 5, 6, 9 `e` `f` `i` | `handle_input` of the next 1..=63 queued bytes (63: all) | size |
//! | 7 `g` | `handle_transport_closed` when the operand's low bits are 0, else a timeout | b |
//! | 8 `h` | queue one line of the client's (see `push_line`) | kind, x, y |
//! | 10 `j` | queue up to 31 raw bytes | n, bytes |
//! | 11 `k` | `release` a made-up callback id | id |
//! | 12 `l` | `call` | shape, keys |
//! | 13 `m` | `call_with_reply` | shape, keys |
//! | 14 `n` | `release` a held callback | which |
//! | 15 `o` | `close` when the operand's low bits are 0, else deliver all queued bytes | b |
//! | 0 `p` | advance to just before `poll_timeout()`, then `handle_timeout` there | – |
//!
//! At the end the connection is closed. After every step events and transmits are drained
//! and checked:
//! - nothing panics; after `Closed` nothing is reported or sent, `poll_timeout` is `None`,
//!   `is_closed()`, every counter is 0 and calls fail with `Closed`;
//! - after `handle_timeout(now)`, `poll_timeout()` is not before `now`; handling a timeout
//!   before `poll_timeout()` changes nothing; until the client's `methods` arrives the timer
//!   is never later than the handshake timeout, and handling it there ends the connection;
//! - only the server's events: `Remote`, `Call`, `CallFailed`, `Released`, `Ping`, `Error`,
//!   then at most one `CloseTransport`, then exactly one `Down` followed by `Closed`, last;
//!   `CloseTransport` unless the driver reported the transport ended;
//! - every `CallId` is fresh and resolves at most once (answered by one of its own functions,
//!   or `CallFailed`; `TimedOut` not before its deadline), all of them by `Closed`; in
//!   flight + waiting = calls not yet resolved; a tracked call waits for a slot exactly when
//!   all are taken or others wait (with `Wait`; `Fail` refuses it), else takes one; a call
//!   that fails sends nothing and changes no counter;
//! - counters stay within the caps (in flight ≤ `max(max_in_flight, 1)`, nothing waits with
//!   `WhenFull::Fail`, callbacks ≤ their caps);
//! - the client only ever calls or culls functions we gave it; transmitted chunks are whole
//!   lines we can parse back (ASCII with `escape_non_ascii`); our `methods` is the first.

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
use upnode_core::config::ServerConfig;
use upnode_core::link::{SendError, CallFailure, CallId, ConnId, LinkCounters, LinkEvent, ServerConn, RESERVED_FN_BASE};
use upnode_core::{Function, LocalFn, RemoteFn, Target, Value};

fn config(h: [u8; 4]) -> (ServerConfig, Value) {
    let mut c = ServerConfig::default();
    let [h0, h1, h2, h3] = h;
    let secs = Duration::from_secs;
    c.ping_interval =
        [None, Some(Duration::ZERO), Some(secs(1)), Some(secs(10))][usize::from(h0 & 3)];
    c.ping_timeout = [
        Duration::from_millis(300),
        secs(10),
        Duration::ZERO,
        secs(1),
    ][usize::from((h0 >> 2) & 3)];
    c.handshake_timeout = [secs(10), secs(1)][usize::from((h0 >> 4) & 1)];
    c.calls.when_full = if h0 & 0x20 != 0 {
        WhenFull::Fail
    } else {
        WhenFull::Wait
    };
    c.session = session_config(h1, h2);
    c.calls.max_in_flight = usize::from(h3 & 3);
    // §11's servers export `time` or `auth`; some export more.
    let mut entries = vec![("time", Value::from(LocalFn(0)))];
    if h3 & 4 != 0 {
        entries.push(("auth", Value::from(LocalFn(1))));
    }
    if h3 & 8 != 0 {
        entries.push(("beep", Value::from(LocalFn(2))));
        entries.push(("n", Value::from(5)));
    }
    if h3 & 0x10 != 0 {
        // Its own `ping`, which hides the link's.
        entries.push(("ping", Value::from(LocalFn(3))));
    }
    (c, Value::object(entries))
}

#[derive(Debug)]
struct Pending {
    fns: Vec<LocalFn>,
    deadline: Option<Instant>,
}

struct Harness {
    conn: ServerConn,
    config: ServerConfig,
    clock: Clock,
    pipe: Vec<u8>,
    calls: HashMap<CallId, Pending>,
    resolved: HashSet<CallId>,
    close_asked: bool,
    /// The driver reported the transport ended.
    ended: bool,
    down: bool,
    closed: bool,
    held: Vec<RemoteFn>,
    known: HashSet<LocalFn>,
    /// Our `methods` went out.
    greeted: bool,
    /// The client's `methods` arrived (`Remote` reported).
    remote: bool,
    /// By when the client's `methods` must come.
    handshake_deadline: Instant,
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

    fn max_in_flight(&self) -> usize {
        self.config.calls.max_in_flight.max(1)
    }

    fn settle(&mut self, after_timeout: bool) -> (usize, usize) {
        let now = self.now();
        let evs: Vec<LinkEvent> = std::iter::from_fn(|| self.conn.poll_event()).collect();
        for (i, ev) in evs.iter().enumerate() {
            if link_common::tracing() {
                eprintln!("    {ev:?}");
            }
            assert!(!self.closed, "{ev:?} after Closed");
            self.event(ev, &evs[i + 1..], now);
        }
        let mut sent = 0;
        while let Some(bytes) = self.conn.poll_transmit() {
            assert!(!self.closed, "sent after Closed: {bytes:?}");
            check_transmit(&bytes, self.config.session.escape_non_ascii);
            if link_common::tracing() {
                eprintln!("    sent {}", String::from_utf8_lossy(&bytes).trim_end());
            }
            if !self.greeted {
                assert!(bytes.starts_with(br#"{"method":"methods","#), "{bytes:?}");
                self.greeted = true;
            }
            sent += 1;
        }
        self.check_state(now, after_timeout);
        (evs.len(), sent)
    }

    fn event(&mut self, ev: &LinkEvent, rest: &[LinkEvent], now: Instant) {
        if !matches!(ev, LinkEvent::Down { .. } | LinkEvent::Closed) {
            assert!(!self.close_asked, "{ev:?} after CloseTransport");
        }
        match ev {
            LinkEvent::Remote { conn } => {
                assert_eq!(*conn, ConnId(0));
                self.remote = true;
            }
            LinkEvent::Call {
                conn,
                function,
                args,
                answers,
            } => {
                assert_eq!(*conn, ConnId(0));
                assert!(
                    function.0 < RESERVED_FN_BASE,
                    "{function:?} is the link's own"
                );
                assert!(self.known.contains(function), "{function:?} was never sent");
                for a in args {
                    a.for_each_function(&mut |f| match f {
                        Function::Remote(r) => self.held.push(r),
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
                assert_eq!(*conn, ConnId(0));
                assert!(function.0 < RESERVED_FN_BASE);
                assert!(self.known.contains(function), "{function:?} was never sent");
            }
            LinkEvent::Ping { .. } => assert!(self.conn.remote().is_some()),
            LinkEvent::Error(_) => {}
            LinkEvent::CloseTransport { conn } => {
                assert_eq!(*conn, ConnId(0));
                assert!(!self.close_asked, "CloseTransport twice");
                self.close_asked = true;
                assert!(matches!(rest.first(), Some(LinkEvent::Down { .. })));
            }
            LinkEvent::Down { .. } => {
                assert!(!self.down, "Down twice");
                self.down = true;
                assert_eq!(rest, [LinkEvent::Closed], "Down not followed by Closed");
            }
            LinkEvent::Closed => {
                assert!(self.down, "Closed without Down");
                assert!(rest.is_empty());
                self.closed = true;
                assert!(
                    self.calls.is_empty(),
                    "unresolved at close: {:?}",
                    self.calls
                );
                assert!(
                    self.close_asked || self.ended,
                    "closed without closing the transport"
                );
            }
            other => panic!("not a server event: {other:?}"),
        }
    }

    fn check_state(&self, now: Instant, after_timeout: bool) {
        let conn = &self.conn;
        assert_eq!(conn.is_closed(), self.closed);
        let timeout = conn.poll_timeout();
        if self.closed {
            assert_eq!(timeout, None);
        } else if conn.remote().is_none() {
            assert!(timeout.is_some(), "handshaking without a timer");
        }
        if after_timeout {
            if let Some(t) = timeout {
                assert!(t >= now, "poll_timeout {:?} before now", now - t);
            }
        }
        if !self.remote && !self.closed {
            let (t, d) = (timeout.expect("handshaking"), self.handshake_deadline);
            assert!(t <= d, "handshake timer {:?} late", t - d);
            assert!(
                !after_timeout || now < d,
                "the handshake outlived its timeout"
            );
        }
        let c = conn.counters();
        if self.closed {
            assert_eq!(c, LinkCounters::default());
        } else {
            assert!(self.greeted, "no methods sent");
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
        assert_eq!(c.transactions_queued, 0);
    }

    fn step(&mut self, op: u8, ops: &mut Ops) {
        let now = self.now();
        let mut after_timeout = false;
        let mut ignored = self.closed;
        let before = (self.conn.poll_timeout(), self.conn.counters());
        match op & 15 {
            1 => self
                .clock
                .advance(STEPS[usize::from(ops.byte()) % STEPS.len()]),
            2 => self
                .clock
                .advance(Duration::from_millis(7 * u64::from(ops.byte()))),
            3 => {
                self.conn.handle_timeout(now);
                after_timeout = true;
            }
            4 => {
                if let Some(t) = self.conn.poll_timeout() {
                    self.clock.advance_to(t);
                }
                self.conn.handle_timeout(self.now());
                after_timeout = true;
            }
            0 => {
                // One nanosecond early: nothing is due yet.
                if let Some(t) = self.conn.poll_timeout() {
                    if let Some(early) = t.checked_sub(Duration::from_nanos(1)) {
                        if early >= now {
                            self.clock.advance_to(early);
                            ignored = true;
                        }
                    }
                }
                self.conn.handle_timeout(self.now());
            }
            5 | 6 | 9 => {
                let chunk = take_chunk(&mut self.pipe, ops.byte());
                self.conn.handle_input(now, &chunk);
            }
            7 => {
                if ops.byte() & 3 == 0 {
                    self.ended |= !self.closed;
                    self.conn.handle_transport_closed(now, None);
                    assert!(self.conn.is_closed());
                } else {
                    self.conn.handle_timeout(now);
                    after_timeout = true;
                }
            }
            8 => {
                let max = self.config.session.max_line_len;
                push_line(&mut self.pipe, ops, max);
            }
            10 => push_raw(&mut self.pipe, ops),
            11 => self.conn.release(RemoteFn(u64::from(ops.byte() & 15))),
            12 => self.call(ops, false),
            13 => self.call(ops, true),
            14 => {
                let b = ops.byte();
                if !self.held.is_empty() {
                    let r = self.held.swap_remove(usize::from(b) % self.held.len());
                    self.conn.release(r);
                }
            }
            _ => {
                if ops.byte() & 3 == 0 {
                    self.conn.close(now);
                    assert!(self.conn.is_closed());
                } else {
                    let chunk = std::mem::take(&mut self.pipe);
                    self.conn.handle_input(now, &chunk);
                }
            }
        }
        let (events, sent) = self.settle(after_timeout);
        if ignored {
            assert_eq!(
                (events, sent),
                (0, 0),
                "an early or late step did something"
            );
            assert_eq!(before, (self.conn.poll_timeout(), self.conn.counters()));
        }
    }

    fn call(&mut self, ops: &mut Ops, with_reply: bool) {
        let now = self.now();
        let (b, k) = (ops.byte(), ops.byte());
        let target = match b & 3 {
            0 => Target::Method("ping".into()),
            1 => Target::Method(if k & 1 == 0 { "beep" } else { "time" }.into()),
            2 => Target::Name("cb".into()),
            _ => match self.held.len() {
                0 => Target::Callback(RemoteFn(u64::from(k & 7))),
                n => Target::Callback(self.held[usize::from(k) % n]),
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
            let r = self.held[usize::from(k >> 1) % self.held.len()];
            args.push(Value::object([("f", Value::from(r))]));
        }
        if k & 0x20 != 0 {
            args.push(Value::from("\u{1f600}\u{7f}"));
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
        let c0 = self.conn.counters();
        let r = if with_reply {
            self.conn
                .call_with_reply(now, target, args, reply, timeout)
                .map(Some)
        } else {
            self.conn.call(now, target, args, timeout)
        };
        let c1 = self.conn.counters();
        match r {
            Ok(id) => {
                assert!(!self.closed && !reserved);
                assert_eq!(id.is_some(), !fns.is_empty());
                if let Some(id) = id {
                    assert!(!self.resolved.contains(&id) && !self.calls.contains_key(&id));
                    let deadline = timeout.map(|t| now + t);
                    self.calls.insert(id, Pending { fns, deadline });
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
                let sent = self.conn.poll_transmit();
                if c1.calls_waiting > c0.calls_waiting {
                    assert!(sent.is_none(), "a waiting call was sent");
                } else {
                    let bytes = sent.expect("a call was made but nothing sent");
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
                    SendError::ReservedKey => assert!(!self.closed && reserved),
                    SendError::TooManyInFlight { limit } => {
                        assert!(!reserved);
                        assert!(!self.closed && !fns.is_empty());
                        assert_eq!(self.config.calls.when_full, WhenFull::Fail);
                        assert_eq!(limit, self.config.calls.max_in_flight);
                        assert!(c0.calls_in_flight >= self.max_in_flight());
                    }
                    SendError::Local(_) => assert!(!reserved && !self.closed),
                    e => panic!("unexpected {e:?}"),
                }
                assert!(self.conn.poll_transmit().is_none(), "a failed call sent");
                assert_eq!(c0, c1, "a failed call changed the counters");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut ops = Ops(data);
    let header: [u8; 4] = std::array::from_fn(|_| ops.byte());
    let (config, exports) = config(header);
    let clock = Clock::start();
    let conn = ServerConn::new(config.clone(), exports.clone(), clock.now());
    let handshake_deadline = clock.now() + config.handshake_timeout;
    let mut known: HashSet<LocalFn> = HashSet::new();
    exports.for_each_function(&mut |f| {
        if let Function::Local(l) = f {
            known.insert(l);
        }
    });
    let mut h = Harness {
        conn,
        config,
        clock,
        pipe: Vec::new(),
        calls: HashMap::new(),
        resolved: HashSet::new(),
        close_asked: false,
        ended: false,
        down: false,
        closed: false,
        held: Vec::new(),
        known,
        greeted: false,
        remote: false,
        handshake_deadline,
    };
    h.settle(false);
    while !ops.is_empty() {
        let op = ops.byte();
        if link_common::tracing() {
            let letter = char::from(b'a' + (op.wrapping_sub(1) & 15));
            let next = &ops.0[..ops.0.len().min(3)];
            eprintln!("{:?} op {letter} then {next:02x?}", h.clock.elapsed());
        }
        h.step(op, &mut ops);
    }
    let now = h.now();
    h.conn.close(now);
    h.settle(false);
    assert!(h.closed);
    assert_eq!(
        h.conn.call(now, Target::Name("x".into()), vec![], None),
        Err(SendError::Closed)
    );
    h.conn.handle_timeout(now + Duration::from_secs(3600));
    assert_eq!(h.settle(true), (0, 0));
});
