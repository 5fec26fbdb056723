//! upnode-core against real Node.js upnode 0.6.0 / dnode 1.2.2 peers, over TCP on
//! 127.0.0.1. Every test also checks that each line Node sent re-encodes to the
//! same bytes with our writer.

use upnode_core::{Function, LocalFn, RemoteFn, SessionEvent, Target, Value};
use upnode_tests::{
    accept_within_deadline, assert_reencodes_identically, empty_object, listen_local, reencode,
    text, Driver, NodePeer,
};

/// The `methods` line of the README time server, as captured in PROTOCOL.md §11.
const TIME_SERVER_METHODS: &str = r#"{"method":"methods","arguments":[{"time":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","time"],"1":["0","ping"]},"links":[]}"#;

/// What our side sends first when it exports nothing.
const EMPTY_METHODS: &str = r#"{"method":"methods","arguments":[{}],"callbacks":{},"links":[]}"#;

/// The features server exports, in order: nested, repeat, makeCycle, checkCycle,
/// echo, churn, and upnode's ping (ids 0..=6).
const FEATURES_METHODS: &str = r#"{"method":"methods","arguments":[{"nested":"[Function]","repeat":"[Function]","makeCycle":"[Function]","checkCycle":"[Function]","echo":"[Function]","churn":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","nested"],"1":["0","repeat"],"2":["0","makeCycle"],"3":["0","checkCycle"],"4":["0","echo"],"5":["0","churn"],"6":["0","ping"]},"links":[]}"#;

fn remote_fn(v: &Value) -> RemoteFn {
    match v.as_function() {
        Some(Function::Remote(r)) => r,
        other => panic!("expected a remote function, got {other:?} in {v:?}"),
    }
}

