//! Named scenarios for [`ClientLink`]: a scripted server feeds literal dnode lines (PROTOCOL.md
//! §11), the test reads back exactly what the link transmits and reports, and time is virtual
//! (`t0 + Duration`).

mod harness;

use harness::client::*;
use harness::*;

fn exponential_no_jitter() -> ReconnectPolicy {
    ReconnectPolicy::new(Backoff::Exponential(Exponential {
        min: ms(100),
        max: secs(30),
        factor: 2.0,
        jitter: Jitter::None,
    }))
}

// ---- defaults ---------------------------------------------------------------------------------

#[test]
fn client_defaults_are_upnodes_documented_values() {
    // upnode 0.6: ping 10000 ms, timeout 5000 ms, reconnect 1000 ms fixed, forever.
    assert_eq!(DEFAULT_PING_INTERVAL, ms(10_000));
    assert_eq!(DEFAULT_PING_TIMEOUT, ms(5_000));
    assert_eq!(DEFAULT_RECONNECT_DELAY, ms(1_000));
    assert_eq!(DEFAULT_MAX_RECONNECT_ATTEMPTS, None);
    // Ours, where upnode had none.
    assert_eq!(DEFAULT_CONNECT_TIMEOUT, secs(10));
    assert_eq!(DEFAULT_HANDSHAKE_TIMEOUT, secs(10));
    assert_eq!(DEFAULT_CONNECT_STEP_TIMEOUT, secs(10));
    assert_eq!(DEFAULT_STABLE_AFTER, secs(10));
    assert_eq!(DEFAULT_QUEUE_CAP, 1_000_000);

    let c = ClientConfig::default();
    assert_eq!(c.ping_interval, Some(DEFAULT_PING_INTERVAL));
    assert_eq!(c.ping_timeout, DEFAULT_PING_TIMEOUT);
    assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(c.handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT);
    assert!(
        !c.connect_step,
        "default: up with the server's interface itself"
    );
    assert_eq!(c.connect_step_timeout, Some(DEFAULT_CONNECT_STEP_TIMEOUT));
    assert_eq!(c.reconnect, ReconnectPolicy::fixed(ms(1_000)));
    assert_eq!(c.reconnect.backoff, Backoff::Fixed(DEFAULT_RECONNECT_DELAY));
    assert_eq!(c.reconnect.max_attempts, None);
    assert_eq!(c.stable_after, DEFAULT_STABLE_AFTER);
    assert_eq!(c.queue_cap, DEFAULT_QUEUE_CAP);
    assert_eq!(c.seed, 0);
    assert_eq!(c.session, SessionConfig::default());
}

// ---- first connect ----------------------------------------------------------------------------

#[test]
fn first_connect_asks_for_transport_attempt_1_with_the_connect_timeout_armed() {
    let mut c = Client::new(ClientConfig::default());
    assert_eq!(c.events(), [open_transport(C1, 1)]);
    assert_eq!(c.link.state(), LinkState::Connecting);
    assert_eq!(c.link.conn(), Some(C1));
    assert_eq!(c.link.poll_transmit(), None);
    assert_eq!(c.link.poll_timeout(), Some(c.at(secs(10))));
    assert_eq!(c.link.remote(), None);
    assert_eq!(c.link.up_value(), None);
}

#[test]
fn our_methods_go_out_as_soon_as_the_transport_opens_without_waiting_for_the_server() {
    let mut c = connecting(ClientConfig::default());
    c.connected(C1, ms(5));
    assert_eq!(c.sent_on(), [(C1, OUR_METHODS.to_owned())]);
    assert_eq!(c.events(), []);
    assert_eq!(c.link.state(), LinkState::Handshaking);
    // The handshake timeout replaces the connect timeout.
    assert_eq!(c.link.poll_timeout(), Some(c.at(ms(5) + secs(10))));
}

#[test]
fn our_methods_list_the_user_keys_first_then_the_links_ping() {
    let exports = Value::object([
        ("beep", Value::from(LocalFn(1))),
        ("n", Value::from(5)),
        ("time", Value::from(LocalFn(2))),
    ]);
    let mut c = Client::with_exports(ClientConfig::default(), exports);
    c.events();
    c.connected(C1, Duration::ZERO);
    assert_eq!(
        c.sent(),
        [
            r#"{"method":"methods","arguments":[{"beep":"[Function]","n":5,"time":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","beep"],"1":["0","time"],"2":["0","ping"]},"links":[]}"#
        ]
    );
}

#[test]
fn a_user_ping_is_kept_and_the_servers_calls_to_it_go_to_the_user() {
    // upnode adds `ping` only when absent.
    let exports = Value::object([("ping", Value::from(LocalFn(7)))]);
    let mut c = Client::with_exports(ClientConfig::default(), exports);
    c.events();
    c.up(C1, Duration::ZERO);
    c.input(
        C1,
        ms(1),
        r#"{"method":0,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}"#,
    );
    assert_eq!(
        c.events(),
        [called(C1, LocalFn(7), vec![Value::from(RemoteFn(2))], None)]
    );
    assert_eq!(c.sent(), Vec::<String>::new());
}

#[test]
fn server_methods_report_remote_then_queued_transactions_in_fifo_order_then_up() {
    let mut c = connecting(ClientConfig::default());
    let a = c.link.transact(c.t0(), None, false).unwrap();
    let b = c.link.transact(c.at(ms(1)), Some(secs(5)), false).unwrap();
    let d = c.link.transact(c.at(ms(2)), None, true).unwrap();
    assert_eq!((a.number(), b.number(), d.number()), (0, 1, 2));
    assert!(!a.retries() && d.retries());
    assert_eq!(c.link.queued(), 3);
    assert_eq!(c.events(), []);

    c.connected(C1, ms(10));
    assert_eq!(c.sent(), [OUR_METHODS]);
    assert_eq!(
        c.events(),
        [],
        "nothing is ready before the server's methods"
    );
    c.input(C1, ms(20), SERVER_METHODS);
    assert_eq!(
        c.events(),
        [remote(C1), ready(a, C1), ready(b, C1), ready(d, C1), up(C1)]
    );
    assert_eq!(c.link.state(), LinkState::Up);
    assert_eq!(c.link.queued(), 0);
    let iface = Value::object([
        ("time", Value::from(RemoteFn(0))),
        ("ping", Value::from(RemoteFn(1))),
    ]);
    assert_eq!(c.link.remote(), Some(&iface));
    assert_eq!(
        c.link.up_value(),
        Some(&iface),
        "default: up with the remote"
    );
    assert_eq!(c.sent(), Vec::<String>::new());
}

#[test]
fn a_repeated_methods_replaces_the_remote_and_reports_nothing() {
    let mut c = up_at_t0(ClientConfig::default());
    c.input(
        C1,
        ms(1),
        r#"{"method":"methods","arguments":[{"beep":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","beep"],"1":["0","ping"]},"links":[]}"#,
    );
    assert_eq!(c.events(), []);
    assert_eq!(c.link.state(), LinkState::Up);
    let iface = Value::object([
        ("beep", Value::from(RemoteFn(0))),
        ("ping", Value::from(RemoteFn(1))),
    ]);
    assert_eq!(c.link.remote(), Some(&iface));
    // What transactions receive stays the interface the link went up with.
    let first = Value::object([
        ("time", Value::from(RemoteFn(0))),
        ("ping", Value::from(RemoteFn(1))),
    ]);
    assert_eq!(c.link.up_value(), Some(&first));
}

// ---- transactions -----------------------------------------------------------------------------

#[test]
fn a_transaction_made_while_up_is_ready_at_once_and_its_timeout_never_fires() {
    let mut c = up_at_t0(no_ping());
    let tx = c
        .link
        .transact(c.at(secs(1)), Some(secs(2)), false)
        .unwrap();
    assert_eq!(c.events(), [ready(tx, C1)]);
    assert_eq!(c.link.poll_timeout(), None);
    c.timeout(secs(3));
    c.timeout(secs(60));
    assert_eq!(c.events(), []);
}

#[test]
fn a_waiting_transaction_times_out_exactly_at_its_deadline_once_and_is_never_made_ready() {
    let mut c = connecting(ClientConfig::default());
    let tx = c
        .link
        .transact(c.at(ms(100)), Some(ms(500)), false)
        .unwrap();
    let deadline = ms(600);
    assert_eq!(c.link.poll_timeout(), Some(c.at(deadline)));

    assert_eq!(
        c.timeout_exactly(deadline),
        [LinkEvent::TransactionTimedOut { tx }]
    );
    assert_eq!(c.link.queued(), 0);
    c.timeout(deadline);
    c.timeout(deadline + ms(1));
    assert_eq!(c.events(), [], "exactly once");
    assert_eq!(
        c.link.poll_timeout(),
        Some(c.at(secs(10))),
        "connect timeout only"
    );

    let ev = c.up(C1, ms(700));
    assert_eq!(ev, [remote(C1), up(C1)]);
}

#[test]
fn a_transaction_whose_deadline_passed_times_out_even_if_up_arrives_before_the_timer() {
    // The driver's timer has not fired yet when the server's methods come in, 1 ms after the
    // deadline: the link knows the time and must not run a transaction late.
    let mut c = connecting(ClientConfig::default());
    let late = c.link.transact(c.t0(), Some(secs(1)), false).unwrap();
    let on_time = c.link.transact(c.t0(), Some(secs(2)), false).unwrap();
    c.handshake(C1, ms(500), ms(1_001), SERVER_METHODS);
    assert_eq!(
        c.events(),
        [
            remote(C1),
            LinkEvent::TransactionTimedOut { tx: late },
            ready(on_time, C1),
            up(C1),
        ]
    );
    c.timeout(secs(1));
    c.timeout(secs(2));
    assert_eq!(c.events(), []);
}

