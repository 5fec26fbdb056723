//! The original's authenticated client: the connect step logs in on every (re)connection and
//! hands the session object to the transactions, which call `beep` every second.
//!
//! `cargo run --example auth_client [port]` (default 7000).

use upnode_examples::{call_every_second, init_logging, port_arg};
use upnode_tokio::{Client, ClientBuilderExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let up = Client::builder()
        .on_connect(|remote| async move {
            let reply = remote.call_raw("auth", &("moo", "hax")).await?;
            if let Some(err) = reply.get::<Option<String>>(0)? {
                eprintln!("{err}");
                return Err(err.into());
            }
            reply
                .remote(1)
                .ok_or_else(|| "auth answered no session".into())
        })
        .connect_tcp(format!("127.0.0.1:{}", port_arg()))?;
    call_every_second(up, "beep", |s| s.to_owned()).await;
    Ok(())
}
