//! One test per rule of PROTOCOL.md §3 (callback ids), §4–§5 (handshake, calls), §6 (links),
//! §7 (cull), §8 (bad input) and §9 (values Node writes).

use upnode_core::config::CullPolicy;
use upnode_core::{
    Function, LocalError, LocalFn, RemoteError, RemoteFn, Session, SessionConfig, SessionEvent,
    Target, Value,
};

fn exports(names: &[(&str, u64)]) -> Value {
    Value::object(names.iter().map(|(k, f)| (*k, Value::from(LocalFn(*f)))))
}

fn new_session(names: &[(&str, u64)]) -> Session {
    Session::new(exports(names), SessionConfig::default()).unwrap()
}

fn sent(s: &mut Session) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(b) = s.poll_transmit() {
        lines.extend(std::str::from_utf8(&b).unwrap().lines().map(str::to_owned));
    }
    lines
}

fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A session whose peer announced `time` (id 0) and `ping` (id 1); output drained.
fn connected() -> Session {
    let mut s = new_session(&[("ping", 9)]);
    s.handle_input(b"{\"method\":\"methods\",\"arguments\":[{\"time\":\"[Function]\",\"ping\":\"[Function]\"}],\"callbacks\":{\"0\":[\"0\",\"time\"],\"1\":[\"0\",\"ping\"]},\"links\":[]}\n").unwrap();
    sent(&mut s);
    assert_eq!(events(&mut s), vec![SessionEvent::Remote]);
    s
}

fn input(s: &mut Session, line: &str) -> Result<(), RemoteError> {
    s.handle_input(format!("{line}\n").as_bytes())
}

// §3 Callback ids ------------------------------------------------------------------------------

#[test]
fn exported_functions_take_ids_zero_to_n_minus_one_in_the_methods_message() {
    let mut s = Session::new(
        Value::object([
            ("a", Value::from(LocalFn(7))),
            ("nested", Value::object([("b", Value::from(LocalFn(8)))])),
            ("c", Value::from(LocalFn(9))),
        ]),
        SessionConfig::default(),
    )
    .unwrap();
    assert_eq!(
        sent(&mut s),
        vec![
            r#"{"method":"methods","arguments":[{"a":"[Function]","nested":{"b":"[Function]"},"c":"[Function]"}],"callbacks":{"0":["0","a"],"1":["0","nested","b"],"2":["0","c"]},"links":[]}"#
        ]
    );
}

#[test]
fn callback_ids_count_up_per_connection_and_restart_on_a_new_one() {
    for _ in 0..2 {
        let mut s = connected();
        s.call("time", vec![Value::from(LocalFn(20))]).unwrap();
        s.call("time", vec![Value::from(LocalFn(21))]).unwrap();
        assert_eq!(
            sent(&mut s),
            vec![
                r#"{"method":0,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#,
                r#"{"method":0,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}"#,
            ]
        );
    }
}

