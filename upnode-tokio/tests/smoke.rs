//! End to end over loopback: a Rust client and server.

use std::time::Duration;
use upnode_tokio::Interface;

#[tokio::test]
async fn client_calls_time_on_server_over_loopback() {
    let server = upnode_tokio::server(|_conn| {
        Interface::new().method("time", |call| async move {
            call.reply(&("now",))?;
            Ok(())
        })
    });
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
    let up = upnode_tokio::connect(listener.local_addr().to_string()).unwrap();
    let remote = tokio::time::timeout(Duration::from_secs(5), up.up())
        .await
        .expect("up in time")
        .unwrap();
    let (t,): (String,) = remote.call("time", &()).await.unwrap();
    assert_eq!(t, "now");
    up.close().await;
    server.shutdown().await;
    assert_eq!(server.connections(), 0);
}
