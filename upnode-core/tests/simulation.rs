//! The deterministic simulation of the link: a `ClientLink` and the server's `ServerConn`s
//! joined by a virtual network in virtual time, under a seeded fault plan, with every run's
//! log checked against the link's promises (see `sim/check.rs`).
//!
//! - `cargo test -p upnode-core --test simulation` runs `DEFAULT_SEEDS` seeds and the
//!   scenario tests.
//! - `UPNODE_SIM_SEEDS=100000` runs more seeds; `UPNODE_SIM_FIRST_SEED=n` starts elsewhere.
//! - `UPNODE_SIM_SEED=1234 cargo test -p upnode-core --test simulation -- replay_one_seed
//!   --nocapture` replays one seed and prints its plan and full event log.

mod harness;
mod sim;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Seeds run by default (split over the `random_seeds_*` tests, which run in parallel).
const DEFAULT_SEEDS: u64 = 10_000;
/// How many tests the seeds are split over.
const PARTS: u64 = 4;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

/// Runs this part's share of the seeds; fails listing every failing seed with its replay
/// command.
fn run_part(part: u64) {
    let total = env_u64("UPNODE_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let first = env_u64("UPNODE_SIM_FIRST_SEED").unwrap_or(0);
    let mut failures = Vec::new();
    let mut seed = first + part;
    while seed < first + total {
        match catch_unwind(AssertUnwindSafe(|| sim::run_seed(seed))) {
            Ok((_, v)) if v.is_empty() => {}
            Ok((_, v)) => failures.push(format!(
                "seed {seed}: {} violation(s), first: {}\n  replay: {}",
                v.len(),
                v[0],
                sim::replay_line(seed)
            )),
            Err(_) => failures.push(format!(
                "seed {seed}: panicked\n  replay: {}",
                sim::replay_line(seed)
            )),
        }
        if failures.len() >= 20 {
            break;
        }
        seed += PARTS;
    }
    assert!(
        failures.is_empty(),
        "{} failing seed(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn random_seeds_part_0() {
    run_part(0);
}

#[test]
fn random_seeds_part_1() {
    run_part(1);
}

#[test]
fn random_seeds_part_2() {
    run_part(2);
}

#[test]
fn random_seeds_part_3() {
    run_part(3);
}

/// The generator keeps reaching every outcome the invariants are about: over the first
/// 1000 seeds each of these happens at least once (the counts are printed with
/// `--nocapture`).
#[test]
fn random_seeds_reach_every_outcome() {
    use crate::harness::{CallFailure, LinkError, LinkEvent};
    use sim::world::{Act, Entry};
    use std::collections::BTreeMap;
    let mut seen: BTreeMap<&'static str, u64> = BTreeMap::new();
    for seed in 0..1000 {
        let (w, _) = sim::run_seed(seed);
        let mut readies = std::collections::HashMap::new();
        for e in &w.log {
            let k = match e {
                Entry::Client { ev, .. } => match ev {
                    LinkEvent::Up { .. } => "up",
                    LinkEvent::Down {
                        reason: LinkError::PingTimeout(_),
                    } => "down: ping timeout",
                    LinkEvent::Down {
                        reason: LinkError::TransportClosed { .. },
                    } => "down: transport closed",
                    LinkEvent::Down {
                        reason: LinkError::Remote(_),
                    } => "down: bad input",
                    LinkEvent::Down { .. } => "down: other",
                    LinkEvent::Error(LinkError::ConnectFailed { .. }) => "error: connect refused",
                    LinkEvent::Error(LinkError::ConnectTimeout(_)) => "error: connect timeout",
                    LinkEvent::Error(LinkError::HandshakeTimeout(_)) => "error: handshake timeout",
                    LinkEvent::Error(LinkError::ConnectStepTimeout(_)) => {
                        "error: connect step timeout"
                    }
                    LinkEvent::Error(LinkError::ConnectStepFailed { .. }) => {
                        "error: connect step failed"
                    }
                    LinkEvent::Error(LinkError::PingTimeout(_)) => "error: ping timeout before up",
                    LinkEvent::Error(LinkError::GaveUp { .. }) => "error: gave up",
                    LinkEvent::TransactionTimedOut { .. } => "tx timed out",
                    LinkEvent::TransactionClosed { .. } => "tx closed",
                    LinkEvent::TransactionReady { tx, .. } => {
                        let n = readies.entry(*tx).or_insert(0);
                        *n += 1;
                        if *n == 2 {
                            "tx ready again (retry)"
                        } else {
                            "tx ready"
                        }
                    }
                    LinkEvent::CallFailed {
                        reason: CallFailure::LinkDown,
                        ..
                    } => "call failed: link down",
                    LinkEvent::CallFailed {
                        reason: CallFailure::TimedOut,
                        ..
                    } => "call failed: timed out",
                    LinkEvent::CallFailed {
                        reason: CallFailure::Closed,
                        ..
                    } => "call failed: closed",
                    LinkEvent::Call {
                        answers: Some(_), ..
                    } => "call answered",
                    LinkEvent::Released { .. } => "callback culled by server",
                    LinkEvent::Reconnecting { .. } => "reconnecting",
                    _ => continue,
                },
                Entry::Server {
                    ev:
                        LinkEvent::Down {
                            reason: LinkError::PingTimeout(_),
                        },
                    ..
                } => "server: ping timeout",
                Entry::Server {
                    ev:
                        LinkEvent::Down {
                            reason: LinkError::HandshakeTimeout(_),
                        },
                    ..
                } => "server: handshake timeout",
                Entry::Act {
                    act: Act::Lost { .. },
                    ..
                } => "bytes lost in a black hole",
                Entry::Act {
                    act:
                        Act::Cancel {
                            was_waiting: true, ..
                        },
                    ..
                } => "cancelled while waiting",
                Entry::Act {
                    act: Act::ServerDown,
                    ..
                } => "server restart",
                Entry::Act {
                    act: Act::Refused { .. },
                    ..
                } => "connect refused",
                Entry::Act {
                    act: Act::CallRefused { .. },
                    ..
                } => "call refused (connection gone)",
                _ => continue,
            };
            *seen.entry(k).or_default() += 1;
        }
    }
    println!("{seen:#?}");
    let want = [
        "up",
        "down: ping timeout",
        "down: transport closed",
        "down: bad input",
        "error: connect refused",
        "error: connect timeout",
        "error: handshake timeout",
        "error: connect step timeout",
        "error: connect step failed",
        "error: gave up",
        "tx timed out",
        "tx closed",
        "tx ready",
        "tx ready again (retry)",
        "call failed: link down",
        "call failed: timed out",
        "call failed: closed",
        "call answered",
        "callback culled by server",
        "reconnecting",
        "server: ping timeout",
        "server: handshake timeout",
        "bytes lost in a black hole",
        "cancelled while waiting",
        "server restart",
        "connect refused",
    ];
    let missing: Vec<&str> = want
        .iter()
        .copied()
        .filter(|k| !seen.contains_key(k))
        .collect();
    assert!(missing.is_empty(), "never reached: {missing:?}\n{seen:#?}");
}

/// Replays `UPNODE_SIM_SEED` (0 if unset), printing its plan and log.
#[test]
fn replay_one_seed() {
    let seed = env_u64("UPNODE_SIM_SEED").unwrap_or(0);
    let (w, v) = sim::run_seed(seed);
    println!("plan: {:#?}", w.plan);
    println!("{}", w.render_log());
    println!("steps: {}, end: {:?}", w.steps, w.now());
    for x in &v {
        println!("VIOLATION {x}");
    }
    assert!(
        v.is_empty(),
        "seed {seed}: {} violation(s): {v:#?}",
        v.len()
    );
}

// ---- regressions: seeds that found bugs ------------------------------------------------------

/// Runs `seed`, requires it clean, and hands back its log for a targeted assertion (so a
/// change to the plan generator that stops the seed from reaching the old bug is noticed).
fn regression(seed: u64) -> sim::world::World {
    let (w, v) = sim::run_seed(seed);
    assert!(
        v.is_empty(),
        "seed {seed}: {v:#?}\nreplay: {}",
        sim::replay_line(seed)
    );
    w
}

/// Seed 4: `close()` while up with a call in flight reported `Down` before the call's
/// `CallFailed { Closed }`, so the driver saw the link down with a call still pending.
#[test]
fn regression_seed_4_close_while_up_fails_calls_before_down() {
    use crate::harness::{CallFailure, LinkEvent};
    use sim::world::{Act, Entry};
    let w = regression(4);
    let close = w
        .log
        .iter()
        .position(|e| {
            matches!(
                e,
                Entry::Act {
                    act: Act::Close,
                    ..
                }
            )
        })
        .expect("seed 4 closes");
    let after: Vec<&LinkEvent> = w.log[close..]
        .iter()
        .filter_map(|e| match e {
            Entry::Client { ev, .. } => Some(ev),
            _ => None,
        })
        .collect();
    let failed = after.iter().position(|e| {
        matches!(
            e,
            LinkEvent::CallFailed {
                reason: CallFailure::Closed,
                ..
            }
        )
    });
    let down = after
        .iter()
        .position(|e| matches!(e, LinkEvent::Down { .. }));
    assert!(
        matches!((failed, down), (Some(f), Some(d)) if f < d),
        "seed 4 no longer closes while up with a call in flight: {after:?}"
    );
}

// ---- upnode's own test scenarios (PROTOCOL.md §12), in virtual time ---------------------------

mod scenarios {
    use super::sim::plan::{Op, Plan, Step, TxPlan, BEEP, TIME};
    use super::sim::world::{Act, Entry, World};
    use super::sim::{check, run_plan};
    use crate::harness::{Duration, LinkEvent, LinkState, TxId, Value};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// No faults, the server up, 1 ms latency each way, upnode's default timings.
    fn quiet() -> Plan {
        let mut p = Plan::quiet(1);
        p.latency_min = ms(1);
        p.latency_max = ms(1);
        p
    }

    fn tx(at: u64, op: Op) -> TxPlan {
        TxPlan {
            at: ms(at),
            timeout: None,
            retry: false,
            op,
            call_timeout: None,
            finish_on_call_timeout: false,
        }
    }

    fn run_clean(p: Plan) -> World {
        let (w, v) = run_plan(p);
        assert!(v.is_empty(), "violations: {v:#?}\n{}", w.render_log());
        w
    }

    /// The client's events before the driver called `close()`.
    /// When the client went up, before `close`.
    fn ups_before_close(w: &World) -> Vec<Duration> {
        before_close(w)
            .iter()
            .filter(|(_, e)| matches!(e, LinkEvent::Up { .. }))
            .map(|(t, _)| *t)
            .collect()
    }

    fn before_close(w: &World) -> Vec<(Duration, &LinkEvent)> {
        w.log
            .iter()
            .take_while(|e| {
                !matches!(
                    e,
                    Entry::Act {
                        act: Act::Close,
                        ..
                    }
                )
            })
            .filter_map(|e| match e {
                Entry::Client { t, ev } => Some((*t, ev)),
                _ => None,
            })
            .collect()
    }

    fn count(evs: &[(Duration, &LinkEvent)], f: impl Fn(&LinkEvent) -> bool) -> usize {
        evs.iter().filter(|(_, e)| f(e)).count()
    }

    /// (Up, Down, Reconnecting) before `close()`.
    fn ups_downs_reconnects(w: &World) -> (usize, usize, usize) {
        let evs = before_close(w);
        (
            count(&evs, |e| matches!(e, LinkEvent::Up { .. })),
            count(&evs, |e| matches!(e, LinkEvent::Down { .. })),
            count(&evs, |e| matches!(e, LinkEvent::Reconnecting { .. })),
        )
    }

    /// Every transaction's answer: when, which, what.
    fn answers(w: &World) -> Vec<(Duration, TxId, Value)> {
        w.log
            .iter()
            .filter_map(|e| match e {
                Entry::Act {
                    t,
                    act: Act::Answer { tx, value },
                } => Some((*t, *tx, value.clone())),
                _ => None,
            })
            .collect()
    }

    fn auth_calls(w: &World) -> usize {
        w.log
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Entry::Act {
                        act: Act::Call {
                            what: super::sim::world::CallFor::Auth(_),
                            ..
                        },
                        ..
                    }
                )
            })
            .count()
    }

    /// §12.1 auth: the connect step authenticates on every connection, across a server
    /// restart; 10 beeps (one every 100 ms, through the object `auth` returned) complete.
    #[test]
    fn scenario_auth_across_restart_ten_beeps() {
        let mut p = quiet();
        p.client.connect_step = true;
        p.step = Step::Auth {
            p_fail: 0.0,
            p_hang: 0.0,
            delay_max: Duration::ZERO,
            call_timeout: None,
        };
        // Beeps at 500, 600, ..., 1400 ms; the server is down from 750 ms to 1250 ms.
        p.txs = (0..10).map(|i| tx(500 + 100 * i, Op::Beep)).collect();
        p.restarts = vec![(ms(750), ms(1250))];
        p.close_at = Some(ms(3000));
        let w = run_clean(p);
        // Connected at 1 ms, methods at 2 ms, auth answered at 4 ms: up at 4 ms. Down at
        // 751 ms (the FIN takes 1 ms); one reconnect 1 s later, at 1751 ms, when the server
        // listens again: connected at 1752 ms, up at 1755 ms after auth's round trip.
        assert_eq!(ups_downs_reconnects(&w), (2, 1, 1));
        let ups = ups_before_close(&w);
        assert_eq!(ups, vec![ms(4), ms(1755)]);
        assert_eq!(auth_calls(&w), 2);
        let a = answers(&w);
        assert_eq!(a.len(), 10, "{a:#?}");
        assert!(a.iter().all(|(_, _, v)| v.as_str() == Some("boop")));
        let order: Vec<u64> = a.iter().map(|(_, tx, _)| tx.number()).collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
        // The beeps made while down (800..1400 ms) all arrive together after the re-auth.
        let late: Vec<Duration> = a[3..].iter().map(|(t, _, _)| *t).collect();
        assert!(late.iter().all(|t| *t == late[0]), "{late:?}");
        assert_eq!(late[0], ms(1757));
    }

    /// §12.2 buffered: a plain dnode server (no heartbeat of its own, `ping` still exported)
    /// ends every connection 300 ms after accepting it; 5 transactions made later (while
    /// the link is down) all complete on the next connection.
    #[test]
    fn scenario_buffered_server_ends_each_connection_after_300ms() {
        let mut p = quiet();
        p.server.ping_interval = None;
        p.server_end_after = Some(ms(300));
        p.txs = (0..5).map(|i| tx(500 + 100 * i, Op::Time)).collect();
        p.close_at = Some(ms(2000));
        let w = run_clean(p);
        // Connection 1: accepted at 1 ms, up at 2 ms, ended at 301 ms, down at 302 ms.
        // Connection 2: opened at 1302 ms, up at 1304 ms, ended at 1603 ms, down at 1604 ms.
        // The next attempt (2604 ms) is after close() at 2000 ms.
        assert_eq!(ups_downs_reconnects(&w), (2, 2, 2));
        let a = answers(&w);
        assert_eq!(a.len(), 5, "{a:#?}");
        assert!(a.iter().all(|(t, _, _)| *t == ms(1306)), "{a:#?}");
        let order: Vec<u64> = a.iter().map(|(_, tx, _)| tx.number()).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
        // The server answered each `time` at 1305 ms.
        assert!(a.iter().all(|(_, _, v)| v.as_str() == Some("time 1305")));
    }

    /// §12.3 cons: the client exports data `beep = 5`, the server `boop = 6`; each side sees
    /// the other's value in the interface it received.
    #[test]
    fn scenario_cons_data_exports_beep_5_boop_6() {
        let mut p = quiet();
        p.client_exports = Value::object([("beep", Value::from(5))]);
        p.server_exports = Value::object([("boop", Value::from(6)), ("time", Value::from(TIME))]);
        p.txs = vec![tx(100, Op::Time)];
        p.close_at = Some(ms(500));
        let w = run_clean(p);
        assert_eq!(ups_downs_reconnects(&w), (1, 0, 0));
        assert_eq!(w.remotes_seen.len(), 1);
        assert_eq!(w.remotes_seen[0].1.get("boop"), Some(&Value::from(6)));
        assert!(w.remotes_seen[0].1.get("ping").is_some());
        assert_eq!(w.server_remotes_seen.len(), 1);
        assert_eq!(
            w.server_remotes_seen[0].1.get("beep"),
            Some(&Value::from(5))
        );
        assert!(w.server_remotes_seen[0].1.get("ping").is_some());
        assert_eq!(answers(&w).len(), 1);
    }

    /// §12.4 immediate: the server is up before the transaction is made; it runs at once
    /// and `remote.beep(cb)` answers "boop".
    #[test]
    fn scenario_immediate_beep_returns_boop() {
        let mut p = quiet();
        p.server_exports = Value::object([("beep", Value::from(BEEP))]);
        p.txs = vec![tx(100, Op::Beep)];
        p.close_at = Some(ms(500));
        let w = run_clean(p);
        assert_eq!(ups_downs_reconnects(&w), (1, 0, 0));
        let evs = before_close(&w);
        // Ready at the very instant it was made (the link was up), answered one round trip
        // later.
        assert!(evs
            .iter()
            .any(|(t, e)| *t == ms(100) && matches!(e, LinkEvent::TransactionReady { .. })));
        assert_eq!(
            answers(&w),
            vec![(ms(102), w.tx_ids[0], Value::from("boop"))]
        );
    }

    /// §12.5 simple/listen: the client starts first (refused), the server comes on, goes
    /// off, comes on again: exactly 2 ups and 1 down; the results of transactions made
    /// while down arrive together, in order.
    #[test]
    fn scenario_simple_listen_two_ups_one_down() {
        let mut p = quiet();
        p.server_up_at_start = false;
        p.restarts = vec![(ms(0), ms(1500)), (ms(3000), ms(4500))];
        p.txs = vec![
            tx(2500, Op::Time),
            tx(3200, Op::Time),
            tx(3400, Op::Echo("x".into())),
            tx(3600, Op::Time),
        ];
        p.close_at = Some(ms(6000));
        let w = run_clean(p);
        // Refused at 1 ms and 1002 ms, up at 2004 ms; down at 3001 ms; refused at 4002 ms,
        // up at 5004 ms: four reconnects (two before each up).
        assert_eq!(ups_downs_reconnects(&w), (2, 1, 4));
        let ups = ups_before_close(&w);
        assert_eq!(ups, vec![ms(2004), ms(5004)]);
        let a = answers(&w);
        assert_eq!(
            a,
            vec![
                (ms(2502), w.tx_ids[0], Value::from("time 2501")),
                (ms(5006), w.tx_ids[1], Value::from("time 5005")),
                (ms(5006), w.tx_ids[2], Value::from("x")),
                (ms(5006), w.tx_ids[3], Value::from("time 5005")),
            ]
        );
    }

    /// §12.6 no listener leak: three up/down cycles and `close()`. Nothing accumulates:
    /// at every up the link holds no stale calls or transactions, at most one server
    /// connection is open at a time, and after `close()` every transport and every server
    /// connection is closed.
    #[test]
    fn scenario_no_leak_across_three_cycles_and_close() {
        let mut p = quiet();
        p.restarts = vec![
            (ms(1000), ms(1500)),
            (ms(3000), ms(3500)),
            (ms(5000), ms(5500)),
        ];
        p.txs = vec![
            tx(500, Op::Time),
            tx(1200, Op::Time),
            tx(2500, Op::Echo("e".into())),
            tx(3200, Op::Time),
            tx(4500, Op::Time),
        ];
        p.close_at = Some(ms(5900));
        let mut w = World::new(p);
        let mut t = ms(0);
        while t < ms(5900) {
            t += ms(1);
            w.run_until(t);
            let open = w.sconns.iter().filter(|s| !s.conn.is_closed()).count();
            assert!(open <= 1, "{open} server connections open at {t:?}");
            if w.client.state() == LinkState::Up {
                assert_eq!(w.client.queued(), 0);
            } else {
                assert_eq!(w.client.calls_in_flight(), 0, "at {t:?}");
            }
        }
        w.run();
        let v = check::check(&w);
        assert!(v.is_empty(), "{v:#?}\n{}", w.render_log());
        // Up at 2 ms, 2002 ms, 4002 ms; down at 1001, 3001, 5001 ms; close() at 5900 ms
        // while waiting for the attempt due at 6001 ms.
        assert_eq!(ups_downs_reconnects(&w), (3, 3, 3));
        assert_eq!(w.client.state(), LinkState::Closed);
        assert_eq!((w.client.queued(), w.client.calls_in_flight()), (0, 0));
        assert_eq!(w.sconns.len(), 3);
        assert!(w
            .sconns
            .iter()
            .all(|s| s.conn.is_closed() && s.conn.poll_timeout().is_none()));
        assert!(w.net.iter().all(|n| !n.client_open && !n.server_open));
        assert_eq!(answers(&w).len(), 5);
        // Nothing after Closed.
        let closed = w
            .log
            .iter()
            .position(|e| {
                matches!(
                    e,
                    Entry::Client {
                        ev: LinkEvent::Closed,
                        ..
                    }
                )
            })
            .expect("closed");
        assert!(!w.log[closed + 1..]
            .iter()
            .any(|e| matches!(e, Entry::Client { .. })));
    }

    fn transaction_inside_remote(step: Step) -> World {
        let mut p = quiet();
        p.client.connect_step = !matches!(step, Step::None);
        p.step = step;
        p.transact_on_remote = Some(tx(0, Op::Echo("inside".into())));
        p.restarts = vec![(ms(1000), ms(1500))];
        p.close_at = Some(ms(3000));
        run_clean(p)
    }

    /// §12.7 a transaction queued inside the `remote` handler runs with the same remote and
    /// connection, on every connection (two here, across a restart).
    #[test]
    fn scenario_transaction_queued_inside_remote_handler_gets_same_remote() {
        for step in [Step::None, Step::Remote] {
            let w = transaction_inside_remote(step.clone());
            assert_eq!(ups_downs_reconnects(&w), (2, 1, 1), "{step:?}");
            assert_eq!(w.remotes_seen.len(), 2);
            assert_eq!(w.ready_values.len(), 2);
            for ((conn, remote), (_, ready_conn, value)) in
                w.remotes_seen.iter().zip(&w.ready_values)
            {
                assert_eq!(conn, ready_conn, "{step:?}");
                assert_eq!(value.as_ref(), Some(remote), "{step:?}");
                assert!(remote
                    .get("echo")
                    .is_some_and(|f| f.as_function().is_some()));
            }
            let a = answers(&w);
            assert_eq!(a.len(), 2);
            assert!(a.iter().all(|(_, _, v)| v.as_str() == Some("inside")));
        }
    }

    /// §12.8 timeout: with no server, `up(10 ms)` fires with nothing at exactly 10 ms; once
    /// a server listens, `up(4 s)` gets the remote.
    #[test]
    fn scenario_timeout_fires_with_nothing_then_succeeds() {
        let mut p = quiet();
        p.server_up_at_start = false;
        p.restarts = vec![(ms(0), ms(1500))];
        let mut first = tx(0, Op::Time);
        first.timeout = Some(ms(10));
        let mut second = tx(1000, Op::Time);
        second.timeout = Some(ms(4000));
        p.txs = vec![first, second];
        p.close_at = Some(ms(3000));
        let w = run_clean(p);
        let evs = before_close(&w);
        let (a, b) = (w.tx_ids[0], w.tx_ids[1]);
        let timed_out: Vec<_> = evs
            .iter()
            .filter(|(_, e)| matches!(e, LinkEvent::TransactionTimedOut { .. }))
            .collect();
        assert_eq!(timed_out.len(), 1);
        assert_eq!(
            *timed_out[0],
            (ms(10), &LinkEvent::TransactionTimedOut { tx: a })
        );
        // Refused at 1 ms and 1002 ms; up at 2004 ms, well within 1000 + 4000 ms.
        let ready: Vec<_> = evs
            .iter()
            .filter(|(_, e)| matches!(e, LinkEvent::TransactionReady { .. }))
            .map(|(t, e)| (*t, (*e).clone()))
            .collect();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].0, ms(2004));
        assert!(matches!(ready[0].1, LinkEvent::TransactionReady { tx, .. } if tx == b));
        assert_eq!(ups_downs_reconnects(&w), (1, 0, 2));
    }
}

