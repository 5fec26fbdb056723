//! The original's simple client: every second, a transaction asks the server for the time.
//! Start it before the server, or kill and restart the server while it runs: the requests
//! made meanwhile are queued and all come through when the link is back.
//!
//! `cargo run --example simple_client [port]` (default 7000).

use std::time::Duration;
use upnode_examples::{init_logging, port_arg};

#[tokio::main]
async fn main() {
    init_logging();
    let up = upnode_tokio::connect(format!("127.0.0.1:{}", port_arg()));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let up = up.clone();
        tokio::spawn(async move {
            let Ok(remote) = up.up().await else { return };
            match remote.call::<_, (String,)>("time", &()).await {
                Ok((t,)) => println!("time = {t}"),
                Err(e) => eprintln!("time failed: {e}"),
            }
        });
    }
    up.close().await;
}