#[test]
fn the_same_function_sent_again_reuses_its_id() {
    let mut s = connected();
    s.call("time", vec![Value::from(LocalFn(20))]).unwrap();
    s.call("time", vec![Value::from(LocalFn(20))]).unwrap();
    let lines = sent(&mut s);
    assert!(lines[0].contains(r#""callbacks":{"1":["0"]}"#));
    assert!(lines[1].contains(r#""callbacks":{"1":["0"]}"#));
    assert_eq!(s.exported_callbacks(), 2, "ping and the one callback");
}

#[test]
fn two_copies_of_a_function_in_one_message_get_two_ids() {
    let mut s = connected();
    let f = Value::from(LocalFn(20));
    s.call("time", vec![f.clone(), f]).unwrap();
    assert_eq!(
        sent(&mut s),
        vec![
            r#"{"method":0,"arguments":["[Function]","[Function]"],"callbacks":{"1":["0"],"2":["1"]},"links":[]}"#
        ]
    );
}

#[test]
fn a_received_callback_may_be_called_any_number_of_times() {
    let mut s = connected();
    s.call("time", vec![Value::from(LocalFn(20))]).unwrap();
    sent(&mut s);
    for i in 0..3 {
        input(
            &mut s,
            &format!(r#"{{"method":1,"arguments":[{i}],"callbacks":{{}},"links":[]}}"#),
        )
        .unwrap();
    }
    let calls: Vec<SessionEvent> = events(&mut s);
    assert_eq!(calls.len(), 3);
    for (i, e) in calls.into_iter().enumerate() {
        assert_eq!(
            e,
            SessionEvent::Call {
                function: LocalFn(20),
                args: vec![Value::from(i as u32)]
            }
        );
    }
    // And we may call a peer's callback many times too.
    input(
        &mut s,
        r#"{"method":9,"arguments":["[Function]"],"callbacks":{"5":["0"]},"links":[]}"#,
    )
    .unwrap();
    assert!(matches!(
        &events(&mut s)[..],
        [SessionEvent::Error(RemoteError::NoSuchCallback { id: 9 })]
    ));
    input(
        &mut s,
        r#"{"method":"ping","arguments":["[Function]"],"callbacks":{"5":["0"]},"links":[]}"#,
    )
    .unwrap();
    let [SessionEvent::Call { args, .. }] = &events(&mut s)[..] else {
        panic!()
    };
    let Some(Function::Remote(cb)) = args[0].as_function() else {
        panic!()
    };
    for _ in 0..3 {
        s.call(cb, vec![]).unwrap();
    }
    assert_eq!(sent(&mut s).len(), 3);
}

// §4 Handshake ----------------------------------------------------------------------------------

#[test]
fn methods_is_sent_at_once_without_waiting_for_the_peer() {
    let mut s = new_session(&[("time", 1)]);
    assert_eq!(sent(&mut s).len(), 1);
    assert!(s.remote().is_none());
}

#[test]
fn a_second_methods_message_replaces_the_remote_interface() {
    let mut s = connected();
    input(&mut s, r#"{"method":"methods","arguments":[{"beep":"[Function]"}],"callbacks":{"2":["0","beep"]},"links":[]}"#).unwrap();
    assert_eq!(events(&mut s), vec![SessionEvent::Remote]);
    assert!(s.remote().unwrap().get("time").is_none());
    assert_eq!(
        s.call("time", vec![]),
        Err(LocalError::NoSuchRemoteMethod {
            name: "time".into()
        })
    );
    s.call("beep", vec![]).unwrap();
    let lines = sent(&mut s);
    // Culls go out with the next transmit, after the lines already queued.
    assert_eq!(
        lines[0],
        r#"{"method":2,"arguments":[],"callbacks":{},"links":[]}"#
    );
    assert_eq!(
        lines[1], r#"{"method":"cull","arguments":[0,1]}"#,
        "old interface released"
    );
}

#[test]
fn a_non_object_methods_argument_counts_as_an_empty_interface() {
    let mut s = new_session(&[]);
    input(&mut s, r#"{"method":"methods","arguments":[5]}"#).unwrap();
    assert_eq!(events(&mut s), vec![SessionEvent::Remote]);
    assert_eq!(s.remote(), Some(&Value::object([] as [(&str, Value); 0])));
}

#[test]
fn exported_data_values_travel_as_data_both_ways() {
    let mut s = Session::new(
        Value::object([("beep", Value::from(5))]),
        SessionConfig::default(),
    )
    .unwrap();
    assert_eq!(
        sent(&mut s),
        vec![r#"{"method":"methods","arguments":[{"beep":5}],"callbacks":{},"links":[]}"#]
    );
    input(
        &mut s,
        r#"{"method":"methods","arguments":[{"boop":6}],"callbacks":{},"links":[]}"#,
    )
    .unwrap();
    assert_eq!(s.remote().unwrap().get("boop"), Some(&Value::from(6)));
    assert_eq!(
        s.call("boop", vec![]),
        Err(LocalError::RemoteNotAFunction {
            name: "boop".into()
        })
    );
    input(&mut s, r#"{"method":"beep","arguments":[]}"#).unwrap();
    assert_eq!(
        events(&mut s)[1..],
        [SessionEvent::Error(RemoteError::NotAFunction {
            name: "beep".into()
        })]
    );
}

#[test]
fn calling_before_the_peer_interface_arrives_is_a_local_error() {
    let mut s = new_session(&[]);
    sent(&mut s);
    assert_eq!(s.call("time", vec![]), Err(LocalError::RemoteNotReady));
    assert!(sent(&mut s).is_empty());
    // Calling by name needs no interface, as Node accepts calls by name at any time.
    s.call(Target::Name("time".into()), vec![]).unwrap();
    assert_eq!(
        sent(&mut s),
        vec![r#"{"method":"time","arguments":[],"callbacks":{},"links":[]}"#]
    );
}

// §5 Calls ----------------------------------------------------------------------------------------

#[test]
fn calls_by_name_and_by_id_reach_the_same_exported_function() {
    let mut s = new_session(&[("time", 1), ("ping", 2)]);
    sent(&mut s);
    input(&mut s, r#"{"method":"time","arguments":[]}"#).unwrap();
    input(&mut s, r#"{"method":0,"arguments":[]}"#).unwrap();
    input(&mut s, r#"{"method":"ping","arguments":[]}"#).unwrap();
    input(&mut s, r#"{"method":1,"arguments":[]}"#).unwrap();
    let got: Vec<LocalFn> = events(&mut s)
        .into_iter()
        .map(|e| match e {
            SessionEvent::Call { function, .. } => function,
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(got, [LocalFn(1), LocalFn(1), LocalFn(2), LocalFn(2)]);
}

#[test]
fn a_string_zero_method_is_a_name_not_callback_zero() {
    let mut s = new_session(&[("time", 1)]);
    input(&mut s, r#"{"method":"0","arguments":[]}"#).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Error(RemoteError::NoSuchMethod {
            name: "0".into()
        })]
    );
}

#[test]
fn objects_with_functions_come_back_callable() {
    let mut s = connected();
    s.call("time", vec![Value::from(LocalFn(20))]).unwrap();
    input(&mut s, r#"{"method":1,"arguments":[null,{"beep":"[Function]"}],"callbacks":{"2":["1","beep"]},"links":[]}"#).unwrap();
    let [SessionEvent::Call { args, .. }] = &events(&mut s)[..] else {
        panic!()
    };
    let Some(Function::Remote(beep)) = args[1].get("beep").unwrap().as_function() else {
        panic!()
    };
    sent(&mut s);
    s.call(beep, vec![Value::from(LocalFn(21))]).unwrap();
    assert_eq!(
        sent(&mut s),
        vec![r#"{"method":2,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}"#]
    );
}

#[test]
fn passing_a_peer_callback_back_to_the_peer_forwards_its_calls() {
    let mut s = connected();
    input(
        &mut s,
        r#"{"method":"ping","arguments":["[Function]"],"callbacks":{"7":["0"]},"links":[]}"#,
    )
    .unwrap();
    let [SessionEvent::Call { args, .. }] = &events(&mut s)[..] else {
        panic!()
    };
    let Some(Function::Remote(cb)) = args[0].as_function() else {
        panic!()
    };
    s.call("time", vec![Value::from(cb)]).unwrap();
    assert_eq!(
        sent(&mut s),
        vec![r#"{"method":0,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#]
    );
    input(
        &mut s,
        r#"{"method":1,"arguments":["t"],"callbacks":{},"links":[]}"#,
    )
    .unwrap();
    assert!(events(&mut s).is_empty(), "nothing for the driver to do");
    assert_eq!(
        sent(&mut s),
        vec![r#"{"method":7,"arguments":["t"],"callbacks":{},"links":[]}"#]
    );
}

#[test]
fn a_burst_of_calls_is_handed_over_in_whole_lines_in_pieces_of_at_most_64_kib() {
    let mut s = connected();
    let calls = 5_000;
    for i in 0..calls {
        s.call(Target::Method("time".into()), vec![Value::from(i as f64)])
            .unwrap();
    }
    let mut pieces = Vec::new();
    while let Some(b) = s.poll_transmit() {
        pieces.push(b);
    }
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    assert!(pieces.len() > 1, "{total} bytes came in one piece");
    for p in &pieces {
        assert!(p.len() <= 64 * 1024, "a piece of {} bytes", p.len());
        assert_eq!(p.last(), Some(&b'\n'), "every piece ends a line");
    }
    // Every piece but the last is filled to within 4 KiB of 64 KiB.
    for p in &pieces[..pieces.len() - 1] {
        assert!(p.len() > 60 * 1024, "a piece of only {} bytes", p.len());
    }
    let lines: Vec<String> = pieces
        .iter()
        .flat_map(|p| {
            std::str::from_utf8(p)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lines.len(), calls);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            line,
            &format!(r#"{{"method":0,"arguments":[{i}],"callbacks":{{}},"links":[]}}"#)
        );
    }
}

#[test]
fn full_pieces_are_taken_while_a_burst_is_made_and_the_rest_follows_in_order() {
    let mut s = connected();
    let calls = 5_000;
    let mut bytes = Vec::new();
    let mut full_pieces = 0;
    for i in 0..calls {
        s.call(Target::Method("time".into()), vec![Value::from(i as f64)])
            .unwrap();
        // What a driver writing from the caller's side takes after each call: only pieces
        // set aside full, never the one still being filled.
        while let Some(b) = s.poll_transmit_full() {
            assert!(
                b.len() > 60 * 1024 && b.len() <= 64 * 1024,
                "a piece of {}",
                b.len()
            );
            assert_eq!(b.last(), Some(&b'\n'), "every piece ends a line");
            bytes.extend_from_slice(&b);
            full_pieces += 1;
        }
    }
    assert!(full_pieces >= 4, "{full_pieces} full pieces");
    assert!(s.poll_transmit_full().is_none());
    // The piece being filled comes with `poll_transmit`, after them.
    while let Some(b) = s.poll_transmit() {
        bytes.extend_from_slice(&b);
    }
    let text = std::str::from_utf8(&bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), calls);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            format!(r#"{{"method":0,"arguments":[{i}],"callbacks":{{}},"links":[]}}"#)
        );
    }
}

// §6 Links ----------------------------------------------------------------------------------------

#[test]
fn a_cyclic_argument_arrives_as_a_link_and_is_sent_back_as_one() {
    let mut s = new_session(&[("echo", 1)]);
    sent(&mut s);
    input(&mut s, r#"{"method":"echo","arguments":[{"a":1,"self":"[Circular]"}],"callbacks":{},"links":[{"from":["0"],"to":["0","self"]}]}"#).unwrap();
    let [SessionEvent::Call { args, .. }] = &events(&mut s)[..] else {
        panic!()
    };
    assert_eq!(args[0].get("self"), Some(&Value::Link(vec!["0".into()])));
    s.call(Target::Name("echo".into()), args.clone()).unwrap();
    assert_eq!(
        sent(&mut s),
        vec![
            r#"{"method":"echo","arguments":[{"a":1,"self":"[Circular]"}],"callbacks":{},"links":[{"from":["0"],"to":["0","self"]}]}"#
        ]
    );
}

// §7 cull -----------------------------------------------------------------------------------------

#[test]
fn releasing_remote_callbacks_sends_one_cull_with_several_ids() {
    let mut s = connected();
    input(&mut s, r#"{"method":"ping","arguments":["[Function]","[Function]"],"callbacks":{"3":["0"],"4":["1"]},"links":[]}"#).unwrap();
    assert_eq!(s.held_callbacks(), 4);
    s.release(RemoteFn(3));
    s.release(RemoteFn(4));
    s.release(RemoteFn(4)); // an extra release is ignored
    assert_eq!(sent(&mut s), vec![r#"{"method":"cull","arguments":[3,4]}"#]);
    assert_eq!(s.held_callbacks(), 2);
    assert_eq!(
        s.call(RemoteFn(3), vec![]),
        Err(LocalError::UnknownRemoteFunction { id: 3 })
    );
}

#[test]
fn a_callback_received_twice_is_culled_after_the_last_release() {
    let mut s = connected();
    for _ in 0..2 {
        input(
            &mut s,
            r#"{"method":"ping","arguments":["[Function]"],"callbacks":{"3":["0"]},"links":[]}"#,
        )
        .unwrap();
    }
    s.release(RemoteFn(3));
    assert!(sent(&mut s).is_empty());
    s.release(RemoteFn(3));
    assert_eq!(sent(&mut s), vec![r#"{"method":"cull","arguments":[3]}"#]);
}

#[test]
fn an_incoming_cull_frees_our_callback_and_later_calls_to_it_fail() {
    let mut s = connected();
    s.call("time", vec![Value::from(LocalFn(20))]).unwrap();
    assert_eq!(s.exported_callbacks(), 2);
    input(&mut s, r#"{"method":"cull","arguments":[1,99]}"#).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Released {
            function: LocalFn(20)
        }]
    );
    assert_eq!(s.exported_callbacks(), 1);
    input(&mut s, r#"{"method":1,"arguments":[]}"#).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Error(RemoteError::NoSuchCallback { id: 1 })]
    );
    // Sent again after the cull, the function gets a new id.
    sent(&mut s);
    s.call("time", vec![Value::from(LocalFn(20))]).unwrap();
    assert!(sent(&mut s)[0].contains(r#""callbacks":{"2":["0"]}"#));
}

#[test]
fn the_local_callback_cap_refuses_a_call_locally_and_sends_nothing() {
    let mut config = SessionConfig::default();
    config.max_local_callbacks = 3;
    let mut s = Session::new(exports(&[("ping", 1)]), config).unwrap();
    sent(&mut s);
    s.call(
        Target::Name("x".into()),
        vec![Value::from(LocalFn(2)), Value::from(LocalFn(3))],
    )
    .unwrap();
    sent(&mut s);
    assert_eq!(
        s.call(Target::Name("x".into()), vec![Value::from(LocalFn(4))]),
        Err(LocalError::TooManyCallbacks { limit: 3 })
    );
    assert!(sent(&mut s).is_empty());
    assert_eq!(s.exported_callbacks(), 3);
    // Reusing ids already given out is still fine.
    s.call(Target::Name("x".into()), vec![Value::from(LocalFn(2))])
        .unwrap();
}

/// A call placing callback `ids[i]` at argument `i`; a repeated id is a repeated key of
/// `callbacks`, which is read last-wins (as `JSON.parse` does).
fn call_placing(ids: &[u64]) -> String {
    let args = vec!["\"[Function]\""; ids.len()].join(",");
    let cbs: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| format!("\"{id}\":[{i}]"))
        .collect();
    format!(
        r#"{{"method":"ping","arguments":[{args}],"callbacks":{{{}}},"links":[]}}"#,
        cbs.join(",")
    )
}

#[test]
fn callbacks_of_one_message_count_against_our_cap_once_each_however_many_it_places() {
    // Few callbacks (checked by a scan) and many (by a sorted copy) alike, with and
    // without repeated keys.
    for distinct in [3u64, 40] {
        for repeats in [1, 3] {
            let ids: Vec<u64> = (0..distinct * repeats).map(|i| 7 + i % distinct).collect();
            for cap in [distinct as usize, distinct as usize - 1] {
                let mut config = SessionConfig::default();
                config.max_callbacks = cap;
                let mut s = Session::new(exports(&[("ping", 1)]), config).unwrap();
                s.poll_transmit();
                let r = input(&mut s, &call_placing(&ids));
                if cap as u64 == distinct {
                    assert_eq!(r, Ok(()), "{distinct} ids ×{repeats}, cap {cap}");
                    assert_eq!(s.held_callbacks(), cap);
                    // Held already: the same callbacks again take no more room.
                    assert_eq!(input(&mut s, &call_placing(&ids)), Ok(()));
                    assert_eq!(s.held_callbacks(), cap);
                } else {
                    assert_eq!(r, Err(RemoteError::TooManyCallbacks { limit: cap }));
                    assert_eq!(s.held_callbacks(), 0);
                }
            }
        }
    }
}

#[test]
fn a_peer_exceeding_our_callback_cap_is_a_fatal_protocol_error() {
    let mut config = SessionConfig::default();
    config.max_callbacks = 2;
    let mut s = Session::new(exports(&[("ping", 1)]), config).unwrap();
    let e = input(&mut s, r#"{"method":"ping","arguments":["[Function]","[Function]","[Function]"],"callbacks":{"0":["0"],"1":["1"],"2":["2"]},"links":[]}"#).unwrap_err();
    assert_eq!(e, RemoteError::TooManyCallbacks { limit: 2 });
    assert!(e.is_fatal());
    assert!(s.is_closed());
    assert_eq!(s.held_callbacks(), 0);
}

// §8 Bad input ------------------------------------------------------------------------------------

#[test]
fn unknown_method_name_is_an_error_event_and_the_session_lives() {
    let mut s = new_session(&[("time", 1)]);
    input(
        &mut s,
        r#"{"method":"nope","arguments":["[Function]"],"callbacks":{"0":["0"]},"links":[]}"#,
    )
    .unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Error(RemoteError::NoSuchMethod {
            name: "nope".into()
        })]
    );
    assert_eq!(
        s.held_callbacks(),
        0,
        "callbacks of a refused call are not held"
    );
    input(&mut s, r#"{"method":"time","arguments":[]}"#).unwrap();
    assert_eq!(events(&mut s).len(), 1);
}

#[test]
fn unknown_callback_id_is_an_error_event_and_the_session_lives() {
    let mut s = new_session(&[("time", 1)]);
    input(&mut s, r#"{"method":42,"arguments":[]}"#).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Error(RemoteError::NoSuchCallback { id: 42 })]
    );
    assert!(!s.is_closed());
}

#[test]
fn bad_json_is_fatal_and_ends_the_session() {
    let mut s = new_session(&[("time", 1)]);
    let e = s
        .handle_input(b"{\"method\":\"time\",\"arguments\":[]}\n{oops\n{\"method\":\"time\"}\n")
        .unwrap_err();
    assert!(matches!(e, RemoteError::BadJson { .. }));
    assert!(e.is_fatal());
    assert_eq!(events(&mut s).len(), 1, "the line before still counted");
    assert!(s.is_closed());
    assert_eq!(
        s.call(Target::Name("x".into()), vec![]),
        Err(LocalError::Closed)
    );
    assert!(s.handle_input(b"{}\n").is_err(), "stays failed");
}

#[test]
fn a_blank_line_is_fatal_as_in_node() {
    let mut s = new_session(&[]);
    let e = s.handle_input(b"\n").unwrap_err();
    assert_eq!(
        e,
        RemoteError::BadJson {
            detail: "empty line".into()
        }
    );
}

#[test]
fn null_number_array_and_string_lines_are_ignored_with_an_error_event() {
    let mut s = new_session(&[("time", 1)]);
    s.handle_input(b"null\n5\n[1,2]\n\"str\"\n{\"no\":1}\n")
        .unwrap();
    let evs = events(&mut s);
    assert_eq!(evs.len(), 5);
    assert!(evs
        .iter()
        .all(|e| matches!(e, SessionEvent::Error(RemoteError::NotAMessage { .. }))));
    assert!(!s.is_closed());
}

#[test]
fn crlf_line_endings_are_accepted() {
    let mut s = new_session(&[("time", 1)]);
    s.handle_input(b"{\"method\":\"time\",\"arguments\":[]}\r\n")
        .unwrap();
    assert_eq!(events(&mut s).len(), 1);
}

#[test]
fn an_over_long_line_is_fatal_at_the_cap_with_bounded_memory() {
    let mut config = SessionConfig::default();
    config.max_line_len = 1024;
    let mut s = Session::new(exports(&[]), config).unwrap();
    let chunk = vec![b'x'; 600];
    s.handle_input(&chunk).unwrap();
    assert_eq!(s.buffered_input(), 600);
    let e = s.handle_input(&chunk).unwrap_err();
    assert_eq!(e, RemoteError::LineTooLong { limit: 1024 });
    assert_eq!(s.buffered_input(), 0);
}

// §9 Values Node writes ---------------------------------------------------------------------------

#[test]
fn values_node_writes_for_non_json_types_decode() {
    let mut s = new_session(&[("f", 1)]);
    input(&mut s, r#"{"method":"f","arguments":[null,"2026-11-25T12:00:00.000Z",{"type":"Buffer","data":[1,2]},{"message":"boom"},"\ud800 lone"]}"#).unwrap();
    let [SessionEvent::Call { args, .. }] = &events(&mut s)[..] else {
        panic!()
    };
    assert!(args[0].is_null());
    assert_eq!(args[1].as_str(), Some("2026-11-25T12:00:00.000Z"));
    assert_eq!(args[2].get("type").and_then(Value::as_str), Some("Buffer"));
    assert_eq!(args[3].get("message").and_then(Value::as_str), Some("boom"));
    assert_eq!(args[4].as_str(), Some("\u{fffd} lone"));
}

#[test]
fn escape_non_ascii_option_makes_every_line_ascii() {
    let mut config = SessionConfig::default();
    config.escape_non_ascii = true;
    let mut s = Session::new(Value::object([("é", Value::from("😀"))]), config).unwrap();
    assert_eq!(
        sent(&mut s),
        vec![
            r#"{"method":"methods","arguments":[{"\u00e9":"\ud83d\ude00"}],"callbacks":{},"links":[]}"#
        ]
    );
}

#[test]
fn with_cull_never_a_release_frees_our_entry_and_sends_nothing() {
    let mut config = SessionConfig::default();
    config.cull = CullPolicy::Never;
    let mut s = Session::new(exports(&[("ping", 9)]), config).unwrap();
    sent(&mut s);
    input(
        &mut s,
        r#"{"method":"ping","arguments":["[Function]"],"callbacks":{"3":["0"]},"links":[]}"#,
    )
    .unwrap();
    assert_eq!(s.held_callbacks(), 1);
    s.release(RemoteFn(3));
    assert_eq!(s.held_callbacks(), 0);
    assert!(sent(&mut s).is_empty());
}

/// A call to our `ping` (export 9) carrying `cb` (id 3) in last place, as dnode answers go.
fn called_with_answer_callback(policy: CullPolicy) -> Session {
    let mut config = SessionConfig::default();
    config.cull = policy;
    let mut s = Session::new(exports(&[("ping", 9)]), config).unwrap();
    sent(&mut s);
    input(
        &mut s,
        r#"{"method":"ping","arguments":[1,"[Function]"],"callbacks":{"3":["1"]},"links":[]}"#,
    )
    .unwrap();
    events(&mut s);
    s
}

#[test]
fn by_default_an_answer_callback_called_once_is_released_without_cull() {
    let mut s = called_with_answer_callback(CullPolicy::default());
    s.call(RemoteFn(3), vec![Value::from(2)]).unwrap();
    s.release(RemoteFn(3));
    assert_eq!(s.held_callbacks(), 0);
    assert_eq!(
        sent(&mut s),
        vec![r#"{"method":3,"arguments":[2],"callbacks":{},"links":[]}"#]
    );
}

#[test]
fn by_default_an_answer_callback_released_unanswered_or_called_twice_is_culled() {
    let mut s = called_with_answer_callback(CullPolicy::default());
    s.release(RemoteFn(3));
    assert_eq!(sent(&mut s), vec![r#"{"method":"cull","arguments":[3]}"#]);

    let mut s = called_with_answer_callback(CullPolicy::default());
    s.call(RemoteFn(3), vec![]).unwrap();
    s.call(RemoteFn(3), vec![]).unwrap();
    sent(&mut s);
    s.release(RemoteFn(3));
    assert_eq!(sent(&mut s), vec![r#"{"method":"cull","arguments":[3]}"#]);
}

#[test]
fn by_default_a_callback_not_in_last_place_is_culled_even_after_one_call() {
    let mut s = new_session(&[("ping", 9)]);
    sent(&mut s);
    input(
        &mut s,
        r#"{"method":"ping","arguments":["[Function]",1],"callbacks":{"3":["0"]},"links":[]}"#,
    )
    .unwrap();
    events(&mut s);
    s.call(RemoteFn(3), vec![]).unwrap();
    sent(&mut s);
    s.release(RemoteFn(3));
    assert_eq!(sent(&mut s), vec![r#"{"method":"cull","arguments":[3]}"#]);
}

#[test]
fn with_cull_always_an_answered_callback_is_culled_too() {
    let mut s = called_with_answer_callback(CullPolicy::Always);
    s.call(RemoteFn(3), vec![]).unwrap();
    sent(&mut s);
    s.release(RemoteFn(3));
    assert_eq!(sent(&mut s), vec![r#"{"method":"cull","arguments":[3]}"#]);
}

#[test]
fn a_forgotten_reply_callback_frees_its_id_and_a_late_call_is_a_non_fatal_error() {
    let mut s = connected();
    s.call("time", vec![Value::from(LocalFn(20))]).unwrap();
    assert_eq!(s.exported_callbacks(), 2);
    s.forget(LocalFn(20));
    assert_eq!(s.exported_callbacks(), 1);
    input(&mut s, r#"{"method":1,"arguments":["late"]}"#).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Error(RemoteError::NoSuchCallback { id: 1 })]
    );
    assert!(!s.is_closed());
    // Forgetting again, or a function never sent, changes nothing.
    s.forget(LocalFn(20));
    s.forget(LocalFn(21));
    assert_eq!(s.exported_callbacks(), 1);
}

#[test]
fn a_call_with_reply_is_written_as_a_call_with_the_reply_last_and_its_id_is_its_own() {
    let mut s = connected();
    let mut plain = connected();
    // The same bytes as the reply passed as the last argument.
    let id = s
        .call_with_reply("time", vec![Value::from(1.0)], LocalFn(20))
        .unwrap();
    plain
        .call("time", vec![Value::from(1.0), Value::from(LocalFn(20))])
        .unwrap();
    let line = r#"{"method":0,"arguments":[1,"[Function]"],"callbacks":{"1":["1"]},"links":[]}"#;
    assert_eq!(sent(&mut s), vec![line]);
    assert_eq!(sent(&mut plain), vec![line]);
    assert_eq!(id, 1);
    // The peer calls it: our reply function is called.
    input(&mut s, r#"{"method":1,"arguments":["t"]}"#).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Call {
            function: LocalFn(20),
            args: vec![Value::from("t")]
        }]
    );
    // A reply's id is never reused: the next call with the same function gets another.
    let again = s.call_with_reply("time", vec![], LocalFn(20)).unwrap();
    assert_eq!(again, 2);
    assert_eq!(s.exported_callbacks(), 3);
    // Forgotten by id, each frees its own; `forget` by function does not find them.
    s.forget(LocalFn(20));
    assert_eq!(s.exported_callbacks(), 3);
    s.forget_reply(id);
    s.forget_reply(again);
    assert_eq!(s.exported_callbacks(), 1);
    input(&mut s, r#"{"method":1,"arguments":["late"]}"#).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Error(RemoteError::NoSuchCallback { id: 1 })]
    );
    // Forgetting again, or an id that is not a reply's (`ping`, exported), changes nothing.
    s.forget_reply(id);
    s.forget_reply(0);
    s.forget_reply(u64::MAX);
    assert_eq!(s.exported_callbacks(), 1);
}

#[test]
fn a_reply_that_also_appears_in_the_arguments_gets_an_ordinary_id_there() {
    let mut s = connected();
    let id = s
        .call_with_reply("time", vec![Value::from(LocalFn(20))], LocalFn(20))
        .unwrap();
    assert_eq!(
        sent(&mut s),
        vec![
            r#"{"method":0,"arguments":["[Function]","[Function]"],"callbacks":{"1":["0"],"2":["1"]},"links":[]}"#
        ]
    );
    assert_eq!(id, 2);
    // The place in the arguments is an ordinary function: sent again, its id is reused.
    s.call("time", vec![Value::from(LocalFn(20))]).unwrap();
    assert_eq!(
        sent(&mut s),
        vec![r#"{"method":0,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#]
    );
    s.forget_reply(id);
    assert_eq!(s.exported_callbacks(), 2);
    // The peer culls id 1: that was the function's last id.
    input(&mut s, r#"{"method":"cull","arguments":[1]}"#).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Released {
            function: LocalFn(20)
        }]
    );
    assert_eq!(s.exported_callbacks(), 1);
}

#[test]
fn a_culled_reply_is_released_unless_the_function_has_an_ordinary_id_too() {
    let mut s = connected();
    let id = s.call_with_reply("time", vec![], LocalFn(20)).unwrap();
    input(
        &mut s,
        &format!(r#"{{"method":"cull","arguments":[{id}]}}"#),
    )
    .unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Released {
            function: LocalFn(20)
        }]
    );
    // With an ordinary id live as well, culling the reply's is not the last.
    s.call("time", vec![Value::from(LocalFn(21))]).unwrap();
    let id = s.call_with_reply("time", vec![], LocalFn(21)).unwrap();
    input(
        &mut s,
        &format!(r#"{{"method":"cull","arguments":[{id}]}}"#),
    )
    .unwrap();
    assert_eq!(events(&mut s), vec![]);
    assert_eq!(s.exported_callbacks(), 2);
}

#[test]
fn a_reply_counts_against_max_local_callbacks_and_a_refused_call_keeps_no_id() {
    let mut config = SessionConfig::default();
    config.max_local_callbacks = 2;
    let mut s = Session::new(exports(&[("ping", 9)]), config).unwrap();
    s.handle_input(b"{\"method\":\"methods\",\"arguments\":[{\"time\":\"[Function]\"}],\"callbacks\":{\"0\":[\"0\",\"time\"]},\"links\":[]}\n").unwrap();
    s.call_with_reply("time", vec![], LocalFn(20)).unwrap();
    assert_eq!(
        s.call_with_reply("time", vec![], LocalFn(21)),
        Err(LocalError::TooManyCallbacks { limit: 2 })
    );
    // Room for the argument, none for the reply after it: the call fails whole.
    s.forget_reply(1);
    assert_eq!(
        s.call_with_reply("time", vec![Value::from(LocalFn(22))], LocalFn(21)),
        Err(LocalError::TooManyCallbacks { limit: 2 })
    );
    assert_eq!(s.exported_callbacks(), 1);
}

#[test]
fn our_functions_are_capped_by_max_local_callbacks_apart_from_the_peers() {
    let mut config = SessionConfig::default();
    config.max_callbacks = 1;
    config.max_local_callbacks = 3;
    let mut s = Session::new(exports(&[("ping", 9)]), config).unwrap();
    s.handle_input(b"{\"method\":\"methods\",\"arguments\":[{\"time\":\"[Function]\"}],\"callbacks\":{\"0\":[\"0\",\"time\"]},\"links\":[]}\n").unwrap();
    s.call("time", vec![Value::from(LocalFn(20))]).unwrap();
    s.call("time", vec![Value::from(LocalFn(21))]).unwrap();
    assert_eq!(
        s.call("time", vec![Value::from(LocalFn(22))]),
        Err(LocalError::TooManyCallbacks { limit: 3 })
    );
    assert_eq!(s.exported_callbacks(), 3);
}
