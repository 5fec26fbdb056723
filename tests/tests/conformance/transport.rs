//! The adapter's own surface on each runtime: bad input as error values, a custom stream,
//! `close` in every state of the link, and the handshake timeout against a silent server.

use crate::common::{call_time, fast_client, ms, within, Events};
use crate::rt::{Connect, Rt};
use std::time::Duration;
use upnode_async::upnode_core::config::{Backoff, Exponential, ReconnectPolicy};
use upnode_async::upnode_core::link::{LinkError, LinkState};
use upnode_async::{Client, ClientEvent, ConnectError, Interface, ListenError};

fn time_server<R: Rt>() -> upnode_async::Server {
    R::server(|_conn| {
        Interface::new().method("time", |call| async move {
            call.reply(&("now",))?;
            Ok(())
        })
    })
}

fn tls_config() -> std::sync::Arc<upnode_async::rustls::ClientConfig> {
    use upnode_async::rustls;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    )
}

pub async fn bad_input_to_connect_and_listen_is_an_error_value<R: Rt>() {
    for addr in [
        "nonsense",
        "127.0.0.1:",
        ":7000",
        "127.0.0.1:70000",
        "127.0.0.1:0",
        "::1:7000",
    ] {
        match Client::builder().connect_tcp::<R>(addr).err() {
            Some(e @ ConnectError::Address(_)) => {
                assert!(e.to_string().contains(addr), "{e}");
            }
            other => panic!("{addr:?}: {other:?}"),
        }
    }
    let bad_policy = ReconnectPolicy::new(Backoff::Exponential(Exponential {
        factor: 0.5,
        ..Exponential::default()
    }));
    let r = Client::builder()
        .reconnect(bad_policy)
        .connect_tcp::<R>("127.0.0.1:7000")
        .err();
    assert!(
        matches!(r, Some(ConnectError::Policy(_))),
        "a factor of 0.5: {r:?}"
    );
    let r = Client::builder().connect_tls::<R>("127.0.0.1:7000", "not a name!", tls_config());
    match r.err() {
        Some(e @ ConnectError::ServerName(_)) => assert!(e.to_string().contains("not a name!")),
        other => panic!("{other:?}"),
    }
    #[cfg(unix)]
    assert!(matches!(
        Client::builder().connect_unix::<R>("").err(),
        Some(ConnectError::Path(_))
    ));

    let server = time_server::<R>();
    for addr in ["nonsense", "127.0.0.1:x"] {
        match R::listen(&server, addr).await {
            Err(e @ ListenError::Address(_)) => assert!(e.to_string().contains(addr)),
            other => panic!("{addr:?}: {other:?}"),
        }
    }
    let taken = R::listen(&server, "127.0.0.1:0").await.unwrap();
    match R::listen(&server, taken.local_addr()).await {
        Err(e @ ListenError::Bind { .. }) => {
            assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
            assert!(e.to_string().contains(taken.local_addr()), "{e}");
        }
        other => panic!("{other:?}"),
    }
    #[cfg(unix)]
    assert!(matches!(
        R::listen_unix(&server, "".into()).await,
        Err(ListenError::Path(_))
    ));
    taken.stop().await;
    within::<R, _>("shutdown", server.shutdown_now()).await;
}

pub async fn a_custom_stream_carries_the_link<R: Rt>() {
    let server = time_server::<R>();
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let client = R::connect_stream_tcp(fast_client(), listener.local_addr().to_owned()).unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let t = call_time::<R>(&remote).await;
    assert_eq!(t, "now");
    client.close().await;
    listener.stop().await;
    within::<R, _>("shutdown", server.shutdown_now()).await;
}

/// A listener that accepts and then says nothing (no `methods`).
async fn silent_listener() -> (async_net::TcpListener, String) {
    let l = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

async fn closes_cleanly<R: Rt>(client: Client, mut events: Events<R, ClientEvent>) {
    within::<R, _>("close", client.close()).await;
    events.drain().await;
    assert_eq!(
        events.seen.last(),
        Some(&ClientEvent::Closed),
        "{:?}",
        events.seen
    );
    assert_eq!(client.state(), LinkState::Closed);
    assert!(client.up().await.is_err());
}

pub async fn close_returns_in_every_state_of_the_link<R: Rt>() {
    // Connecting: closed straight after starting.
    let (_l, addr) = silent_listener().await;
    let client = fast_client().connect_tcp::<R>(addr.as_str()).unwrap();
    let events = Events::new(client.events());
    closes_cleanly::<R>(client, events).await;

    // Handshaking: connected to a server that never sends `methods`.
    let (l, addr) = silent_listener().await;
    let client = fast_client().connect_tcp::<R>(addr.as_str()).unwrap();
    let events = Events::new(client.events());
    let (mut peer, _) = within::<R, _>("the connection", l.accept()).await.unwrap();
    closes_cleanly::<R>(client, events).await;
    // The transport was closed: the peer reads to its end.
    use futures::AsyncReadExt;
    within::<R, _>("EOF", peer.read_to_end(&mut Vec::new()))
        .await
        .unwrap();

    // Waiting to reconnect: after a refused attempt, with a long delay.
    let (l, addr) = silent_listener().await;
    drop(l);
    let mut builder = Client::builder()
        .reconnect(ReconnectPolicy::fixed(Duration::from_secs(3600)))
        .ping(None);
    // Subscribed before the start, so that the first events cannot be missed.
    let mut events = Events::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(addr.as_str()).unwrap();
    events
        .wait_for("a reconnect", |e| {
            matches!(e, ClientEvent::Reconnect { .. })
        })
        .await;
    closes_cleanly::<R>(client, events).await;
}

pub async fn the_handshake_timeout_drops_a_silent_server_and_reconnects<R: Rt>() {
    let (l, addr) = silent_listener().await;
    let mut builder = fast_client().handshake_timeout(ms(100));
    let mut events = Events::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(addr.as_str()).unwrap();
    let (first, _) = within::<R, _>("the first connection", l.accept())
        .await
        .unwrap();
    events
        .wait_for(
            "the handshake timeout",
            |e| matches!(e, ClientEvent::Error(LinkError::HandshakeTimeout(t)) if *t == ms(100)),
        )
        .await;
    events
        .wait_for("a reconnect", |e| {
            matches!(e, ClientEvent::Reconnect { .. })
        })
        .await;
    let (_second, _) = within::<R, _>("the next attempt", l.accept())
        .await
        .unwrap();
    assert_eq!(events.count(|e| matches!(e, ClientEvent::Up)), 0);
    drop(first);
    closes_cleanly::<R>(client, events).await;
}

pub async fn a_silent_tls_client_is_dropped_after_the_handshake_timeout<R: Rt>() {
    use futures::AsyncReadExt;
    let (cert, key) = crate::features::certificate();
    let server = R::build_server(
        upnode_async::Server::builder().handshake_timeout(ms(100)),
        |_conn| Interface::new(),
    );
    let listener = R::listen_tls(
        &server,
        "127.0.0.1:0",
        crate::features::server_tls(cert, key),
    )
    .await
    .unwrap();
    // Connects and never says hello: the server closes the socket once the time is up.
    let mut silent = async_net::TcpStream::connect(listener.local_addr())
        .await
        .unwrap();
    let n = within::<R, _>("the server closing", silent.read(&mut [0; 64]))
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(server.connections(), 0);
    listener.stop().await;
    within::<R, _>("shutdown", server.shutdown_now()).await;
}
