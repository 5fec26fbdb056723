//! The eight scenarios of upnode 0.6's own test suite (PROTOCOL.md §12), over real
//! loopback sockets on each runtime.
//!
//! Timings are short (50 ms between reconnect attempts); timeouts only bound failing runs.
//! A server "restart" is: drop its listener, `shutdown().await`, then a new server listening
//! on the same port.

use crate::common::{
    beep_once, call_time, fast_client, free_port, is_down, is_reconnect, is_up, listen_on, log_in,
    ms, port_of, serve_and_connect, spawned, stop, within, Events, Watchdog,
};
use crate::rt::{Connect, Rt};
use futures::channel::oneshot;
use futures::FutureExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use upnode_async::upnode_core::link::LinkState;
use upnode_async::upnode_core::Value;
use upnode_async::{CallError, Client, ClientEvent, Interface, Remote, Server, UpError};

/// The README's authenticated server: `auth(user, pass, cb)` answers `cb(null, {beep})`
/// for moo/hax, `cb("ACCESS DENIED")` otherwise. `beep(cb)` names the server generation,
/// so a test can tell which server answered. Counts successful logins.
fn auth_server<R: Rt>(generation: u32, logins: Arc<AtomicUsize>) -> Server {
    R::server(move |_conn| {
        let logins = logins.clone();
        Interface::new().method("auth", move |call| {
            let logins = logins.clone();
            async move {
                let (user, pass): (String, String) = call.decode()?;
                if user == "moo" && pass == "hax" {
                    logins.fetch_add(1, Ordering::SeqCst);
                    let beep = call.method(move |c| async move {
                        c.reply(&(format!("boop from server {generation}"),))?;
                        Ok(())
                    })?;
                    call.reply_values(vec![Value::Null, Value::object([("beep", beep)])])?;
                } else {
                    call.reply(&("ACCESS DENIED",))?;
                }
                Ok(())
            }
        })
    })
}

/// Scenario 1: auth: the connect step re-authenticates after a server restart; 10 beeps complete.
pub async fn auth_reauthenticates_across_a_server_restart<R: Rt>() {
    let _watchdog = Watchdog::start("auth_reauthenticates_across_a_server_restart");
    let logins = Arc::new(AtomicUsize::new(0));
    let server = auth_server::<R>(1, logins.clone());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let port = port_of(&listener);
    let client = fast_client()
        .on_connect(log_in)
        .connect_tcp::<R>(format!("127.0.0.1:{port}"))
        .unwrap();

    let mut beeps = Vec::new();
    for _ in 0..5 {
        beeps.push(within::<R, _>("a beep", beep_once(client.clone())).await);
    }
    let old_session = client.up().await.unwrap();
    // Subscribed once up (with worker threads, the first up may come before any
    // subscription could), so this sees exactly the restart.
    let mut events = Events::<R, _>::new(client.events());

    stop::<R>(listener, &server).await;
    events.wait_for("down", is_down).await;
    // Five more transactions while the server is away: they wait in the queue.
    let queued: Vec<_> = (0..5)
        .map(|_| spawned::<R, _>(beep_once(client.clone())))
        .collect();
    let server = auth_server::<R>(2, logins.clone());
    let listener = listen_on::<R>(&server, port).await;
    for t in queued {
        beeps.push(within::<R, _>("a queued beep", t).await.unwrap());
    }

    assert_eq!(beeps.len(), 10);
    assert!(
        beeps[..5].iter().all(|b| b == "boop from server 1"),
        "{beeps:?}"
    );
    assert!(
        beeps[5..].iter().all(|b| b == "boop from server 2"),
        "{beeps:?}"
    );
    events.wait_for("the second up", is_up).await;
    assert_eq!(logins.load(Ordering::SeqCst), 2, "one login per connection");
    // The first connection's session object is dead, not silently redirected.
    assert_eq!(
        old_session.call::<_, (String,)>("beep", &()).await,
        Err(CallError::NotConnected)
    );
    assert_eq!(events.count(is_up), 1, "{:?}", events.seen);
    assert_eq!(events.count(is_down), 1, "{:?}", events.seen);

    client.close().await;
    stop::<R>(listener, &server).await;
}

