//! The API users reach for first: typed, error-first calls both ways (`Interface::rpc`,
//! `Remote::rpc`), the default and per-call time limits, and reconnect jitter seeded per
//! client.

use crate::common::{fast_client, free_port, serve_and_connect, stop, within, Events};
use crate::rt::{Connect, Rt};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use upnode_async::upnode_core::config::ReconnectPolicy;
use upnode_async::{
    CallError, ClientBuilder, ClientEvent, Interface, RpcError, Server, ServerBuilder,
};

/// A user record, as the `user` functions answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: u32,
    pub name: String,
}

/// A structured error, as the `user` functions answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotFound {
    pub code: u32,
    pub message: String,
}

/// Where `hang` handlers hand the test their gate: each answers once its gate is opened or
/// dropped.
pub type Gates = mpsc::UnboundedSender<oneshot::Sender<()>>;

/// `div(a, b)` (an error for b = 0), `user(id)` (id 1 exists), `hang()` (answers once its gate
/// opens or is dropped), all error-first.
pub fn typed_server<R: Rt>(builder: ServerBuilder, gates: Gates) -> Server {
    R::build_server(builder, move |_conn| {
        let gates = gates.clone();
        Interface::new()
            .rpc("div", |(a, b): (f64, f64)| async move {
                if b == 0.0 {
                    return Err("division by zero".to_owned());
                }
                Ok(a / b)
            })
            .rpc("user", |(id,): (u32,)| async move {
                match id {
                    1 => Ok(User {
                        id: 1,
                        name: "moo".into(),
                    }),
                    _ => Err(NotFound {
                        code: 404,
                        message: format!("no user {id}"),
                    }),
                }
            })
            .rpc("hang", move |()| {
                let (tx, rx) = oneshot::channel();
                let _ = gates.unbounded_send(tx);
                async move {
                    let _ = rx.await;
                    Ok::<_, String>("released")
                }
            })
    })
}

pub async fn typed_calls_tell_results_remote_errors_timeouts_and_link_failures_apart<R: Rt>() {
    let (gates, mut gate) = mpsc::unbounded();
    let server = typed_server::<R>(Server::builder(), gates);
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;

    // cb(null, result) and cb(err), plain and structured.
    let q = within::<R, _>("div", remote.rpc::<_, f64, String>("div", &(6, 3))).await;
    assert_eq!(q, Ok(2.0));
    // A call's future polled again after its answer says the call is over; it never panics.
    let mut call = Box::pin(remote.rpc::<_, f64, String>("div", &(6, 3)));
    assert_eq!(within::<R, _>("div", call.as_mut()).await, Ok(2.0));
    assert_eq!(
        futures::poll!(call.as_mut()),
        std::task::Poll::Ready(Err(RpcError::Link(CallError::Closed)))
    );
    let e = within::<R, _>("div", remote.rpc::<_, f64, String>("div", &(1, 0))).await;
    assert_eq!(e, Err(RpcError::Remote("division by zero".to_owned())));
    assert!(e.unwrap_err().is_remote());
    let u = within::<R, _>("user", remote.rpc::<_, User, NotFound>("user", &(1,))).await;
    assert_eq!(
        u,
        Ok(User {
            id: 1,
            name: "moo".into()
        })
    );
    let e = within::<R, _>("user", remote.rpc::<_, User, NotFound>("user", &(2,))).await;
    assert_eq!(
        e,
        Err(RpcError::Remote(NotFound {
            code: 404,
            message: "no user 2".into()
        }))
    );

    // Arguments that do not decode are answered as an error, not dropped.
    match within::<R, _>("div", remote.rpc::<_, f64, String>("div", &("six", 3))).await {
        Err(RpcError::Remote(m)) => assert!(m.starts_with("invalid arguments to div"), "{m}"),
        other => panic!("{other:?}"),
    }
    // An error or a result of an unexpected shape is told apart from the peer's error.
    let e = within::<R, _>("user", remote.rpc::<_, User, String>("user", &(2,))).await;
    assert!(matches!(e, Err(RpcError::RemoteOther(_))), "{e:?}");
    let e = within::<R, _>("div", remote.rpc::<_, String, String>("div", &(6, 3))).await;
    assert!(matches!(e, Err(RpcError::Decode(_))), "{e:?}");
    let e = within::<R, _>("nope", remote.rpc::<_, (), String>("nope", &())).await;
    assert!(
        matches!(e, Err(RpcError::Call(CallError::NoSuchMethod(_)))),
        "{e:?}"
    );

    // A per-call time limit, shorter than the client's default.
    let e = within::<R, _>(
        "hang",
        remote
            .with_timeout(Some(ms(50)))
            .rpc::<_, String, String>("hang", &()),
    )
    .await;
    assert_eq!(e, Err(RpcError::TimedOut(ms(50))));
    assert!(e.unwrap_err().is_timeout());
    // Its handler still runs; its late answer goes nowhere.
    drop(within::<R, _>("the first hang", gate.next()).await);
    // An opened gate answers.
    let pending = remote.rpc::<_, String, String>("hang", &());
    let open = within::<R, _>("the second hang", gate.next())
        .await
        .unwrap();
    let _ = open.send(());
    assert_eq!(
        within::<R, _>("hang", pending).await,
        Ok("released".to_owned())
    );

    // The link going down is a link failure, not the peer's error.
    let pending = remote.rpc::<_, String, String>("hang", &());
    let parked = within::<R, _>("the third hang", gate.next()).await;
    stop::<R>(listener, &server).await;
    let e = within::<R, _>("hang", pending).await.unwrap_err();
    assert!(e.is_link_failure(), "{e:?}");
    assert!(!e.is_remote() && e.remote().is_none());
    drop(parked);
    client.close().await;
}

