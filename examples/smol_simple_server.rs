//! The simple server on smol: exports `time`, which answers with the date.
//!
//! `cargo run --example smol_simple_server [port]` (default 7000); stop it with Ctrl-C.

use upnode_examples::{init_logging, port_arg, time_interface};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    smol::block_on(async {
        let server = upnode_smol::server(time_interface);
        let _listener = upnode_smol::listen(&server, &format!("127.0.0.1:{}", port_arg())).await?;
        futures::future::pending().await
    })
}
