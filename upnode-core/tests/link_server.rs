//! Named scenarios for [`ServerConn`]: a scripted client feeds literal dnode lines (PROTOCOL.md
//! §11), the test reads back exactly what the connection transmits and reports, and time is
//! virtual (`t0 + Duration`).

mod harness;

use harness::server::*;
use harness::*;

/// After `Closed`: nothing more is reported or written, whatever happens.
fn assert_silent_after_close(s: &mut Server) {
    assert!(s.conn.is_closed());
    assert_eq!(s.conn.poll_timeout(), None);
    for t in [10, 20, 3_600] {
        s.timeout(secs(t));
    }
    s.input(secs(3_601), CLIENT_METHODS);
    s.input(secs(3_601), CLIENT_PONG);
    s.input(secs(3_601), "{oops");
    s.conn
        .handle_transport_closed(s.at(secs(3_601)), Some("late".into()));
    s.conn.release(RemoteFn(0));
    s.conn.close(s.at(secs(3_602)));
    s.expect_quiet();
    assert_eq!(
        s.call(secs(3_603), Target::Name("beep".into()), vec![], None),
        Err(SendError::Closed)
    );
}

// ---- defaults ---------------------------------------------------------------------------------

#[test]
fn server_defaults_are_upnodes_documented_values() {
    // upnode 0.6 pings every 10 s; it meant a 10 s timeout (and wrote 100 s).
    assert_eq!(DEFAULT_SERVER_PING_INTERVAL, ms(10_000));
    assert_eq!(DEFAULT_SERVER_PING_TIMEOUT, ms(10_000));
    // Shorter than the client's 10 s: an idle connection that never handshakes goes sooner.
    assert_eq!(DEFAULT_SERVER_HANDSHAKE_TIMEOUT, secs(5));
    let c = ServerConfig::default();
    assert_eq!(c.ping_interval, Some(DEFAULT_SERVER_PING_INTERVAL));
    assert_eq!(c.ping_timeout, DEFAULT_SERVER_PING_TIMEOUT);
    assert_eq!(c.handshake_timeout, DEFAULT_SERVER_HANDSHAKE_TIMEOUT);
    assert_eq!(c.session, SessionConfig::default());
}

// ---- handshake --------------------------------------------------------------------------------

#[test]
fn our_methods_go_out_at_once_with_ping_appended_after_the_users_keys() {
    let mut s = Server::new(ServerConfig::default());
    assert_eq!(s.sent(), [OUR_METHODS], "byte for byte the §11 Node server");
    assert_eq!(s.events(), []);
    assert!(!s.conn.is_closed());
    assert_eq!(s.conn.remote(), None);
    assert_eq!(
        s.conn.poll_timeout(),
        Some(s.at(secs(5))),
        "handshake timeout"
    );
}

#[test]
fn data_members_travel_as_data_both_ways() {
    // upnode's `cons` scenario: server `boop = 6`, client `beep = 5`.
    let mut s = Server::with_exports(
        ServerConfig::default(),
        Value::object([("boop", Value::from(6))]),
    );
    assert_eq!(
        s.sent(),
        [
            r#"{"method":"methods","arguments":[{"boop":6,"ping":"[Function]"}],"callbacks":{"0":["0","ping"]},"links":[]}"#
        ]
    );
    s.input(
        ms(1),
        r#"{"method":"methods","arguments":[{"beep":5,"ping":"[Function]"}],"callbacks":{"0":["0","ping"]},"links":[]}"#,
    );
    assert_eq!(s.events(), [remote(CONN)]);
    assert_eq!(
        s.conn.remote(),
        Some(&Value::object([
            ("beep", Value::from(5)),
            ("ping", Value::from(RemoteFn(0)))
        ]))
    );
}

