//! The simple server over TLS (rustls).
//!
//! `cargo run --example tls_server [port] [cert.pem key.pem]`: without files, a self-signed
//! certificate for `localhost` is generated at start and written where `tls_client` looks
//! for it (printed on stderr).

use upnode_examples::{
    default_tls_dir, generate_cert, init_logging, now_string, port_arg, tls_server_config,
};
use upnode_tokio::Interface;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let args: Vec<String> = std::env::args().collect();
    let (cert, key) = match (args.get(2), args.get(3)) {
        (Some(c), Some(k)) => (c.into(), k.into()),
        _ => {
            let (c, k) = generate_cert(&default_tls_dir())?;
            eprintln!("generated a self-signed certificate: {}", c.display());
            (c, k)
        }
    };
    let config = tls_server_config(&cert, &key)?;
    let server = upnode_tokio::server(|_conn| {
        Interface::new().method("time", |call| async move {
            call.reply(&(now_string(),))?;
            Ok(())
        })
    });
    let addr = format!("127.0.0.1:{}", port_arg());
    let _listener = upnode_tokio::listen_tls(&server, &addr, config).await?;
    tokio::signal::ctrl_c().await?;
    server.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(())
}