/// A retry transaction whose call times out at the very instant the heartbeat declares the
/// link dead: one `handle_timeout` reports `CallFailed { TimedOut }` and then `Down`, and
/// the link has queued the transaction again before the driver, handling the failure,
/// calls `finish`. `finish` promises "it will not run again".
#[test]
fn finish_after_the_link_queued_it_again_does_not_run_it_again() {
    use crate::harness::Duration;
    use sim::plan::{Op, Plan, TxPlan};
    let ms = Duration::from_millis;
    let mut p = Plan::quiet(7);
    p.latency_min = ms(1);
    p.latency_max = ms(1);
    p.client.ping_interval = Some(ms(1000));
    p.client.ping_timeout = ms(500);
    // Up at 2 ms: the first ping goes out at 1002 ms, due back by 1502 ms. Nothing reaches
    // the client from 1000 ms after each connect on.
    p.p_black_hole = 1.0;
    p.black_hole_after = ms(1000);
    p.black_hole_dirs = Some([true, false]);
    p.restarts = vec![];
    p.txs = vec![TxPlan {
        at: ms(1002),
        timeout: None,
        retry: true,
        op: Op::Time,
        call_timeout: Some(ms(500)),
        finish_on_call_timeout: true,
    }];
    p.close_at = Some(ms(4000));
    let (w, v) = sim::run_plan(p);
    assert!(v.is_empty(), "{v:#?}\n{}", w.render_log());
    use crate::harness::{CallFailure, LinkError, LinkEvent};
    use sim::world::{Act, Entry};
    let at = |t: Duration| -> Vec<String> {
        w.log
            .iter()
            .filter(|e| e.t() == t)
            .filter_map(|e| match e {
                Entry::Client {
                    ev:
                        LinkEvent::CallFailed {
                            reason: CallFailure::TimedOut,
                            ..
                        },
                    ..
                } => Some("timed out".to_owned()),
                Entry::Act {
                    act: Act::Finish { .. },
                    ..
                } => Some("finish".to_owned()),
                Entry::Client {
                    ev:
                        LinkEvent::Down {
                            reason: LinkError::PingTimeout(_),
                        },
                    ..
                } => Some("down".to_owned()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(at(ms(1502)), ["timed out", "finish", "down"]);
    let readies = w
        .log
        .iter()
        .filter(|e| {
            matches!(
                e,
                Entry::Client {
                    ev: LinkEvent::TransactionReady { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(readies, 1);
}

/// Seed 173159: one `handle_input` delivers the answer to a retry transaction's call, then
/// a bad line ends the connection and the link, out of attempts, gives up, so the
/// transaction (queued again, as unfinished when the connection ended) is reported closed
/// after the answer the driver then `finish`es it on. Accepted (the close is moot and
/// comes in the same batch); it must never run again.
#[test]
fn seed_173159_answer_and_give_up_in_one_call() {
    use crate::harness::{LinkError, LinkEvent};
    use sim::world::{Act, Entry};
    let w = regression(173159);
    let client_at = |t| -> Vec<&LinkEvent> {
        w.log
            .iter()
            .filter(|e| e.t() == t)
            .filter_map(|e| match e {
                Entry::Client { ev, .. } => Some(ev),
                _ => None,
            })
            .collect()
    };
    let finished_then_closed = w.log.iter().find_map(|e| match e {
        Entry::Act {
            t,
            act: Act::Finish { tx },
        } if client_at(*t).contains(&&LinkEvent::TransactionClosed { tx: *tx }) => Some((*t, *tx)),
        _ => None,
    });
    let (t, tx) = finished_then_closed.expect("a finished transaction reported closed");
    assert!(client_at(t)
        .iter()
        .any(|e| matches!(e, LinkEvent::Error(LinkError::GaveUp { .. }))));
    let readies = w
        .log
        .iter()
        .filter(|e| {
            matches!(e, Entry::Client { ev: LinkEvent::TransactionReady { tx: r, .. }, .. } if *r == tx)
        })
        .count();
    assert_eq!(readies, 1);
}