#[test]
fn a_user_ping_is_kept_and_client_calls_to_it_go_to_the_user() {
    let mut s = Server::with_exports(
        ServerConfig::default(),
        Value::object([("ping", Value::from(LocalFn(4)))]),
    );
    assert_eq!(
        s.sent(),
        [
            r#"{"method":"methods","arguments":[{"ping":"[Function]"}],"callbacks":{"0":["0","ping"]},"links":[]}"#
        ]
    );
    s.input(
        ms(1),
        r#"{"method":0,"arguments":["[Function]"],"callbacks":{"7":["0"]},"links":[]}"#,
    );
    assert_eq!(
        s.events(),
        [called(
            CONN,
            LocalFn(4),
            vec![Value::from(RemoteFn(7))],
            None
        )]
    );
    assert_eq!(s.sent(), Vec::<String>::new());
}

#[test]
fn a_client_that_never_sends_methods_is_dropped_at_the_handshake_timeout() {
    let mut s = Server::new(ServerConfig::default());
    s.sent();
    assert_eq!(
        s.timeout_exactly(secs(5)),
        ended(LinkError::HandshakeTimeout(secs(5)), true)
    );
    assert_silent_after_close(&mut s);
}

#[test]
fn calls_by_name_before_the_clients_methods_are_served() {
    let mut s = Server::new(ServerConfig::default());
    s.sent();
    s.input(ms(1), r#"{"method":"time","arguments":[]}"#);
    assert_eq!(s.events(), [called(CONN, LocalFn(1), vec![], None)]);
    // They do not complete the handshake.
    assert_eq!(s.conn.poll_timeout(), Some(s.at(secs(5))));
}

#[test]
fn the_clients_methods_replace_the_handshake_timeout_with_the_heartbeat() {
    let s = open_with(ServerConfig::default(), CLIENT_METHODS, secs(2));
    assert_eq!(
        s.conn.remote(),
        Some(&Value::object([("ping", Value::from(RemoteFn(0)))]))
    );
    assert_eq!(s.conn.poll_timeout(), Some(s.at(secs(12))));
}

#[test]
fn a_repeated_methods_is_reported_again() {
    let mut s = open(CLIENT_METHODS);
    s.input(ms(5), CLIENT_METHODS_BEEP);
    assert_eq!(s.events(), [remote(CONN)]);
    assert!(s.conn.remote().unwrap().get("beep").is_some());
}

// ---- heartbeat --------------------------------------------------------------------------------

#[test]
fn a_client_that_exports_ping_is_pinged_every_interval() {
    let mut s = open_with(ServerConfig::default(), CLIENT_METHODS, secs(1));
    let mut due = secs(11);
    for round in 0..3u64 {
        s.timeout(due - NS);
        assert_eq!(s.sent(), Vec::<String>::new(), "round {round}: early");
        s.timeout(due);
        // A fresh callback id per ping (2, 3, 4): the answered one is forgotten.
        let id = 2 + round;
        assert_eq!(
            s.sent(),
            [format!(
                r#"{{"method":0,"arguments":["[Function]"],"callbacks":{{"{id}":["0"]}},"links":[]}}"#
            )],
            "round {round}"
        );
        assert_eq!(s.conn.poll_timeout(), Some(s.at(due + secs(10))));
        let rtt = ms(100 * (round + 1));
        s.input(
            due + rtt,
            &format!(r#"{{"method":{id},"arguments":[],"callbacks":{{}},"links":[]}}"#),
        );
        assert_eq!(s.events(), [LinkEvent::Ping { rtt }]);
        assert_eq!(s.sent(), Vec::<String>::new());
        // Send to send, whatever the round trip took.
        assert_eq!(s.conn.poll_timeout(), Some(s.at(due + secs(10))));
        due += secs(10);
    }
    assert!(!s.conn.is_closed());
}

#[test]
fn a_client_that_does_not_answer_its_ping_is_dropped_exactly_at_the_ping_timeout() {
    let mut config = ServerConfig::default();
    config.ping_timeout = secs(4);
    let mut s = open_with(config, CLIENT_METHODS_BEEP, Duration::ZERO);
    let call = s.call_beep(ms(1), None).unwrap();
    s.sent();
    s.timeout(secs(10));
    assert_eq!(
        s.sent(),
        [r#"{"method":1,"arguments":["[Function]"],"callbacks":{"3":["0"]},"links":[]}"#]
    );
    // Traffic other than the answer does not count.
    s.input(secs(11), r#"{"method":"time","arguments":[]}"#);
    assert_eq!(s.events().len(), 1);
    let ev = s.timeout_exactly(secs(14));
    let mut expected = vec![call_failed(call.unwrap(), CallFailure::LinkDown)];
    expected.extend(ended(LinkError::PingTimeout(secs(4)), true));
    assert_eq!(ev, expected);
    assert_silent_after_close(&mut s);
}

#[test]
fn with_the_default_equal_interval_and_timeout_the_missing_answer_wins_over_the_next_ping() {
    let mut s = open(CLIENT_METHODS);
    s.timeout(secs(10));
    assert_eq!(s.sent(), [OUR_PING]);
    s.timeout(secs(20));
    assert_eq!(s.sent(), Vec::<String>::new(), "no second ping");
    assert_eq!(s.events(), ended(LinkError::PingTimeout(secs(10)), true));
}

#[test]
fn a_client_without_ping_is_never_pinged() {
    let mut s = open(CLIENT_METHODS_NO_PING);
    assert_eq!(s.conn.poll_timeout(), None);
    for t in [10, 20, 3_600] {
        s.timeout(secs(t));
    }
    s.expect_quiet();
    assert!(!s.conn.is_closed());
}

#[test]
fn with_ping_disabled_no_client_is_pinged() {
    let mut config = ServerConfig::default();
    config.ping_interval = None;
    let mut s = open_with(config, CLIENT_METHODS, Duration::ZERO);
    assert_eq!(s.conn.poll_timeout(), None);
    s.timeout(secs(3_600));
    s.expect_quiet();
}

#[test]
fn a_zero_ping_interval_never_pings() {
    let mut config = ServerConfig::default();
    config.ping_interval = Some(Duration::ZERO);
    let mut s = open_with(config, CLIENT_METHODS, Duration::ZERO);
    assert_eq!(s.conn.poll_timeout(), None, "no timer that is always due");
    s.timeout(secs(3_600));
    s.expect_quiet();
}

#[test]
fn we_answer_the_clients_ping_by_calling_its_callback_with_no_arguments() {
    let mut s = open(CLIENT_METHODS);
    // §11: the client calls our `ping` (our callback 1) with its callback 14.
    s.input(
        secs(1),
        r#"{"method":1,"arguments":["[Function]"],"callbacks":{"14":["0"]},"links":[]}"#,
    );
    assert_eq!(s.events(), [], "the link answers by itself");
    assert_eq!(
        s.sent(),
        [r#"{"method":14,"arguments":[],"callbacks":{},"links":[]}"#]
    );
    // Answering is not our heartbeat.
    assert_eq!(s.conn.poll_timeout(), Some(s.at(secs(10))));
}

// ---- calls ------------------------------------------------------------------------------------

#[test]
fn a_client_call_reaches_the_handler_and_the_reply_goes_back_to_its_callback() {
    let mut s = open(CLIENT_METHODS);
    // §11: Node's client calls `time` by its callback id 0.
    s.input(
        ms(1),
        r#"{"method":0,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#,
    );
    assert_eq!(
        s.events(),
        [called(
            CONN,
            LocalFn(1),
            vec![Value::from(RemoteFn(1))],
            None
        )]
    );
    let reply = s.call(
        ms(2),
        Target::Callback(RemoteFn(1)),
        vec![Value::from(
            "Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)",
        )],
        None,
    );
    assert_eq!(reply, Ok(None));
    s.conn.release(RemoteFn(1));
    assert_eq!(
        s.sent(),
        [
            // The answer callback, called once, goes without `cull` (CullPolicy's default):
            // what a Node server does, and what keeps a Node client's lookups fast.
            r#"{"method":1,"arguments":["Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)"],"callbacks":{},"links":[]}"#,
        ]
    );
    // What we still hold of the client is its interface (`ping`).
    assert_eq!(s.conn.counters().remote_callbacks, 1);
}

#[test]
fn a_call_to_the_client_resolves_with_answers_exactly_once() {
    let mut s = open(CLIENT_METHODS_BEEP);
    let call = s.call_beep(ms(1), Some(secs(5))).unwrap();
    assert_eq!(call, Some(CallId(0)));
    assert_eq!(
        s.sent(),
        [r#"{"method":0,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}"#]
    );
    let answer = r#"{"method":2,"arguments":["boop"],"callbacks":{},"links":[]}"#;
    s.input(ms(2), answer);
    assert_eq!(
        s.events(),
        [called(CONN, LocalFn(9), vec![Value::from("boop")], call)]
    );
    s.input(ms(3), answer);
    assert_eq!(
        s.events(),
        [called(CONN, LocalFn(9), vec![Value::from("boop")], None)]
    );
    s.timeout(secs(6));
    assert_eq!(s.events(), []);
}

#[test]
fn a_call_carrying_many_functions_each_twice_gives_every_place_an_id_and_any_of_them_answers() {
    let mut s = open(CLIENT_METHODS_BEEP);
    // More functions than one message's bookkeeping scans through (it indexes them then).
    let fns: Vec<Value> = (0..40)
        .map(|i| Value::from(LocalFn(100 + i % 20)))
        .collect();
    let call = s
        .call(ms(1), Target::Name("beep".into()), fns, Some(secs(5)))
        .unwrap();
    let sent = s.sent();
    let msg: serde_json::Value = serde_json::from_str(&sent[0]).unwrap();
    let ids: Vec<u64> = msg["callbacks"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!((ids.len(), distinct.len()), (40, 40), "{}", sent[0]);
    // The peer calls the id at the last place (the second place of function 119): it
    // answers the call.
    let last = msg["callbacks"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, path)| path[0] == "39")
        .map(|(id, _)| id.clone())
        .unwrap();
    s.input(
        ms(2),
        &format!(r#"{{"method":{last},"arguments":["boop"],"callbacks":{{}},"links":[]}}"#),
    );
    assert_eq!(
        s.events(),
        [called(CONN, LocalFn(119), vec![Value::from("boop")], call)]
    );
}

#[test]
fn a_call_to_the_client_times_out_exactly_at_its_deadline() {
    let mut s = open(CLIENT_METHODS_BEEP);
    let call = s.call_beep(secs(1), Some(secs(2))).unwrap().unwrap();
    assert_eq!(s.conn.poll_timeout(), Some(s.at(secs(3))));
    assert_eq!(
        s.timeout_exactly(secs(3)),
        [call_failed(call, CallFailure::TimedOut)]
    );
    s.timeout(secs(3));
    assert_eq!(s.events(), []);
    assert_eq!(s.conn.poll_timeout(), Some(s.at(secs(10))), "the ping");
}

#[test]
fn calls_with_a_reserved_function_key_are_refused_and_nothing_is_sent() {
    let mut s = open(CLIENT_METHODS_BEEP);
    s.sent();
    for key in [RESERVED_FN_BASE, u64::MAX] {
        assert_eq!(
            s.call(
                ms(1),
                Target::Method("beep".into()),
                vec![Value::array([Value::from(LocalFn(key))])],
                None
            ),
            Err(SendError::ReservedKey)
        );
    }
    assert_eq!(s.sent(), Vec::<String>::new());
    assert_eq!(
        s.call(ms(1), Target::Method("nope".into()), vec![], None),
        Err(SendError::Local(LocalError::NoSuchRemoteMethod {
            name: "nope".into()
        }))
    );
}

// ---- the end of a connection ------------------------------------------------------------------

#[test]
fn a_transport_that_closes_reports_down_and_closed_and_fails_calls_in_flight() {
    let mut s = open(CLIENT_METHODS_BEEP);
    let call = s.call_beep(ms(1), None).unwrap().unwrap();
    s.conn
        .handle_transport_closed(s.at(ms(2)), Some("eof".into()));
    let mut expected = vec![call_failed(call, CallFailure::LinkDown)];
    expected.extend(ended(
        LinkError::TransportClosed {
            detail: Some("eof".into()),
        },
        false,
    ));
    assert_eq!(
        s.events(),
        expected,
        "no CloseTransport: it is closed already"
    );
    assert_silent_after_close(&mut s);
}

#[test]
fn close_ends_the_connection_and_fails_calls_in_flight_as_closed() {
    let mut s = open(CLIENT_METHODS_BEEP);
    let call = s.call_beep(ms(1), Some(secs(1))).unwrap().unwrap();
    s.sent();
    s.conn.close(s.at(ms(2)));
    let mut expected = vec![call_failed(call, CallFailure::Closed)];
    expected.extend(ended(LinkError::Local(LocalError::Closed), true));
    assert_eq!(s.events(), expected);
    assert_silent_after_close(&mut s);
}

#[test]
fn close_during_the_handshake_ends_the_connection() {
    let mut s = Server::new(ServerConfig::default());
    s.conn.close(s.at(ms(1)));
    assert_eq!(
        s.events(),
        ended(LinkError::Local(LocalError::Closed), true)
    );
    assert_silent_after_close(&mut s);
}

#[test]
fn bad_json_from_the_client_ends_the_connection() {
    let mut s = open(CLIENT_METHODS);
    s.input(ms(1), "");
    assert_ended_by(&s.events(), |r| {
        matches!(r, LinkError::Remote(RemoteError::BadJson { .. }))
    });
    assert_silent_after_close(&mut s);
}

#[test]
fn lines_before_a_bad_line_in_the_same_chunk_are_still_delivered() {
    let mut s = Server::new(ServerConfig::default());
    s.sent();
    let chunk = format!("{CLIENT_METHODS}\n{{\"method\":\"time\",\"arguments\":[]}}\n{{oops\n");
    s.conn.handle_input(s.at(ms(1)), chunk.as_bytes());
    let ev = s.events();
    assert_eq!(
        ev[..2],
        [remote(CONN), called(CONN, LocalFn(1), vec![], None)],
        "{ev:?}"
    );
    assert_eq!(ev[2], close_transport(CONN));
    assert!(matches!(ev[3], LinkEvent::Down { .. }));
    assert_eq!(ev[4], LinkEvent::Closed);
    assert_eq!(ev.len(), 5);
    assert_eq!(s.conn.poll_timeout(), None);
}

#[test]
fn non_fatal_errors_from_the_client_are_reported_and_the_connection_lives() {
    let mut s = open(CLIENT_METHODS);
    s.input(
        ms(1),
        r#"{"method":42,"arguments":[],"callbacks":{},"links":[]}"#,
    );
    s.input(ms(2), "null");
    let ev = s.events();
    assert_eq!(
        ev[0],
        LinkEvent::Error(LinkError::Remote(RemoteError::NoSuchCallback { id: 42 }))
    );
    assert!(matches!(
        ev[1],
        LinkEvent::Error(LinkError::Remote(RemoteError::NotAMessage { .. }))
    ));
    assert_eq!(ev.len(), 2);
    assert!(!s.conn.is_closed());
    s.timeout(secs(10));
    assert_eq!(s.sent(), [OUR_PING]);
}

#[test]
fn exports_that_break_a_limit_end_the_connection_at_once() {
    let mut deep = Value::from(LocalFn(1));
    for _ in 0..200 {
        deep = Value::array([deep]);
    }
    let mut s = Server::with_exports(ServerConfig::default(), Value::object([("deep", deep)]));
    assert_ended_by(&s.events(), |r| {
        matches!(r, LinkError::Local(LocalError::TooDeep { .. }))
    });
    assert_silent_after_close(&mut s);
}

// ---- timers -----------------------------------------------------------------------------------

#[test]
fn spurious_and_early_timeouts_are_harmless() {
    let mut s = Server::new(ServerConfig::default());
    s.sent();
    let poke = |s: &mut Server, from: Duration| {
        let before = s.conn.poll_timeout();
        for t in [from, from, from + ms(1), from + ms(900)] {
            s.timeout(t);
        }
        s.expect_quiet();
        assert_eq!(s.conn.poll_timeout(), before);
    };
    poke(&mut s, Duration::ZERO);
    s.input(secs(1), CLIENT_METHODS);
    s.events();
    poke(&mut s, secs(1));
    s.timeout(secs(11));
    assert_eq!(s.sent(), [OUR_PING]);
    poke(&mut s, secs(11));
}

#[test]
fn poll_timeout_is_never_in_the_past_after_handle_timeout() {
    let mut config = ServerConfig::default();
    config.ping_timeout = secs(25); // longer than the interval: due and deadline interleave
    let mut s = open_with(config, CLIENT_METHODS, Duration::ZERO);
    s.sent();
    let mut answered = 0;
    while let Some(now) = s.fire_next_timeout() {
        if let Some(after) = s.next_timeout() {
            assert!(after > now, "timer at {after:?} <= now {now:?}");
        }
        if !s.sent().is_empty() && answered < 5 {
            // Each ping has its own callback id, from 2 up.
            let id = 2 + answered;
            answered += 1;
            let pong = format!(r#"{{"method":{id},"arguments":[],"callbacks":{{}},"links":[]}}"#);
            s.input(now + ms(7), &pong);
            assert_eq!(s.events(), [LinkEvent::Ping { rtt: ms(7) }]);
        }
    }
    assert_eq!(answered, 5);
    assert_eq!(
        s.events(),
        ended(LinkError::PingTimeout(secs(25)), true),
        "the sixth ping went unanswered"
    );
}

// ---- output back-pressure -------------------------------------------------------------------------

#[test]
fn output_over_its_cap_pauses_input_holds_calls_and_a_stall_ends_the_connection() {
    let mut config = ServerConfig::default();
    config.output.max_unsent = 1000;
    config.output.stall_timeout = secs(3);
    let mut s = Server::new(config);
    s.input(ms(0), CLIENT_METHODS);
    s.events();
    s.sent();
    let now = s.at(ms(1));
    s.conn.handle_unsent(now, 999);
    assert!(!s.conn.is_input_paused());
    let now = s.at(ms(2));
    s.conn.handle_unsent(now, 1000);
    assert!(s.conn.is_input_paused(), "at the cap");
    assert_eq!(s.conn.counters().unsent_bytes, 1000);
    // A call is held back (not sent) while full.
    let now = s.at(ms(3));
    let call = s
        .conn
        .call(
            now,
            Target::Name("x".into()),
            vec![Value::from(LocalFn(5))],
            None,
        )
        .unwrap()
        .unwrap();
    assert!(s.sent().is_empty());
    assert_eq!(s.conn.counters().calls_waiting, 1);
    // The peer reads some: the held call goes out.
    let now = s.at(ms(4));
    s.conn.handle_unsent(now, 10);
    assert!(!s.conn.is_input_paused());
    assert_eq!(s.sent().len(), 1);
    assert_eq!(s.conn.counters().calls_in_flight, 1);
    // Full again, and for the whole stall timeout: the connection ends, the call fails.
    let now = s.at(secs(1));
    s.conn.handle_unsent(now, 5000);
    assert_eq!(s.conn.poll_timeout(), Some(s.at(secs(4))));
    let ev = s.timeout_exactly(secs(4));
    assert!(ev.contains(&call_failed(call, CallFailure::LinkDown)));
    assert!(
        ev.contains(&LinkEvent::Down {
            reason: LinkError::OutputStalled {
                unsent: 5000,
                after: secs(3)
            }
        }),
        "{ev:?}"
    );
    assert!(s.conn.is_closed());
}

#[test]
fn with_fail_a_call_while_the_output_is_full_fails_at_once() {
    let mut config = ServerConfig::default();
    config.output.max_unsent = 100;
    config.calls.when_full = WhenFull::Fail;
    let mut s = Server::new(config);
    s.input(ms(0), CLIENT_METHODS);
    s.events();
    s.sent();
    let now = s.at(ms(1));
    s.conn.handle_unsent(now, 100);
    assert_eq!(
        s.conn.call(
            now,
            Target::Name("x".into()),
            vec![Value::from(LocalFn(5))],
            None
        ),
        Err(SendError::OutputFull)
    );
    // An answer (no callback of ours) is never held back.
    s.conn
        .call(now, Target::Name("x".into()), vec![Value::from(1)], None)
        .unwrap();
    assert_eq!(s.sent().len(), 1);
}
