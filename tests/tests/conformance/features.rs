//! Behaviour beyond the original suite, over real sockets on each runtime: failures
//! as values, handler errors, limits, shutdown, callbacks called many times, functions
//! inside objects, Unix sockets and TLS.

use crate::common::{
    call_time, fast_client, free_port, listen_on, ms, serve_and_connect, spawned, stop, tables,
    timeout, within, yield_now, Events, Watchdog,
};
use crate::rt::{Connect, Rt};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use upnode_async::upnode_core::config::WhenFull;
use upnode_async::upnode_core::link::LinkError;
use upnode_async::upnode_core::Value;
use upnode_async::{
    rustls, Call, CallError, ClientEvent, ConnHandle, HandlerError, Interface, Server,
    ServerBuilder, ServerEvent, UpError,
};

/// Calls parked by a handler that never answers them (kept so that their callbacks are
/// not released either).
type Parked = Arc<Mutex<Vec<Call>>>;

/// A server exporting `time` (answers `"now"`) and `hang` (never answers; parks the call).
fn hanging_server<R: Rt>(builder: ServerBuilder, parked: Parked) -> Server {
    R::build_server(builder, move |_conn| {
        let parked = parked.clone();
        Interface::new()
            .method("time", |call| async move {
                call.reply(&("now",))?;
                Ok(())
            })
            .method("hang", move |call| {
                let parked = parked.clone();
                async move {
                    parked.lock().unwrap().push(call);
                    Ok(())
                }
            })
    })
}

pub async fn in_flight_call_fails_with_link_down_when_the_server_dies<R: Rt>() {
    let parked = Parked::default();
    let server = hanging_server::<R>(Server::builder(), parked.clone());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let mut events = Events::<R, _>::new(client.events());
    let remote = within::<R, _>("up", client.up()).await.unwrap();

    let call = spawned::<R, _>({
        let remote = remote.clone();
        async move { remote.call::<_, (String,)>("hang", &()).await }
    });
    // Wait until the server has the call, then take the server away mid-call.
    let mut server_events = server.events();
    while parked.lock().unwrap().is_empty() {
        let t = call_time::<R>(&remote).await;
        assert_eq!(t, "now");
    }
    stop::<R>(listener, &server).await;
    let r = within::<R, _>("the in-flight call", call).await.unwrap();
    assert_eq!(r, Err(CallError::LinkDown));
    events
        .wait_for("down", |e| matches!(e, ClientEvent::Down(_)))
        .await;
    assert!(matches!(
        within::<R, _>("server events", server_events.next()).await,
        Some(ServerEvent::Disconnected(..))
    ));
    client.close().await;
}

pub async fn call_timeout_fails_a_call_nobody_answers<R: Rt>() {
    let parked = Parked::default();
    let server = hanging_server::<R>(Server::builder(), parked.clone());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .call_timeout(Some(ms(100)))
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let r = within::<R, _>("the call", remote.call::<_, (String,)>("hang", &())).await;
    assert_eq!(r, Err(CallError::TimedOut(ms(100))));
    // The link is fine.
    let t = call_time::<R>(&remote).await;
    assert_eq!(t, "now");
    assert_eq!(parked.lock().unwrap().len(), 1);
    client.close().await;
    stop::<R>(listener, &server).await;
}

/// What a buggy handler does.
fn handler_bug() -> Result<(), HandlerError> {
    panic!("handler bug")
}

