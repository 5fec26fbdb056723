// This example measures wall time; the library itself never reads a clock.
#![allow(clippy::disallowed_methods)]
//! What one call costs the core alone, with no IO and no runtime: a [`ClientLink`] and a
//! [`ServerConn`] wired to each other in memory, the client calling the server's `time()`
//! with a fresh reply callback per call (as `upnode-async` does), `window` calls in flight.
//! Prints heap allocations per call (counted by a wrapping global allocator: the same on
//! every run of the same binary) and calls per second (noisy). For instruction counts, run
//! it under `valgrind --tool=callgrind`.
//!
//! ```text
//! cargo run --release -p upnode-core --example link_calls [calls] [window]
//! ```

use std::time::Instant;
use upnode_core::config::{ClientConfig, ServerConfig};
use upnode_core::link::{ClientLink, ConnId, LinkEvent, ServerConn};
use upnode_core::{Function, LocalFn, Target, Value};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// The server's `time` method.
const TIME: LocalFn = LocalFn(1);

struct Pair {
    client: ClientLink,
    server: ServerConn,
    conn: ConnId,
    now: Instant,
    answered: u64,
}

impl Pair {
    fn new() -> Pair {
        let now = Instant::now();
        let mut cc = ClientConfig::default();
        cc.ping_interval = None;
        let mut sc = ServerConfig::default();
        sc.ping_interval = None;
        let mut client = ClientLink::new(cc, Value::Null, now).expect("valid config");
        let conn = match client.poll_event() {
            Some(LinkEvent::OpenTransport { conn, .. }) => conn,
            other => panic!("expected OpenTransport, got {other:?}"),
        };
        client.handle_connected(conn, now);
        let server = ServerConn::new(sc, Value::object([("time", Value::from(TIME))]), now);
        let mut p = Pair {
            client,
            server,
            conn,
            now,
            answered: 0,
        };
        p.pump();
        assert!(p.client.up_value().is_some(), "the link is up");
        p
    }

    /// Moves bytes both ways and handles events until nothing is left.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some((_, bytes)) = self.client.poll_transmit() {
                self.server.handle_input(self.now, &bytes);
                moved = true;
            }
            while let Some(ev) = self.server.poll_event() {
                if let LinkEvent::Call { args, .. } = ev {
                    if let Some(Value::Function(Function::Remote(reply))) = args.last() {
                        let answer = vec![Value::Number(1_764_547_200_000.0)];
                        self.server
                            .call(self.now, Target::Callback(*reply), answer, None)
                            .expect("the connection is open");
                        self.server.release(*reply);
                    }
                }
                moved = true;
            }
            while let Some(bytes) = self.server.poll_transmit() {
                self.client.handle_input(self.conn, self.now, &bytes);
                moved = true;
            }
            while let Some(ev) = self.client.poll_event() {
                if let LinkEvent::Call {
                    answers: Some(_), ..
                } = ev
                {
                    self.answered += 1;
                }
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let calls: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let window: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let mut p = Pair::new();
    let time = Target::Method("time".to_owned());
    let start = Instant::now();
    let allocs_before = counting_alloc::allocations();
    let mut sent = 0u64;
    while p.answered < calls {
        while sent < calls && sent - p.answered < window {
            let reply = LocalFn(1_000 + sent);
            p.client
                .call_with_reply(p.conn, p.now, time.clone(), Vec::new(), reply, None)
                .expect("the link is up");
            sent += 1;
        }
        p.pump();
    }
    let elapsed = start.elapsed();
    let allocs = counting_alloc::allocations() - allocs_before;
    let counters = p.client.counters();
    assert_eq!(counters.calls_in_flight, 0);
    println!(
        "{calls} calls, {window} in flight: {:.2} allocations per call; {:.0} calls/s; \
         client holds {} callbacks of its own, {} of the server's",
        allocs as f64 / calls as f64,
        calls as f64 / elapsed.as_secs_f64(),
        counters.local_callbacks,
        counters.remote_callbacks,
    );
}
