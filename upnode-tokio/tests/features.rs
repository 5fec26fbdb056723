//! Behaviour beyond the original suite, over real sockets with the tokio adapter: failures
//! as values, handler errors, limits, shutdown, callbacks called many times, functions
//! inside objects, Unix sockets and TLS.

mod common;

use common::{fast_client, ms, stop, within, Events, Watchdog};
use futures::channel::oneshot;
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use upnode_tokio::upnode_core::link::LinkError;
use upnode_tokio::upnode_core::Value;
use upnode_tokio::{
    rustls, Call, CallError, ClientBuilderExt, ClientEvent, ConnHandle, HandlerError, Interface,
    Server, ServerBuilder, ServerEvent,
};

/// Calls parked by a handler that never answers them (kept so that their callbacks are
/// not released either).
type Parked = Arc<Mutex<Vec<Call>>>;

/// A server exporting `time` (answers `"now"`) and `hang` (never answers; parks the call).
fn hanging_server(builder: ServerBuilder, parked: Parked) -> Server {
    upnode_tokio::build_server(builder, move |_conn| {
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

#[tokio::test]
async fn in_flight_call_fails_with_link_down_when_the_server_dies() {
    let parked = Parked::default();
    let server = hanging_server(Server::builder(), parked.clone());
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client().connect_tcp(listener.local_addr()).unwrap();
    let mut events = Events::new(client.events());
    let remote = within("up", client.up()).await.unwrap();

    let call = tokio::spawn({
        let remote = remote.clone();
        async move { remote.call::<_, (String,)>("hang", &()).await }
    });
    // Wait until the server has the call, then take the server away mid-call.
    let mut server_events = server.events();
    while parked.lock().unwrap().is_empty() {
        let (t,): (String,) = within("time", remote.call("time", &())).await.unwrap();
        assert_eq!(t, "now");
    }
    stop(listener, &server).await;
    let r = within("the in-flight call", call).await.unwrap();
    assert_eq!(r, Err(CallError::LinkDown));
    events
        .wait_for("down", |e| matches!(e, ClientEvent::Down(_)))
        .await;
    assert!(matches!(
        within("server events", server_events.next()).await,
        Some(ServerEvent::Disconnected(..))
    ));
    client.close().await;
}

#[tokio::test]
async fn call_timeout_fails_a_call_nobody_answers() {
    let parked = Parked::default();
    let server = hanging_server(Server::builder(), parked.clone());
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .call_timeout(Some(ms(100)))
        .connect_tcp(listener.local_addr())
        .unwrap();
    let remote = within("up", client.up()).await.unwrap();
    let r = within("the call", remote.call::<_, (String,)>("hang", &())).await;
    assert_eq!(r, Err(CallError::TimedOut(ms(100))));
    // The link is fine.
    let (t,): (String,) = within("time", remote.call("time", &())).await.unwrap();
    assert_eq!(t, "now");
    assert_eq!(parked.lock().unwrap().len(), 1);
    client.close().await;
    stop(listener, &server).await;
}

/// What a buggy handler does.
fn handler_bug() -> Result<(), HandlerError> {
    panic!("handler bug")
}

#[tokio::test]
async fn failing_and_panicking_handlers_leave_the_connection_and_server_alive() {
    let server = upnode_tokio::server(|_conn| {
        Interface::new()
            .method("fail", |_call| async move { Err("no such luck".into()) })
            .method("panic", |_call| async move { handler_bug() })
            .method("time", |call| async move {
                call.reply(&("now",))?;
                Ok(())
            })
    });
    let mut server_events = Events::new(server.events());
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client().connect_tcp(listener.local_addr()).unwrap();
    let remote = within("up", client.up()).await.unwrap();

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
    // A call whose handler panics without answering resolves (the panicking handler's
    // callback is released) instead of hanging.
    let r = within(
        "a call to a panicking handler",
        remote.call::<_, ()>("panic", &()),
    )
    .await;
    // Today that error is `Closed` (the reply slot is dropped when the callback is
    // released); see the report: there is no dedicated variant for it.
    assert!(r.is_err(), "{r:?}");

    // Same connection, still serving.
    let (t,): (String,) = within("time", remote.call("time", &())).await.unwrap();
    assert_eq!(t, "now");
    assert_eq!(server.connections(), 1);
    assert_eq!(
        server_events.count(|e| matches!(e, ServerEvent::Disconnected(..))),
        0
    );
    // And a fresh client is served too.
    let other = fast_client().connect_tcp(listener.local_addr()).unwrap();
    let r2 = within("up", other.up()).await.unwrap();
    let (t,): (String,) = within("time", r2.call("time", &())).await.unwrap();
    assert_eq!(t, "now");

    other.close().await;
    client.close().await;
    stop(listener, &server).await;
}

#[tokio::test]
async fn connection_limit_refuses_the_second_client_until_a_slot_frees() {
    let server = upnode_tokio::build_server(Server::builder().max_connections(Some(1)), |_c| {
        Interface::new()
    });
    let mut server_events = Events::new(server.events());
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let first = fast_client().connect_tcp(listener.local_addr()).unwrap();
    within("the first client up", first.up()).await.unwrap();

    let second = fast_client().connect_tcp(listener.local_addr()).unwrap();
    let mut second_events = Events::new(second.events());
    server_events
        .wait_for("a refusal", |e| *e == ServerEvent::Refused)
        .await;
    second_events
        .wait_for("the second client's failed attempt", |e| {
            matches!(e, ClientEvent::Error(_))
        })
        .await;
    assert_eq!(server.connections(), 1);
    assert!(matches!(second.up_timeout(ms(200)).await, Ok(None)));
    assert_eq!(second_events.count(|e| *e == ClientEvent::Up), 0);

    // The first one leaves; the second gets in.
    first.close().await;
    within("the second client up", second.up()).await.unwrap();
    assert_eq!(server.connections(), 1);

    second.close().await;
    stop(listener, &server).await;
}

#[tokio::test]
async fn graceful_shutdown_ends_every_connection_and_refuses_new_ones() {
    let parked = Parked::default();
    let server = hanging_server(Server::builder(), parked.clone());
    let mut server_events = Events::new(server.events());
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let clients: Vec<_> = (0..3)
        .map(|_| fast_client().connect_tcp(listener.local_addr()).unwrap())
        .collect();
    let mut client_events: Vec<_> = clients.iter().map(|c| Events::new(c.events())).collect();
    for c in &clients {
        within("up", c.up()).await.unwrap();
    }
    assert_eq!(server.connections(), 3);
    // A handler that never finishes does not hold shutdown up.
    let remote = clients[0].up().await.unwrap();
    let pending = tokio::spawn(async move { remote.call::<_, ()>("hang", &()).await });

    within("shutdown", server.shutdown()).await;
    assert!(server.is_shut_down());
    assert_eq!(server.connections(), 0);
    for e in &mut client_events {
        e.wait_for("down", |e| matches!(e, ClientEvent::Down(_)))
            .await;
    }
    assert_eq!(
        within("the in-flight call", pending).await.unwrap(),
        Err(CallError::LinkDown)
    );
    // The listener stopped with the shutdown; a connection handed to the server directly
    // is refused.
    let (a, b) = tokio::io::duplex(1024);
    assert!(!upnode_tokio::serve(&server, a));
    drop(b);
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

#[tokio::test]
async fn a_callback_called_many_times_is_a_stream() {
    let server = upnode_tokio::server(|_conn| {
        Interface::new().method("count", |call| async move {
            let (n,): (u32,) = call.decode()?;
            for i in 0..n {
                call.reply(&(i, format!("tick {i}")))?;
            }
            Ok(())
        })
    });
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client().connect_tcp(listener.local_addr()).unwrap();
    let remote = within("up", client.up()).await.unwrap();

    let stream = remote.call_stream("count", &(5,)).unwrap();
    // The server's handler drops the callback when it is done, which releases it (cull)
    // and ends the stream: every call arrives, then the end.
    let got: Vec<(u32, String)> = within("the whole stream", stream.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|a| a.decode().unwrap())
        .collect();
    assert_eq!(
        got,
        (0..5).map(|i| (i, format!("tick {i}"))).collect::<Vec<_>>()
    );
    client.close().await;
    stop(listener, &server).await;
}

#[tokio::test]
async fn functions_inside_objects_travel_both_ways() {
    // auth answers an object with a function (as upnode's README); `subscribe` receives
    // an object holding one of the client's functions and calls it.
    let server = upnode_tokio::server(|_conn| {
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
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client().connect_tcp(listener.local_addr()).unwrap();
    let remote = within("up", client.up()).await.unwrap();

    let reply = within("auth", remote.call_raw("auth", &("moo", "hax")))
        .await
        .unwrap();
    assert_eq!(reply.get::<Option<String>>(0).unwrap(), None);
    let session = reply.remote(1).expect("a session object");
    for _ in 0..3 {
        let (s,): (String,) = within("beep", session.call("beep", &())).await.unwrap();
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
    assert_eq!(within("the notification", rx).await.unwrap(), "hello x");

    client.close().await;
    stop(listener, &server).await;
}

#[tokio::test]
async fn the_server_calls_a_method_the_client_exports() {
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let server = upnode_tokio::server(move |conn: ConnHandle| {
        let tx = tx.clone();
        let remote = conn.remote();
        tokio::spawn(async move {
            let Some(client) = remote.await else { return };
            let r = client.call::<_, (String,)>("whoami", &()).await;
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(r);
            }
        });
        Interface::new()
    });
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .exports(Interface::new().method("whoami", |call| async move {
            call.reply(&("a rust client",))?;
            Ok(())
        }))
        .connect_tcp(listener.local_addr())
        .unwrap();
    let got = within("the server's call", rx).await.unwrap();
    assert_eq!(got, Ok(("a rust client".to_owned(),)));
    client.close().await;
    stop(listener, &server).await;
}

/// A reply carrying functions that arrives after its caller gave up is dropped inside the
/// client's driver; giving its functions back must not deadlock the client. Multi-threaded,
/// so that a deadlocked driver cannot also stop the test's own deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_with_functions_after_the_caller_gave_up() {
    let _watchdog = Watchdog::start("a_late_reply_with_functions_after_the_caller_gave_up");
    let (replied_tx, replied_rx) = oneshot::channel();
    let replied_tx = Arc::new(Mutex::new(Some(replied_tx)));
    let server = upnode_tokio::server(move |_conn| {
        let replied_tx = replied_tx.clone();
        Interface::new()
            .method("slow_auth", move |call| {
                let replied_tx = replied_tx.clone();
                async move {
                    tokio::time::sleep(ms(200)).await;
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
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client().connect_tcp(listener.local_addr()).unwrap();
    let remote = within("up", client.up()).await.unwrap();

    let gave_up = tokio::time::timeout(ms(20), remote.call_raw("slow_auth", &())).await;
    assert!(gave_up.is_err(), "answered early: {gave_up:?}");
    within("the late reply to be sent", replied_rx)
        .await
        .unwrap();
    // The late reply is ahead of this call's answer on the wire.
    let (t,): (String,) = within("time after a late reply", remote.call("time", &()))
        .await
        .unwrap();
    assert_eq!(t, "now");
    within("close", client.close()).await;
    stop(listener, &server).await;
}

#[tokio::test]
async fn a_failing_connect_step_reconnects_and_never_comes_up() {
    let logins = Arc::new(AtomicUsize::new(0));
    let counted = logins.clone();
    let server = upnode_tokio::server(move |_conn| {
        let counted = counted.clone();
        Interface::new().method("auth", move |call| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                call.reply(&("ACCESS DENIED",))?;
                Ok(())
            }
        })
    });
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .on_connect(|remote| async move {
            let reply = remote.call_raw("auth", &("moo", "wrong")).await?;
            match reply.get::<Option<String>>(0)? {
                Some(err) => Err(err.into()),
                None => Ok(reply.remote(1).ok_or("no session")?),
            }
        })
        .connect_tcp(listener.local_addr())
        .unwrap();
    let mut events = Events::new(client.events());
    for _ in 0..2 {
        events
            .wait_for("a failed connect step", |e| {
                matches!(e, ClientEvent::Error(LinkError::ConnectStepFailed { detail })
                    if detail.contains("ACCESS DENIED"))
            })
            .await;
    }
    assert!(matches!(client.up_timeout(ms(100)).await, Ok(None)));
    assert_eq!(events.count(|e| *e == ClientEvent::Up), 0);
    assert!(logins.load(Ordering::SeqCst) >= 2);
    client.close().await;
    stop(listener, &server).await;
}

/// A time server for the transport tests.
fn time_server() -> Server {
    upnode_tokio::server(|_conn| {
        Interface::new().method("time", |call| async move {
            call.reply(&("now",))?;
            Ok(())
        })
    })
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_client_and_server() {
    let dir = std::env::temp_dir().join(format!(
        "upnode-tokio-test-{}-{}",
        std::process::id(),
        line!()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("upnode.sock");
    let _ = std::fs::remove_file(&path);

    let server = time_server();
    let listener = upnode_tokio::listen_unix(&server, &path).await.unwrap();
    assert_eq!(listener.local_addr(), path.display().to_string());
    let client = fast_client().connect_unix(&path).unwrap();
    let mut events = Events::new(client.events());
    let remote = within("up", client.up()).await.unwrap();
    let (t,): (String,) = within("time", remote.call("time", &())).await.unwrap();
    assert_eq!(t, "now");

    // Restart on the same path: the client comes back.
    stop(listener, &server).await;
    events
        .wait_for("down", |e| matches!(e, ClientEvent::Down(_)))
        .await;
    std::fs::remove_file(&path).unwrap();
    let server = time_server();
    let listener = upnode_tokio::listen_unix(&server, &path).await.unwrap();
    let remote = within("up again", client.up()).await.unwrap();
    let (t,): (String,) = within("time", remote.call("time", &())).await.unwrap();
    assert_eq!(t, "now");

    client.close().await;
    stop(listener, &server).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A self-signed certificate for `localhost`, made for this test run.
fn certificate() -> (
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

fn server_tls(
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

fn client_tls(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[tokio::test]
async fn tls_with_a_generated_certificate() {
    let (cert, key) = certificate();
    let server = time_server();
    let listener = upnode_tokio::listen_tls(&server, "127.0.0.1:0", server_tls(cert.clone(), key))
        .await
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = fast_client()
        .connect_tls(listener.local_addr(), "localhost", client_tls(roots))
        .unwrap();
    let remote = within("up over TLS", client.up()).await.unwrap();
    let (t,): (String,) = within("time", remote.call("time", &())).await.unwrap();
    assert_eq!(t, "now");
    client.close().await;
    stop(listener, &server).await;
}

#[tokio::test]
async fn tls_refuses_a_server_it_cannot_verify() {
    let (cert, key) = certificate();
    let (other_cert, _) = certificate();
    let server = time_server();
    let listener = upnode_tokio::listen_tls(&server, "127.0.0.1:0", server_tls(cert.clone(), key))
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
            .connect_tls(listener.local_addr(), name, client_tls(roots))
            .unwrap();
        let mut events = Events::new(client.events());
        events
            .wait_for(&format!("a connect error ({what})"), |e| {
                matches!(e, ClientEvent::Error(LinkError::ConnectFailed { .. }))
            })
            .await;
        assert!(
            matches!(client.up_timeout(ms(200)).await, Ok(None)),
            "came up with {what}"
        );
        assert_eq!(events.count(|e| *e == ClientEvent::Up), 0, "{what}");
        client.close().await;
    }
    assert_eq!(server.connections(), 0);
    stop(listener, &server).await;
}

#[tokio::test]
async fn a_handler_that_drops_the_answer_callback_fails_the_call_as_dropped() {
    // `ignore` returns without answering: its call (and so the callback) is dropped, the
    // server culls it, and the client's call resolves at once instead of hanging.
    let server = upnode_tokio::server(|_conn| {
        Interface::new().method("ignore", |_call| async move { Ok(()) })
    });
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = fast_client().connect_tcp(listener.local_addr()).unwrap();
    let remote = within("up", client.up()).await.unwrap();
    let r = within("answer", remote.call::<_, (String,)>("ignore", &())).await;
    assert_eq!(r, Err(CallError::Dropped));
    client.close().await;
    stop(listener, &server).await;
}

#[tokio::test]
async fn a_stopped_listener_frees_its_port_at_once_and_shutdown_stops_accepting() {
    let server = upnode_tokio::server(|_conn| Interface::new());
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().to_owned();
    listener.stop().await;
    // The same address binds again straight away: the old socket is closed.
    let listener = upnode_tokio::listen(&server, &addr).await.unwrap();
    within("shutdown", server.shutdown()).await;
    // The accept loop ended with the shutdown, closing the socket: connecting is refused.
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the listener still accepts after shutdown");
    drop(listener);
}

#[tokio::test]
async fn a_tcp_reset_before_methods_drops_that_connection_and_the_server_keeps_serving() {
    // upnode 0.6's server crashes on this (PROTOCOL.md §8).
    let server = time_server();
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    for _ in 0..3 {
        let s = tokio::net::TcpStream::connect(listener.local_addr())
            .await
            .unwrap();
        s.set_zero_linger().unwrap();
        drop(s); // closing with linger 0 sends RST
    }
    let client = fast_client().connect_tcp(listener.local_addr()).unwrap();
    let remote = within("up", client.up()).await.unwrap();
    let (t,): (String,) = within("time", remote.call("time", &())).await.unwrap();
    assert_eq!(t, "now");
    client.close().await;
    stop(listener, &server).await;
}

#[tokio::test]
async fn null_number_array_and_string_lines_do_not_take_a_server_connection_down() {
    // Node's server crashes on `null`; ours reports and carries on (PROTOCOL.md §8).
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let server = time_server();
    let mut server_events = Events::new(server.events());
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let s = tokio::net::TcpStream::connect(listener.local_addr())
        .await
        .unwrap();
    let (r, mut w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"null\n5\n[1,2]\n\"s\"\n").await.unwrap();
    w.write_all(b"{\"method\":\"time\",\"arguments\":[\"[Function]\"],\"callbacks\":{\"0\":[\"0\"]},\"links\":[]}\n")
        .await
        .unwrap();
    let methods = within("methods", lines.next_line()).await.unwrap().unwrap();
    assert!(methods.starts_with(r#"{"method":"methods""#), "{methods}");
    let reply = within("reply", lines.next_line()).await.unwrap().unwrap();
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
    drop(w);
    stop(listener, &server).await;
}
