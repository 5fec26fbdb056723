//! PROTOCOL.md §11: the captured Node ⇄ Node transcripts, reproduced byte for byte by two
//! Rust sessions given the same inputs.

use upnode_core::{
    Function, LocalFn, RemoteFn, Session, SessionConfig, SessionEvent, Target, Value,
};

const PING: LocalFn = LocalFn(100);
const TIME: LocalFn = LocalFn(1);
const AUTH: LocalFn = LocalFn(2);
const BEEP: LocalFn = LocalFn(3);
/// Each JavaScript closure passed as a callback is a distinct function: a fresh key each.
fn reply(n: u64) -> LocalFn {
    LocalFn(1000 + n)
}

fn session(exports: &[(&str, LocalFn)]) -> Session {
    let exports = Value::object(exports.iter().map(|(k, f)| (*k, Value::from(*f))));
    Session::new(exports, SessionConfig::default()).unwrap()
}

/// Moves everything `from` has to send into `to`; returns the lines sent.
fn pump(from: &mut Session, to: &mut Session) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(bytes) = from.poll_transmit() {
        let text = std::str::from_utf8(&bytes).unwrap();
        lines.extend(text.lines().map(str::to_owned));
        to.handle_input(&bytes).unwrap();
    }
    lines
}

fn next_call(s: &mut Session) -> (LocalFn, Vec<Value>) {
    loop {
        match s.poll_event() {
            Some(SessionEvent::Call { function, args }) => return (function, args),
            Some(SessionEvent::Remote | SessionEvent::Released { .. }) => continue,
            other => panic!("expected a call, got {other:?}"),
        }
    }
}

fn remote_fn(v: &Value) -> RemoteFn {
    match v.as_function() {
        Some(Function::Remote(r)) => r,
        other => panic!("expected a remote function, got {other:?}"),
    }
}

#[test]
fn simple_example_transcript_is_reproduced_byte_for_byte() {
    let date = "Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)";
    let mut client = session(&[("ping", PING)]);
    let mut server = session(&[("time", TIME), ("ping", PING)]);
    let mut c2s = pump(&mut client, &mut server);
    let mut s2c = pump(&mut server, &mut client);
    assert_eq!(client.poll_event(), Some(SessionEvent::Remote));
    assert_eq!(server.poll_event(), Some(SessionEvent::Remote));

    // Thirteen `time` transactions: callback ids 1..=13 on the client side.
    for i in 0..13 {
        client
            .call(Target::Method("time".into()), vec![Value::from(reply(i))])
            .unwrap();
        let sent = pump(&mut client, &mut server);
        let (f, args) = next_call(&mut server);
        assert_eq!(f, TIME);
        let cb = remote_fn(&args[0]);
        server.call(cb, vec![Value::from(date)]).unwrap();
        server.release(cb);
        let back = pump(&mut server, &mut client);
        let (f, args) = next_call(&mut client);
        assert_eq!((f, args), (reply(i), vec![Value::from(date)]));
        if i == 0 {
            c2s.extend(sent);
            s2c.extend(back.into_iter().filter(|l| !l.contains("cull")));
        }
    }
    // Client heartbeat: our callback id 14; the server answers with no arguments.
    client
        .call(Target::Method("ping".into()), vec![Value::from(reply(100))])
        .unwrap();
    let ping_line = pump(&mut client, &mut server);
    let (f, args) = next_call(&mut server);
    assert_eq!(f, PING);
    server.call(remote_fn(&args[0]), vec![]).unwrap();
    let pong_line = pump(&mut server, &mut client);
    // Server heartbeat of the client: the server's callback id 2.
    server
        .call(Target::Method("ping".into()), vec![Value::from(reply(200))])
        .unwrap();
    let server_ping = pump(&mut server, &mut client);
    let (f, args) = next_call(&mut client);
    assert_eq!(f, reply(100), "the pong");
    assert!(args.is_empty());
    let (f, args) = next_call(&mut client);
    assert_eq!(f, PING);
    client.call(remote_fn(&args[0]), vec![]).unwrap();
    let client_pong = pump(&mut client, &mut server);

    let got: Vec<String> = [
        c2s[0].clone(),
        s2c[0].clone(),
        c2s[1].clone(),
        s2c[1].clone(),
        ping_line[0].clone(),
        pong_line[0].clone(),
        server_ping[0].clone(),
        client_pong[0].clone(),
    ]
    .into();
    let want = [
        r#"{"method":"methods","arguments":[{"ping":"[Function]"}],"callbacks":{"0":["0","ping"]},"links":[]}"#,
        r#"{"method":"methods","arguments":[{"time":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","time"],"1":["0","ping"]},"links":[]}"#,
        r#"{"method":0,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#,
        r#"{"method":1,"arguments":["Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)"],"callbacks":{},"links":[]}"#,
        r#"{"method":1,"arguments":["[Function]"],"callbacks":{"14":["0"]},"links":[]}"#,
        r#"{"method":14,"arguments":[],"callbacks":{},"links":[]}"#,
        r#"{"method":0,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}"#,
        r#"{"method":2,"arguments":[],"callbacks":{},"links":[]}"#,
    ];
    assert_eq!(got, want);
}