pub async fn the_server_makes_typed_calls_to_functions_the_client_exports<R: Rt>() {
    let (tx, mut rx) = mpsc::unbounded();
    let server = R::server(move |conn| {
        let tx = tx.clone();
        R::spawn(async move {
            let Some(client) = conn.remote().await else {
                return;
            };
            let hello = client.rpc::<_, String, String>("greet", &("server",)).await;
            let refused = client.rpc::<_, String, String>("greet", &("",)).await;
            let _ = tx.unbounded_send((hello, refused));
        });
        Interface::new()
    });
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .exports(
            Interface::new().rpc("greet", |(name,): (String,)| async move {
                if name.is_empty() {
                    return Err("no name".to_owned());
                }
                Ok(format!("hello {name}"))
            }),
        )
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let (hello, refused) = within::<R, _>("the server's calls", rx.next())
        .await
        .unwrap();
    assert_eq!(hello, Ok("hello server".to_owned()));
    assert_eq!(refused, Err(RpcError::Remote("no name".to_owned())));
    client.close().await;
    stop::<R>(listener, &server).await;
}

/// The first `Reconnect` event of a client that cannot connect.
async fn first_reconnect<R: Rt>(mut builder: ClientBuilder, addr: &str) -> (u32, Duration) {
    let mut events = Events::<R, _>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(addr).unwrap();
    let ev = events
        .wait_for("a reconnect", |e| {
            matches!(e, ClientEvent::Reconnect { .. })
        })
        .await;
    client.close().await;
    match ev {
        ClientEvent::Reconnect { attempt, delay } => (attempt, delay),
        _ => unreachable!(),
    }
}

