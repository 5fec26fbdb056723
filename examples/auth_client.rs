//! The original's authenticated client: the connect step logs in on every (re)connection and
//! hands the session object to the transactions, which call `beep` every second.
//!
//! `cargo run --example auth_client [port]` (default 7000).

use upnode_examples::{call_every_second, init_logging, port_arg};
use upnode_tokio::{Client, ClientBuilderExt, GiveUp, RpcError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let up = Client::builder()
        .on_connect(|remote| async move {
            // auth(user, pass, cb) answers error-first: cb("ACCESS DENIED") or cb(null, session).
            match remote
                .rpc_remote::<_, String>("auth", &("moo", "hax"))
                .await
            {
                Ok(session) => Ok(session),
                // Wrong credentials do not get better by retrying: close with that cause.
                Err(RpcError::Remote(denied)) => Err(GiveUp::new(denied).into()),
                // Anything else (the link dropped, a timeout): reconnect and try again.
                Err(e) => Err(e.into()),
            }
        })
        .connect_tcp(format!("127.0.0.1:{}", port_arg()))?;
    call_every_second(up, "beep", |s| s.to_owned()).await;
    Ok(())
}