/// Scenario 2: buffered: the server ends every connection 300 ms after it began; five transactions
/// issued once that has happened all complete.
pub async fn buffered_transactions_complete_across_short_lived_connections<R: Rt>() {
    let server = R::server(|conn| {
        // End this connection after 300 ms, as the original test's server does.
        R::spawn(async move {
            R::sleep(ms(300)).await;
            conn.close();
        });
        Interface::new().method("time", |call| async move {
            call.reply(&(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64,))?;
            Ok(())
        })
    });
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let mut events = Events::<R, _>::new(client.events());
    events.wait_for("the first up", is_up).await;
    events.wait_for("the server ending it", is_down).await;

    // A transaction whose call races the server's cut fails loudly (LinkDown or
    // NotConnected) instead of being lost; the application issues it again.
    let retries = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            let retries = retries.clone();
            spawned::<R, _>(async move {
                loop {
                    let remote = client.up().await.expect("open");
                    match remote.call::<_, (u64,)>("time", &()).await {
                        Ok((t,)) => return t,
                        Err(CallError::LinkDown | CallError::NotConnected) => {
                            retries.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("time failed: {e}"),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let time = within::<R, _>("a buffered transaction", t).await.unwrap();
        assert!(time > 0);
    }
    eprintln!(
        "calls issued again after losing a race with the cut: {}",
        retries.load(Ordering::SeqCst)
    );
    client.close().await;
    stop::<R>(listener, &server).await;
    events.drain().await;
    assert!(events.count(is_up) >= 2, "{:?}", events.seen);
}

/// Scenario 3: cons: the client exports the data value `beep = 5`, the server `boop = 6`; each side
/// sees the other's.
pub async fn cons_each_side_sees_the_others_data<R: Rt>() {
    let (seen_tx, seen_rx) = oneshot::channel();
    let seen_tx = Arc::new(Mutex::new(Some(seen_tx)));
    let server = R::server(move |conn| {
        let remote = conn.remote();
        let seen_tx = seen_tx.clone();
        R::spawn(async move {
            let beep = remote.await.and_then(|r| r.value().get("beep").cloned());
            if let Some(tx) = seen_tx.lock().unwrap().take() {
                let _ = tx.send(beep);
            }
        });
        Interface::new().value("boop", &6).unwrap()
    });
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .exports(Interface::new().value("beep", &5).unwrap())
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();

    let remote = within::<R, _>("up", client.up()).await.unwrap();
    assert_eq!(remote.value().get("boop"), Some(&Value::from(6)));
    let beep = within::<R, _>("the server's view of the client", seen_rx)
        .await
        .unwrap();
    assert_eq!(beep, Some(Value::from(5)));
    client.close().await;
    stop::<R>(listener, &server).await;
}

/// Scenario 4: immediate: the server is already up; the first transaction's `beep(cb)` answers
/// `"boop"`.
pub async fn immediate_transaction_on_a_running_server<R: Rt>() {
    let server = R::server(|_conn| {
        Interface::new().method("beep", |call| async move {
            call.reply(&("boop",))?;
            Ok(())
        })
    });
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;
    let (s,): (String,) = within::<R, _>("beep", remote.call("beep", &()))
        .await
        .unwrap();
    assert_eq!(s, "boop");
    client.close().await;
    stop::<R>(listener, &server).await;
}

/// A server whose `time(cb)` answers `cb(seq, generation)`: `seq` counts calls across
/// every server sharing `seq`, `generation` names this server.
fn counting_server<R: Rt>(generation: u64, seq: Arc<AtomicU64>) -> Server {
    R::server(move |_conn| {
        let seq = seq.clone();
        Interface::new().method("time", move |call| {
            let n = seq.fetch_add(1, Ordering::SeqCst);
            async move {
                call.reply(&(n, generation))?;
                Ok(())
            }
        })
    })
}

/// Queues a transaction in the closure form, as upnode's `up(function (remote) {...})`:
/// when it runs, it calls `time` with a callback that forwards the answer.
fn queue_time_call(client: &Client) -> oneshot::Receiver<(u64, u64)> {
    let (tx, rx) = oneshot::channel();
    client
        .transaction(None, move |remote| {
            let remote = remote.expect("the transaction runs with the remote");
            let tx = Mutex::new(Some(tx));
            let cb = remote
                .callback(move |args| {
                    if let Some(tx) = tx.lock().unwrap().take() {
                        let _ = tx.send(args.decode::<(u64, u64)>().expect("(seq, generation)"));
                    }
                })
                .expect("callback");
            remote
                .invoke("time", vec![Value::from(cb)])
                .expect("time is callable");
        })
        .expect("queued");
    rx
}

/// Scenario 5: simple/listen: the client starts first; the server comes up, goes away, comes back.
/// Exactly two `up`, one `down`, at least two `reconnect`; what was queued while the server
/// was away is answered as one block on the next connection; every answer is in order.
pub async fn simple_server_on_off_on<R: Rt>() {
    let port = free_port();
    let client = fast_client()
        .ping(Some(ms(100)))
        .ping_timeout(ms(2000))
        .connect_tcp::<R>(format!("127.0.0.1:{port}"))
        .unwrap();
    let mut events = Events::<R, _>::new(client.events());
    let seq = Arc::new(AtomicU64::new(0));

    // No server yet: three transactions wait.
    events.wait_for("a reconnect", is_reconnect).await;
    let mut answers: Vec<_> = (0..3).map(|_| queue_time_call(&client)).collect();
    let server = counting_server::<R>(1, seq.clone());
    let listener = listen_on::<R>(&server, port).await;
    events.wait_for("the first up", is_up).await;
    // Two more while it is up.
    answers.extend((0..2).map(|_| queue_time_call(&client)));
    let mut results = Vec::new();
    for a in answers.drain(..) {
        results.push(within::<R, _>("an answer", a).await.unwrap());
    }

    // Off: three more wait; on again.
    stop::<R>(listener, &server).await;
    events.wait_for("down", is_down).await;
    answers.extend((0..3).map(|_| queue_time_call(&client)));
    let server = counting_server::<R>(2, seq.clone());
    let listener = listen_on::<R>(&server, port).await;
    events.wait_for("the second up", is_up).await;
    for a in answers.drain(..) {
        results.push(within::<R, _>("an answer", a).await.unwrap());
    }

    assert_eq!(events.count(is_up), 2, "{:?}", events.seen);
    assert_eq!(events.count(is_down), 1, "{:?}", events.seen);
    assert!(events.count(is_reconnect) >= 2, "{:?}", events.seen);
    // In order, nothing lost, nothing run twice: the server saw calls 0..8 in the order
    // they were queued; the three queued before the first server were its first three
    // calls, the three queued while it was away the second server's first three.
    assert_eq!(
        results,
        vec![
            (0, 1),
            (1, 1),
            (2, 1),
            (3, 1),
            (4, 1),
            (5, 2),
            (6, 2),
            (7, 2)
        ]
    );

    client.close().await;
    stop::<R>(listener, &server).await;
}

/// Scenario 6: No leak across three up/down cycles and close: the server keeps no connection and
/// no per-connection state; the client drops each connection's callbacks when it goes,
/// and everything at close; the event stream ends with `Closed`.
pub async fn no_leak_across_up_down_cycles_and_close<R: Rt>() {
    let port = free_port();
    // Held by whatever the server and the client keep: their strong counts expose leaks.
    let server_side = Arc::new(());
    let client_side = Arc::new(());
    let per_conn = Arc::new(());

    let held = client_side.clone();
    let client = fast_client()
        .exports(Interface::new().method("hello", move |_call| {
            let _keep = &held;
            async { Ok(()) }
        }))
        .connect_tcp::<R>(format!("127.0.0.1:{port}"))
        .unwrap();
    let mut events = Events::<R, _>::new(client.events());

    for cycle in 1..=3 {
        let held = server_side.clone();
        let server = R::server(move |_conn| {
            let held = held.clone();
            Interface::new().method("time", move |call| {
                let _keep = &held;
                async move {
                    call.reply(&("now",))?;
                    Ok(())
                }
            })
        });
        let listener = listen_on::<R>(&server, port).await;
        events.wait_for("up", is_up).await;
        let remote = client.up().await.unwrap();
        let t = call_time::<R>(&remote).await;
        assert_eq!(t, "now");
        // A callback of ours on this connection: it must go when the connection goes.
        let held = per_conn.clone();
        remote
            .callback(move |_| {
                let _keep = &held;
            })
            .unwrap();
        assert_eq!(Arc::strong_count(&per_conn), 2);
        assert_eq!(server.connections(), 1);

        stop::<R>(listener, &server).await;
        events.wait_for("down", is_down).await;
        assert_eq!(events.count(is_up), cycle);
        assert_eq!(events.count(is_down), cycle);
        assert_eq!(
            Arc::strong_count(&per_conn),
            1,
            "a callback of a dead connection is still held (cycle {cycle})"
        );
        // Held by the test and by the constructor; each connection's interface is gone.
        assert_eq!(
            Arc::strong_count(&server_side),
            2,
            "the server kept per-connection state (cycle {cycle})"
        );
        // A handle from the dead connection cannot be used to register anything.
        let held = per_conn.clone();
        let _ = remote.callback(move |_| {
            let _keep = &held;
        });
        assert_eq!(
            Arc::strong_count(&per_conn),
            1,
            "a callback registered on a dead connection is kept (cycle {cycle})"
        );
    }

    client.close().await;
    events.drain().await;
    assert_eq!(events.seen.last(), Some(&ClientEvent::Closed));
    assert_eq!(events.count(|e| *e == ClientEvent::Closed), 1);
    assert_eq!(
        Arc::strong_count(&client_side),
        1,
        "the client kept its exports after close"
    );
    assert_eq!(client.state(), LinkState::Closed);
    assert_eq!(
        client.up().await.unwrap_err(),
        UpError::Closed { cause: None }
    );
    // A subscription taken after close ends at once.
    assert_eq!(
        within::<R, _>("events", async {
            Events::<R, _>::new(client.events()).next().await
        })
        .await,
        None
    );
}

/// Scenario 7: A transaction queued from inside the connect step runs once the step has finished,
/// with the remote the step handed out.
pub async fn transaction_queued_in_the_connect_step_gets_the_same_remote<R: Rt>() {
    let server = R::server(|_conn| {
        Interface::new().method("time", |call| async move {
            call.reply(&("now",))?;
            Ok(())
        })
    });
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    // The step gets the client through a channel the test fills once `connect_tcp` has
    // returned it: the connect step may run before that line does.
    let (give_client, the_client) = oneshot::channel::<Client>();
    let the_client = the_client.shared();
    let step_done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = oneshot::channel::<(Remote, Remote, bool, LinkState)>();
    let tx = Arc::new(Mutex::new(Some(tx)));

    let d = step_done.clone();
    let client = fast_client()
        .on_connect(move |remote| {
            let the_client = the_client.clone();
            let (done, tx) = (d.clone(), tx.clone());
            async move {
                let client = the_client.await.expect("the test gives the client");
                let given = remote.clone();
                let c = client.clone();
                let done2 = done.clone();
                client
                    .transaction(None, move |r| {
                        let r = r.expect("the transaction runs with the remote");
                        let finished = done2.load(Ordering::SeqCst);
                        if let Some(tx) = tx.lock().unwrap().take() {
                            let _ = tx.send((r, given, finished, c.state()));
                        }
                    })
                    .expect("queued");
                done.store(true, Ordering::SeqCst);
                Ok(remote)
            }
        })
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    give_client.send(client.clone()).ok().unwrap();

    let (got, given, step_had_finished, state) =
        within::<R, _>("the transaction", rx).await.unwrap();
    assert!(
        step_had_finished,
        "the transaction ran before the step ended"
    );
    assert_eq!(state, LinkState::Up);
    assert_eq!(got.conn(), given.conn());
    assert_eq!(got.value(), given.value());
    let (t,): (String,) = within::<R, _>("time", got.call("time", &())).await.unwrap();
    assert_eq!(t, "now");
    // And the async form, from a task started in a later step, resolves the same way.
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    assert_eq!(remote.conn(), given.conn());

    client.close().await;
    stop::<R>(listener, &server).await;
}

/// Scenario 8: timeout: with no server, `up_timeout(10 ms)` times out (and the closure form
/// runs exactly once, with `None`); once a server is there, `up_timeout(4 s)` gives the
/// remote.
pub async fn timeout_without_then_with_a_server<R: Rt>() {
    let port = free_port();
    let client = fast_client()
        .connect_tcp::<R>(format!("127.0.0.1:{port}"))
        .unwrap();

    let r = within::<R, _>("the short wait", client.up_timeout(ms(10))).await;
    assert!(matches!(r, Err(UpError::TimedOut { .. })), "{r:?}");

    let runs = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel();
    let counted = runs.clone();
    client
        .transaction(Some(ms(10)), move |r| {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(r.is_none());
        })
        .unwrap();
    assert!(within::<R, _>("the timed-out transaction", rx)
        .await
        .unwrap());

    let server = R::server(|_conn| Interface::new());
    let listener = listen_on::<R>(&server, port).await;
    let r = within::<R, _>("the long wait", client.up_timeout(ms(4000))).await;
    let remote = r.expect("up within 4 s");
    assert!(remote.value().get("ping").is_some(), "{:?}", remote.value());
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the timed-out closure ran again"
    );

    client.close().await;
    stop::<R>(listener, &server).await;
}
