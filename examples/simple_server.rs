//! The original's simple server: exports `time`, which answers with the date.
//!
//! `cargo run --example simple_server [port]` (default 7000).

use upnode_examples::{init_logging, now_string, port_arg};
use upnode_tokio::Interface;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let server = upnode_tokio::server(|_conn| {
        Interface::new().method("time", |call| async move {
            call.reply(&(now_string(),))?;
            Ok(())
        })
    });
    let _listener = upnode_tokio::listen(&server, &format!("127.0.0.1:{}", port_arg())).await?;
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
