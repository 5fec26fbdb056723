//! The one test harness for the link state machines ([`ClientLink`], [`ServerConn`]), shared by
//! `link_client.rs`, `link_server.rs` and the simulation (`simulation.rs` + `sim/`), each of
//! which includes it with `mod harness;`.
//!
//! - A virtual [`Clock`]: one real `Instant` read once, every instant handed to a machine is
//!   `base + Duration`; `set`/`advance` move it, `offset` turns a machine's instant back.
//! - [`Machine`]: what drives both machines alike (events, transmits, timer); [`poll_output`]
//!   takes the next output in the driving contract's order (events first), [`drain_events`] and
//!   [`drain_lines`] take all of one kind, [`earliest_timer`] finds the next timer of many.
//! - [`Drive`]: a machine with its clock, as the named scenarios use it: `events()`, `sent()`,
//!   `timeout(d)`, `fire_next_timeout()` (advance to `poll_timeout` and fire it), and the common
//!   assertions `timeout_exactly(d)` (nothing 1 ns early), `expect_events`, `expect_quiet`.
//! - Builders for the events the scenarios expect: [`remote`], [`up`], [`ready`], [`down`],
//!   [`called`], [`call_failed`], [`open_transport`], [`close_transport`], [`reconnecting`].
//! - [`client`]: a [`ClientLink`] facing a scripted §11 server ([`client::Client`]: `input`,
//!   `connected`, `handshake`, `up`, `reconnect_up`, `down_for`, `call_time`);
//!   [`server`]: a [`ServerConn`] facing a scripted §11 client ([`server::Server`]: `input`,
//!   `call`, `call_beep`; `open`, `ended`, `assert_ended_by`).
//!
//! Every core type the link tests name is imported here, in one place: a rename or a move in
//! `upnode-core` is followed by editing the `pub use` lines below.

// Each test binary uses its own part of the harness.
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod server;

use bytes::Bytes;
use std::sync::OnceLock;

// ---- the core types the link tests name ---------------------------------------------------------

pub use std::time::{Duration, Instant};
pub use upnode_core::config::{
    Backoff, ClientConfig, CullPolicy, Exponential, Jitter, ReconnectPolicy, ServerConfig,
    WhenFull, DEFAULT_CONNECT_STEP_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_RECONNECT_ATTEMPTS, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, DEFAULT_QUEUE_CAP,
    DEFAULT_RECONNECT_DELAY, DEFAULT_SERVER_HANDSHAKE_TIMEOUT, DEFAULT_SERVER_PING_INTERVAL,
    DEFAULT_SERVER_PING_TIMEOUT, DEFAULT_STABLE_AFTER,
};
pub use upnode_core::link::rng::SplitMix64;
pub use upnode_core::link::{
    CallFailure, CallId, ClientLink, ConnId, LinkError, LinkEvent, LinkState, SendError,
    ServerConn, TransactError, TxId, RESERVED_FN_BASE,
};
pub use upnode_core::{
    Function, LocalError, LocalFn, RemoteError, RemoteFn, SessionConfig, Target, Value,
};

// ---- time -----------------------------------------------------------------------------------------

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One nanosecond: what "just before a deadline" is.
pub const NS: Duration = Duration::from_nanos(1);

/// Virtual time: a base instant and how far past it "now" is.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    now: Duration,
}

impl Clock {
    /// A clock at zero on a fresh real instant (the one clock reading of a test).
    pub fn start() -> Clock {
        // Test code needs one real instant to offset from; nothing else reads a clock.
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        Clock::from_base(base)
    }

    /// A clock at zero on the one real instant this test process shares (the simulation's
    /// seeds all offset from it).
    pub fn shared() -> Clock {
        static BASE: OnceLock<Instant> = OnceLock::new();
        #[allow(clippy::disallowed_methods)]
        let base = *BASE.get_or_init(Instant::now);
        Clock::from_base(base)
    }

    pub fn from_base(base: Instant) -> Clock {
        Clock {
            base,
            now: Duration::ZERO,
        }
    }

    /// The instant of virtual time zero.
    pub fn base(&self) -> Instant {
        self.base
    }

    /// The instant `d` after zero.
    pub fn at(&self, d: Duration) -> Instant {
        self.base + d
    }