pub async fn failing_and_panicking_handlers_leave_the_connection_and_server_alive<R: Rt>() {
    let server = R::server(|_conn| {
        Interface::new()
            .method("fail", |_call| async move { Err("no such luck".into()) })
            .method("panic", |_call| async move { handler_bug() })
            .method("fail_later", |_call| async move {
                yield_now().await;
                Err("no such luck later".into())
            })
            .method("panic_later", |_call| async move {
                yield_now().await;
                handler_bug()
            })
            .method("time", |call| async move {
                call.reply(&("now",))?;
                Ok(())
            })
    });
    let mut server_events = Events::<R, _>::new(server.events());
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;

    remote.invoke("fail", vec![]).unwrap();
    let ev = server_events
        .wait_for("a handler report", |e| {
            matches!(e, ServerEvent::Handler(..))
        })
        .await;
    assert!(
        matches!(&ev, ServerEvent::Handler(_, msg) if msg.contains("no such luck")),
        "{ev:?}"
    );
    remote.invoke("panic", vec![]).unwrap();
    let ev = server_events
        .wait_for("a handler report", |e| {
            matches!(e, ServerEvent::Handler(..))
        })
        .await;
    assert!(
        matches!(&ev, ServerEvent::Handler(_, msg) if msg.contains("panicked")),
        "{ev:?}"
    );
    // The same, from handlers that finish after waiting.
    for (method, report) in [
        ("fail_later", "no such luck later"),
        ("panic_later", "panicked"),
    ] {
        remote.invoke(method, vec![]).unwrap();
        let ev = server_events
            .wait_for("a handler report", |e| {
                matches!(e, ServerEvent::Handler(..))
            })
            .await;
        assert!(
            matches!(&ev, ServerEvent::Handler(_, msg) if msg.contains(report)),
            "{method}: {ev:?}"
        );
    }
    // A call whose handler panics without answering resolves (the panicking handler's
    // callback is released) instead of hanging.
    let r = within::<R, _>(
        "a call to a panicking handler",
        remote.call::<_, ()>("panic", &()),
    )
    .await;
    // Today that error is `Closed` (the reply slot is dropped when the callback is
    // released); see the report: there is no dedicated variant for it.
    assert!(r.is_err(), "{r:?}");

    // Same connection, still serving.
    let t = call_time::<R>(&remote).await;
    assert_eq!(t, "now");
    assert_eq!(server.connections(), 1);
    assert_eq!(
        server_events.count(|e| matches!(e, ServerEvent::Disconnected(..))),
        0
    );
    // And a fresh client is served too.
    let other = fast_client()
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let r2 = within::<R, _>("up", other.up()).await.unwrap();
    let (t,): (String,) = within::<R, _>("time", r2.call("time", &())).await.unwrap();
    assert_eq!(t, "now");

    other.close().await;
    client.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn connection_limit_refuses_the_second_client_until_a_slot_frees<R: Rt>() {
    let server = R::build_server(Server::builder().max_connections(Some(1)), |_c| {
        Interface::new()
    });
    let mut server_events = Events::<R, _>::new(server.events());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let first = fast_client()
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    within::<R, _>("the first client up", first.up())
        .await
        .unwrap();

    let second = fast_client()
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let mut second_events = Events::<R, _>::new(second.events());
    server_events
        .wait_for("a refusal", |e| *e == ServerEvent::Refused)
        .await;
    second_events
        .wait_for("the second client's failed attempt", |e| {
            matches!(e, ClientEvent::Error(_))
        })
        .await;
    assert_eq!(server.connections(), 1);
    assert!(matches!(
        second.up_timeout(ms(200)).await,
        Err(UpError::TimedOut { .. })
    ));
    assert_eq!(second_events.count(|e| *e == ClientEvent::Up), 0);

    // The first one leaves; the second gets in.
    first.close().await;
    within::<R, _>("the second client up", second.up())
        .await
        .unwrap();
    assert_eq!(server.connections(), 1);

    second.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn graceful_shutdown_ends_every_connection_and_refuses_new_ones<R: Rt>() {
    let parked = Parked::default();
    let server = hanging_server::<R>(Server::builder(), parked.clone());
    let mut server_events = Events::<R, _>::new(server.events());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            fast_client()
                .connect_tcp::<R>(listener.local_addr())
                .unwrap()
        })
        .collect();
    let mut client_events: Vec<_> = clients
        .iter()
        .map(|c| Events::<R, _>::new(c.events()))
        .collect();
    for c in &clients {
        within::<R, _>("up", c.up()).await.unwrap();
    }
    assert_eq!(server.connections(), 3);
    // A handler that never finishes does not hold shutdown up.
    let remote = clients[0].up().await.unwrap();
    // The call leaves when made (not when the task first runs), and the server has it
    // before it shuts down.
    let pending = spawned::<R, _>(remote.call::<_, ()>("hang", &()));
    let arrived = async {
        while parked.lock().unwrap().is_empty() {
            R::sleep(ms(1)).await;
        }
    };
    within::<R, _>("the call to reach its handler", arrived).await;

    within::<R, _>("shutdown", server.shutdown_now()).await;
    assert!(server.is_shut_down());
    assert_eq!(server.connections(), 0);
    for e in &mut client_events {
        e.wait_for("down", |e| matches!(e, ClientEvent::Down(_)))
            .await;
    }
    assert_eq!(
        within::<R, _>("the in-flight call", pending).await.unwrap(),
        Err(CallError::LinkDown)
    );
    // The listener stopped with the shutdown; a connection handed to the server directly
    // is refused.
    let stream = futures::io::Cursor::new(Vec::new());
    assert!(!server.serve(upnode_async::boxed(stream)));
    server_events
        .wait_for("a refusal", |e| *e == ServerEvent::Refused)
        .await;
    assert_eq!(server.connections(), 0);
    assert_eq!(
        server_events.count(|e| matches!(e, ServerEvent::Disconnected(..))),
        3
    );

    for c in &clients {
        c.close().await;
    }
    drop(listener);
}

