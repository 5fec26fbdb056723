//! One connection, many calls: what a connection that lives for days goes through, in
//! seconds. Each run ends with every counter back where it was when the connection was idle,
//! so a callback, call or function that is never freed shows up as a failure here rather
//! than after a week of uptime.
//!
//! - our client against a Node dnode server that never culls (Node without `weak`);
//! - a Node upnode client against our server;
//! - our client and server, mixing plain calls, streams and functions inside objects, a
//!   thousand at a time and one at a time (each call then written by the caller itself).

use futures::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use upnode_tests::{tables, NodePeer};
use upnode_tokio::upnode_core::Value;
use upnode_tokio::{
    CallError, Client, ClientBuilderExt, ClientEvent, Counters, Interface, Remote, Server,
};

/// The longest a whole run may take; a passing run takes a fraction of it.
const RUN_DEADLINE: Duration = Duration::from_secs(240);
/// Lifetime of the Node peers of these tests (they exit by themselves after it).
const NODE_LIFETIME_MS: &str = "300000";

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    upnode_tests::within_for(RUN_DEADLINE, what, fut).await
}

fn line(node: &mut NodePeer) -> String {
    tokio::task::block_in_place(|| node.next_line()).expect("the Node peer exited")
}

/// Makes `total` calls, `window` at a time, each made by `call(i)`; returns when all are
/// answered (each answer checked by `call`'s future).
async fn pipelined<F, Fut>(total: u64, window: usize, mut call: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut pending = FuturesUnordered::new();
    let mut next = 0;
    while next < total || !pending.is_empty() {
        while next < total && pending.len() < window {
            pending.push(call(next));
            next += 1;
        }
        pending.next().await;
    }
}

/// The tables of each server connection.
fn server_tables(v: Vec<(u64, Counters)>) -> Vec<(u64, Counters)> {
    v.into_iter().map(|(id, c)| (id, tables(c))).collect()
}