pub async fn clients_draw_their_own_reconnect_jitter_unless_given_a_seed<R: Rt>() {
    // Nothing listens there: every attempt is refused.
    let addr = format!("127.0.0.1:{}", free_port());
    let jittered = || {
        upnode_async::Client::builder()
            .reconnect(ReconnectPolicy::exponential())
            .ping(None)
    };
    let (a1, d1) = first_reconnect::<R>(jittered(), &addr).await;
    let (a2, d2) = first_reconnect::<R>(jittered(), &addr).await;
    // The first reconnect is attempt 1.
    assert_eq!((a1, a2), (1, 1));
    // Full jitter over [0, 100 ms] in nanoseconds: two OS seeds giving the same delay would
    // be a one-in-10⁸ coincidence.
    assert_ne!(d1, d2, "two clients drew the same delay");
    let (_, s1) = first_reconnect::<R>(jittered().seed(7), &addr).await;
    let (_, s2) = first_reconnect::<R>(jittered().seed(7), &addr).await;
    assert_eq!(s1, s2, "a fixed seed gives the same delays");
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub async fn graceful_shutdown_lets_a_call_in_flight_answer_then_closes<R: Rt>() {
    let (gates, mut gate) = mpsc::unbounded();
    let server = typed_server::<R>(Server::builder(), gates);
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let mut builder = fast_client();
    let mut events = Events::<R, _>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(listener.local_addr()).unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let pending = remote.rpc::<_, String, String>("hang", &());
    let open = within::<R, _>("the handler to start", gate.next())
        .await
        .unwrap();
    assert_eq!(server.handlers_running(), 1);

    let s = server.clone();
    let shutting = crate::common::spawned::<R, _>(async move {
        s.shutdown(crate::common::DEADLINE).await;
    });
    // It stops accepting at once, and the connection stays while the handler runs.
    within::<R, _>("shutdown to begin", async {
        while !server.is_shut_down() {
            crate::common::yield_now().await;
        }
    })
    .await;
    assert_eq!(server.connections(), 1);
    let _ = open.send(());
    assert_eq!(
        within::<R, _>("the answer", pending).await,
        Ok("released".to_owned())
    );
    within::<R, _>("shutdown", shutting).await.unwrap();
    assert_eq!(server.connections(), 0);
    assert_eq!(server.handlers_running(), 0);
    events
        .wait_for("down", |e| matches!(e, ClientEvent::Down(_)))
        .await;
    drop(listener);
    client.close().await;
}

pub async fn graceful_shutdown_closes_at_its_deadline_with_a_handler_still_running<R: Rt>() {
    let (gates, mut gate) = mpsc::unbounded();
    let server = typed_server::<R>(Server::builder(), gates);
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;
    let pending = remote.rpc::<_, String, String>("hang", &());
    let parked = within::<R, _>("the handler to start", gate.next()).await;
    within::<R, _>("shutdown", server.shutdown(ms(100))).await;
    assert_eq!(server.connections(), 0);
    let e = within::<R, _>("the call", pending).await.unwrap_err();
    assert!(e.is_link_failure(), "{e:?}");
    drop(parked);
    drop(listener);
    client.close().await;
}

pub async fn a_connect_step_whose_closure_panics_fails_that_attempt_and_the_next_comes_up<R: Rt>() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let server = R::server(|_conn| Interface::new());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let steps = Arc::new(AtomicUsize::new(0));
    let counted = steps.clone();
    let mut builder = fast_client().on_connect(move |remote| {
        // The first time, the closure panics before it returns a future.
        if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("a connect step that panics before its future");
        }
        async move { Ok(remote) }
    });
    let mut events = Events::<R, _>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(listener.local_addr()).unwrap();
    within::<R, _>("up", client.up()).await.unwrap();
    assert_eq!(
        steps.load(Ordering::SeqCst),
        2,
        "one failed attempt, then one more"
    );
    let failed = events
        .wait_for("the failed step", |e| matches!(e, ClientEvent::Error(_)))
        .await;
    assert!(
        format!("{failed:?}").contains("the connect step panicked"),
        "{failed:?}"
    );
    client.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn a_connect_step_that_gives_up_closes_the_client_with_its_cause<R: Rt>() {
    use upnode_async::upnode_core::link::LinkError;
    use upnode_async::{GiveUp, UpError};
    // auth(user, pass) denies everyone, error-first.
    let server = R::server(|_conn| {
        Interface::new().rpc("auth", |(_user, _pass): (String, String)| async move {
            Err::<(), _>("ACCESS DENIED".to_owned())
        })
    });
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let mut builder = fast_client().on_connect(|remote| async move {
        match remote
            .rpc_remote::<_, String>("auth", &("moo", "bad"))
            .await
        {
            Ok(session) => Ok(session),
            Err(RpcError::Remote(denied)) => Err(GiveUp::new(denied).into()),
            Err(e) => Err(e.into()),
        }
    });
    let mut events = Events::<R, _>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(listener.local_addr()).unwrap();
    let cause = LinkError::ConnectStepFailed {
        detail: "ACCESS DENIED".into(),
    };
    assert_eq!(
        within::<R, _>("up", client.up()).await.unwrap_err(),
        UpError::Closed {
            cause: Some(cause.clone())
        }
    );
    events.drain().await;
    assert_eq!(
        events.seen,
        [ClientEvent::Error(cause.clone()), ClientEvent::Closed],
        "no reconnect after a final failure"
    );
    // Later transactions learn the same cause.
    assert_eq!(
        client.up_timeout(ms(10)).await.unwrap_err(),
        UpError::Closed { cause: Some(cause) }
    );
    stop::<R>(listener, &server).await;
}

pub async fn up_timeout_reports_the_last_failure<R: Rt>() {
    use upnode_async::upnode_core::link::LinkError;
    use upnode_async::UpError;
    let mut builder = fast_client();
    let mut events = Events::<R, _>::new(builder.subscribe());
    let client = builder
        .connect_tcp::<R>(format!("127.0.0.1:{}", free_port()))
        .unwrap();
    events
        .wait_for("a refused connection", |e| {
            matches!(e, ClientEvent::Error(LinkError::ConnectFailed { .. }))
        })
        .await;
    match client.up_timeout(ms(10)).await {
        Err(
            e @ UpError::TimedOut {
                last_cause: Some(LinkError::ConnectFailed { .. }),
            },
        ) => assert!(e.to_string().contains("last failure"), "{e}"),
        other => panic!("{other:?}"),
    }
    client.close().await;
    assert_eq!(
        client.up().await.unwrap_err(),
        UpError::Closed { cause: None },
        "closed by the user: no cause"
    );
}