pub async fn a_callback_called_many_times_is_a_stream<R: Rt>() {
    let server = R::server(|_conn| {
        Interface::new().method("count", |call| async move {
            let (n,): (u32,) = call.decode()?;
            for i in 0..n {
                call.reply(&(i, format!("tick {i}")))?;
            }
            Ok(())
        })
    });
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;

    let stream = remote.call_stream("count", &(5,)).unwrap();
    // The server's handler drops the callback when it is done, which releases it (cull)
    // and ends the stream: every call arrives, then the end.
    let got: Vec<(u32, String)> = within::<R, _>("the whole stream", stream.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|a| a.decode().unwrap())
        .collect();
    assert_eq!(
        got,
        (0..5).map(|i| (i, format!("tick {i}"))).collect::<Vec<_>>()
    );
    client.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn a_handler_that_takes_its_params_still_answers_and_sees_only_the_callback_left<
    R: Rt,
>() {
    let server = R::server(|_conn| {
        Interface::new().method("join", |mut call| async move {
            let (words, sep): (Vec<String>, String) = call.take_params()?;
            // Taken: what is left is the answer callback alone, and a second take reads
            // nulls.
            let left = call.args().len();
            let (again,): (Option<String>,) = call.take_params()?;
            call.reply(&(words.join(&sep), left, again))?;
            Ok(())
        })
    });
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;
    let answer: (String, usize, Option<String>) =
        within::<R, _>("join", remote.call("join", &(vec!["a", "b", "c"], "-")))
            .await
            .unwrap();
    assert_eq!(answer, ("a-b-c".to_owned(), 1, None));
    client.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn functions_inside_objects_travel_both_ways<R: Rt>() {
    // auth answers an object with a function (as upnode's README); `subscribe` receives
    // an object holding one of the client's functions and calls it.
    let server = R::server(|_conn| {
        Interface::new()
            .method("auth", |call| async move {
                let beep = call.method(|c| async move {
                    c.reply(&("boop",))?;
                    Ok(())
                })?;
                call.reply_values(vec![Value::Null, Value::object([("beep", beep)])])?;
                Ok(())
            })
            .method("subscribe", |call| async move {
                let opts = call.args().remote(0).ok_or("no options")?;
                let tag = opts
                    .value()
                    .get("tag")
                    .and_then(Value::as_str)
                    .ok_or("no tag")?
                    .to_owned();
                let notify = opts.get("notify").ok_or("no notify")?;
                notify.invoke("", vec![Value::from(format!("hello {tag}"))])?;
                Ok(())
            })
    });
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;

    let reply = within::<R, _>("auth", remote.call_raw("auth", &("moo", "hax")))
        .await
        .unwrap();
    assert_eq!(reply.get::<Option<String>>(0).unwrap(), None);
    let session = reply.remote(1).expect("a session object");
    for _ in 0..3 {
        let (s,): (String,) = within::<R, _>("beep", session.call("beep", &()))
            .await
            .unwrap();
        assert_eq!(s, "boop");
    }

    let (tx, rx) = oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let notify = remote
        .callback(move |args| {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(args.get::<String>(0).unwrap());
            }
        })
        .unwrap();
    remote
        .invoke(
            "subscribe",
            vec![Value::object([
                ("tag", Value::from("x")),
                ("notify", Value::from(notify)),
            ])],
        )
        .unwrap();
    assert_eq!(
        within::<R, _>("the notification", rx).await.unwrap(),
        "hello x"
    );

    client.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn the_server_calls_a_method_the_client_exports<R: Rt>() {
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let server = R::server(move |conn: ConnHandle| {
        let tx = tx.clone();
        let remote = conn.remote();
        R::spawn(async move {
            let Some(client) = remote.await else { return };
            let r = client.call::<_, (String,)>("whoami", &()).await;
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(r);
            }
        });
        Interface::new()
    });
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .exports(Interface::new().method("whoami", |call| async move {
            call.reply(&("a rust client",))?;
            Ok(())
        }))
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let got = within::<R, _>("the server's call", rx).await.unwrap();
    assert_eq!(got, Ok(("a rust client".to_owned(),)));
    client.close().await;
    stop::<R>(listener, &server).await;
}

/// A reply carrying functions that arrives after its caller gave up is dropped inside the
/// client's driver; giving its functions back must not deadlock the client. Multi-threaded,
/// so that a deadlocked driver cannot also stop the test's own deadline.
pub async fn a_late_reply_with_functions_after_the_caller_gave_up<R: Rt>() {
    let _watchdog = Watchdog::start("a_late_reply_with_functions_after_the_caller_gave_up");
    let (replied_tx, replied_rx) = oneshot::channel();
    let replied_tx = Arc::new(Mutex::new(Some(replied_tx)));
    let server = R::server(move |_conn| {
        let replied_tx = replied_tx.clone();
        Interface::new()
            .method("slow_auth", move |call| {
                let replied_tx = replied_tx.clone();
                async move {
                    R::sleep(ms(200)).await;
                    let beep = call.method(|c| async move {
                        c.reply(&("boop",))?;
                        Ok(())
                    })?;
                    call.reply_values(vec![Value::Null, Value::object([("beep", beep)])])?;
                    if let Some(tx) = replied_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                    Ok(())
                }
            })
            .method("time", |call| async move {
                call.reply(&("now",))?;
                Ok(())
            })
    });
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;

    let gave_up = timeout::<R, _>(ms(20), remote.call_raw("slow_auth", &())).await;
    assert!(gave_up.is_err(), "answered early: {gave_up:?}");
    within::<R, _>("the late reply to be sent", replied_rx)
        .await
        .unwrap();
    // The late reply is ahead of this call's answer on the wire.
    let (t,): (String,) = within::<R, _>("time after a late reply", remote.call("time", &()))
        .await
        .unwrap();
    assert_eq!(t, "now");
    within::<R, _>("close", client.close()).await;
    stop::<R>(listener, &server).await;
}

pub async fn a_failing_connect_step_reconnects_and_never_comes_up<R: Rt>() {
    let logins = Arc::new(AtomicUsize::new(0));
    let counted = logins.clone();
    let server = R::server(move |_conn| {
        let counted = counted.clone();
        Interface::new().method("auth", move |call| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                call.reply(&("ACCESS DENIED",))?;
                Ok(())
            }
        })
    });
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .on_connect(|remote| async move {
            let reply = remote.call_raw("auth", &("moo", "wrong")).await?;
            match reply.get::<Option<String>>(0)? {
                Some(err) => Err(err.into()),
                None => Ok(reply.remote(1).ok_or("no session")?),
            }
        })
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let mut events = Events::<R, _>::new(client.events());
    for _ in 0..2 {
        events
            .wait_for("a failed connect step", |e| {
                matches!(e, ClientEvent::Error(LinkError::ConnectStepFailed { detail })
                    if detail.contains("ACCESS DENIED"))
            })
            .await;
    }
    assert!(matches!(
        client.up_timeout(ms(100)).await,
        Err(UpError::TimedOut {
            last_cause: Some(LinkError::ConnectStepFailed { .. })
        })
    ));
    assert_eq!(events.count(|e| *e == ClientEvent::Up), 0);
    assert!(logins.load(Ordering::SeqCst) >= 2);
    client.close().await;
    stop::<R>(listener, &server).await;
}

