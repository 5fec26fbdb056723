//! The heartbeat, the same on both sides: the `ping` the link exports and answers, and the
//! pings it sends the peer (one outstanding at a time, one per interval, each answered within
//! the timeout or the connection is declared dead).

use super::timers::{Timer, TimerTable};
use crate::protocol::{Function, LocalFn, RemoteFn, Value};
use crate::session::{Session, Target};
use std::time::{Duration, Instant};

/// Function keys from here up are the link's own (its exported `ping`, its ping callbacks).
/// Keys a driver chooses must stay below.
pub const RESERVED_FN_BASE: u64 = u64::MAX - 255;

/// The `ping` the link exports (answers the peer's heartbeat).
pub(crate) const PING_EXPORT: LocalFn = LocalFn(u64::MAX);
/// The callback the link passes with its own pings.
pub(crate) const PONG_CALLBACK: LocalFn = LocalFn(u64::MAX - 1);

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

/// The peer's `ping` in its interface, if it exports one.
pub(crate) fn remote_ping(session: &Session) -> Option<RemoteFn> {
    match session.remote()?.get("ping") {
        Some(Value::Function(Function::Remote(r))) => Some(*r),
        _ => None,
    }
}

/// Pings of one connection. Its deadlines are [`Timer::PingDue`] and [`Timer::PingAnswer`]
/// in the link's timer table; when `PingAnswer` fires the connection is dead.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    /// `None` (or zero, as upnode's `ping: 0`) never pings.
    interval: Option<Duration>,
    timeout: Duration,
    /// When the outstanding ping was sent.
    sent: Option<Instant>,
}

impl Heartbeat {
    pub fn new(interval: Option<Duration>, timeout: Duration) -> Heartbeat {
        Heartbeat {
            interval: interval.filter(|i| !i.is_zero()),
            timeout,
            sent: None,
        }
    }

    /// Whether it pings at all.
    pub fn is_enabled(&self) -> bool {
        self.interval.is_some()
    }

    /// How long an answer may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts pinging: the first ping goes out one interval from `now`.
    pub fn start(&mut self, timers: &mut TimerTable, now: Instant) {
        self.stop(timers);
        if let Some(i) = self.interval {
            timers.set_after(Timer::PingDue, now, i);
        }
    }

    /// Stops pinging and forgets the outstanding ping.
    pub fn stop(&mut self, timers: &mut TimerTable) {
        self.sent = None;
        timers.stop(Timer::PingDue);
        timers.stop(Timer::PingAnswer);
    }

    /// [`Timer::PingDue`] fired: pings the peer through `session` unless a ping is
    /// outstanding, and schedules the next one.
    pub fn ping(&mut self, timers: &mut TimerTable, session: &mut Session, now: Instant) {
        let Some(interval) = self.interval else {
            timers.stop(Timer::PingDue);
            return;
        };
        timers.set_after(Timer::PingDue, now, interval);
        if self.sent.is_some() {
            return;
        }
        if let Some(ping) = remote_ping(session) {
            let pong = vec![Value::from(PONG_CALLBACK)];
            if session.call(Target::Callback(ping), pong).is_ok() {
                self.sent = Some(now);
                timers.set_after(Timer::PingAnswer, now, self.timeout);
            }
        }
    }

    /// The answer arrived: the round trip time.
    pub fn answered(&mut self, timers: &mut TimerTable, now: Instant) -> Option<Duration> {
        timers.stop(Timer::PingAnswer);
        self.sent
            .take()
            .map(|sent| now.saturating_duration_since(sent))
    }
}