#[test]
fn cancel_withdraws_a_waiting_transaction_and_nothing_is_reported_for_it() {
    let mut c = connecting(ClientConfig::default());
    let gone = c.link.transact(c.t0(), Some(secs(1)), false).unwrap();
    let kept = c.link.transact(c.t0(), None, false).unwrap();
    assert_eq!(c.link.poll_timeout(), Some(c.at(secs(1))));
    assert!(c.link.cancel(gone));
    assert!(!c.link.cancel(gone), "only once");
    assert_eq!(c.link.queued(), 1);
    assert_eq!(
        c.link.poll_timeout(),
        Some(c.at(secs(10))),
        "its deadline is gone"
    );
    c.timeout(secs(1));
    assert_eq!(c.events(), []);
    let ev = c.up(C1, secs(2));
    assert_eq!(ev, [remote(C1), ready(kept, C1), up(C1)]);
    assert!(!c.link.cancel(kept), "a ready transaction is not waiting");
}

#[test]
fn a_full_queue_refuses_with_queue_full_and_loses_nothing() {
    let mut config = ClientConfig::default();
    config.queue_cap = 2;
    let mut c = connecting(config);
    let a = c.link.transact(c.t0(), None, false).unwrap();
    let b = c.link.transact(c.t0(), Some(secs(5)), false).unwrap();
    assert_eq!(
        c.link.transact(c.t0(), None, false),
        Err(TransactError::QueueFull { cap: 2 })
    );
    assert_eq!(
        c.link.transact(c.t0(), None, true),
        Err(TransactError::QueueFull { cap: 2 })
    );
    assert_eq!(c.link.queued(), 2);
    assert_eq!(c.events(), []);
    let ev = c.up(C1, secs(1));
    assert_eq!(ev, [remote(C1), ready(a, C1), ready(b, C1), up(C1)]);
    // Refused transactions used no number.
    let next = c.link.transact(c.at(secs(1)), None, false).unwrap();
    assert_eq!(next.number(), 2);
    assert_eq!(c.events(), [ready(next, C1)]);
}

// ---- connect step -----------------------------------------------------------------------------