#[test]
fn authenticated_example_transcript_is_reproduced_byte_for_byte() {
    let mut client = session(&[("ping", PING)]);
    let mut server = session(&[("auth", AUTH), ("ping", PING)]);
    let mut lines = Vec::new();
    lines.extend(pump(&mut client, &mut server));
    lines.extend(pump(&mut server, &mut client));
    assert_eq!(client.poll_event(), Some(SessionEvent::Remote));

    client
        .call(
            Target::Method("auth".into()),
            vec![
                Value::from("moo"),
                Value::from("hax"),
                Value::from(reply(1)),
            ],
        )
        .unwrap();
    lines.extend(pump(&mut client, &mut server));
    let (f, args) = next_call(&mut server);
    assert_eq!(f, AUTH);
    assert_eq!(&args[..2], &[Value::from("moo"), Value::from("hax")]);
    let cb = remote_fn(&args[2]);
    server
        .call(
            cb,
            vec![Value::Null, Value::object([("beep", Value::from(BEEP))])],
        )
        .unwrap();
    lines.extend(pump(&mut server, &mut client));
    let (f, args) = next_call(&mut client);
    assert_eq!(f, reply(1));
    assert!(args[0].is_null());
    let beep = remote_fn(args[1].get("beep").unwrap());
    client.call(beep, vec![Value::from(reply(2))]).unwrap();
    lines.extend(pump(&mut client, &mut server));
    let (f, args) = next_call(&mut server);
    assert_eq!(f, BEEP);
    server
        .call(
            remote_fn(&args[0]),
            vec![Value::from("boop at 1970-01-01T00:00:00.000Z")],
        )
        .unwrap();
    lines.extend(pump(&mut server, &mut client));
    let (f, args) = next_call(&mut client);
    assert_eq!(f, reply(2));
    assert_eq!(args, vec![Value::from("boop at 1970-01-01T00:00:00.000Z")]);

    let want = [
        r#"{"method":"methods","arguments":[{"ping":"[Function]"}],"callbacks":{"0":["0","ping"]},"links":[]}"#,
        r#"{"method":"methods","arguments":[{"auth":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","auth"],"1":["0","ping"]},"links":[]}"#,
        r#"{"method":0,"arguments":["moo","hax","[Function]"],"callbacks":{"1":["2"]},"links":[]}"#,
        r#"{"method":1,"arguments":[null,{"beep":"[Function]"}],"callbacks":{"2":["1","beep"]},"links":[]}"#,
        r#"{"method":2,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}"#,
        r#"{"method":2,"arguments":["boop at 1970-01-01T00:00:00.000Z"],"callbacks":{},"links":[]}"#,
    ];
    assert_eq!(lines, want);
}
