//! The whole story of upnode in one process, in about 13 seconds: the client starts first
//! and queues its requests; the server comes up 3 s later and the queued requests are
//! answered at once; the server is killed and restarted, and the requests made while it was
//! down come through as soon as it is back. Then it exits.
//!
//! `cargo run --example demo`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use upnode_examples::now_string;
use upnode_tokio::upnode_core::link::LinkError;
use upnode_tokio::{ClientEvent, Interface, Server};

const SERVER_UP_AT: f64 = 3.0;
const SERVER_KILLED_AT: f64 = 7.5;
const SERVER_BACK_AT: f64 = 9.5;
const LAST_REQUEST_AT: f64 = 12.0;

fn stamp(start: Instant) -> String {
    format!("[{:4.1}s]", start.elapsed().as_secs_f64())
}

async fn until(start: Instant, at: f64) {
    tokio::time::sleep_until((start + Duration::from_secs_f64(at)).into()).await;
}

fn time_server() -> Server {
    upnode_tokio::server(|_conn| {
        Interface::new().method("time", |call| async move {
            call.reply(&(now_string(),))?;
            Ok(())
        })
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Warnings and errors go to stderr (RUST_LOG=debug shows every connect); stdout is the
    // demo's own timeline.
    upnode_examples::init_logging_at("warn");
    let start = Instant::now();
    // Find a free port for the server that is not running yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    println!(
        "upnode demo: the client starts first; the server starts at {SERVER_UP_AT}s, is killed at {SERVER_KILLED_AT}s and is back at {SERVER_BACK_AT}s"
    );
    println!(
        "{} client: connecting to {addr} (nothing listens there yet)",
        stamp(start)
    );

    let up = upnode_tokio::connect(addr.clone())?;
    let mut events = up.events();
    // Prints the link's events until the client is closed (its event stream then ends).
    let watcher = tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(ev) = events.next().await {
            match ev {
                ClientEvent::Up => println!("{} link up", stamp(start)),
                ClientEvent::Down(LinkError::Local(_)) => {
                    println!("{} link closed by the client", stamp(start))
                }
                ClientEvent::Down(reason) => println!("{} link down: {reason}", stamp(start)),
                ClientEvent::Reconnect { attempt, delay } => println!(
                    "{} reconnecting (attempt {attempt}) in {:.1}s",
                    stamp(start),
                    delay.as_secs_f64()
                ),
                _ => {}
            }
        }
    });

    // One request a second, each a transaction that waits for the link. Transactions run in
    // the order they were made, so the calls leave in that order; a printer shows the
    // answers in request order as they arrive.
    let asked = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let (to_printer, mut answers) = futures::channel::mpsc::unbounded();
    let requests = {
        let up = up.clone();
        let asked = asked.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while start.elapsed().as_secs_f64() <= LAST_REQUEST_AT {
                tick.tick().await;
                let n = asked.fetch_add(1, Ordering::SeqCst) + 1;
                let at = start.elapsed().as_secs_f64();
                let (reply_tx, reply_rx) = futures::channel::oneshot::channel();
                let _ = up.transaction(None, move |remote| {
                    if let Some(remote) = remote {
                        let _ = reply_tx.send(remote.call::<_, (String,)>("time", &()));
                    }
                });
                let _ = to_printer.unbounded_send((n, at, reply_rx));
            }
        })
    };
    let printer = {
        let answered = answered.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            while let Some((n, at, reply)) = answers.next().await {
                let Ok(call) = reply.await else {
                    println!("{} request #{n:<2} never ran (client closed)", stamp(start));
                    continue;
                };
                match call.await {
                    Ok((t,)) => {
                        answered.fetch_add(1, Ordering::SeqCst);
                        println!(
                            "{} request #{n:<2} (asked at {at:4.1}s): time = {t}",
                            stamp(start)
                        );
                    }
                    Err(e) => println!("{} request #{n:<2} failed: {e}", stamp(start)),
                }
            }
        })
    };

    until(start, SERVER_UP_AT).await;
    let server = time_server();
    let listener = upnode_tokio::listen(&server, &addr).await?;
    println!("{} server: listening", stamp(start));

    until(start, SERVER_KILLED_AT).await;
    listener.stop().await;
    server.shutdown_now().await;
    println!("{} server: killed", stamp(start));

    until(start, SERVER_BACK_AT).await;
    let server = time_server();
    let listener = upnode_tokio::listen(&server, &addr).await?;
    println!("{} server: back", stamp(start));

    let _ = requests.await;
    let _ = tokio::time::timeout(Duration::from_secs(3), printer).await;
    up.close().await;
    // The close's event is printed before the summary.
    let _ = tokio::time::timeout(Duration::from_secs(3), watcher).await;
    listener.stop().await;
    server.shutdown_now().await;
    let (a, n) = (
        asked.load(Ordering::SeqCst),
        answered.load(Ordering::SeqCst),
    );
    println!(
        "{} done: {a} requests, {n} answered, {} lost",
        stamp(start),
        a - n
    );
    Ok(())
}
