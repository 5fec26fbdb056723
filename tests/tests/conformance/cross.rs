//! One runtime's client against another runtime's server, over TCP and TLS: the plumbing
//! is the same, so the wire must be too. The test runs on the client's runtime; a tokio
//! server gets a tokio runtime of its own, entered on the test thread.

use crate::async_std::AsyncStd;
use crate::common::{call_time, fast_client, stop, within};
use crate::features::{certificate, client_tls, server_tls};
use crate::rt::{Connect, Rt};
use crate::smol::Smol;
use crate::tokio::Tokio;
use futures::channel::oneshot;
use std::sync::{Arc, Mutex};
use upnode_async::{rustls, ConnHandle, Interface};

/// A client on `C` calls `time` on a server on `S`, and the server calls `whoami` on the
/// client, over TLS or plain TCP.
async fn cross<C: Rt, S: Rt>(tls: bool) {
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let server = S::server(move |conn: ConnHandle| {
        let tx = tx.clone();
        S::spawn(async move {
            let Some(client) = conn.remote().await else {
                return;
            };
            let r = client.call::<_, (String,)>("whoami", &()).await;
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(r);
            }
        });
        Interface::new().method("time", |call| async move {
            call.reply(&("now",))?;
            Ok(())
        })
    });
    let (cert, key) = certificate();
    let listener = if tls {
        S::listen_tls(&server, "127.0.0.1:0", server_tls(cert.clone(), key)).await
    } else {
        S::listen(&server, "127.0.0.1:0").await
    }
    .unwrap();
    let builder = fast_client().exports(Interface::new().method("whoami", |call| async move {
        call.reply(&("the client",))?;
        Ok(())
    }));
    let client = if tls {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        builder.connect_tls::<C>(listener.local_addr(), "localhost", client_tls(roots))
    } else {
        builder.connect_tcp::<C>(listener.local_addr())
    }
    .unwrap();
    let remote = within::<C, _>("up", client.up()).await.unwrap();
    let t = call_time::<C>(&remote).await;
    assert_eq!(t, "now");
    let who = within::<C, _>("the server's call", rx).await.unwrap();
    assert_eq!(who, Ok(("the client".to_owned(),)));
    client.close().await;
    stop::<C>(listener, &server).await;
}

/// Runs `test` with a tokio runtime entered on this thread, for a tokio server inside
/// another runtime's test.
fn with_tokio(test: impl FnOnce()) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let _entered = rt.enter();
    test();
}

#[test]
fn tokio_client_against_a_smol_server_over_tcp() {
    Tokio::run(cross::<Tokio, Smol>(false));
}

#[test]
fn tokio_client_against_a_smol_server_over_tls() {
    Tokio::run(cross::<Tokio, Smol>(true));
}

#[test]
fn async_std_client_against_a_tokio_server_over_tcp() {
    with_tokio(|| AsyncStd::run(cross::<AsyncStd, Tokio>(false)));
}

#[test]
fn async_std_client_against_a_tokio_server_over_tls() {
    with_tokio(|| AsyncStd::run(cross::<AsyncStd, Tokio>(true)));
}

#[test]
fn smol_client_against_an_async_std_server_over_tls() {
    Smol::run(cross::<Smol, AsyncStd>(true));
}