    /// How far after zero a machine's instant is.
    pub fn offset(&self, i: Instant) -> Duration {
        i.duration_since(self.base)
    }

    /// Virtual now.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Virtual now as an instant.
    pub fn instant(&self) -> Instant {
        self.at(self.now)
    }

    /// Moves now to `d` (time never goes back: an earlier `d` is a bug in the test).
    pub fn set(&mut self, d: Duration) {
        assert!(d >= self.now, "time went back: {d:?} < {:?}", self.now);
        self.now = d;
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }
}

// ---- the machines ---------------------------------------------------------------------------------

/// The connection id a [`ServerConn`] reports (it has one transport).
pub const SERVER_CONN: ConnId = ConnId(0);

/// What a driver does alike to both state machines.
pub trait Machine {
    fn next_event(&mut self) -> Option<LinkEvent>;
    /// The next bytes to write, with their transport ([`SERVER_CONN`] for a server connection).
    fn next_transmit(&mut self) -> Option<(ConnId, Bytes)>;
    fn timer(&self) -> Option<Instant>;
    fn fire(&mut self, now: Instant);
}

impl Machine for ClientLink {
    fn next_event(&mut self) -> Option<LinkEvent> {
        self.poll_event()
    }
    fn next_transmit(&mut self) -> Option<(ConnId, Bytes)> {
        self.poll_transmit()
    }
    fn timer(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn fire(&mut self, now: Instant) {
        self.handle_timeout(now)
    }
}

impl Machine for ServerConn {
    fn next_event(&mut self) -> Option<LinkEvent> {
        self.poll_event()
    }
    fn next_transmit(&mut self) -> Option<(ConnId, Bytes)> {
        self.poll_transmit().map(|b| (SERVER_CONN, b))
    }
    fn timer(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn fire(&mut self, now: Instant) {
        self.handle_timeout(now)
    }
}

/// One output of a machine.
#[derive(Debug)]
pub enum Output {
    Event(LinkEvent),
    Transmit(ConnId, Bytes),
}

/// The next output in the driving contract's order: every event before any transmit.
pub fn poll_output(m: &mut impl Machine) -> Option<Output> {
    if let Some(ev) = m.next_event() {
        return Some(Output::Event(ev));
    }
    m.next_transmit().map(|(c, b)| Output::Transmit(c, b))
}

/// The earliest timer among `machines`, as virtual time, with the machine's index (the lowest
/// index when several are due at once).
pub fn earliest_timer<'a, M: Machine + 'a>(
    clock: &Clock,
    machines: impl IntoIterator<Item = &'a M>,
) -> Option<(Duration, usize)> {
    machines
        .into_iter()
        .enumerate()
        .filter_map(|(i, m)| m.timer().map(|t| (t, i)))
        .min()
        .map(|(t, i)| (clock.offset(t), i))
}

/// Every event pending.
pub fn drain_events(m: &mut impl Machine) -> Vec<LinkEvent> {
    std::iter::from_fn(|| m.next_event()).collect()
}

/// Every line transmitted since the last look, with its transport; each write must be whole
/// lines.
pub fn drain_lines(m: &mut impl Machine) -> Vec<(ConnId, String)> {
    let mut out = Vec::new();
    while let Some((conn, bytes)) = m.next_transmit() {
        let text = std::str::from_utf8(&bytes).expect("utf-8").to_owned();
        assert!(text.ends_with('\n'), "whole lines only: {text:?}");
        out.extend(text.lines().map(|l| (conn, l.to_owned())));
    }
    out
}

/// A machine under test with its clock: the helpers every scenario uses.
pub trait Drive {
    type M: Machine;
    fn machine(&self) -> &Self::M;
    fn machine_mut(&mut self) -> &mut Self::M;
    fn clock(&self) -> &Clock;
    fn clock_mut(&mut self) -> &mut Clock;

    /// Virtual time zero.
    fn t0(&self) -> Instant {
        self.clock().base()
    }

    fn at(&self, d: Duration) -> Instant {
        self.clock().at(d)
    }

    fn events(&mut self) -> Vec<LinkEvent> {
        drain_events(self.machine_mut())
    }

    /// Every line transmitted since the last look, with its transport.
    fn sent_on(&mut self) -> Vec<(ConnId, String)> {
        drain_lines(self.machine_mut())
    }