/// A time server for the transport tests.
fn time_server<R: Rt>() -> Server {
    R::server(|_conn| {
        Interface::new().method("time", |call| async move {
            call.reply(&("now",))?;
            Ok(())
        })
    })
}

#[cfg(unix)]
pub async fn unix_socket_client_and_server<R: Rt>() {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "upnode-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("upnode.sock");
    let _ = std::fs::remove_file(&path);

    let server = time_server::<R>();
    let listener = R::listen_unix(&server, path.clone()).await.unwrap();
    assert_eq!(listener.local_addr(), path.display().to_string());
    let client = fast_client().connect_unix::<R>(&path).unwrap();
    let mut events = Events::<R, _>::new(client.events());
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let t = call_time::<R>(&remote).await;
    assert_eq!(t, "now");

    // Restart on the same path: the client comes back.
    stop::<R>(listener, &server).await;
    events
        .wait_for("down", |e| matches!(e, ClientEvent::Down(_)))
        .await;
    std::fs::remove_file(&path).unwrap();
    let server = time_server::<R>();
    let listener = R::listen_unix(&server, path.clone()).await.unwrap();
    let remote = within::<R, _>("up again", client.up()).await.unwrap();
    let t = call_time::<R>(&remote).await;
    assert_eq!(t, "now");

    client.close().await;
    stop::<R>(listener, &server).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A self-signed certificate for `localhost`, made for this test run.
pub(crate) fn certificate() -> (
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der());
    (ck.cert.der().clone(), key.into())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn server_tls(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Arc<rustls::ServerConfig> {
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    )
}

pub(crate) fn client_tls(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub async fn tls_with_a_generated_certificate<R: Rt>() {
    let (cert, key) = certificate();
    let server = time_server::<R>();
    let listener = R::listen_tls(&server, "127.0.0.1:0", server_tls(cert.clone(), key))
        .await
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = fast_client()
        .connect_tls::<R>(listener.local_addr(), "localhost", client_tls(roots))
        .unwrap();
    let remote = within::<R, _>("up over TLS", client.up()).await.unwrap();
    let t = call_time::<R>(&remote).await;
    assert_eq!(t, "now");
    client.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn tls_refuses_a_server_it_cannot_verify<R: Rt>() {
    let (cert, key) = certificate();
    let (other_cert, _) = certificate();
    let server = time_server::<R>();
    let listener = R::listen_tls(&server, "127.0.0.1:0", server_tls(cert.clone(), key))
        .await
        .unwrap();

    let mut right_roots = rustls::RootCertStore::empty();
    right_roots.add(cert).unwrap();
    let mut wrong_roots = rustls::RootCertStore::empty();
    wrong_roots.add(other_cert).unwrap();
    let cases = [
        ("no roots", rustls::RootCertStore::empty(), "localhost"),
        ("another certificate", wrong_roots, "localhost"),
        ("another name", right_roots, "example.com"),
    ];
    for (what, roots, name) in cases {
        let client = fast_client()
            .connect_tls::<R>(listener.local_addr(), name, client_tls(roots))
            .unwrap();
        let mut events = Events::<R, _>::new(client.events());
        events
            .wait_for(&format!("a connect error ({what})"), |e| {
                matches!(e, ClientEvent::Error(LinkError::ConnectFailed { .. }))
            })
            .await;
        assert!(
            matches!(
                client.up_timeout(ms(200)).await,
                Err(UpError::TimedOut {
                    last_cause: Some(_)
                })
            ),
            "came up with {what}"
        );
        assert_eq!(events.count(|e| *e == ClientEvent::Up), 0, "{what}");
        client.close().await;
    }
    assert_eq!(server.connections(), 0);
    stop::<R>(listener, &server).await;
}

pub async fn a_handler_that_drops_the_answer_callback_fails_the_call_as_dropped<R: Rt>() {
    // `ignore` returns without answering: its call (and so the callback) is dropped, the
    // server culls it, and the client's call resolves at once instead of hanging.
    let server =
        R::server(|_conn| Interface::new().method("ignore", |_call| async move { Ok(()) }));
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;
    let r = within::<R, _>("answer", remote.call::<_, (String,)>("ignore", &())).await;
    assert_eq!(r, Err(CallError::Dropped));
    client.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn a_stopped_listener_frees_its_port_at_once_and_shutdown_stops_accepting<R: Rt>() {
    let server = R::server(|_conn| Interface::new());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().to_owned();
    listener.stop().await;
    // The same address binds again straight away: the old socket is closed.
    let listener = R::listen(&server, &addr).await.unwrap();
    within::<R, _>("shutdown", server.shutdown_now()).await;
    // The shutdown returned once the accept loop had ended and closed the socket:
    // connecting is refused at once.
    assert!(
        async_net::TcpStream::connect(addr.as_str()).await.is_err(),
        "the listener still accepts after shutdown"
    );
    drop(listener);
}

pub async fn a_tcp_reset_before_methods_drops_that_connection_and_the_server_keeps_serving<
    R: Rt,
>() {
    // upnode 0.6's server crashes on this (PROTOCOL.md §8).
    let server = time_server::<R>();
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    for _ in 0..3 {
        let s = std::net::TcpStream::connect(listener.local_addr()).unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(s); // closing with linger 0 sends RST
    }
    let client = fast_client()
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let t = call_time::<R>(&remote).await;
    assert_eq!(t, "now");
    client.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn null_number_array_and_string_lines_do_not_take_a_server_connection_down<R: Rt>() {
    // Node's server crashes on `null`; ours reports and carries on (PROTOCOL.md §8).
    use futures::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let server = time_server::<R>();
    let mut server_events = Events::<R, _>::new(server.events());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let s = async_net::TcpStream::connect(listener.local_addr())
        .await
        .unwrap();
    let mut w = s.clone();
    let mut lines = BufReader::new(s).lines();
    w.write_all(b"null\n5\n[1,2]\n\"s\"\n").await.unwrap();
    w.write_all(b"{\"method\":\"time\",\"arguments\":[\"[Function]\"],\"callbacks\":{\"0\":[\"0\"]},\"links\":[]}\n")
        .await
        .unwrap();
    let methods = within::<R, _>("methods", lines.next())
        .await
        .unwrap()
        .unwrap();
    assert!(methods.starts_with(r#"{"method":"methods""#), "{methods}");
    let reply = within::<R, _>("reply", lines.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reply,
        r#"{"method":0,"arguments":["now"],"callbacks":{},"links":[]}"#
    );
    // Each of the four lines was reported as the client's fault, and the connection lives.
    for _ in 0..4 {
        let e = server_events
            .wait_for("an error", |e| matches!(e, ServerEvent::Error(..)))
            .await;
        let ServerEvent::Error(_, err) = e else {
            unreachable!()
        };
        assert!(err.is_remote(), "{err}");
        assert!(
            matches!(err, LinkError::Remote(ref r) if !r.is_fatal()),
            "{err}"
        );
    }
    assert_eq!(server.connections(), 1);
    w.close().await.unwrap();
    stop::<R>(listener, &server).await;
}

pub async fn handlers_of_one_connection_start_in_arrival_order<R: Rt>() {
    // Each handler records its call number before its first `.await`, then answers. With a
    // task per call, two calls read together could start (and answer) in either order on
    // a multi-threaded runtime.
    let started = Arc::new(Mutex::new(Vec::new()));
    let server = R::server({
        let started = started.clone();
        move |_conn| {
            let started = started.clone();
            Interface::new().method("take", move |call| {
                let started = started.clone();
                async move {
                    let (n,): (u32,) = call.decode()?;
                    started.lock().unwrap().push(n);
                    call.reply(&(n,))?;
                    yield_now().await;
                    Ok(())
                }
            })
        }
    });
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;

    // Every call leaves before any is awaited, so the server reads them in few reads.
    let calls: Vec<_> = (0..2_000u32)
        .map(|n| remote.call::<_, (u32,)>("take", &(n,)))
        .collect();
    for (n, r) in within::<R, _>("every answer", futures::future::join_all(calls))
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.unwrap().0, n as u32);
    }
    let in_order: Vec<u32> = (0..2_000).collect();
    assert_eq!(
        *started.lock().unwrap(),
        in_order,
        "handlers started in call order"
    );
    client.close().await;
    stop::<R>(listener, &server).await;
}

/// A thousand transactions queued while no server listens run, once one does, in the order
/// they were queued, and their calls reach the server in that order. The client's driver
/// takes at most 256 events a turn, so this crosses several turns.
pub async fn a_thousand_transactions_queued_while_down_run_and_reach_the_server_in_order<R: Rt>() {
    const N: u32 = 1_000;
    let arrived = Arc::new(Mutex::new(Vec::new()));
    let seen = arrived.clone();
    let server = R::server(move |_conn| {
        let seen = seen.clone();
        Interface::new().method("take", move |call| {
            let seen = seen.clone();
            async move {
                let (n,): (u32,) = call.params()?;
                seen.lock().unwrap().push(n);
                call.reply(&(n,))?;
                Ok(())
            }
        })
    });
    let port = free_port();
    let client = fast_client()
        .connect_tcp::<R>(format!("127.0.0.1:{port}"))
        .unwrap();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (calls_tx, calls_rx) = mpsc::unbounded();
    for n in 0..N {
        let (ran, calls_tx) = (ran.clone(), calls_tx.clone());
        client
            .transaction(None, move |remote| {
                ran.lock().unwrap().push(n);
                let remote = remote.expect("the link comes up");
                let _ = calls_tx.unbounded_send(remote.call::<_, (u32,)>("take", &(n,)));
            })
            .expect("queued");
    }
    drop(calls_tx);
    let listener = listen_on::<R>(&server, port).await;
    let calls: Vec<_> = within::<R, _>(
        "every transaction run",
        calls_rx.take(N as usize).collect::<Vec<_>>(),
    )
    .await;
    let answers = within::<R, _>("every answer", futures::future::join_all(calls)).await;
    for (n, r) in answers.into_iter().enumerate() {
        assert_eq!(r, Ok((n as u32,)));
    }
    let in_order: Vec<u32> = (0..N).collect();
    assert_eq!(
        *ran.lock().unwrap(),
        in_order,
        "transactions ran in queue order"
    );
    assert_eq!(
        *arrived.lock().unwrap(),
        in_order,
        "their calls reached the server in that order"
    );
    client.close().await;
    stop::<R>(listener, &server).await;
}

/// A callback the peer culls is dropped outside the client's lock: whatever its closure
/// captures may use the client as it goes (here, reads its counters).
pub async fn a_culled_callback_is_dropped_outside_the_lock_so_its_captures_may_use_the_client<
    R: Rt,
>() {
    /// Reads the client's counters when dropped, and says so.
    struct UsesClientOnDrop {
        client: upnode_async::Client,
        dropped: Mutex<Option<oneshot::Sender<usize>>>,
    }
    impl Drop for UsesClientOnDrop {
        fn drop(&mut self) {
            let functions = self.client.counters().functions;
            if let Some(tx) = self.dropped.lock().unwrap().take() {
                let _ = tx.send(functions);
            }
        }
    }
    // keep({cb}) calls the function inside the object once and keeps the object;
    // let_go() drops it, and the server culls the function then (it is no answer callback:
    // it came inside an object). The cull thus comes in a later turn than the call, when
    // nothing but the client's table holds the callback.
    let kept: Arc<Mutex<Option<upnode_async::Remote>>> = Arc::default();
    let server = R::server(move |_conn| {
        let (keep, let_go) = (kept.clone(), kept.clone());
        Interface::new()
            .method("keep", move |call| {
                let keep = keep.clone();
                async move {
                    let opts = call.args().remote(0).ok_or("no options")?;
                    opts.get("cb").ok_or("no cb")?.invoke("", vec![])?;
                    *keep.lock().unwrap() = Some(opts);
                    Ok(())
                }
            })
            .method("let_go", move |call| {
                let gone = let_go.lock().unwrap().take();
                async move {
                    drop(gone);
                    call.reply(&())?;
                    Ok(())
                }
            })
    });
    let (listener, client, remote) = serve_and_connect::<R>(&server).await;
    let (called_tx, called) = oneshot::channel::<()>();
    let called_tx = Mutex::new(Some(called_tx));
    let (dropped_tx, dropped) = oneshot::channel();
    let guard = UsesClientOnDrop {
        client: client.clone(),
        dropped: Mutex::new(Some(dropped_tx)),
    };
    let cb = remote
        .callback(move |_args| {
            let _ = &guard;
            if let Some(tx) = called_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
        })
        .unwrap();
    let opts = Value::object([("cb", Value::from(cb))]);
    remote.invoke("keep", vec![opts]).unwrap();
    within::<R, _>("the callback called", called).await.unwrap();
    let () = within::<R, _>("let_go", remote.call("let_go", &()))
        .await
        .unwrap();
    // The cull takes the callback away; its closure, and the guard with it, are dropped.
    let functions = within::<R, _>("the callback dropped", dropped)
        .await
        .unwrap();
    assert_eq!(
        functions, 0,
        "the callback was gone from the table when dropped"
    );
    client.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn past_max_in_flight_calls_wait_for_a_slot_or_fail_at_once_as_configured<R: Rt>() {
    let parked = Parked::default();
    let server = hanging_server::<R>(Server::builder(), parked.clone());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();

    // Fail: two calls parked by the server fill the client's two slots.
    let client = fast_client()
        .max_in_flight(2, WhenFull::Fail)
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let hung: Vec<_> = (0..2)
        .map(|_| remote.call::<_, (String,)>("hang", &()))
        .collect();
    let r = within::<R, _>("a third call", remote.call::<_, (String,)>("time", &())).await;
    assert_eq!(r, Err(CallError::TooManyInFlight { limit: 2 }));
    let n = client.counters();
    assert_eq!((n.link.calls_in_flight, n.link.calls_waiting), (2, 0));
    drop(hung);
    client.close().await;
    stop::<R>(listener, &server).await;

    // Wait: 100 calls through 2 slots all complete. The server parks each call until the
    // test answers it, so what is in flight and what waits is decided here, not by timing.
    let parked = Parked::default();
    let server = hanging_server::<R>(Server::builder(), parked.clone());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .max_in_flight(2, WhenFull::Wait)
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let idle = tables(client.counters());
    let calls: Vec<_> = (0..100)
        .map(|_| remote.call::<_, (String,)>("hang", &()))
        .collect();
    let waiting = client.counters();
    assert_eq!(waiting.link.calls_in_flight, 2);
    assert_eq!(waiting.link.calls_waiting, 98);
    let answers = spawned::<R, _>(futures::future::join_all(calls));
    let mut answered = 0;
    while answered < 100 {
        let next = parked.lock().unwrap().pop();
        match next {
            Some(call) => {
                call.reply(&("later",)).unwrap();
                answered += 1;
                // Never more than the two slots' worth reach the server.
                assert!(parked.lock().unwrap().len() <= 2);
            }
            None => within::<R, _>("the next call to arrive", R::sleep(ms(1))).await,
        }
    }
    for r in within::<R, _>("all answers", answers).await.unwrap() {
        assert_eq!(r.unwrap().0, "later");
    }
    assert_eq!(tables(client.counters()), idle);
    client.close().await;
    stop::<R>(listener, &server).await;
}

pub async fn a_timed_out_call_leaves_no_callback_behind_and_a_late_answer_is_reported<R: Rt>() {
    // The server parks the call and answers it only after the client gave up.
    let parked = Parked::default();
    let server = hanging_server::<R>(Server::builder(), parked.clone());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .call_timeout(Some(ms(50)))
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let mut events = Events::<R, _>::new(client.events());
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let idle = tables(client.counters());
    let r = within::<R, _>("the call", remote.call::<_, (String,)>("hang", &())).await;
    assert_eq!(r, Err(CallError::TimedOut(ms(50))));
    assert_eq!(
        tables(client.counters()),
        idle,
        "its answer callback is gone"
    );

    let late = parked.lock().unwrap().pop().expect("parked");
    late.reply(&("too late",)).unwrap();
    let ev = events
        .wait_for(
            "the late answer reported",
            |e| matches!(e, ClientEvent::Error(e) if e.is_remote()),
        )
        .await;
    assert!(format!("{ev:?}").contains("NoSuchCallback"), "{ev:?}");
    let t = call_time::<R>(&remote).await;
    assert_eq!(t, "now", "the link lives on");
    client.close().await;
    stop::<R>(listener, &server).await;
}