/// A server whose `record(id)` notes which server ran which transaction.
fn recording_server<R: Rt>(name: &'static str, runs: Runs) -> Server {
    R::server(move |_conn| {
        let runs = runs.clone();
        Interface::new().rpc("record", move |(id,): (u64,)| {
            runs.lock().unwrap().push((id, name));
            async move { Ok::<_, String>(id) }
        })
    })
}

type Runs = std::sync::Arc<std::sync::Mutex<Vec<(u64, &'static str)>>>;

async fn record_once(client: upnode_async::Client, id: u64) -> Result<u64, RpcError<String>> {
    let remote = client.up().await.expect("the client stays open");
    remote.rpc("record", &(id,)).await
}

pub async fn a_failover_client_moves_through_three_killed_servers_losing_no_transaction<R: Rt>() {
    use crate::common::{listen_on, port_of, spawned};
    let runs = Runs::default();
    let names = ["a", "b", "c"];
    let mut servers = Vec::new();
    for name in names {
        let server = recording_server::<R>(name, runs.clone());
        let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
        servers.push((server, listener));
    }
    let addrs: Vec<String> = servers
        .iter()
        .map(|(_, l)| l.local_addr().to_owned())
        .collect();
    let first_port = port_of(&servers[0].1);
    // Bad input is an error value, as for one address.
    assert!(matches!(
        R::connect_tcp_failover(fast_client(), Vec::new()),
        Err(upnode_async::ConnectError::NoAddress)
    ));
    assert!(matches!(
        R::connect_tcp_failover(fast_client(), vec![addrs[0].clone(), "nope".into()]),
        Err(upnode_async::ConnectError::Address(_))
    ));
    let mut builder = fast_client();
    let mut events = Events::<R, _>::new(builder.subscribe());
    let client = R::connect_tcp_failover(builder, addrs).unwrap();

    let mut id = 0;
    let mut expected = Vec::new();
    // Each server in turn serves some transactions, then is killed; the transactions made
    // while the link is down wait, and run on the next server. After the third, the first
    // comes back on its port.
    for (round, next) in ["b", "c", "a"].into_iter().enumerate() {
        let current = names[round];
        for _ in 0..3 {
            let got = within::<R, _>("a transaction", record_once(client.clone(), id)).await;
            assert_eq!(got, Ok(id));
            expected.push((id, current));
            id += 1;
        }
        let (server, listener) = servers.remove(0);
        stop::<R>(listener, &server).await;
        events
            .wait_for("down", |e| matches!(e, ClientEvent::Down(_)))
            .await;
        let queued: Vec<_> = (0..3)
            .map(|k| spawned::<R, _>(record_once(client.clone(), id + k)))
            .collect();
        if next == "a" {
            let server = recording_server::<R>("a", runs.clone());
            let listener = listen_on::<R>(&server, first_port).await;
            servers.push((server, listener));
        }
        for (k, q) in queued.into_iter().enumerate() {
            let got = within::<R, _>("a queued transaction", q).await.unwrap();
            assert_eq!(got, Ok(id + k as u64));
        }
        for _ in 0..3 {
            expected.push((id, next));
            id += 1;
        }
    }
    let mut ran = runs.lock().unwrap().clone();
    ran.sort();
    assert_eq!(
        ran, expected,
        "each transaction ran once, on the server up at the time"
    );
    client.close().await;
    for (server, listener) in servers {
        stop::<R>(listener, &server).await;
    }
}

pub async fn a_subscriber_that_falls_behind_is_told_how_many_events_it_missed<R: Rt>() {
    // A socket that accepts and at once drops every connection: each attempt of the client
    // ends in an error and a reconnect, two events at a time.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (accepted_tx, mut accepted) = mpsc::unbounded();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
            if accepted_tx.unbounded_send(()).is_err() {
                return;
            }
        }
    });
    let mut builder = fast_client().event_capacity(1);
    let mut slow = builder.subscribe();
    let client = builder.connect_tcp::<R>(addr).unwrap();
    // Five attempts: ten events or so for a channel that holds two.
    for _ in 0..5 {
        within::<R, _>("an accepted attempt", accepted.next()).await;
    }
    let mut missed = None;
    while missed.is_none() {
        match within::<R, _>("an event", slow.next()).await {
            Some(ClientEvent::Lagged { missed: n }) => missed = Some(n),
            Some(_) => {}
            None => panic!("the stream ended"),
        }
    }
    assert!(missed.unwrap() >= 2, "{missed:?}");
    client.close().await;
}