/// The lines Node sent, without any `cull` lines: Node sends those whenever its
/// garbage collector frees one of our callbacks, which no test can predict.
fn lines(d: &Driver) -> Vec<&str> {
    d.received()
        .iter()
        .map(|l| text(l))
        .filter(|l| !l.starts_with(r#"{"method":"cull","#))
        .collect()
}

fn sent(d: &Driver) -> Vec<&str> {
    d.sent().iter().map(|l| text(l)).collect()
}

/// `Date#toString()` in Node: `Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)`.
fn looks_like_js_date(s: &str) -> bool {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
    let Some((head, zone)) = s.split_once(" (") else {
        return false;
    };
    if !zone.ends_with(')') || zone.len() < 2 {
        return false;
    }
    let parts: Vec<&str> = head.split(' ').collect();
    let [day, month, date, year, time, offset] = parts[..] else {
        return false;
    };
    let clock: Vec<&str> = time.split(':').collect();
    DAYS.contains(&day)
        && MONTHS.contains(&month)
        && digits(date, 2)
        && digits(year, 4)
        && year >= "2020"
        && clock.len() == 3
        && clock.iter().all(|c| digits(c, 2))
        && offset.len() == 8
        && offset.starts_with("GMT")
        && matches!(&offset[3..4], "+" | "-")
        && digits(&offset[4..], 4)
}

#[test]
fn js_date_shape_check_accepts_node_output_only() {
    assert!(looks_like_js_date(
        "Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)"
    ));
    assert!(!looks_like_js_date("2026-11-25T12:17:20.000Z"));
    assert!(!looks_like_js_date("Wed Nov 25 2026 12:17:20 GMT+0000"));
}

#[test]
fn rust_client_calls_time_on_node_upnode_server() {
    const ON_TIME: LocalFn = LocalFn(1);
    let node = NodePeer::server("time_server.js");
    let mut d = Driver::connect(node.port(), empty_object());

    let remote = d.wait_remote();
    assert_eq!(
        remote.get("time").and_then(Value::as_function),
        Some(Function::Remote(RemoteFn(0)))
    );
    assert_eq!(
        remote.get("ping").and_then(Value::as_function),
        Some(Function::Remote(RemoteFn(1)))
    );

    d.call(Target::Method("time".into()), vec![Value::from(ON_TIME)]);
    let args = d.wait_call_of(ON_TIME);
    assert_eq!(args.len(), 1, "{args:?}");
    let t = args[0].as_str().expect("time is a string");
    assert!(looks_like_js_date(t), "not a JS Date string: {t:?}");
    let reply_line = format!(
        r#"{{"method":0,"arguments":[{}],"callbacks":{{}},"links":[]}}"#,
        Value::from(t)
    );
    d.release_value(&Value::Array(args));

    // Our side, byte for byte: methods first, then time called by its id (as Node's
    // own client does), with our callback as id 0.
    assert_eq!(
        sent(&d)[..2],
        [
            EMPTY_METHODS,
            r#"{"method":0,"arguments":["[Function]"],"callbacks":{"0":["0"]},"links":[]}"#,
        ]
    );
    // The server's methods line is §11's, and our writer reproduces it exactly.
    let methods = &d.received()[0];
    assert_eq!(text(methods), TIME_SERVER_METHODS);
    assert_eq!(
        reencode(methods),
        format!("{TIME_SERVER_METHODS}\n").into_bytes()
    );
    assert_eq!(lines(&d)[1], reply_line);
    assert_reencodes_identically(d.received());
}

#[test]
fn rust_client_authenticates_then_beeps() {
    const ON_AUTH: LocalFn = LocalFn(1);
    const ON_BEEP: LocalFn = LocalFn(2);
    let node = NodePeer::server("auth_server.js");

    // Right password: auth answers (null, {beep}); beep answers through our callback.
    let mut d = Driver::connect(node.port(), empty_object());
    let remote = d.wait_remote();
    assert!(remote.get("auth").is_some(), "{remote:?}");
    d.call(
        Target::Method("auth".into()),
        vec!["moo".into(), "hax".into(), ON_AUTH.into()],
    );
    let args = d.wait_call_of(ON_AUTH);
    assert_eq!(args.len(), 2, "{args:?}");
    assert!(args[0].is_null(), "{args:?}");
    let beep = remote_fn(args[1].get("beep").expect("object with beep"));
    assert_eq!(beep, RemoteFn(2), "server ids 0 and 1 are auth and ping");

    d.call(beep, vec![ON_BEEP.into()]);
    let reply = d.wait_call_of(ON_BEEP);
    assert_eq!(reply, vec![Value::from("boop at 1970-01-01T00:00:00.000Z")]);
    d.release_value(&Value::Array(args));

    assert_eq!(
        lines(&d),
        [
            r#"{"method":"methods","arguments":[{"auth":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","auth"],"1":["0","ping"]},"links":[]}"#,
            r#"{"method":0,"arguments":[null,{"beep":"[Function]"}],"callbacks":{"2":["1","beep"]},"links":[]}"#,
            r#"{"method":1,"arguments":["boop at 1970-01-01T00:00:00.000Z"],"callbacks":{},"links":[]}"#,
        ][..],
        "Node may only add cull lines at the end, and here it has none"
    );
    assert_eq!(
        sent(&d)[..3],
        [
            EMPTY_METHODS,
            r#"{"method":0,"arguments":["moo","hax","[Function]"],"callbacks":{"0":["2"]},"links":[]}"#,
            r#"{"method":2,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#,
        ]
    );
    assert_reencodes_identically(d.received());

    // Wrong password, on a second connection to the same server.
    let mut d = Driver::connect(node.port(), empty_object());
    d.wait_remote();
    d.call(
        Target::Method("auth".into()),
        vec!["moo".into(), "nope".into(), ON_AUTH.into()],
    );
    let args = d.wait_call_of(ON_AUTH);
    assert_eq!(args, vec![Value::from("ACCESS DENIED")]);
    assert_eq!(
        lines(&d)[1],
        r#"{"method":0,"arguments":["ACCESS DENIED"],"callbacks":{},"links":[]}"#
    );
    assert_reencodes_identically(d.received());
}

#[test]
fn nested_callbacks_round_trip() {
    const REPLY: LocalFn = LocalFn(10);
    const DONE: LocalFn = LocalFn(11);
    const AGAIN_REPLY: LocalFn = LocalFn(12);
    let node = NodePeer::server("features_server.js");
    let mut d = Driver::connect(node.port(), empty_object());
    d.wait_remote();
    assert_eq!(text(&d.received()[0]), FEATURES_METHODS);

    // A function inside an object goes to Node...
    let opts = Value::object([("tag", Value::from("t1")), ("reply", REPLY.into())]);
    d.call(Target::Method("nested".into()), vec![opts, DONE.into()]);
    assert_eq!(
        sent(&d)[1],
        r#"{"method":0,"arguments":[{"tag":"t1","reply":"[Function]"},"[Function]"],"callbacks":{"0":["0","reply"],"1":["1"]},"links":[]}"#
    );

    // ...which calls it with an object holding a function of its own...
    let got = d.wait_call_of(REPLY);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].get("tag"), Some(&Value::from("t1!")));
    let again = remote_fn(got[0].get("again").expect("again"));
    assert_eq!(d.wait_call_of(DONE), vec![Value::from("nested sent")]);

    // ...which we call with yet another function of ours, and Node answers through it.
    d.call(again, vec!["x".into(), AGAIN_REPLY.into()]);
    assert_eq!(
        d.wait_call_of(AGAIN_REPLY),
        vec![Value::from("again x for t1")]
    );
    d.release_value(&Value::Array(got));

    let l = lines(&d);
    assert_eq!(
        l[1],
        r#"{"method":0,"arguments":[{"tag":"t1!","again":"[Function]"}],"callbacks":{"7":["0","again"]},"links":[]}"#
    );
    assert_eq!(
        l[2],
        r#"{"method":1,"arguments":["nested sent"],"callbacks":{},"links":[]}"#
    );
    assert_eq!(
        l[3],
        r#"{"method":2,"arguments":["again x for t1"],"callbacks":{},"links":[]}"#
    );
    assert_eq!(
        sent(&d)[2],
        r#"{"method":7,"arguments":["x","[Function]"],"callbacks":{"2":["1"]},"links":[]}"#
    );
    assert_reencodes_identically(d.received());
}

