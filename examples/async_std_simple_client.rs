//! The simple client on async-std (discontinued upstream; see `upnode-async-std`): every
//! second, a transaction asks the server for the time (`time = …`).
//!
//! `cargo run --example async_std_simple_client [port]` (default 7000); stop it with Ctrl-C.

use std::time::Duration;
use upnode_examples::{call_every_second_on, init_logging, port_arg};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    async_std::task::block_on(async {
        let up = upnode_async_std::connect(format!("127.0.0.1:{}", port_arg()))?;
        let spawn = |task| drop(async_std::task::spawn(task));
        let tick = || async_std::task::sleep(Duration::from_secs(1));
        call_every_second_on(up, "time", |t| format!("time = {t}"), spawn, tick).await;
        Ok(())
    })
}
