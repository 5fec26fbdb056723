//! A session exporting `time`, `ping` and a data member, driven by the input: reads of
//! received bytes in sizes the input chooses, interleaved with our own calls (passing our
//! functions and the peer's callbacks), releases, retains and new exports.
//!
//! Checked after every step: nothing panics; buffered input stays within `max_line_len`;
//! both callback tables stay within `max_callbacks`; errors returned are fatal and those
//! reported as events are not; a failed session stays failed and sends nothing; a failed
//! call sends nothing and keeps no ids.

#![no_main]

use libfuzzer_sys::fuzz_target;
use upnode_core::{
    Function, LocalError, LocalFn, RemoteError, RemoteFn, Session, SessionConfig, SessionEvent,
    Target, Value,
};

const MAX_LINE: usize = 512;
const MAX_CALLBACKS: usize = 8;

fn exports(extra: u8) -> Value {
    let mut entries = vec![
        ("time", Value::from(LocalFn(0))),
        ("ping", Value::from(LocalFn(1))),
        ("beep", Value::from(5)),
    ];
    if extra & 1 == 1 {
        entries.push(("boop", Value::from(LocalFn(2))));
    }
    Value::object(entries)
}

/// Reads the input as a little program.
struct Ops<'a>(&'a [u8]);

impl Ops<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

fuzz_target!(|data: &[u8]| {
    let mut config = SessionConfig::default();
    config.max_line_len = MAX_LINE;
    config.max_callbacks = MAX_CALLBACKS;
    let mut s = Session::new(exports(0), config).expect("exports fit the limits");
    assert!(s.poll_transmit().is_some(), "methods is queued at once");

    let mut fatal: Option<RemoteError> = None;
    let mut closed = false;
    // One entry per reference we hold on a peer callback.
    let mut held: Vec<RemoteFn> = Vec::new();
    let mut ops = Ops(data);
    while !ops.0.is_empty() {
        let op = ops.byte();
        match op & 7 {
            // Feed 1..=32 bytes (the length in the high bits), or the rest of the input.
            0..=3 => {
                let n = if op >> 3 == 31 {
                    usize::MAX
                } else {
                    usize::from(op >> 3) + 1
                };
                let chunk = ops.bytes(n);
                let r = s.handle_input(chunk);
                match (&fatal, r) {
                    (None, Ok(())) => {}
                    (None, Err(e)) => {
                        assert!(e.is_fatal(), "non-fatal error returned: {e}");
                        assert!(s.is_closed());
                        fatal = Some(e);
                        held.clear();
                    }
                    (Some(first), r) => assert_eq!(r, Err(first.clone())),
                }
            }
            // Call the peer by name, by its interface, or a held callback, with some of our
            // functions and maybe one of its callbacks as arguments.
            4 => {
                let b = ops.byte();
                let target = match b & 3 {
                    0 => Target::Name("cb".into()),
                    1 => Target::Method("ping".into()),
                    _ if held.is_empty() => Target::Name("x".into()),
                    _ => Target::Callback(held[usize::from(b >> 2) % held.len()]),
                };
                let mut args: Vec<Value> = (0..(b >> 5) & 3)
                    .map(|i| Value::from(LocalFn(u64::from(i) + u64::from(b & 0x1c))))
                    .collect();
                if b & 0x80 != 0 && !held.is_empty() {
                    let r = held[usize::from(b) % held.len()];
                    args.push(Value::array([Value::from(r), Value::from(LocalFn(9))]));
                }
                let before = s.exported_callbacks();
                let r = s.call(target, args);
                let sent = s.poll_transmit();
                match r {
                    Ok(()) => assert!(sent.is_some_and(|b| b.ends_with(b"\n"))),
                    Err(e) => {
                        assert!(sent.is_none(), "a failed call sent {sent:?}");
                        assert_eq!(s.exported_callbacks(), before, "a failed call kept ids");
                        match e {
                            LocalError::Closed => assert!(fatal.is_some() || closed),
                            LocalError::TooManyCallbacks { limit } => {
                                assert_eq!(limit, MAX_CALLBACKS)
                            }
                            LocalError::RemoteNotReady
                            | LocalError::NoSuchRemoteMethod { .. }
                            | LocalError::RemoteNotAFunction { .. } => {}
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
            }
            5 => {
                let b = ops.byte();
                if !held.is_empty() {
                    let r = held.swap_remove(usize::from(b) % held.len());
                    s.release(r);
                }
            }
            6 => {
                let b = ops.byte();
                if !held.is_empty() {
                    let r = held[usize::from(b) % held.len()];
                    match s.retain(r) {
                        Ok(()) => held.push(r),
                        Err(e) => panic!("retain of a held callback failed: {e}"),
                    }
                }
            }
            _ => {
                let b = ops.byte();
                if b == 0xff {
                    s.close();
                    closed = true;
                    held.clear();
                } else {
                    // The exports need new ids when the peer culled the old ones, and
                    // those may not fit; then nothing changes and nothing is sent.
                    let before = s.exports().clone();
                    match s.set_exports(exports(b)) {
                        Ok(()) => assert!(s.poll_transmit().is_some()),
                        Err(LocalError::Closed) => assert!(fatal.is_some() || closed),
                        Err(LocalError::TooManyCallbacks { .. }) => {
                            assert!(s.poll_transmit().is_none());
                            assert_eq!(s.exports(), &before);
                        }
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            }
        }

        assert!(s.buffered_input() <= MAX_LINE, "{}", s.buffered_input());
        assert!(
            s.held_callbacks() <= MAX_CALLBACKS,
            "{}",
            s.held_callbacks()
        );
        assert!(
            s.exported_callbacks() <= MAX_CALLBACKS,
            "{}",
            s.exported_callbacks()
        );
        while let Some(ev) = s.poll_event() {
            match ev {
                SessionEvent::Error(e) => assert!(!e.is_fatal(), "fatal error as event: {e}"),
                SessionEvent::Call { function, args } => {
                    assert!(function.0 <= 30, "{function:?} was never exported nor sent");
                    for a in &args {
                        a.for_each_function(&mut |f| match f {
                            Function::Remote(r) => held.push(r),
                            Function::Local(_) => panic!("a local function in received arguments"),
                        });
                    }
                }
                _ => {}
            }
        }
        while let Some(out) = s.poll_transmit() {
            assert!(fatal.is_none() && !closed, "sent after the end: {out:?}");
            assert_eq!(out.last(), Some(&b'\n'));
        }
    }
    if fatal.is_some() || closed {
        assert_eq!(s.held_callbacks(), 0);
        assert_eq!(s.exported_callbacks(), 0);
    }
});