#[test]
fn callback_called_many_times_by_node() {
    const EACH: LocalFn = LocalFn(1);
    const DONE: LocalFn = LocalFn(2);
    const N: u32 = 100;
    let node = NodePeer::server("features_server.js");
    let mut d = Driver::connect(node.port(), empty_object());
    d.wait_remote();
    d.call(
        Target::Method("repeat".into()),
        vec![N.into(), EACH.into(), DONE.into()],
    );
    for i in 0..N {
        let args = d.wait_call_of(EACH);
        assert_eq!(args, vec![Value::from(i), Value::from(N)], "call {i}");
    }
    assert_eq!(d.wait_call_of(DONE), vec![Value::from(N)]);

    let calls: Vec<&str> = lines(&d)
        .into_iter()
        .filter(|l| l.starts_with(r#"{"method":0,"#))
        .collect();
    assert_eq!(calls.len(), N as usize);
    assert_eq!(
        calls[99],
        r#"{"method":0,"arguments":[99,100],"callbacks":{},"links":[]}"#
    );
    assert_reencodes_identically(d.received());
}

#[test]
fn cyclic_argument_from_node_decodes_to_link() {
    const ON_CYCLE: LocalFn = LocalFn(1);
    let node = NodePeer::server("features_server.js");
    let mut d = Driver::connect(node.port(), empty_object());
    d.wait_remote();
    d.call(Target::Method("makeCycle".into()), vec![ON_CYCLE.into()]);
    let args = d.wait_call_of(ON_CYCLE);
    assert_eq!(
        args,
        vec![Value::object([
            ("name", Value::from("loop")),
            ("depth", Value::from(1)),
            ("self", Value::Link(vec!["0".into()])),
        ])]
    );
    assert_eq!(
        lines(&d)[1],
        r#"{"method":0,"arguments":[{"name":"loop","depth":1,"self":"[Circular]"}],"callbacks":{},"links":[{"from":["0"],"to":["0","self"]}]}"#
    );
    assert_reencodes_identically(d.received());
}

#[test]
fn cyclic_argument_from_rust_is_a_real_cycle_in_node() {
    const ON_CHECK: LocalFn = LocalFn(1);
    const ON_ECHO: LocalFn = LocalFn(2);
    let node = NodePeer::server("features_server.js");
    let mut d = Driver::connect(node.port(), empty_object());
    d.wait_remote();
    let ours = Value::object([
        ("name", Value::from("ours")),
        ("self", Value::Link(vec!["0".into()])),
    ]);

    // Node rebuilds the link as a true cycle: obj.self === obj.
    d.call(
        Target::Method("checkCycle".into()),
        vec![ours.clone(), ON_CHECK.into()],
    );
    assert_eq!(
        sent(&d)[1],
        r#"{"method":3,"arguments":[{"name":"ours","self":"[Circular]"},"[Function]"],"callbacks":{"0":["1"]},"links":[{"from":["0"],"to":["0","self"]}]}"#
    );
    let report = d.wait_call_of(ON_CHECK);
    assert_eq!(
        report,
        vec![Value::object([
            ("isCycle", Value::from(true)),
            ("name", Value::from("ours")),
            ("keys", Value::array(["name".into(), "self".into()])),
        ])]
    );

    // Echoed back, the cycle comes home as the same link.
    d.call(
        Target::Method("echo".into()),
        vec![ours.clone(), ON_ECHO.into()],
    );
    assert_eq!(d.wait_call_of(ON_ECHO), vec![ours]);
    assert_eq!(
        lines(&d)[2],
        r#"{"method":1,"arguments":[{"name":"ours","self":"[Circular]"}],"callbacks":{},"links":[{"from":["0"],"to":["0","self"]}]}"#
    );
    assert_reencodes_identically(d.received());
}

#[test]
fn node_dnode_client_calls_rust_session() {
    const TIME: LocalFn = LocalFn(1);
    const ADD: LocalFn = LocalFn(2);
    const EPOCH: &str = "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)";

    let listener = listen_local();
    let port = listener
        .local_addr()
        .expect("local addr")
        .port()
        .to_string();
    let node = NodePeer::spawn("dnode_client.js", &[&port]);
    let stream = accept_within_deadline(&listener);
    let exports = Value::object([
        ("time", Value::from(TIME)),
        ("add", Value::from(ADD)),
        ("beep", Value::from(5)),
    ]);
    let mut d = Driver::new(stream, exports);

    // Serve until the client hangs up.
    let mut served = Vec::new();
    while let Some(ev) = d.next_event() {
        match ev {
            SessionEvent::Remote => {
                assert_eq!(d.session().remote(), Some(&empty_object()));
            }
            SessionEvent::Released { .. } => {}
            SessionEvent::Call { function, args } => {
                let reply_to = remote_fn(args.last().expect("a callback"));
                let answer = match function {
                    TIME => Value::from(EPOCH),
                    ADD => {
                        let a = args[0].as_f64().expect("a");
                        let b = args[1].as_f64().expect("b");
                        Value::from(a + b)
                    }
                    other => panic!("no such function {other:?}"),
                };
                served.push(function);
                d.call(reply_to, vec![answer]);
                d.release_value(&Value::Array(args));
            }
            other => panic!("unexpected {other:?}\n{}", d.transcript()),
        }
    }
    assert_eq!(served, [TIME, ADD, ADD]);

    let exit = node.wait_exit();
    assert!(exit.status.success(), "{exit:?}");
    assert_eq!(
        exit.stdout,
        [
            r#"{"methods":["time","add","beep"],"beep":5}"#,
            &format!(r#"{{"time":"{EPOCH}"}}"#),
            r#"{"add":[2,3,5]}"#,
            r#"{"add":[40,2,42]}"#,
            r#"{"done":true}"#,
        ]
    );

    assert_eq!(
        sent(&d)[0],
        r#"{"method":"methods","arguments":[{"time":"[Function]","add":"[Function]","beep":5}],"callbacks":{"0":["0","time"],"1":["0","add"]},"links":[]}"#
    );
    let l = lines(&d);
    assert_eq!(l[0], EMPTY_METHODS, "a dnode client exporting nothing");
    assert_eq!(
        l[1], r#"{"method":0,"arguments":["[Function]"],"callbacks":{"0":["0"]},"links":[]}"#,
        "Node calls time by its id"
    );
    assert_eq!(
        l[2],
        r#"{"method":1,"arguments":[2,3,"[Function]"],"callbacks":{"1":["2"]},"links":[]}"#
    );
    assert_reencodes_identically(d.received());
}

#[test]
fn node_culls_a_collected_callback_and_session_reports_released() {
    const ON_ECHO: LocalFn = LocalFn(1);
    const DONE: LocalFn = LocalFn(2);
    let node = NodePeer::server("features_server.js");
    let mut d = Driver::connect(node.port(), empty_object());
    d.wait_remote();

    // After this call nothing on the Node side holds its proxy for ON_ECHO (wire id 0).
    d.call(
        Target::Method("echo".into()),
        vec!["once".into(), ON_ECHO.into()],
    );
    assert_eq!(d.wait_call_of(ON_ECHO), vec![Value::from("once")]);

    // Make Node collect garbage until it culls ON_ECHO. DONE is held by churn
    // until it is called, so its own cull can only come later.
    let mut churns = 1;
    d.call(
        Target::Method("churn".into()),
        vec![200.into(), DONE.into()],
    );
    let mut released = false;
    loop {
        match d.next_event() {
            Some(SessionEvent::Released { function }) if function == ON_ECHO => released = true,
            Some(SessionEvent::Released { function }) if function == DONE => {}
            Some(SessionEvent::Call { function, args }) if function == DONE => {
                assert_eq!(args, vec![Value::from(200)]);
                if released {
                    break;
                }
                assert!(
                    churns < 20,
                    "Node never culled callback 0\n{}",
                    d.transcript()
                );
                churns += 1;
                d.call(
                    Target::Method("churn".into()),
                    vec![200.into(), DONE.into()],
                );
            }
            other => panic!("unexpected {other:?}\n{}", d.transcript()),
        }
    }

    // The culled id is gone for good: sending ON_ECHO again gives it a new id.
    d.call(
        Target::Method("echo".into()),
        vec!["twice".into(), ON_ECHO.into()],
    );
    let again = sent(&d).last().copied().expect("sent").to_owned();
    assert!(
        again.starts_with(r#"{"method":4,"arguments":["twice","[Function]"],"callbacks":{""#)
            && !again.contains(r#"{"0":["1"]}"#),
        "{again}"
    );
    assert_eq!(d.wait_call_of(ON_ECHO), vec![Value::from("twice")]);

    assert!(
        d.received()
            .iter()
            .any(|l| text(l) == r#"{"method":"cull","arguments":[0]}"#),
        "Node culls with two fields, one id per line\n{}",
        d.transcript()
    );
    assert_reencodes_identically(d.received());
}
