//! Throughput of the session's hot paths, per message, on the §11 transcript lines.
//!
//! - `decode_dispatch`: received lines through `handle_input`, the events drained, and every
//!   received callback released again (so the tables stay the same size and a `cull` is
//!   written and drained), many lines per read (`batch`) and one line per read (`single`).
//! - `encode`: `Session::call` writing the same lines, drained with `poll_transmit` or
//!   `transmit_into`.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use upnode_core::protocol::parse_message;
use upnode_core::{
    Function, LocalFn, RemoteFn, Session, SessionConfig, SessionEvent, Target, Value,
};

const SERVER_METHODS: &[u8] = b"{\"method\":\"methods\",\"arguments\":[{\"time\":\"[Function]\",\"ping\":\"[Function]\"}],\"callbacks\":{\"0\":[\"0\",\"time\"],\"1\":[\"0\",\"ping\"]},\"links\":[]}\n";
const CLIENT_METHODS: &[u8] = b"{\"method\":\"methods\",\"arguments\":[{\"ping\":\"[Function]\"}],\"callbacks\":{\"0\":[\"0\",\"ping\"]},\"links\":[]}\n";
/// The client calls the server's `time` (its id 0) passing its callback 1.
const CALL_LINE: &[u8] =
    b"{\"method\":0,\"arguments\":[\"[Function]\"],\"callbacks\":{\"1\":[\"0\"]},\"links\":[]}\n";
/// The server answers through the client's callback 1.
const REPLY_LINE: &[u8] = b"{\"method\":1,\"arguments\":[\"Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)\"],\"callbacks\":{},\"links\":[]}\n";
const DATE: &str = "Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)";

const BATCH: usize = 1000;

/// A server exporting `time` and `ping`, after the client's `methods`.
fn server() -> Session {
    let exports = Value::object([
        ("time", Value::from(LocalFn(0))),
        ("ping", Value::from(LocalFn(1))),
    ]);
    let mut s = Session::new(exports, SessionConfig::default()).unwrap();
    assert_eq!(&s.poll_transmit().unwrap()[..], SERVER_METHODS);
    s.handle_input(CLIENT_METHODS).unwrap();
    assert_eq!(s.poll_event(), Some(SessionEvent::Remote));
    s
}

/// A client exporting `ping`, after the server's `methods`, that has called `time` once so
/// its callback (our id 1, `LocalFn(5)`) is live for the server to answer through.
fn client() -> Session {
    let exports = Value::object([("ping", Value::from(LocalFn(1)))]);
    let mut s = Session::new(exports, SessionConfig::default()).unwrap();
    assert_eq!(&s.poll_transmit().unwrap()[..], CLIENT_METHODS);
    s.handle_input(SERVER_METHODS).unwrap();
    assert_eq!(s.poll_event(), Some(SessionEvent::Remote));
    s.call(Target::Method("time".into()), vec![Value::from(LocalFn(5))])
        .unwrap();
    assert_eq!(&s.poll_transmit().unwrap()[..], CALL_LINE);
    s
}

/// Drains events, releasing every received callback; returns the number of calls seen.
fn drain(s: &mut Session, out: &mut BytesMut) -> usize {
    let mut calls = 0;
    while let Some(ev) = s.poll_event() {
        if let SessionEvent::Call { args, .. } = ev {
            calls += 1;
            for a in &args {
                if let Value::Function(Function::Remote(r)) = a {
                    s.release(*r);
                }
            }
        }
    }
    s.transmit_into(out);
    out.clear();
    calls
}

fn decode_dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_dispatch");
    for (name, line, mut session) in [
        ("call_line", CALL_LINE, server()),
        ("reply_line", REPLY_LINE, client()),
    ] {
        // Sanity: one line is one call, and a released callback is culled.
        session.handle_input(line).unwrap();
        let mut out = BytesMut::new();
        assert_eq!(drain(&mut session, &mut out), 1);
        let held = session.held_callbacks();

        let batch: Vec<u8> = line.repeat(BATCH);
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(format!("{name}/batch_{BATCH}_per_read"), |b| {
            b.iter(|| {
                session.handle_input(black_box(&batch)).unwrap();
                assert_eq!(drain(&mut session, &mut out), BATCH);
            })
        });
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{name}/one_per_read"), |b| {
            b.iter(|| {
                session.handle_input(black_box(line)).unwrap();
                assert_eq!(drain(&mut session, &mut out), 1);
            })
        });
        assert_eq!(session.held_callbacks(), held, "tables did not grow");
        assert_eq!(session.exported_callbacks(), 2);
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));

    // The client's call of `time`: our callback keeps its id, so every line is the same.
    let mut cl = client();
    let call = |s: &mut Session| {
        s.call(Target::Method("time".into()), vec![Value::from(LocalFn(5))])
            .unwrap()
    };

    // The server's answer through the client's callback 1.
    let mut sv = server();
    sv.handle_input(CALL_LINE).unwrap();
    let Some(SessionEvent::Call { .. }) = sv.poll_event() else {
        panic!("expected the call")
    };
    let reply = |s: &mut Session| {
        s.call(RemoteFn(1), vec![Value::from(black_box(DATE))])
            .unwrap()
    };
    reply(&mut sv);
    assert_eq!(&sv.poll_transmit().unwrap()[..], REPLY_LINE);

    let mut out = BytesMut::new();
    for (name, session, line, f) in [
        (
            "call_line",
            &mut cl,
            CALL_LINE,
            &call as &dyn Fn(&mut Session),
        ),
        ("reply_line", &mut sv, REPLY_LINE, &reply),
    ] {
        // `poll_transmit` hands out a fresh buffer per drain.
        g.bench_function(format!("{name}/poll_transmit"), |b| {
            b.iter(|| {
                f(session);
                let bytes = session.poll_transmit().unwrap();
                assert_eq!(bytes.len(), line.len());
                black_box(bytes);
            })
        });
        // `transmit_into` appends to the driver's buffer.
        g.bench_function(format!("{name}/transmit_into"), |b| {
            b.iter(|| {
                f(session);
                session.transmit_into(&mut out);
                assert_eq!(out.len(), line.len());
                out.clear();
            })
        });
        assert_eq!(session.exported_callbacks(), 2, "tables did not grow");
    }
    g.finish();
}

/// `parse_message` alone, on the lines of the `loopback` benchmark's echo: the call (an
/// object and the answer callback) and its answer.
fn parse(c: &mut Criterion) {
    const ECHO_CALL: &[u8] = br#"{"method":"echo","arguments":[{"seq":123456,"data":"upnode loopback echo 0123456789"},"[Function]"],"callbacks":{"123456":[1]},"links":[]}"#;
    const ECHO_ANSWER: &[u8] = br#"{"method":123456,"arguments":[{"seq":123456,"data":"upnode loopback echo 0123456789"}],"callbacks":{},"links":[]}"#;
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    for (name, line) in [("echo_call", ECHO_CALL), ("echo_answer", ECHO_ANSWER)] {
        assert!(parse_message(line).is_ok());
        g.bench_function(name, |b| b.iter(|| parse_message(black_box(line)).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, decode_dispatch, encode, parse);
criterion_main!(benches);