/// Events that mean something went wrong on a long run (anything but up and pings).
fn trouble(events: &mut futures::channel::mpsc::Receiver<ClientEvent>) -> Vec<ClientEvent> {
    let mut out = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if !matches!(ev, ClientEvent::Up | ClientEvent::Ping(_)) {
            out.push(ev);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_makes_300_000_calls_to_a_node_server_that_never_culls() {
    const CALLS: u64 = 300_000;
    let node = NodePeer::server_with_env(
        "never_cull_server.js",
        &[("UPNODE_INTEROP_SAFETY_MS", NODE_LIFETIME_MS)],
    );
    let mut builder = Client::builder().ping(None);
    let mut events = builder.subscribe();
    let client = builder
        .connect_tcp(format!("127.0.0.1:{}", node.port()))
        .expect("a valid address");
    let remote = within("up", client.up()).await.unwrap();
    let idle = tables(client.counters());

    // Each answer is the server's call count: all of 0..CALLS, each once.
    let seen = Arc::new((0..CALLS).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
    within(
        "every call answered",
        pipelined(CALLS, 1_000, |_| {
            let answer = remote.call::<_, (u64,)>("time", &());
            let seen = seen.clone();
            async move {
                let (n,) = answer.await.expect("answered");
                assert_eq!(
                    seen[n as usize].fetch_add(1, Ordering::Relaxed),
                    0,
                    "{n} twice"
                );
            }
        }),
    )
    .await;
    assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));

    assert_eq!(
        tables(client.counters()),
        idle,
        "the tables are as they were when idle"
    );
    assert_eq!(idle.link.calls_in_flight, 0);
    assert_eq!(
        trouble(&mut events),
        [],
        "the link never went down nor erred"
    );
    client.close().await;
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_client_makes_100_000_calls_to_our_server() {
    const CALLS: u64 = 100_000;
    let server = upnode_tokio::server(|_conn| {
        Interface::new().method("echo", |call| async move {
            let x = call.args().values().first().cloned().unwrap_or(Value::Null);
            call.reply_values(vec![x])?;
            Ok(())
        })
    });
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0")
        .await
        .expect("listening");
    let port = listener.local_addr().rsplit(':').next().unwrap().to_owned();
    let mut node = NodePeer::spawn_with_env(
        "many_calls_client.js",
        &[&port, &CALLS.to_string(), "1000"],
        &[("UPNODE_INTEROP_SAFETY_MS", NODE_LIFETIME_MS)],
    );
    assert_eq!(line(&mut node), "up");
    let done = tokio::task::block_in_place(|| {
        let give_up = std::time::Instant::now() + RUN_DEADLINE;
        loop {
            match node.next_line() {
                Some(l) if l.starts_with("done ") => return l,
                Some(_) => {}
                None => panic!("the Node client exited before it was done"),
            }
            assert!(std::time::Instant::now() < give_up, "no end in sight");
        }
    });
    assert!(done.starts_with(&format!("done {CALLS} ")), "{done}");

    // The Node client has every answer, and we release each of its callbacks before the
    // answer leaves, so the connection is idle now: our `echo` and `ping`, its `ping`.
    let counters = server.counters();
    let [(_, c)] = &counters[..] else {
        panic!("one connection, not {counters:?}")
    };
    assert_eq!(c.link.local_callbacks, 2, "{c:?}");
    assert_eq!(c.link.remote_callbacks, 1, "{c:?}");
    assert_eq!((c.link.calls_in_flight, c.link.calls_waiting), (0, 0));
    assert_eq!(c.functions, 1, "only the exported echo: {c:?}");

    drop(node);
    listener.stop().await;
    within("shutdown", server.shutdown_now()).await;
}

/// A server for the mixed run: `echo(x, cb)`, `count(n, cb)` calling `cb(i)` n times, and
/// `notify({tag, cb})` calling the function inside the object once.
///
/// Its heartbeat is off, as the client's: a ping in flight holds its pong callback, which
/// would make the idle tables depend on when the run ends.
fn mixed_server() -> Server {
    let builder = Server::builder().ping(None);
    upnode_tokio::build_server(builder, |_conn| {
        Interface::new()
            .method("echo", |call| async move {
                let x = call.args().values().first().cloned().unwrap_or(Value::Null);
                call.reply_values(vec![x])?;
                Ok(())
            })
            .method("count", |call| async move {
                let (n,): (u32,) = call.decode()?;
                for i in 0..n {
                    call.reply(&(i,))?;
                }
                Ok(())
            })
            .method("notify", |call| async move {
                let opts = call.args().remote(0).ok_or("no options")?;
                let tag = opts.value().get("tag").cloned().unwrap_or(Value::Null);
                opts.get("cb").ok_or("no cb")?.invoke("", vec![tag])?;
                Ok(())
            })
    })
}

/// One call of the mixed run: nine in ten `echo`, then a two-item stream, then a function
/// inside an object.
async fn mixed_call(remote: Remote, i: u64) {
    match i % 10 {
        3 => {
            let stream = remote.call_stream("count", &(2,)).expect("sent");
            let got: Vec<u32> = stream.map(|a| a.get::<u32>(0).unwrap()).collect().await;
            assert_eq!(got, [0, 1], "call {i}");
        }
        7 => {
            let (tx, rx) = futures::channel::oneshot::channel();
            let tx = std::sync::Mutex::new(Some(tx));
            let cb = remote
                .callback(move |args| {
                    if let Some(tx) = tx.lock().unwrap().take() {
                        let _ = tx.send(args.get::<u64>(0).unwrap());
                    }
                })
                .expect("registered");
            let opts = Value::object([("tag", Value::from(i as f64)), ("cb", Value::from(cb))]);
            remote.invoke("notify", vec![opts]).expect("sent");
            assert_eq!(rx.await.expect("notified"), i);
        }
        _ => {
            let r: Result<(u64,), CallError> = remote.call("echo", &(i,)).await;
            assert_eq!(r.expect("answered").0, i);
        }
    }
}

/// `calls` mixed calls between our client and server, `window` at a time: every call is
/// answered, the link never goes down, and every table ends as it was when idle.
async fn mixed_run(calls: u64, window: usize) {
    let server = mixed_server();
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0")
        .await
        .expect("listening");
    let mut builder = Client::builder().ping(None);
    let mut events = builder.subscribe();
    let client = builder
        .connect_tcp(listener.local_addr())
        .expect("a valid address");
    let remote = within("up", client.up()).await.unwrap();
    // One answered call first: the client is up once it has the server's interface, but the
    // server may not have read ours yet (it arrives with the handshake, before this call),
    // and taking its tables then would count the client's `ping` as not yet held.
    let (first,): (u64,) = remote.call("echo", &(0,)).await.expect("answered");
    assert_eq!(first, 0);
    let idle = tables(client.counters());
    let server_idle = server_tables(server.counters());

    within(
        "every call answered",
        pipelined(calls, window, |i| mixed_call(remote.clone(), i)),
    )
    .await;

    // Our side frees a reply callback on its answer; the server culls the stream and
    // object callbacks it is done with, and the client drops their handlers on the cull.
    // A cull can still be on its way after the last notification: one more answer from the
    // server comes after it on the wire, and the client reads in order.
    let (last,): (u64,) = remote.call("echo", &(calls,)).await.expect("answered");
    assert_eq!(last, calls);
    assert_eq!(
        tables(client.counters()),
        idle,
        "the client's tables are as when idle"
    );
    assert_eq!(
        server_tables(server.counters()),
        server_idle,
        "the server's too"
    );
    assert_eq!(
        trouble(&mut events),
        [],
        "the link never went down nor erred"
    );
    client.close().await;
    listener.stop().await;
    within("shutdown", server.shutdown_now()).await;
}

/// A count of calls from the environment variable `var`, or `default`.
fn calls_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_mixed_calls_between_our_client_and_server_leave_every_table_idle() {
    mixed_run(calls_from_env("UPNODE_LONG_RUN_CALLS", 1_000_000), 1_000).await;
}

/// One at a time, nine calls in ten are lone: each is written by the call itself, and the
/// server's answer leaves only once its handler has let go of the answer callback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_mixed_calls_made_one_at_a_time_leave_every_table_idle() {
    mixed_run(
        calls_from_env("UPNODE_LONG_RUN_SEQUENTIAL_CALLS", 100_000),
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_calls_outstanding_at_once_all_complete() {
    // The server holds every call until the last has arrived, then answers them all: at
    // the peak, 100 000 calls wait on each side, each with its answer callback.
    const CALLS: usize = 100_000;
    let held: Arc<std::sync::Mutex<Vec<upnode_tokio::Call>>> = Default::default();
    let builder = Server::builder().ping(None);
    let server = upnode_tokio::build_server(builder, {
        let held = held.clone();
        move |_conn| {
            let held = held.clone();
            Interface::new().method("hold", move |call| {
                let held = held.clone();
                async move {
                    let all = {
                        let mut h = held.lock().unwrap();
                        h.push(call);
                        if h.len() < CALLS {
                            return Ok(());
                        }
                        std::mem::take(&mut *h)
                    };
                    for c in all {
                        let (n,): (u64,) = c.decode()?;
                        c.reply(&(n,))?;
                    }
                    Ok(())
                }
            })
        }
    });
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0")
        .await
        .expect("listening");
    let mut builder = Client::builder().ping(None);
    let mut events = builder.subscribe();
    let client = builder
        .connect_tcp(listener.local_addr())
        .expect("a valid address");
    let remote = within("up", client.up()).await.unwrap();
    let idle = tables(client.counters());

    let calls: Vec<_> = (0..CALLS as u64)
        .map(|n| remote.call::<_, (u64,)>("hold", &(n,)))
        .collect();
    let peak = client.counters();
    let mut calls = calls;
    if peak.link.calls_in_flight != CALLS {
        // Say how the missing calls ended, not only that they did.
        let ended: Vec<String> = calls
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| futures::FutureExt::now_or_never(c).map(|r| format!("{i}: {r:?}")))
            .take(5)
            .collect();
        panic!("not all sent at once: {peak:?}; calls already ended: {ended:?}");
    }
    let answers = within("every answer", futures::future::join_all(calls)).await;
    for (n, r) in answers.into_iter().enumerate() {
        assert_eq!(r.expect("answered").0, n as u64);
    }
    assert_eq!(tables(client.counters()), idle);
    assert_eq!(
        trouble(&mut events),
        [],
        "the link never went down nor erred"
    );
    client.close().await;
    listener.stop().await;
    within("shutdown", server.shutdown_now()).await;
}
