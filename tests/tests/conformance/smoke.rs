//! End to end over loopback: a Rust client and server.

use crate::common::timeout;
use crate::rt::{Connect, Rt};
use upnode_async::Client;

use std::time::Duration;
use upnode_async::Interface;

pub async fn client_calls_time_on_server_over_loopback<R: Rt>() {
    let server = R::server(|_conn| {
        Interface::new().method("time", |call| async move {
            call.reply(&("now",))?;
            Ok(())
        })
    });
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let up = Client::builder()
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let remote = timeout::<R, _>(Duration::from_secs(5), up.up())
        .await
        .expect("up in time")
        .unwrap();
    let (t,): (String,) = remote.call("time", &()).await.unwrap();
    assert_eq!(t, "now");
    up.close().await;
    server.shutdown_now().await;
    assert_eq!(server.connections(), 0);
}
