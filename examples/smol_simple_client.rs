//! The simple client on smol: every second, a transaction asks the server for the time
//! (`time = …`). Requests made while the server is away are queued and come through when
//! the link is back.
//!
//! `cargo run --example smol_simple_client [port]` (default 7000); stop it with Ctrl-C.

use std::time::Duration;
use upnode_examples::{call_every_second_on, init_logging, port_arg};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    smol::block_on(async {
        let up = upnode_smol::connect(format!("127.0.0.1:{}", port_arg()))?;
        let spawn = |task| smol::spawn(task).detach();
        let tick = || async {
            smol::Timer::after(Duration::from_secs(1)).await;
        };
        call_every_second_on(up, "time", |t| format!("time = {t}"), spawn, tick).await;
        Ok(())
    })
}