    /// Every line transmitted since the last look.
    fn sent(&mut self) -> Vec<String> {
        self.sent_on().into_iter().map(|(_, l)| l).collect()
    }

    /// `handle_timeout` at `d`, whatever the timer says.
    fn timeout(&mut self, d: Duration) {
        let now = self.at(d);
        self.machine_mut().fire(now);
    }

    /// When the machine's timer is due, as virtual time.
    fn next_timeout(&self) -> Option<Duration> {
        self.machine().timer().map(|i| self.clock().offset(i))
    }

    /// Advances the clock to the machine's timer and fires it; `None` (and nothing done) when
    /// no timer is armed. A timer behind the clock fails the test (time never goes back).
    fn fire_next_timeout(&mut self) -> Option<Duration> {
        let due = self.next_timeout()?;
        self.clock_mut().set(due);
        self.timeout(due);
        Some(due)
    }

    /// `handle_timeout` 1 ns before `d` (nothing may be reported) and then at `d`; what `d`
    /// reports. For deadlines that must fire exactly on time.
    #[track_caller]
    fn timeout_exactly(&mut self, d: Duration) -> Vec<LinkEvent> {
        self.timeout(d - NS);
        assert_eq!(self.events(), [], "1 ns early is too early");
        self.timeout(d);
        self.events()
    }

    /// The pending events are exactly `expected`.
    #[track_caller]
    fn expect_events(&mut self, expected: &[LinkEvent]) {
        assert_eq!(self.events(), expected);
    }

    /// Nothing is pending: no event, nothing to write.
    #[track_caller]
    fn expect_quiet(&mut self) {
        assert_eq!(self.events(), []);
        assert_eq!(self.sent_on(), []);
    }
}

/// `impl Drive for $ty` where `$ty` holds the machine in `$field` and a `clock: Clock`.
macro_rules! impl_drive {
    ($ty:ty, $field:ident: $m:ty) => {
        impl $crate::harness::Drive for $ty {
            type M = $m;
            fn machine(&self) -> &$m {
                &self.$field
            }
            fn machine_mut(&mut self) -> &mut $m {
                &mut self.$field
            }
            fn clock(&self) -> &$crate::harness::Clock {
                &self.clock
            }
            fn clock_mut(&mut self) -> &mut $crate::harness::Clock {
                &mut self.clock
            }
        }
    };
}
use impl_drive;

// ---- events the scenarios expect ------------------------------------------------------------------

pub fn remote(conn: ConnId) -> LinkEvent {
    LinkEvent::Remote { conn }
}

pub fn up(conn: ConnId) -> LinkEvent {
    LinkEvent::Up { conn }
}

pub fn ready(tx: TxId, conn: ConnId) -> LinkEvent {
    LinkEvent::TransactionReady { tx, conn }
}

pub fn close_transport(conn: ConnId) -> LinkEvent {
    LinkEvent::CloseTransport { conn }
}

pub fn open_transport(conn: ConnId, attempt: u32) -> LinkEvent {
    LinkEvent::OpenTransport { conn, attempt }
}

pub fn reconnecting(attempt: u32, delay: Duration) -> LinkEvent {
    LinkEvent::Reconnecting { attempt, delay }
}

pub fn down(reason: LinkError) -> LinkEvent {
    LinkEvent::Down { reason }
}

pub fn transport_closed() -> LinkError {
    LinkError::TransportClosed { detail: None }
}

/// Our `function` called by the peer on `conn` with `args` (the answer to `answers`, if any).
pub fn called(
    conn: ConnId,
    function: LocalFn,
    args: Vec<Value>,
    answers: Option<CallId>,
) -> LinkEvent {
    LinkEvent::Call {
        conn,
        function,
        args,
        answers,
    }
}

/// A call made without a reply callback failed.
pub fn call_failed(call: CallId, reason: CallFailure) -> LinkEvent {
    LinkEvent::CallFailed {
        call,
        reply: None,
        reason,
    }
}

/// A call made with reply callback `reply` failed.
pub fn reply_failed(call: CallId, reply: LocalFn, reason: CallFailure) -> LinkEvent {
    LinkEvent::CallFailed {
        call,
        reply: Some(reply),
        reason,
    }
}
