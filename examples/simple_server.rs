//! The original's simple server: exports `time`, which answers with the date.
//!
//! `cargo run --example simple_server [port]` (default 7000).

use upnode_examples::{init_logging, port_arg, time_interface};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let server = upnode_tokio::server(time_interface);
    let _listener = upnode_tokio::listen(&server, &format!("127.0.0.1:{}", port_arg())).await?;
    tokio::signal::ctrl_c().await?;
    server.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(())
}
