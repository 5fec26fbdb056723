//! The original's simple client: every second, a transaction asks the server for the time.
//! Start it before the server, or kill and restart the server while it runs: the requests
//! made meanwhile are queued and all come through when the link is back.
//!
//! `cargo run --example simple_client [port]` (default 7000).

use upnode_examples::{call_every_second, init_logging, port_arg};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let up = upnode_tokio::connect(format!("127.0.0.1:{}", port_arg()))?;
    call_every_second(up, "time", |t| format!("time = {t}")).await;
    Ok(())
}
