//! Typed, error-first calls both ways: `Interface::rpc` answers `cb(null, result)` or `cb(err)`
//! as Node code expects; `Remote::rpc` tells the server's error from a link failure.
//! `cargo run --example typed_rpc` (exits by itself).
use std::time::Duration;
use upnode_tokio::{Interface, RpcError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = upnode_tokio::server(|_conn| {
        Interface::new().rpc("div", |(a, b): (f64, f64)| async move {
            if b == 0.0 {
                return Err("division by zero".to_owned());
            }
            Ok(a / b)
        })
    });
    let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await?;
    let client = upnode_tokio::connect(listener.local_addr())?;
    let remote = client.up().await?;
    let q: f64 = remote.rpc::<_, _, String>("div", &(1, 4)).await?;
    println!("1 / 4 = {q}");
    match remote.rpc::<_, f64, String>("div", &(1, 0)).await {
        Err(RpcError::Remote(e)) => println!("1 / 0: the server says {e:?}"),
        other => println!("1 / 0: {other:?}"),
    }
    client.close().await;
    server.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