#[test]
fn with_a_connect_step_remote_is_reported_and_nothing_runs_until_signal_up() {
    let mut c = connecting(with_connect_step());
    let queued = c.link.transact(c.t0(), None, false).unwrap();
    c.handshake(C1, ms(10), ms(20), SERVER_METHODS);
    assert_eq!(c.events(), [remote(C1)]);
    assert_eq!(c.link.state(), LinkState::Authenticating);
    assert!(
        c.link.remote().is_some(),
        "the connect step reads the remote"
    );
    assert_eq!(c.link.up_value(), None);
    // Made during the connect step: waits too.
    let during = c.link.transact(c.at(ms(30)), None, false).unwrap();
    assert_eq!(c.events(), []);
    assert_eq!(c.link.queued(), 2);
    // Connect step timeout and first ping are both due 10 s after the methods.
    assert_eq!(c.link.poll_timeout(), Some(c.at(ms(20) + secs(10))));

    // The connect step calls `auth` on the remote...
    let call = c
        .call_time(
            C1,
            ms(40),
            vec![Value::from("moo"), Value::from(LocalFn(3))],
            None,
        )
        .unwrap();
    assert_eq!(
        c.sent(),
        [r#"{"method":0,"arguments":["moo","[Function]"],"callbacks":{"1":["1"]},"links":[]}"#]
    );
    c.input(
        C1,
        ms(50),
        r#"{"method":1,"arguments":[null,{"beep":"[Function]"}],"callbacks":{"2":["1","beep"]},"links":[]}"#,
    );
    let session = Value::object([("beep", Value::from(RemoteFn(2)))]);
    assert_eq!(
        c.events(),
        [called(
            C1,
            LocalFn(3),
            vec![Value::Null, session.clone()],
            call
        )]
    );
    // ...and signals up with what it got.
    c.link.signal_up(C1, c.at(ms(60)), session.clone());
    assert_eq!(c.events(), [ready(queued, C1), ready(during, C1), up(C1)]);
    assert_eq!(c.link.state(), LinkState::Up);
    assert_eq!(c.link.up_value(), Some(&session));
    let now = c.link.transact(c.at(ms(70)), None, false).unwrap();
    assert_eq!(c.events(), [ready(now, C1)]);
    // The connect step deadline is gone; only the heartbeat remains.
    assert_eq!(c.link.poll_timeout(), Some(c.at(ms(20) + secs(10))));
    c.timeout(ms(20) + secs(10));
    assert_eq!(
        c.sent(),
        [r#"{"method":1,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}"#]
    );
    assert_eq!(c.events(), []);
}

#[test]
fn signal_up_twice_or_without_a_connect_step_pending_is_ignored() {
    let mut c = connecting(with_connect_step());
    c.link.signal_up(C1, c.t0(), Value::from(1));
    assert_eq!(c.events(), []);
    assert_eq!(c.link.state(), LinkState::Connecting);
    c.connected(C1, ms(1));
    c.sent();
    c.link.signal_up(C1, c.at(ms(1)), Value::from(1));
    assert_eq!(c.link.state(), LinkState::Handshaking);
    c.input(C1, ms(2), SERVER_METHODS);
    c.link.signal_up(C1, c.at(ms(3)), Value::from(1));
    assert_eq!(c.events(), [remote(C1), up(C1)]);
    c.link.signal_up(C1, c.at(ms(4)), Value::from(2));
    assert_eq!(c.events(), []);
    assert_eq!(c.link.up_value(), Some(&Value::from(1)));
}

#[test]
fn a_failed_connect_step_closes_the_transport_reports_the_error_and_reconnects() {
    let mut c = connecting(with_connect_step());
    let tx = c.link.transact(c.t0(), None, false).unwrap();
    c.handshake(C1, ms(10), ms(20), SERVER_METHODS);
    assert_eq!(c.events(), [remote(C1)]);
    c.link.fail_connect_step(C1, c.at(ms(30)), "ACCESS DENIED");
    assert_eq!(
        c.events(),
        [
            close_transport(C1),
            LinkEvent::Error(LinkError::ConnectStepFailed {
                detail: "ACCESS DENIED".into()
            }),
            reconnecting(1, secs(1)),
        ]
    );
    assert_eq!(c.link.state(), LinkState::Waiting);
    assert_eq!(c.link.queued(), 1, "the transaction still waits");
    c.timeout(ms(30) + secs(1));
    assert_eq!(c.events(), [open_transport(C2, 2)]);
    c.handshake(C2, ms(1_040), ms(1_050), SERVER_METHODS);
    assert_eq!(c.events(), [remote(C2)]);
    c.link.signal_up(C2, c.at(ms(1_060)), Value::Null);
    assert_eq!(c.events(), [ready(tx, C2), up(C2)]);
}

#[test]
fn a_connect_step_that_never_signals_times_out_exactly_at_its_deadline() {
    let mut config = with_connect_step();
    config.connect_step_timeout = Some(secs(3));
    let mut c = connecting(config);
    c.handshake(C1, ms(10), ms(20), SERVER_METHODS);
    c.events();
    assert_eq!(c.link.poll_timeout(), Some(c.at(ms(20) + secs(3))));
    assert_eq!(
        c.timeout_exactly(ms(20) + secs(3)),
        [
            close_transport(C1),
            LinkEvent::Error(LinkError::ConnectStepTimeout(secs(3))),
            reconnecting(1, secs(1)),
        ]
    );
    // A late signal for the dead connection changes nothing.
    c.link.signal_up(C1, c.at(secs(4)), Value::Null);
    c.link.fail_connect_step(C1, c.at(secs(4)), "late");
    assert_eq!(c.events(), []);
    assert_eq!(c.link.state(), LinkState::Waiting);
}

#[test]
fn a_connect_step_without_a_timeout_waits_as_long_as_the_transport_lives() {
    let mut config = with_connect_step();
    config.connect_step_timeout = None;
    config.ping_interval = None;
    let mut c = connecting(config);
    c.handshake(C1, ms(10), ms(20), SERVER_METHODS);
    c.events();
    assert_eq!(c.link.poll_timeout(), None);
    c.timeout(secs(3_600));
    assert_eq!(c.events(), []);
    assert_eq!(c.link.state(), LinkState::Authenticating);
}

#[test]
fn the_connect_step_runs_again_on_every_reconnect() {
    let mut c = connecting(with_connect_step());
    c.handshake(C1, Duration::ZERO, ms(1), SERVER_METHODS);
    assert_eq!(c.events(), [remote(C1)]);
    c.link.signal_up(C1, c.at(ms(2)), Value::from("first"));
    assert_eq!(c.events(), [up(C1)]);

    assert_eq!(
        c.down_for(C1, secs(2)),
        [down(transport_closed()), reconnecting(1, secs(1))]
    );
    assert_eq!(c.link.up_value(), None);
    c.timeout(secs(3));
    assert_eq!(c.events(), [open_transport(C2, 2)]);
    c.connected(C2, secs(3));
    assert_eq!(c.sent(), [OUR_METHODS]);
    c.input(C2, secs(3), SERVER_METHODS);
    assert_eq!(c.events(), [remote(C2)]);
    assert_eq!(c.link.state(), LinkState::Authenticating);
    c.link.signal_up(C1, c.at(secs(3)), Value::from("stale"));
    assert_eq!(c.events(), [], "a signal for the old connection is ignored");
    c.link.signal_up(C2, c.at(secs(3)), Value::from("second"));
    assert_eq!(c.events(), [up(C2)]);
    assert_eq!(c.link.up_value(), Some(&Value::from("second")));
}

// ---- handshake and connect timeouts -----------------------------------------------------------

#[test]
fn a_server_that_accepts_but_never_sends_methods_is_dropped_at_the_handshake_timeout() {
    let mut c = connecting(ClientConfig::default());
    let tx = c.link.transact(c.t0(), None, false).unwrap();
    c.connected(C1, ms(100));
    c.sent();
    let deadline = ms(100) + secs(10);
    assert_eq!(c.link.poll_timeout(), Some(c.at(deadline)));
    assert_eq!(
        c.timeout_exactly(deadline),
        [
            close_transport(C1),
            LinkEvent::Error(LinkError::HandshakeTimeout(secs(10))),
            reconnecting(1, secs(1)),
        ]
    );
    assert_eq!(c.link.state(), LinkState::Waiting);
    assert_eq!(c.link.queued(), 1);
    c.timeout(deadline + secs(1));
    assert_eq!(c.events(), [open_transport(C2, 2)]);
    // Methods arriving late on the dead transport are ignored.
    c.input(C1, deadline + secs(1), SERVER_METHODS);
    assert_eq!(c.events(), []);
    assert_eq!(c.link.state(), LinkState::Connecting);
    let _ = tx;
}

#[test]
fn a_transport_that_never_opens_is_abandoned_at_the_connect_timeout() {
    let mut c = connecting(ClientConfig::default());
    assert_eq!(
        c.timeout_exactly(secs(10)),
        [
            close_transport(C1),
            LinkEvent::Error(LinkError::ConnectTimeout(secs(10))),
            reconnecting(1, secs(1)),
        ]
    );
    // The driver's late report of the abandoned attempt is ignored.
    c.connected(C1, secs(10) + ms(1));
    assert_eq!(c.link.state(), LinkState::Waiting);
    c.expect_quiet();
}

#[test]
fn a_refused_connect_reports_connect_failed_and_waits_one_second() {
    let mut c = connecting(ClientConfig::default());
    c.refused(C1, ms(3));
    assert_eq!(
        c.events(),
        [
            LinkEvent::Error(LinkError::ConnectFailed {
                detail: "refused".into()
            }),
            reconnecting(1, secs(1)),
        ]
    );
    // A transport closed before it was reported open is a failed connect too.
    c.timeout(ms(3) + secs(1));
    c.events();
    c.link
        .handle_transport_closed(C2, c.at(secs(2)), Some("reset".into()));
    assert_eq!(
        c.events(),
        [
            LinkEvent::Error(LinkError::ConnectFailed {
                detail: "reset".into()
            }),
            reconnecting(2, secs(1)),
        ]
    );
}

#[test]
fn durations_too_long_for_the_clock_mean_never_and_nothing_panics() {
    let mut config = ClientConfig::default();
    config.ping_interval = Some(Duration::MAX);
    config.ping_timeout = Duration::MAX;
    config.connect_timeout = Duration::MAX;
    config.handshake_timeout = Duration::MAX;
    config.connect_step = true;
    config.connect_step_timeout = Some(Duration::MAX);
    config.output.stall_timeout = Duration::MAX;
    config.reconnect = ReconnectPolicy::new(Backoff::Fixed(Duration::MAX));
    let mut c = connecting(config);
    assert_eq!(
        c.link.poll_timeout(),
        None,
        "no connect timeout to wait for"
    );
    c.refused(C1, ms(3));
    assert_eq!(
        c.events(),
        [
            LinkEvent::Error(LinkError::ConnectFailed {
                detail: "refused".into()
            }),
            reconnecting(1, Duration::MAX),
        ]
    );
    assert_eq!(c.link.poll_timeout(), None, "the reconnect never comes");
    assert_eq!(c.link.state(), LinkState::Waiting);
    // Open, then up: no handshake timeout, no ping ever due.
    let never = || {
        let mut config = ClientConfig::default();
        config.ping_interval = Some(Duration::MAX);
        config.ping_timeout = Duration::MAX;
        config.handshake_timeout = Duration::MAX;
        config
    };
    let mut c = connecting(never());
    c.connected(C1, ms(1));
    assert_eq!(c.link.poll_timeout(), None, "no handshake timeout");
    let mut c = up_at_t0(never());
    assert_eq!(c.link.state(), LinkState::Up);
    assert_eq!(c.link.poll_timeout(), None, "no ping due");
    c.expect_quiet();
}

// ---- heartbeat --------------------------------------------------------------------------------

#[test]
fn the_first_ping_goes_out_exactly_one_interval_after_the_servers_methods() {
    let mut c = connecting(ClientConfig::default());
    c.handshake(C1, ms(40), ms(50), SERVER_METHODS);
    c.events();
    let due = ms(50) + secs(10);
    assert_eq!(c.link.poll_timeout(), Some(c.at(due)));
    c.timeout(due - NS);
    assert_eq!(c.sent(), Vec::<String>::new());
    c.timeout(due);
    assert_eq!(c.sent_on(), [(C1, OUR_PING.to_owned())]);
    assert_eq!(c.events(), []);
    assert_eq!(c.link.poll_timeout(), Some(c.at(due + secs(5))));
}

#[test]
fn an_answered_ping_reports_its_round_trip_and_the_next_one_follows_an_interval_later() {
    let mut c = up_at_t0(ClientConfig::default());
    c.timeout(secs(10));
    assert_eq!(c.sent(), [OUR_PING]);
    c.input(C1, secs(10) + ms(30), SERVER_PONG);
    assert_eq!(c.events(), [LinkEvent::Ping { rtt: ms(30) }]);
    assert_eq!(
        c.sent(),
        Vec::<String>::new(),
        "nothing to cull: the pong is ours"
    );
    assert_eq!(c.link.poll_timeout(), Some(c.at(secs(20))));
    assert_eq!(
        c.link.counters().local_callbacks,
        1,
        "the answered pong is forgotten"
    );
    c.timeout(secs(20));
    // Every ping carries a fresh callback id: a Node peer with `weak` may cull an earlier
    // ping's id at any time, which must not take the next ping's answer with it.
    assert_eq!(
        c.sent(),
        [r#"{"method":1,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}"#]
    );
    c.input(
        C1,
        secs(20) + ms(500),
        r#"{"method":"cull","arguments":[1]}"#,
    );
    assert_eq!(c.events(), []);
    c.input(
        C1,
        secs(21),
        r#"{"method":2,"arguments":[],"callbacks":{},"links":[]}"#,
    );
    assert_eq!(c.events(), [LinkEvent::Ping { rtt: secs(1) }]);
    // A duplicate pong is a call of a forgotten callback: reported, nothing more.
    c.input(
        C1,
        secs(22),
        r#"{"method":2,"arguments":[],"callbacks":{},"links":[]}"#,
    );
    assert_eq!(
        c.events(),
        [LinkEvent::Error(LinkError::Remote(
            RemoteError::NoSuchCallback { id: 2 }
        ))]
    );
    assert_eq!(c.link.state(), LinkState::Up);
}

#[test]
fn an_unanswered_ping_takes_the_link_down_exactly_at_the_ping_timeout_and_reconnects() {
    let mut c = up_at_t0(ClientConfig::default());
    let tx = c.link.transact(c.t0(), None, true).unwrap();
    c.events();
    c.timeout(secs(10));
    assert_eq!(c.sent(), [OUR_PING]);
    assert_eq!(
        c.timeout_exactly(secs(15)),
        [
            close_transport(C1),
            down(LinkError::PingTimeout(secs(5))),
            // Up for 15 s but silent after the handshake: never proven alive for stable_after, so
            // the backoff goes on where it was.
            reconnecting(1, secs(1)),
        ]
    );
    assert_eq!(c.link.state(), LinkState::Waiting);
    assert_eq!(c.link.queued(), 1, "the retry transaction waits again");
    // A pong arriving after the verdict changes nothing.
    c.input(C1, secs(15), SERVER_PONG);
    assert_eq!(c.events(), []);
    let _ = tx;
}

#[test]
fn a_server_that_goes_silent_right_after_methods_never_resets_the_backoff() {
    // Stability is proven by traffic from the server: one that black-holes right after its
    // methods looks up for ping interval + ping timeout (15 s >= stable_after 10 s), yet the
    // backoff keeps growing because nothing arrived after the handshake.
    let mut config = ClientConfig::default();
    config.reconnect = exponential_no_jitter();
    let mut c = up_at_t0(config);
    let mut t = Duration::ZERO;
    let mut delay = ms(100);
    for n in 1..=3u64 {
        c.timeout(t + secs(10));
        assert_eq!(c.sent(), [OUR_PING]);
        c.timeout(t + secs(15));
        assert_eq!(
            c.events(),
            [
                close_transport(ConnId(n)),
                down(LinkError::PingTimeout(secs(5))),
                reconnecting(n as u32, delay),
            ]
        );
        t += secs(15) + delay;
        c.timeout(t);
        assert_eq!(
            c.events(),
            [LinkEvent::OpenTransport {
                conn: ConnId(n + 1),
                attempt: n as u32 + 1
            }]
        );
        c.up(ConnId(n + 1), t);
        delay *= 2;
    }
}

#[test]
fn with_ping_disabled_no_ping_is_ever_sent() {
    let mut c = up_at_t0(no_ping());
    assert_eq!(c.link.poll_timeout(), None);
    for s in [10, 15, 20, 3_600] {
        c.timeout(secs(s));
    }
    c.expect_quiet();
    assert_eq!(c.link.state(), LinkState::Up);
}

#[test]
fn a_zero_ping_interval_disables_the_heartbeat_like_upnodes_ping_0() {
    let mut config = ClientConfig::default();
    config.ping_interval = Some(Duration::ZERO);
    let mut c = connecting(config);
    c.handshake(C1, Duration::ZERO, ms(1), SERVER_METHODS_NO_PING);
    assert_eq!(
        c.events(),
        [remote(C1), up(C1)],
        "no NoPingMethod: no heartbeat is wanted"
    );
    let mut c = up_at_t0({
        let mut config = ClientConfig::default();
        config.ping_interval = Some(Duration::ZERO);
        config
    });
    assert_eq!(c.link.poll_timeout(), None, "no timer that is always due");
    c.timeout(secs(3_600));
    c.expect_quiet();
}

#[test]
fn a_server_without_ping_is_reported_and_served_without_heartbeat() {
    let mut c = connecting(ClientConfig::default());
    c.handshake(C1, Duration::ZERO, ms(1), SERVER_METHODS_NO_PING);
    assert_eq!(
        c.events(),
        [
            LinkEvent::Error(LinkError::NoPingMethod),
            remote(C1),
            up(C1),
        ]
    );
    assert!(LinkError::NoPingMethod.is_remote());
    assert_eq!(c.link.poll_timeout(), None);
    c.timeout(secs(10));
    c.timeout(secs(3_600));
    c.expect_quiet();
    assert_eq!(c.link.state(), LinkState::Up);
}

#[test]
fn a_server_without_ping_is_not_an_error_when_our_ping_is_disabled() {
    let mut c = connecting(no_ping());
    c.handshake(C1, Duration::ZERO, ms(1), SERVER_METHODS_NO_PING);
    assert_eq!(c.events(), [remote(C1), up(C1)]);
}

#[test]
fn we_answer_the_servers_ping_by_calling_its_callback_with_no_arguments() {
    let mut c = up_at_t0(ClientConfig::default());
    // §11: the server calls our `ping` (our callback 0) with its callback 2.
    c.input(
        C1,
        secs(1),
        r#"{"method":0,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}"#,
    );
    assert_eq!(c.events(), [], "the link answers by itself");
    assert_eq!(
        c.sent(),
        [
            // An answer callback called once is let go without `cull` (CullPolicy's
            // default), as a Node peer does.
            r#"{"method":2,"arguments":[],"callbacks":{},"links":[]}"#,
        ]
    );
    // Answering does not count as our own heartbeat.
    assert_eq!(c.link.poll_timeout(), Some(c.at(secs(10))));
}

#[test]
fn we_answer_the_servers_ping_by_name_too() {
    let mut c = up_at_t0(ClientConfig::default());
    c.input(
        C1,
        secs(1),
        r#"{"method":"ping","arguments":["[Function]"],"callbacks":{"5":["0"]},"links":[]}"#,
    );
    assert_eq!(c.events(), []);
    assert_eq!(
        c.sent(),
        [r#"{"method":5,"arguments":[],"callbacks":{},"links":[]}"#]
    );
}

#[test]
fn our_own_outgoing_calls_do_not_postpone_the_ping_nor_its_deadline() {
    let mut c = up_at_t0(ClientConfig::default());
    for t in [1_000, 5_000, 9_999] {
        c.call_time(C1, ms(t), vec![], None).unwrap();
        c.timeout(ms(t));
    }
    assert_eq!(c.sent().len(), 3);
    assert_eq!(c.link.poll_timeout(), Some(c.at(secs(10))));
    c.timeout(secs(10));
    assert_eq!(c.sent(), [OUR_PING]);
    for t in [11_000, 14_999] {
        c.call_time(C1, ms(t), vec![], None).unwrap();
        c.timeout(ms(t));
    }
    assert_eq!(c.link.poll_timeout(), Some(c.at(secs(15))));
    c.timeout(secs(15));
    assert_eq!(
        c.events(),
        [
            close_transport(C1),
            down(LinkError::PingTimeout(secs(5))),
            reconnecting(1, secs(1)),
        ]
    );
}

#[test]
fn only_the_pong_answers_a_ping_other_incoming_traffic_does_not() {
    // Current behaviour: the ping deadline is met only by the answer to the ping.
    let mut c = up_at_t0(ClientConfig::default());
    c.timeout(secs(10));
    assert_eq!(c.sent(), [OUR_PING]);
    c.input(
        C1,
        secs(12),
        r#"{"method":0,"arguments":["[Function]"],"callbacks":{"3":["0"]},"links":[]}"#,
    );
    c.input(C1, secs(13), r#"{"method":"nope","arguments":[]}"#);
    c.events();
    assert_eq!(c.link.poll_timeout(), Some(c.at(secs(15))));
    c.timeout(secs(15));
    assert!(c.events().contains(&down(LinkError::PingTimeout(secs(5)))));
}

#[test]
fn the_heartbeat_also_runs_during_the_connect_step() {
    let mut config = with_connect_step();
    config.connect_step_timeout = None;
    let mut c = connecting(config);
    c.handshake(C1, Duration::ZERO, Duration::ZERO, SERVER_METHODS);
    c.events();
    c.timeout(secs(10));
    assert_eq!(c.sent(), [OUR_PING]);
    c.timeout(secs(15));
    assert_eq!(
        c.events(),
        [
            close_transport(C1),
            LinkEvent::Error(LinkError::PingTimeout(secs(5))),
            reconnecting(1, secs(1)),
        ]
    );
}

// ---- calls in flight --------------------------------------------------------------------------

#[test]
fn a_call_with_a_callback_fails_with_link_down_when_the_transport_closes() {
    let mut c = up_at_t0(ClientConfig::default());
    let plain = c.call_time(C1, ms(1), vec![], None).unwrap();
    assert_eq!(plain, None, "no callback, nothing to track");
    let call = c
        .call_time(C1, ms(2), vec![Value::from(LocalFn(5))], None)
        .unwrap();
    assert_eq!(call, Some(CallId(0)));
    assert_eq!(
        c.sent(),
        [
            r#"{"method":0,"arguments":[],"callbacks":{},"links":[]}"#,
            r#"{"method":0,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#,
        ]
    );
    assert_eq!(c.link.calls_in_flight(), 1);
    c.link
        .handle_transport_closed(C1, c.at(secs(1)), Some("reset".into()));
    assert_eq!(
        c.events(),
        [
            call_failed(CallId(0), CallFailure::LinkDown),
            LinkEvent::Down {
                reason: LinkError::TransportClosed {
                    detail: Some("reset".into())
                }
            },
            reconnecting(1, secs(1)),
        ]
    );
    assert_eq!(c.link.calls_in_flight(), 0);
}

#[test]
fn an_answered_call_resolves_with_answers_exactly_once() {
    let mut c = up_at_t0(ClientConfig::default());
    let call = c
        .call_time(C1, ms(1), vec![Value::from(LocalFn(5))], Some(secs(3)))
        .unwrap()
        .unwrap();
    c.sent();
    let answer = r#"{"method":1,"arguments":["Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)"],"callbacks":{},"links":[]}"#;
    c.input(C1, ms(5), answer);
    let args = vec![Value::from(
        "Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)",
    )];
    assert_eq!(
        c.events(),
        [called(C1, LocalFn(5), args.clone(), Some(call))]
    );
    assert_eq!(c.link.calls_in_flight(), 0);
    // A callback may be called again: delivered, but it answers nothing any more.
    c.input(C1, ms(6), answer);
    assert_eq!(c.events(), [called(C1, LocalFn(5), args, None)]);
    // Neither its timeout nor the link going down resolves it again.
    c.timeout(secs(3) + ms(1));
    assert_eq!(c.events(), []);
    assert_eq!(
        c.down_for(C1, secs(4)),
        [down(transport_closed()), reconnecting(1, secs(1))]
    );
}

#[test]
fn a_call_times_out_exactly_at_its_deadline_and_a_late_answer_answers_nothing() {
    let mut c = up_at_t0(ClientConfig::default());
    let call = c
        .call_time(C1, secs(1), vec![Value::from(LocalFn(5))], Some(secs(2)))
        .unwrap()
        .unwrap();
    c.sent();
    assert_eq!(c.link.poll_timeout(), Some(c.at(secs(3))));
    assert_eq!(
        c.timeout_exactly(secs(3)),
        [call_failed(call, CallFailure::TimedOut)]
    );
    c.timeout(secs(3));
    assert_eq!(c.events(), []);
    assert_eq!(c.link.poll_timeout(), Some(c.at(secs(10))), "the ping");
    c.input(
        C1,
        secs(4),
        r#"{"method":1,"arguments":["late"],"callbacks":{},"links":[]}"#,
    );
    assert_eq!(
        c.events(),
        [called(C1, LocalFn(5), vec![Value::from("late")], None)]
    );
    // The link staying up or going down does not fail it a second time.
    assert_eq!(
        c.down_for(C1, secs(5)),
        [down(transport_closed()), reconnecting(1, secs(1))]
    );
}

#[test]
fn calls_on_a_stale_or_pending_connection_are_refused_with_not_connected() {
    let mut c = connecting(ClientConfig::default());
    let call = |c: &mut Client, conn: ConnId| {
        let now = c.at(secs(1));
        c.link
            .call(conn, now, Target::Name("time".into()), vec![], None)
    };
    assert_eq!(
        call(&mut c, C1),
        Err(SendError::NotConnected),
        "not open yet"
    );
    c.up(C1, Duration::ZERO);
    assert_eq!(call(&mut c, C2), Err(SendError::NotConnected), "not ours");
    c.down_for(C1, secs(1));
    assert_eq!(call(&mut c, C1), Err(SendError::NotConnected), "waiting");
    c.reconnect_up(secs(2), C2, secs(2));
    assert_eq!(call(&mut c, C1), Err(SendError::NotConnected), "stale");
    assert_eq!(c.sent(), Vec::<String>::new(), "nothing was sent");
    assert_eq!(call(&mut c, C2), Ok(None));
    assert_eq!(
        c.sent_on(),
        [(
            C2,
            r#"{"method":"time","arguments":[],"callbacks":{},"links":[]}"#.to_owned()
        )]
    );
}

#[test]
fn calls_before_the_servers_methods_go_by_name_only() {
    let mut c = connecting(ClientConfig::default());
    c.connected(C1, Duration::ZERO);
    c.sent();
    let now = c.at(ms(1));
    assert_eq!(
        c.link
            .call(C1, now, Target::Method("time".into()), vec![], None),
        Err(SendError::Local(LocalError::RemoteNotReady))
    );
    assert_eq!(
        c.link
            .call(C1, now, Target::Name("time".into()), vec![], None),
        Ok(None)
    );
    assert_eq!(
        c.sent(),
        [r#"{"method":"time","arguments":[],"callbacks":{},"links":[]}"#]
    );
}

#[test]
fn calls_with_a_reserved_function_key_are_refused_and_nothing_is_sent() {
    let mut c = up_at_t0(ClientConfig::default());
    let now = c.at(ms(1));
    for key in [RESERVED_FN_BASE, u64::MAX - 1, u64::MAX] {
        let nested = Value::object([("cb", Value::array([Value::from(LocalFn(key))]))]);
        assert_eq!(
            c.link
                .call(C1, now, Target::Method("time".into()), vec![nested], None),
            Err(SendError::ReservedKey)
        );
    }
    assert_eq!(c.sent(), Vec::<String>::new());
    assert_eq!(c.link.calls_in_flight(), 0);
    let ok = c.link.call(
        C1,
        now,
        Target::Method("time".into()),
        vec![Value::from(LocalFn(RESERVED_FN_BASE - 1))],
        None,
    );
    assert_eq!(ok, Ok(Some(CallId(0))));
}

// ---- retry transactions -----------------------------------------------------------------------

#[test]
fn a_retry_transaction_runs_again_on_the_next_connection_until_finished() {
    let mut c = connecting(no_ping());
    let retry = c.link.transact(c.t0(), None, true).unwrap();
    let once = c.link.transact(c.t0(), None, false).unwrap();
    let ev = c.up(C1, ms(10));
    assert_eq!(ev, [remote(C1), ready(retry, C1), ready(once, C1), up(C1)]);
    // The connection drops before the retry transaction finished.
    c.down_for(C1, secs(1));
    assert_eq!(c.link.queued(), 1);
    let ev = c.reconnect_up(secs(2), C2, secs(2));
    assert_eq!(
        ev,
        [remote(C2), ready(retry, C2), up(C2)],
        "at-least-once: it runs again; the other does not"
    );
    c.link.finish(retry);
    c.down_for(C2, secs(3));
    assert_eq!(c.link.queued(), 0, "finished: it does not run again");
    let ev = c.reconnect_up(secs(4), C3, secs(4));
    assert_eq!(ev, [remote(C3), up(C3)]);
}

#[test]
fn a_retry_transaction_finished_after_the_drop_was_handled_does_not_rerun() {
    // An async driver learns of the drop and of the transaction's completion in the same
    // batch of events and runs the transaction's code later: `finish` comes after the link
    // queued the transaction again.
    let mut c = up_at_t0(no_ping());
    let tx = c.link.transact(c.at(ms(1)), None, true).unwrap();
    assert_eq!(c.events(), [ready(tx, C1)]);
    c.down_for(C1, ms(2));
    assert_eq!(c.link.queued(), 1);
    c.link.finish(tx);
    assert_eq!(c.link.queued(), 0, "finished: withdrawn");
    let ev = c.reconnect_up(ms(2) + secs(1), C2, secs(2));
    assert_eq!(ev, [remote(C2), up(C2)]);
}

#[test]
fn a_retry_transaction_made_while_up_is_also_rerun_after_a_drop() {
    let mut c = up_at_t0(no_ping());
    let tx = c.link.transact(c.at(ms(1)), None, true).unwrap();
    assert_eq!(c.events(), [ready(tx, C1)]);
    // A fatal protocol error is a drop like any other.
    c.input(C1, ms(2), "{oops");
    let ev = c.events();
    assert!(matches!(
        ev.as_slice(),
        [
            LinkEvent::CloseTransport { conn: C1 },
            LinkEvent::Down {
                reason: LinkError::Remote(RemoteError::BadJson { .. })
            },
            LinkEvent::Reconnecting { attempt: 1, .. },
        ]
    ));
    let ev = c.reconnect_up(ms(2) + secs(1), C2, secs(2));
    assert!(ev.contains(&ready(tx, C2)));
    // A cancelled running transaction does not rerun either.
    assert!(!c.link.cancel(tx));
    c.down_for(C2, secs(3));
    assert_eq!(c.link.queued(), 0);
}

// ---- backoff ----------------------------------------------------------------------------------

#[test]
fn the_default_reconnect_waits_a_fixed_second_before_every_attempt() {
    let mut c = connecting(ClientConfig::default());
    let mut t = Duration::ZERO;
    for attempt in 2..=6u32 {
        let conn = ConnId(u64::from(attempt) - 1);
        c.refused(conn, t);
        assert_eq!(
            c.events(),
            [
                LinkEvent::Error(LinkError::ConnectFailed {
                    detail: "refused".into()
                }),
                reconnecting(attempt - 1, secs(1)),
            ]
        );
        assert_eq!(c.link.poll_timeout(), Some(c.at(t + secs(1))));
        c.timeout(t + secs(1) - NS);
        assert_eq!(c.events(), []);
        t += secs(1);
        c.timeout(t);
        assert_eq!(
            c.events(),
            [open_transport(ConnId(u64::from(attempt)), attempt)]
        );
    }
}

/// Delays of `n` refused connects in a row.
fn refused_delays(config: ClientConfig, n: usize) -> Vec<Duration> {
    let mut c = connecting(config);
    let mut t = Duration::ZERO;
    let mut delays = Vec::new();
    for i in 0..n {
        c.refused(ConnId(i as u64 + 1), t);
        let ev = c.events();
        let Some(&LinkEvent::Reconnecting { attempt, delay }) = ev.last() else {
            panic!("{ev:?}")
        };
        assert_eq!(attempt, i as u32 + 1);
        assert_eq!(c.link.poll_timeout(), Some(c.at(t + delay)));
        delays.push(delay);
        t += delay;
        c.timeout(t);
        assert_eq!(
            c.events(),
            [open_transport(ConnId(i as u64 + 2), attempt + 1)]
        );
    }
    delays
}

#[test]
fn exponential_backoff_delays_stay_within_the_policys_bounds() {
    let policy = ReconnectPolicy::exponential();
    let mut config = ClientConfig::default();
    config.reconnect = policy;
    config.seed = 42;
    let delays = refused_delays(config.clone(), 40);
    for (n, d) in delays.iter().enumerate() {
        let (lo, hi) = policy.bounds(n as u32);
        assert!(
            lo <= *d && *d <= hi,
            "attempt {n}: {d:?} not in {lo:?}..={hi:?}"
        );
    }
    assert!(delays.iter().all(|d| *d <= secs(30)));
    assert!(
        delays.windows(2).any(|w| w[0] != w[1]),
        "full jitter varies the delays"
    );
    // Same seed, same delays; another seed, others.
    assert_eq!(refused_delays(config.clone(), 40), delays);
    config.seed = 43;
    assert_ne!(refused_delays(config, 40), delays);
}

#[test]
fn exponential_backoff_without_jitter_doubles_up_to_its_cap() {
    let mut config = ClientConfig::default();
    config.reconnect = ReconnectPolicy::new(Backoff::Exponential(Exponential {
        min: ms(100),
        max: secs(1),
        factor: 2.0,
        jitter: Jitter::None,
    }));
    assert_eq!(
        refused_delays(config, 7),
        [
            ms(100),
            ms(200),
            ms(400),
            ms(800),
            secs(1),
            secs(1),
            secs(1)
        ]
    );
}

#[test]
fn a_flapping_server_does_not_reset_the_backoff_but_a_stable_period_does() {
    let mut config = no_ping();
    config.reconnect = exponential_no_jitter();
    let mut c = connecting(config);
    c.refused(C1, Duration::ZERO);
    assert_eq!(c.events().last(), Some(&reconnecting(1, ms(100))));
    c.timeout(ms(100));
    assert_eq!(c.events(), [open_transport(C2, 2)]);
    c.up(C2, ms(100));
    // Up for 1 s only: the backoff keeps growing.
    assert_eq!(
        c.down_for(C2, ms(1_100)),
        [down(transport_closed()), reconnecting(2, ms(200))]
    );
    c.timeout(ms(1_300));
    assert_eq!(c.events(), [open_transport(C3, 3)]);
    c.up(C3, ms(1_300));
    // Up 1 ns short of stable_after (10 s): still flapping.
    let t = ms(1_300) + secs(10) - NS;
    assert_eq!(
        c.down_for(C3, t),
        [down(transport_closed()), reconnecting(3, ms(400))]
    );
    let t = t + ms(400);
    c.timeout(t);
    assert_eq!(c.events(), [open_transport(ConnId(4), 4)]);
    c.up(ConnId(4), t);
    // Proven alive (traffic from the server) exactly stable_after after going up: the next
    // drop starts the backoff afresh.
    let t = t + secs(10);
    c.input(ConnId(4), t, r#"{"method":"cull","arguments":[99]}"#);
    assert_eq!(c.events(), []);
    assert_eq!(
        c.down_for(ConnId(4), t),
        [down(transport_closed()), reconnecting(1, ms(100))]
    );
    c.timeout(t + ms(100));
    assert_eq!(c.events(), [open_transport(ConnId(5), 1)]);
    c.refused(ConnId(5), t + ms(100));
    assert_eq!(c.events().last(), Some(&reconnecting(2, ms(200))));
}

#[test]
fn max_attempts_gives_up_closes_and_resolves_every_waiting_transaction() {
    let mut config = ClientConfig::default();
    config.reconnect = ReconnectPolicy::fixed(secs(1)).with_max_attempts(Some(2));
    let mut c = connecting(config);
    let a = c.link.transact(c.t0(), None, false).unwrap();
    let b = c.link.transact(c.t0(), Some(secs(60)), true).unwrap();
    let refused = || {
        LinkEvent::Error(LinkError::ConnectFailed {
            detail: "refused".into(),
        })
    };
    c.refused(C1, Duration::ZERO);
    assert_eq!(c.events(), [refused(), reconnecting(1, secs(1))]);
    c.timeout(secs(1));
    c.events();
    c.refused(C2, secs(1));
    assert_eq!(c.events(), [refused(), reconnecting(2, secs(1))]);
    c.timeout(secs(2));
    assert_eq!(c.events(), [open_transport(C3, 3)]);
    c.refused(C3, secs(2));
    assert_eq!(
        c.events(),
        [
            refused(),
            LinkEvent::TransactionClosed { tx: a },
            LinkEvent::TransactionClosed { tx: b },
            LinkEvent::Error(LinkError::GaveUp { attempts: 3 }),
            LinkEvent::Closed,
        ]
    );
    assert_eq!(c.link.state(), LinkState::Closed);
    assert_eq!(c.link.poll_timeout(), None);
    c.timeout(secs(60));
    assert_eq!(c.events(), []);
    assert_eq!(
        c.link.transact(c.at(secs(61)), None, false),
        Err(TransactError::Closed)
    );
}

#[test]
fn max_attempts_zero_never_reconnects() {
    let mut config = ClientConfig::default();
    config.reconnect = ReconnectPolicy::default().with_max_attempts(Some(0));
    let mut c = up_at_t0(config);
    assert_eq!(
        c.down_for(C1, secs(1)),
        [
            down(transport_closed()),
            LinkEvent::Error(LinkError::GaveUp { attempts: 1 }),
            LinkEvent::Closed,
        ]
    );
}

// ---- close ------------------------------------------------------------------------------------

/// After `Closed`: nothing more, whatever is reported or whenever the timer fires.
fn assert_silent_after_close(c: &mut Client) {
    assert_eq!(c.link.state(), LinkState::Closed);
    assert_eq!(c.link.poll_timeout(), None);
    assert_eq!(c.link.conn(), None);
    for s in [1, 2, 10, 11, 20, 3_600] {
        c.timeout(secs(s));
    }
    for conn in [C1, C2] {
        c.connected(conn, secs(3_601));
        c.input(conn, secs(3_601), SERVER_METHODS);
        c.input(conn, secs(3_601), SERVER_PONG);
        c.refused(conn, secs(3_601));
        c.closed(conn, secs(3_601));
        c.link.signal_up(conn, c.at(secs(3_601)), Value::Null);
        c.link.fail_connect_step(conn, c.at(secs(3_601)), "x");
    }
    c.link.close(c.at(secs(3_602)));
    c.expect_quiet();
    let now = c.at(secs(3_603));
    assert_eq!(
        c.link.transact(now, None, false),
        Err(TransactError::Closed)
    );
    assert_eq!(
        c.link
            .call(C1, now, Target::Name("time".into()), vec![], None),
        Err(SendError::Closed)
    );
    assert_eq!(c.events(), []);
}

#[test]
fn close_while_connecting_closes_the_pending_transport_and_never_reconnects() {
    let mut c = connecting(ClientConfig::default());
    let tx = c.link.transact(c.t0(), Some(secs(2)), false).unwrap();
    c.link.close(c.at(ms(500)));
    assert_eq!(
        c.events(),
        [
            close_transport(C1),
            LinkEvent::TransactionClosed { tx },
            LinkEvent::Closed,
        ]
    );
    assert_silent_after_close(&mut c);
}

#[test]
fn close_while_handshaking_closes_the_transport() {
    let mut c = connecting(ClientConfig::default());
    let tx = c.link.transact(c.t0(), None, false).unwrap();
    c.connected(C1, ms(1));
    assert_eq!(c.sent(), [OUR_METHODS]);
    c.link.close(c.at(ms(2)));
    assert_eq!(
        c.events(),
        [
            close_transport(C1),
            LinkEvent::TransactionClosed { tx },
            LinkEvent::Closed,
        ]
    );
    assert_silent_after_close(&mut c);
}

#[test]
fn close_while_authenticating_fails_the_connect_steps_call_and_the_waiting_transactions() {
    let mut c = connecting(with_connect_step());
    let a = c.link.transact(c.t0(), None, false).unwrap();
    let b = c.link.transact(c.t0(), None, true).unwrap();
    c.handshake(C1, ms(1), ms(2), SERVER_METHODS);
    c.events();
    let auth = c
        .call_time(C1, ms(3), vec![Value::from(LocalFn(1))], None)
        .unwrap()
        .unwrap();
    c.link.close(c.at(ms(4)));
    assert_eq!(
        c.events(),
        [
            close_transport(C1),
            call_failed(auth, CallFailure::Closed),
            LinkEvent::TransactionClosed { tx: a },
            LinkEvent::TransactionClosed { tx: b },
            LinkEvent::Closed,
        ]
    );
    assert_silent_after_close(&mut c);
}

#[test]
fn close_while_up_reports_down_then_closed_and_fails_calls_in_flight() {
    let mut c = up_at_t0(ClientConfig::default());
    let call = c
        .call_time(C1, ms(3), vec![Value::from(LocalFn(1))], Some(secs(5)))
        .unwrap()
        .unwrap();
    let running = c.link.transact(c.at(ms(4)), None, true).unwrap();
    c.sent();
    c.events();
    c.link.close(c.at(ms(5)));
    assert_eq!(
        c.events(),
        [
            close_transport(C1),
            // Calls resolve before Down, as when a connection fails.
            call_failed(call, CallFailure::Closed),
            down(LinkError::Local(LocalError::Closed)),
            LinkEvent::Closed,
        ]
    );
    assert_eq!(c.link.poll_transmit(), None, "nothing more is written");
    assert!(!c.link.cancel(running));
    assert_silent_after_close(&mut c);
}

#[test]
fn close_during_the_reconnect_wait_stops_reconnecting_for_good() {
    // upnode 0.6 emitted one more `reconnect` here.
    let mut c = connecting(ClientConfig::default());
    let tx = c.link.transact(c.t0(), None, false).unwrap();
    c.refused(C1, Duration::ZERO);
    c.events();
    assert_eq!(c.link.state(), LinkState::Waiting);
    c.link.close(c.at(ms(500)));
    assert_eq!(
        c.events(),
        [LinkEvent::TransactionClosed { tx }, LinkEvent::Closed]
    );
    assert_silent_after_close(&mut c);
}

// ---- stale reports and timers -----------------------------------------------------------------

#[test]
fn reports_for_an_old_or_unknown_connection_are_ignored() {
    let mut c = up_at_t0(no_ping());
    c.down_for(C1, secs(1));
    c.timeout(secs(2));
    assert_eq!(c.events(), [open_transport(C2, 2)]);
    let stale = |c: &mut Client, t: Duration| {
        for conn in [C1, ConnId(99)] {
            c.connected(conn, t);
            c.input(conn, t, SERVER_METHODS);
            c.input(conn, t, "{oops");
            c.refused(conn, t);
            c.closed(conn, t);
            c.link.signal_up(conn, c.at(t), Value::Null);
            c.link.fail_connect_step(conn, c.at(t), "x");
            c.link.release(conn, RemoteFn(0));
        }
    };
    stale(&mut c, secs(2));
    assert_eq!(c.events(), []);
    assert_eq!(c.link.state(), LinkState::Connecting);
    assert_eq!(c.link.conn(), Some(C2));
    c.connected(C2, secs(2));
    assert_eq!(c.sent_on(), [(C2, OUR_METHODS.to_owned())]);
    stale(&mut c, secs(3));
    c.expect_quiet();
    assert_eq!(c.link.state(), LinkState::Handshaking);
    c.input(C2, secs(3), SERVER_METHODS);
    assert_eq!(c.events(), [remote(C2), up(C2)]);
    stale(&mut c, secs(4));
    assert_eq!(c.events(), []);
    assert_eq!(c.link.state(), LinkState::Up);
}

#[test]
fn spurious_and_early_timeouts_are_harmless_in_every_state() {
    let mut c = connecting(with_connect_step());
    let tx = c.link.transact(c.t0(), Some(secs(30)), false).unwrap();
    let poke = |c: &mut Client, from: Duration| {
        let before = c.link.poll_timeout();
        let state = c.link.state();
        for t in [from, from, from + ms(1), from + ms(500)] {
            c.timeout(t);
        }
        assert_eq!(c.events(), [], "{state:?}");
        assert_eq!(c.link.poll_transmit(), None, "{state:?}");
        assert_eq!(c.link.poll_timeout(), before, "{state:?}");
        assert_eq!(c.link.state(), state);
    };
    poke(&mut c, Duration::ZERO); // connecting
    c.connected(C1, secs(1));
    c.sent();
    poke(&mut c, secs(1)); // handshaking
    c.input(C1, secs(2), SERVER_METHODS);
    c.events();
    poke(&mut c, secs(2)); // authenticating
    c.link.signal_up(C1, c.at(secs(3)), Value::Null);
    assert_eq!(c.events(), [ready(tx, C1), up(C1)]);
    poke(&mut c, secs(3)); // up
    c.down_for(C1, secs(4));
    poke(&mut c, secs(4)); // waiting
}

#[test]
fn poll_timeout_is_never_in_the_past_after_handle_timeout() {
    // Drive a link only by its own timer for a long virtual hour: every other attempt is
    // refused, the others handshake and then never answer pings; transactions with
    // deadlines keep arriving.
    let mut config = ClientConfig::default();
    config.reconnect = ReconnectPolicy::exponential();
    config.seed = 7;
    let mut c = Client::new(config);
    let mut now = c.t0();
    let mut steps: u64 = 0;
    let mut opened = 0u32;
    let mut resolved = 0usize;
    let mut made = 0usize;
    while now < c.at(secs(3_600)) {
        for ev in c.events() {
            match ev {
                LinkEvent::OpenTransport { conn, .. } => {
                    opened += 1;
                    if opened % 2 == 0 {
                        c.link.handle_connect_failed(conn, now, "refused");
                    } else {
                        c.link.handle_connected(conn, now);
                        c.link
                            .handle_input(conn, now, format!("{SERVER_METHODS}\n").as_bytes());
                    }
                }
                LinkEvent::TransactionReady { .. }
                | LinkEvent::TransactionTimedOut { .. }
                | LinkEvent::TransactionClosed { .. } => resolved += 1,
                _ => {}
            }
        }
        c.sent();
        if steps % 3 == 0 {
            c.link
                .transact(now, Some(ms(1_500 + steps % 7 * 1_000)), false)
                .unwrap();
            made += 1;
        }
        let Some(next) = c.link.poll_timeout() else {
            panic!("a link that is not closed always has a timer here")
        };
        assert!(next >= now, "poll_timeout went backwards");
        now = next;
        c.link.handle_timeout(now);
        if let Some(after) = c.link.poll_timeout() {
            assert!(
                after > now,
                "step {steps}: timer at {after:?} <= now {now:?}"
            );
        }
        steps += 1;
    }
    c.link.close(now);
    resolved += c
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                LinkEvent::TransactionReady { .. }
                    | LinkEvent::TransactionTimedOut { .. }
                    | LinkEvent::TransactionClosed { .. }
            )
        })
        .count();
    assert!(steps > 100);
    assert_eq!(resolved, made, "every transaction resolved exactly once");
}

// ---- errors from the server -------------------------------------------------------------------

#[test]
fn bad_json_from_the_server_while_up_takes_the_link_down_and_reconnects() {
    let mut c = up_at_t0(ClientConfig::default());
    c.input(C1, secs(1), r#"{"method":"time","#);
    let ev = c.events();
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert_eq!(ev[0], close_transport(C1));
    let LinkEvent::Down {
        reason: LinkError::Remote(e @ RemoteError::BadJson { .. }),
    } = &ev[1]
    else {
        panic!("{ev:?}")
    };
    assert!(e.is_fatal());
    assert_eq!(ev[2], reconnecting(1, secs(1)));
    assert_eq!(c.link.poll_transmit(), None);
}

#[test]
fn a_blank_line_from_the_server_is_bad_json_and_the_queue_is_kept() {
    let mut c = connecting(ClientConfig::default());
    let tx = c.link.transact(c.t0(), None, false).unwrap();
    c.connected(C1, ms(1));
    c.sent();
    c.input(C1, ms(2), "");
    let ev = c.events();
    assert!(
        matches!(
            ev.as_slice(),
            [
                LinkEvent::CloseTransport { conn: C1 },
                LinkEvent::Error(LinkError::Remote(RemoteError::BadJson { .. })),
                LinkEvent::Reconnecting {
                    attempt: 1,
                    delay: _
                },
            ]
        ),
        "{ev:?}"
    );
    assert_eq!(c.link.queued(), 1);
    let ev = c.reconnect_up(ms(2) + secs(1), C2, secs(2));
    assert!(ev.contains(&ready(tx, C2)));
}

#[test]
fn messages_before_a_bad_line_in_the_same_chunk_are_still_delivered() {
    // Chunking must not matter: an answer that arrived whole before the garbage is an answer.
    let mut c = up_at_t0(ClientConfig::default());
    let call = c
        .call_time(C1, ms(1), vec![Value::from(LocalFn(5))], None)
        .unwrap()
        .unwrap();
    c.sent();
    let chunk = "{\"method\":1,\"arguments\":[\"now\"],\"callbacks\":{},\"links\":[]}\n{oops\n";
    c.link.handle_input(C1, c.at(ms(2)), chunk.as_bytes());
    let ev = c.events();
    assert_eq!(
        ev[0],
        called(C1, LocalFn(5), vec![Value::from("now")], Some(call)),
        "{ev:?}"
    );
    assert_eq!(ev[1], close_transport(C1));
    assert!(matches!(
        ev[2],
        LinkEvent::Down {
            reason: LinkError::Remote(RemoteError::BadJson { .. })
        }
    ));
    assert_eq!(ev[3], reconnecting(1, secs(1)));
    assert_eq!(ev.len(), 4, "no CallFailed: it was answered");
}

#[test]
fn methods_and_a_bad_line_in_one_chunk_go_up_then_down() {
    let mut c = connecting(no_ping());
    let tx = c.link.transact(c.t0(), None, false).unwrap();
    c.connected(C1, Duration::ZERO);
    c.sent();
    let chunk = format!("{SERVER_METHODS}\n{{oops\n");
    c.link.handle_input(C1, c.at(ms(1)), chunk.as_bytes());
    let ev = c.events();
    assert_eq!(ev[..3], [remote(C1), ready(tx, C1), up(C1)], "{ev:?}");
    assert_eq!(ev[3], close_transport(C1));
    assert!(matches!(ev[4], LinkEvent::Down { .. }));
    assert_eq!(ev[5], reconnecting(1, secs(1)));
}

#[test]
fn non_fatal_errors_from_the_server_are_reported_and_the_link_stays_up() {
    let mut c = up_at_t0(ClientConfig::default());
    c.input(
        C1,
        ms(1),
        r#"{"method":42,"arguments":[],"callbacks":{},"links":[]}"#,
    );
    c.input(
        C1,
        ms(2),
        r#"{"method":"nope","arguments":[],"callbacks":{},"links":[]}"#,
    );
    c.input(C1, ms(3), "null");
    let ev = c.events();
    assert_eq!(
        ev[..2],
        [
            LinkEvent::Error(LinkError::Remote(RemoteError::NoSuchCallback { id: 42 })),
            LinkEvent::Error(LinkError::Remote(RemoteError::NoSuchMethod {
                name: "nope".into()
            })),
        ]
    );
    assert!(matches!(
        ev[2],
        LinkEvent::Error(LinkError::Remote(RemoteError::NotAMessage { .. }))
    ));
    assert_eq!(ev.len(), 3);
    assert!(ev.iter().all(|e| match e {
        LinkEvent::Error(e) => e.is_remote(),
        _ => false,
    }));
    assert_eq!(c.link.state(), LinkState::Up);
    assert_eq!(c.sent(), Vec::<String>::new());
    // Still working: the heartbeat goes on.
    c.timeout(secs(10));
    assert_eq!(c.sent(), [OUR_PING]);
}

#[test]
fn a_call_whose_callback_the_server_culls_unanswered_fails_as_dropped() {
    let mut c = up_at_t0(ClientConfig::default());
    c.events();
    let call = c
        .call_time(C1, secs(1), vec![Value::from(LocalFn(7))], None)
        .unwrap()
        .expect("tracked: it carries a callback");
    c.sent();
    // Our callback took id 1 (our `ping` has 0); the server frees it without calling it.
    c.input(C1, secs(2), r#"{"method":"cull","arguments":[1]}"#);
    assert_eq!(
        c.events(),
        [
            call_failed(call, CallFailure::Dropped),
            LinkEvent::Released {
                conn: C1,
                function: LocalFn(7)
            },
        ]
    );
    assert_eq!(c.link.calls_in_flight(), 0);
}

// ---- reply callbacks and the in-flight limit ------------------------------------------------------

/// `time(cb)` with `cb` our answer callback `f`, at `d`.
fn call_time_with_reply(c: &mut Client, d: Duration, f: u64, timeout: Option<Duration>) -> CallId {
    let now = c.at(d);
    c.link
        .call_with_reply(
            C1,
            now,
            Target::Method("time".into()),
            vec![],
            LocalFn(f),
            timeout,
        )
        .unwrap()
}

#[test]
fn a_time_limit_too_far_off_for_the_clock_is_no_limit_not_a_panic() {
    let mut c = up_at_t0(no_ping());
    let call = call_time_with_reply(&mut c, ms(1), 5, Some(Duration::MAX));
    let tx = c
        .link
        .transact(c.at(ms(2)), Some(Duration::MAX), false)
        .unwrap();
    assert_eq!(c.link.poll_timeout(), None, "nothing to wake up for");
    c.timeout(secs(3600));
    let answer = r#"{"method":1,"arguments":["12:00"],"callbacks":{},"links":[]}"#;
    c.input(C1, secs(3601), answer);
    let events = c.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, LinkEvent::Call { answers: Some(a), .. } if *a == call)),
        "{events:?}"
    );
    assert!(events.contains(&ready(tx, C1)), "{events:?}");
}

#[test]
fn a_reply_callback_is_forgotten_on_its_answer_and_a_second_call_is_a_non_fatal_error() {
    let mut c = up_at_t0(no_ping());
    let idle = c.link.counters();
    let call = call_time_with_reply(&mut c, ms(1), 5, None);
    assert_eq!(
        c.sent(),
        [r#"{"method":0,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#]
    );
    assert_eq!(c.link.counters().local_callbacks, idle.local_callbacks + 1);
    let answer = r#"{"method":1,"arguments":["12:00"],"callbacks":{},"links":[]}"#;
    c.input(C1, ms(2), answer);
    assert_eq!(
        c.events(),
        [called(
            C1,
            LocalFn(5),
            vec![Value::from("12:00")],
            Some(call)
        )]
    );
    assert_eq!(c.link.counters(), idle, "back to idle after the answer");
    // The server (a Node peer that never culls) calls it again: reported, link stays up.
    c.input(C1, ms(3), answer);
    assert_eq!(
        c.events(),
        [LinkEvent::Error(LinkError::Remote(
            RemoteError::NoSuchCallback { id: 1 }
        ))]
    );
    assert_eq!(c.link.state(), LinkState::Up);
}

#[test]
fn a_reply_callback_is_forgotten_when_its_call_times_out() {
    let mut c = up_at_t0(no_ping());
    let idle = c.link.counters();
    let call = call_time_with_reply(&mut c, ms(1), 5, Some(secs(1)));
    c.sent();
    c.timeout(ms(1) + secs(1));
    assert_eq!(
        c.events(),
        [reply_failed(call, LocalFn(5), CallFailure::TimedOut)]
    );
    assert_eq!(c.link.counters(), idle);
    c.input(
        C1,
        secs(2),
        r#"{"method":1,"arguments":["late"],"callbacks":{},"links":[]}"#,
    );
    assert_eq!(
        c.events(),
        [LinkEvent::Error(LinkError::Remote(
            RemoteError::NoSuchCallback { id: 1 }
        ))]
    );
}

#[test]
fn only_the_reply_callback_answers_a_call_with_a_reply() {
    let mut c = up_at_t0(no_ping());
    let now = c.at(ms(1));
    let call = c
        .link
        .call_with_reply(
            C1,
            now,
            Target::Method("time".into()),
            vec![Value::from(LocalFn(7))],
            LocalFn(5),
            None,
        )
        .unwrap();
    c.sent();
    // The server calls the progress callback (our id 1) first: not the answer.
    c.input(
        C1,
        ms(2),
        r#"{"method":1,"arguments":[50],"callbacks":{},"links":[]}"#,
    );
    assert!(matches!(
        &c.events()[..],
        [LinkEvent::Call {
            function: LocalFn(7),
            answers: None,
            ..
        }]
    ));
    assert_eq!(c.link.calls_in_flight(), 1);
    c.input(
        C1,
        ms(3),
        r#"{"method":2,"arguments":["done"],"callbacks":{},"links":[]}"#,
    );
    assert!(matches!(
        &c.events()[..],
        [LinkEvent::Call { function: LocalFn(5), answers: Some(a), .. }] if *a == call
    ));
}

/// A client whose in-flight limit is 2.
fn limited(when_full: WhenFull) -> Client {
    let mut config = no_ping();
    config.calls.max_in_flight = 2;
    config.calls.when_full = when_full;
    up_at_t0(config)
}

#[test]
fn past_the_in_flight_limit_calls_wait_and_leave_in_order_as_answers_free_slots() {
    let mut c = limited(WhenFull::Wait);
    let ids: Vec<CallId> = (0..4)
        .map(|i| call_time_with_reply(&mut c, ms(1), 10 + i, None))
        .collect();
    assert_eq!(c.sent().len(), 2, "two sent, two waiting");
    let n = c.link.counters();
    assert_eq!((n.calls_in_flight, n.calls_waiting), (2, 2));
    // The first answer frees a slot: the third call goes out at once, with the next id.
    c.input(
        C1,
        ms(2),
        r#"{"method":1,"arguments":[],"callbacks":{},"links":[]}"#,
    );
    assert!(matches!(&c.events()[..], [LinkEvent::Call { answers: Some(a), .. }] if *a == ids[0]));
    assert_eq!(
        c.sent(),
        [r#"{"method":0,"arguments":["[Function]"],"callbacks":{"3":["0"]},"links":[]}"#]
    );
    c.input(
        C1,
        ms(3),
        r#"{"method":2,"arguments":[],"callbacks":{},"links":[]}"#,
    );
    c.input(
        C1,
        ms(3),
        r#"{"method":3,"arguments":[],"callbacks":{},"links":[]}"#,
    );
    assert_eq!(c.sent().len(), 1, "the fourth");
    c.input(
        C1,
        ms(4),
        r#"{"method":4,"arguments":[],"callbacks":{},"links":[]}"#,
    );
    let answered: Vec<CallId> = c
        .events()
        .into_iter()
        .filter_map(|e| match e {
            LinkEvent::Call { answers, .. } => answers,
            _ => None,
        })
        .collect();
    assert_eq!(answered, ids[1..]);
    let n = c.link.counters();
    assert_eq!(
        (n.calls_in_flight, n.calls_waiting, n.local_callbacks),
        (0, 0, 1)
    );
}

#[test]
fn calls_waiting_for_a_slot_are_capped_and_one_past_the_cap_fails_keeping_nothing() {
    let mut config = no_ping();
    config.calls.max_in_flight = 2;
    config.calls.max_waiting = 3;
    let mut c = up_at_t0(config);
    for i in 0..5 {
        call_time_with_reply(&mut c, ms(1), 10 + i, None);
    }
    let idle = c.link.counters();
    assert_eq!((idle.calls_in_flight, idle.calls_waiting), (2, 3));
    let now = c.at(ms(1));
    let call = |c: &mut Client, f: u64| {
        c.link.call_with_reply(
            C1,
            now,
            Target::Method("time".into()),
            vec![],
            LocalFn(f),
            None,
        )
    };
    assert_eq!(
        call(&mut c, 15),
        Err(SendError::TooManyWaiting { limit: 3 })
    );
    assert_eq!(c.link.counters(), idle, "the refused call keeps nothing");
    assert_eq!(c.sent().len(), 2, "only the two in flight went out");
    // An answer frees a slot: a waiting call goes out, and there is room to wait again.
    c.input(
        C1,
        ms(2),
        r#"{"method":1,"arguments":[],"callbacks":{},"links":[]}"#,
    );
    assert_eq!(c.sent().len(), 1);
    assert!(call(&mut c, 16).is_ok());
    let n = c.link.counters();
    assert_eq!((n.calls_in_flight, n.calls_waiting), (2, 3));
}

#[test]
fn past_the_in_flight_limit_with_fail_a_call_fails_at_once_and_sends_nothing() {
    let mut c = limited(WhenFull::Fail);
    call_time_with_reply(&mut c, ms(1), 10, None);
    call_time_with_reply(&mut c, ms(1), 11, None);
    c.sent();
    let now = c.at(ms(1));
    assert_eq!(
        c.link.call_with_reply(
            C1,
            now,
            Target::Method("time".into()),
            vec![],
            LocalFn(12),
            None
        ),
        Err(SendError::TooManyInFlight { limit: 2 })
    );
    assert!(c.sent().is_empty());
    // Calls without a callback of ours take no slot.
    c.link
        .call(C1, now, Target::Method("time".into()), vec![], None)
        .unwrap();
    assert_eq!(c.sent().len(), 1);
}

#[test]
fn a_call_waiting_for_a_slot_times_out_from_when_it_was_made_and_is_never_sent() {
    let mut c = limited(WhenFull::Wait);
    call_time_with_reply(&mut c, ms(0), 10, None);
    call_time_with_reply(&mut c, ms(0), 11, None);
    let waiting = call_time_with_reply(&mut c, ms(0), 12, Some(secs(1)));
    c.sent();
    assert_eq!(c.link.poll_timeout(), Some(c.at(secs(1))));
    c.timeout(secs(1));
    assert_eq!(
        c.events(),
        [reply_failed(waiting, LocalFn(12), CallFailure::TimedOut)]
    );
    c.input(
        C1,
        secs(2),
        r#"{"method":1,"arguments":[],"callbacks":{},"links":[]}"#,
    );
    c.events();
    assert!(c.sent().is_empty(), "the timed-out call is not sent later");
    assert_eq!(c.link.counters().calls_waiting, 0);
}

#[test]
fn calls_waiting_for_a_slot_fail_with_link_down_after_those_in_flight() {
    let mut c = limited(WhenFull::Wait);
    let ids: Vec<CallId> = (0..3)
        .map(|i| call_time_with_reply(&mut c, ms(1), 10 + i, None))
        .collect();
    c.closed(C1, ms(2));
    let failed: Vec<(CallId, Option<LocalFn>)> = c
        .events()
        .into_iter()
        .filter_map(|e| match e {
            LinkEvent::CallFailed {
                call,
                reply,
                reason: CallFailure::LinkDown,
            } => Some((call, reply)),
            _ => None,
        })
        .collect();
    // Each failure names the reply callback its call was made with.
    let expected: Vec<_> = ids
        .iter()
        .zip(10..)
        .map(|(id, f)| (*id, Some(LocalFn(f))))
        .collect();
    assert_eq!(failed, expected);
    let n = c.link.counters();
    assert_eq!((n.calls_in_flight, n.calls_waiting), (0, 0));
}

#[test]
fn a_hundred_thousand_answered_calls_leave_the_tables_as_they_were() {
    // A Node server never culls: without forgetting, the 100 001st call would fail.
    let mut c = up_at_t0(no_ping());
    let idle = c.link.counters();
    let mut line = String::new();
    for i in 0..100_001u64 {
        call_time_with_reply(&mut c, ms(1), 10 + (i % 1000), None);
        while c.link.poll_transmit().is_some() {}
        line.clear();
        line.push_str(&format!(
            r#"{{"method":{},"arguments":[1],"callbacks":{{}},"links":[]}}"#,
            i + 1
        ));
        c.input(C1, ms(2), &line);
        while c.link.poll_event().is_some() {}
    }
    assert_eq!(c.link.counters(), idle);
    assert_eq!(c.link.state(), LinkState::Up);
}

#[test]
fn with_a_short_heartbeat_a_silent_server_is_given_up_on_within_ping_plus_timeout() {
    // The user asks for a dead link to be found within 1.3 s: a reconnect attempt that
    // reaches a server (or a black hole) that never sends `methods` gives up as soon.
    let mut config = ClientConfig::default();
    config.ping_interval = Some(ms(1000));
    config.ping_timeout = ms(300);
    let mut c = connecting(config);
    c.connected(C1, Duration::ZERO);
    c.sent();
    assert_eq!(c.link.poll_timeout(), Some(c.at(ms(1300))));
    assert_eq!(
        c.timeout_exactly(ms(1300)),
        [
            close_transport(C1),
            LinkEvent::Error(LinkError::HandshakeTimeout(ms(1300))),
            reconnecting(1, secs(1)),
        ]
    );
}

#[test]
fn with_a_short_heartbeat_a_hanging_connect_is_given_up_on_as_soon() {
    let mut config = ClientConfig::default();
    config.ping_interval = Some(ms(400));
    config.ping_timeout = ms(100);
    let mut c = connecting(config);
    assert_eq!(c.link.poll_timeout(), Some(c.at(ms(500))));
    c.timeout(ms(500));
    assert!(c
        .events()
        .contains(&LinkEvent::Error(LinkError::ConnectTimeout(ms(500)))));
}

#[test]
fn without_a_heartbeat_the_handshake_timeout_is_its_own() {
    let mut c = connecting(no_ping());
    c.connected(C1, Duration::ZERO);
    assert_eq!(c.link.poll_timeout(), Some(c.at(DEFAULT_HANDSHAKE_TIMEOUT)));
}
