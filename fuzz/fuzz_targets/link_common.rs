//! Shared by `client_link_ops` and `server_conn_ops`: the input reader, the virtual clock,
//! session settings, the peer's lines (PROTOCOL.md §11 and worse) and the check of what a
//! link writes.
//!
//! Bytes that pick a connection use their top two bits (`00`/`01` the current one, `10` the
//! one before, `11` the next one), so printable ASCII always means the current connection
//! and a seed can be written by hand.

use std::time::{Duration, Instant};
use upnode_core::config::CullPolicy;
use upnode_core::protocol::parse_message;
use upnode_core::SessionConfig;

/// Reads the input as a little program; past the end every byte is 0.
pub struct Ops<'a>(pub &'a [u8]);

impl Ops<'_> {
    pub fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    pub fn bytes(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Virtual time: one real reading per input, then `t0 + elapsed`, never backwards.
pub struct Clock {
    t0: Instant,
    elapsed: Duration,
}

impl Clock {
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Clock {
        Clock {
            t0: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    pub fn now(&self) -> Instant {
        self.t0 + self.elapsed
    }

    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    pub fn advance(&mut self, d: Duration) {
        self.elapsed += d;
    }

    /// Moves to `t` if it is later than now.
    pub fn advance_to(&mut self, t: Instant) {
        if let Some(d) = t.checked_duration_since(self.now()) {
            self.elapsed += d;
        }
    }
}

/// Steps of the `advance` op: nothing, around the timeouts the configs use, and past them.
pub const STEPS: [Duration; 12] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(1),
    Duration::from_millis(99),
    Duration::from_millis(300),
    Duration::from_millis(999),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(15),
    Duration::from_secs(61),
];

/// A timeout for a call or a transaction.
pub fn timeout(b: u8) -> Option<Duration> {
    [
        None,
        Some(Duration::from_millis(100)),
        Some(Duration::from_secs(1)),
        Some(Duration::from_secs(10)),
    ][usize::from(b & 3)]
}

/// Session limits from two header bytes: small caps so that the fuzzer reaches them.
pub fn session_config(a: u8, b: u8) -> SessionConfig {
    let mut s = SessionConfig::default();
    s.max_line_len = [4096, 512, 256, 200][usize::from(a & 3)];
    s.cull = [
        CullPolicy::Always,
        CullPolicy::ExceptAnswers,
        CullPolicy::Never,
        CullPolicy::ExceptAnswers,
    ][usize::from((a >> 2) & 3)];
    s.escape_non_ascii = a & 0x10 != 0;
    // The peer's callbacks: 2..=9.
    s.max_callbacks = 2 + usize::from(b & 7);
    // Ours (exports and `ping` included): 1..=16.
    s.max_local_callbacks = 1 + usize::from((b >> 3) & 15);
    s
}

/// The wire id a line names: readable digits map to 0..=15, high bytes to 0..=127.
fn wire_id(b: u8) -> u64 {
    if b < 0x80 {
        u64::from(b & 15)
    } else {
        u64::from(b & 0x7f)
    }
}

/// `methods` lines: §11's (server simple, server authenticated, client), then odd ones.
const METHODS: [&str; 8] = [
    r#"{"method":"methods","arguments":[{"time":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","time"],"1":["0","ping"]},"links":[]}"#,
    r#"{"method":"methods","arguments":[{"auth":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","auth"],"1":["0","ping"]},"links":[]}"#,
    r#"{"method":"methods","arguments":[{"ping":"[Function]"}],"callbacks":{"0":["0","ping"]},"links":[]}"#,
    r#"{"method":"methods","arguments":[{"time":"[Function]"}],"callbacks":{"0":["0","time"]},"links":[]}"#,
    r#"{"method":"methods","arguments":[{"ping":1,"beep":"[Function]","n":[1,2]}],"callbacks":{"0":["0","beep"]},"links":[]}"#,
    r#"{"method":"methods","arguments":[],"callbacks":{},"links":[]}"#,
    r#"{"method":"methods","arguments":[5,{"ping":"[Function]"}],"callbacks":{"0":["1","ping"]},"links":[]}"#,
    r#"{"method":"methods","arguments":[{"ping":"[Function]","a":{"b":"[Function]"}}],"callbacks":{"3":["0","ping"],"4":["0","a","b"]},"links":[]}"#,
];

/// Lines a peer should not send.
const GARBAGE: [&[u8]; 12] = [
    b"null",
    b"{",
    b"[]",
    b"",
    b"\r",
    br#"{"method":"x"}"#,
    br#"{"method":1.5,"arguments":[]}"#,
    br#"{"method":"cull","arguments":["a",-1,1e300]}"#,
    br#"{"method":0,"arguments":["[Function]"],"callbacks":{"9":["1"]},"links":[]}"#,
    br#"{"method":"methods","arguments":[{"a":{"b":1}}],"callbacks":{},"links":[{"from":["0","a"],"to":["0","c"]}]}"#,
    br#"{"method":"time","arguments":["\ud800",1e21,-0],"callbacks":{"2":["0"]},"links":[]}"#,
    b"{\"method\":\"time\",\"arguments\":[\"\xc3\xa9\xff\"]}",
];

/// Methods called by name.
const NAMES: [&str; 6] = ["ping", "time", "beep", "auth", "methods", "cull"];

/// Appends one line from the peer to `pipe`. Three bytes: the kind, then `x` and `y`, most
/// often wire ids.
pub fn push_line(pipe: &mut Vec<u8>, ops: &mut Ops, max_line: usize) {
    let kind = ops.byte();
    let (x, y) = (ops.byte(), ops.byte());
    let (wx, wy) = (wire_id(x), wire_id(y));
    let line: String = match kind & 15 {
        0..=2 => METHODS[usize::from(kind & 15)].to_owned(),
        3 => METHODS[3 + usize::from(x) % (METHODS.len() - 3)].to_owned(),
        // An answer, a pong, our `ping` called without a callback.
        4 => format!(r#"{{"method":{wx},"arguments":[],"callbacks":{{}},"links":[]}}"#),
        // A ping with its callback; `time` called with an answer callback.
        5 => format!(
            r#"{{"method":{wx},"arguments":["[Function]"],"callbacks":{{"{wy}":["0"]}},"links":[]}}"#
        ),
        // The authenticated example's answer.
        6 => format!(
            r#"{{"method":{wx},"arguments":[null,{{"beep":"[Function]"}}],"callbacks":{{"{wy}":["1","beep"]}},"links":[]}}"#
        ),
        7 => format!(
            r#"{{"method":{wx},"arguments":["Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)"],"callbacks":{{}},"links":[]}}"#
        ),
        // The authenticated example's `auth` call.
        8 => format!(
            r#"{{"method":{wx},"arguments":["moo","hax","[Function]"],"callbacks":{{"{wy}":["2"]}},"links":[]}}"#
        ),
        9 => format!(r#"{{"method":"cull","arguments":[{wx},{wy}]}}"#),
        10 => format!(
            r#"{{"method":"{}","arguments":["[Function]"],"callbacks":{{"{wy}":["0"]}},"links":[]}}"#,
            NAMES[usize::from(x) % NAMES.len()]
        ),
        // Many callbacks at once, to pass the caps.
        11 => {
            let k = 1 + u64::from(y & 15);
            let args = vec![r#""[Function]""#; k as usize].join(",");
            let cbs: Vec<String> = (0..k).map(|i| format!(r#""{}":["{i}"]"#, wx + i)).collect();
            format!(
                r#"{{"method":{},"arguments":[{args}],"callbacks":{{{}}},"links":[]}}"#,
                wire_id(y >> 4),
                cbs.join(",")
            )
        }
        12 => {
            pipe.extend_from_slice(GARBAGE[usize::from(x) % GARBAGE.len()]);
            pipe.push(b'\n');
            return;
        }
        // Around the line cap: one byte under, at, or over; with or without its newline.
        13 => {
            let len = max_line - 1 + usize::from(y % 3);
            let mut l = format!(r#"{{"method":{wx},"arguments":[""#);
            let pad = len.saturating_sub(l.len() + 3);
            l.extend(std::iter::repeat_n('a', pad));
            l.push_str("\"]}");
            if x & 0x40 != 0 {
                pipe.extend_from_slice(l.as_bytes());
                return;
            }
            l
        }
        // A callback inside an object.
        14 => format!(
            r#"{{"method":{wx},"arguments":[{{"a":["[Function]"]}}],"callbacks":{{"{wy}":["0","a","0"]}},"links":[]}}"#
        ),
        // A cycle.
        _ => format!(
            r#"{{"method":{wx},"arguments":[{{"self":"[Circular]"}},"[Function]"],"callbacks":{{"{wy}":["1"]}},"links":[{{"from":["0"],"to":["0","self"]}}]}}"#
        ),
    };
    pipe.extend_from_slice(line.as_bytes());
    pipe.push(b'\n');
}

/// Appends up to 31 raw bytes from the input to `pipe` (a partial line, binary junk).
pub fn push_raw(pipe: &mut Vec<u8>, ops: &mut Ops) {
    let n = usize::from(ops.byte() & 31);
    pipe.extend_from_slice(ops.bytes(n));
}

/// The next chunk to deliver: `b`'s low six bits are its size less one (63: all of it).
pub fn take_chunk(pipe: &mut Vec<u8>, b: u8) -> Vec<u8> {
    let n = match b & 63 {
        63 => pipe.len(),
        n => usize::from(n) + 1,
    };
    pipe.drain(..n.min(pipe.len())).collect()
}

/// What a link writes: whole, non-empty lines, each a message we can read back, pure ASCII
/// when asked.
pub fn check_transmit(bytes: &[u8], ascii: bool) {
    assert_eq!(bytes.last(), Some(&b'\n'), "not whole lines: {bytes:?}");
    for line in bytes[..bytes.len() - 1].split(|&b| b == b'\n') {
        assert!(!line.is_empty(), "an empty line in {bytes:?}");
        if let Err(e) = parse_message(line) {
            panic!("we wrote a line we cannot read ({e}): {line:?}");
        }
        if ascii {
            assert!(line.is_ascii(), "non-ASCII with escape_non_ascii: {line:?}");
        }
    }
}

/// Whether to print each step and event to stderr (`LINK_FUZZ_TRACE=1`), for reading a seed
/// or a crash: `LINK_FUZZ_TRACE=1 fuzz/target/*/release/client_link_ops <input>`.
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LINK_FUZZ_TRACE").is_some())
}
