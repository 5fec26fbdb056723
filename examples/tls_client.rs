//! The simple client over TLS, verifying the server's certificate.
//!
//! `cargo run --example tls_client [port] [ca.pem]`: without a file it trusts the
//! certificate `tls_server` generated.

use upnode_examples::{
    call_every_second, default_tls_dir, init_logging, port_arg, tls_client_config,
};
use upnode_tokio::{Client, ClientBuilderExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let ca = std::env::args()
        .nth(2)
        .map(Into::into)
        .unwrap_or_else(|| default_tls_dir().join("cert.pem"));
    let config = tls_client_config(&ca)?;
    let up =
        Client::builder().connect_tls(format!("127.0.0.1:{}", port_arg()), "localhost", config)?;
    call_every_second(up, "time", |t| format!("time = {t}")).await;
    Ok(())
}
