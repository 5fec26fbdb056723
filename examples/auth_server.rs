//! The original's authenticated server: `auth(user, pass, cb)` answers with an object whose
//! `beep` is only reachable after logging in.
//!
//! `cargo run --example auth_server [port]` (default 7000).

use upnode_examples::{init_logging, now_string, port_arg};
use upnode_tokio::upnode_core::Value;
use upnode_tokio::Interface;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let server = upnode_tokio::server(|_conn| {
        Interface::new().method("auth", |call| async move {
            let (user, pass): (String, String) = call.decode()?;
            if user == "moo" && pass == "hax" {
                let beep = call.method(|beep| async move {
                    beep.reply(&(format!("boop at {}", now_string()),))?;
                    Ok(())
                })?;
                call.reply_values(vec![Value::Null, Value::object([("beep", beep)])])?;
            } else {
                call.reply(&("ACCESS DENIED",))?;
            }
            Ok(())
        })
    });
    let _listener = upnode_tokio::listen(&server, &format!("127.0.0.1:{}", port_arg())).await?;
    tokio::signal::ctrl_c().await?;
    server.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(())
}
