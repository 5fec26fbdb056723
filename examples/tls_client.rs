//! The simple client over TLS, verifying the server's certificate.
//!
//! `cargo run --example tls_client [port] [ca.pem]`: without a file it trusts the
//! certificate `tls_server` generated.

use std::time::Duration;
use upnode_examples::{default_tls_dir, init_logging, port_arg, tls_client_config};
use upnode_tokio::{Client, ClientBuilderExt};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    init_logging();
    let ca = std::env::args()
        .nth(2)
        .map(Into::into)
        .unwrap_or_else(|| default_tls_dir().join("cert.pem"));
    let config = tls_client_config(&ca)?;
    let up =
        Client::builder().connect_tls(format!("127.0.0.1:{}", port_arg()), "localhost", config);
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
    Ok(())
}
