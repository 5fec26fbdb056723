//! Peers that stop reading: bounded output, closing that never waits on them.

use crate::common::{fast_client, ms, stop, within, Events};
use crate::rt::Connect;
use crate::rt::Rt;
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use upnode_async::upnode_core::link::LinkError;
use upnode_async::{CallError, Interface, Server, ServerBuilder, ServerEvent};

/// Answers `big(cb)` with 64 KiB.
fn big_answer_server<R: Rt>(builder: ServerBuilder) -> Server {
    R::build_server(builder, |_conn| {
        Interface::new().method("big", |call| async move {
            call.reply(&("x".repeat(64 * 1024),))?;
            Ok(())
        })
    })
}

/// A raw dnode peer that sends its `methods` and `calls` calls of `big`, then never reads.
/// Its receive buffer is small (4 KiB), so the kernel holds little of what the server sends
/// it and the rest waits in the server, whatever the machine's TCP autotuning.
fn stalled_reader(port: u16, calls: usize) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    socket.connect(&addr.into()).expect("connect");
    let mut s: TcpStream = socket.into();
    let mut out =
        String::from(r#"{"method":"methods","arguments":[{}],"callbacks":{},"links":[]}"#);
    out.push('\n');
    for i in 0..calls {
        out.push_str(&format!(
            r#"{{"method":"big","arguments":["[Function]"],"callbacks":{{"{i}":["0"]}},"links":[]}}"#
        ));
        out.push('\n');
    }
    s.write_all(out.as_bytes()).expect("write");
    s
}

fn small_output(max_unsent: usize, stall: Duration, flush: Duration) -> ServerBuilder {
    Server::builder().ping(None).config(|c| {
        c.output.max_unsent = max_unsent;
        c.output.stall_timeout = stall;
        c.output.close_flush_timeout = flush;
    })
}

pub async fn a_client_that_stops_reading_is_held_to_the_output_cap_then_cut_off<R: Rt>() {
    let server = big_answer_server::<R>(small_output(256 * 1024, ms(300), ms(100)));
    let mut events = Events::<R, _>::new(server.events());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    // 400 answers of 64 KiB (25 MiB) cannot fit in the kernel's buffers and our cap.
    let peer = stalled_reader(listener.port().unwrap(), 400);
    let ev = events
        .wait_for("the stalled connection to end", |e| {
            matches!(e, ServerEvent::Disconnected(..))
        })
        .await;
    let ServerEvent::Disconnected(_, LinkError::OutputStalled { unsent, after }) = &ev else {
        panic!("ended for another reason: {ev:?}")
    };
    // Reading stops at the cap: past it, at most what the calls of one read (16 KiB of
    // ~90-byte calls) answer, not the 25 MiB asked for.
    let one_read = (16 * 1024 / 80 + 1) * (64 * 1024 + 100);
    assert!(*unsent <= 256 * 1024 + one_read, "{unsent} unsent");
    assert!(*after >= ms(300));
    assert_eq!(server.connections(), 0, "the slot is free");
    assert!(server.counters().is_empty());
    drop(peer);
    listener.stop().await;
    within::<R, _>("shutdown", server.shutdown_now()).await;
}

pub async fn shutdown_returns_within_the_flush_bound_with_a_hundred_stalled_peers<R: Rt>() {
    // No stall timeout to help: only the bounded flush of a closing connection.
    // Nor a budget: every connection keeps its output.
    let server = big_answer_server::<R>(
        small_output(256 * 1024, Duration::from_secs(3600), ms(200)).memory_budget(usize::MAX),
    );
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let port = listener.port().unwrap();
    // 100 answers of 64 KiB each (6.4 MB): more than the kernel's send buffer (at most
    // 4 MiB with Linux's default tcp_wmem) and a 4 KiB receive window take, so every
    // connection reaches its 256 KiB cap and stays there.
    let peers: Vec<TcpStream> = (0..100).map(|_| stalled_reader(port, 100)).collect();
    let waiting = async {
        loop {
            let c = server.counters();
            if c.len() == 100 && c.iter().all(|(_, n)| n.link.unsent_bytes >= 256 * 1024) {
                return;
            }
            R::sleep(ms(5)).await;
        }
    };
    within::<R, _>("every connection at its cap", waiting).await;
    listener.stop().await;
    let began = std::time::Instant::now();
    within::<R, _>("shutdown with stalled peers", server.shutdown_now()).await;
    let took = began.elapsed();
    eprintln!("shutdown with 100 stalled peers took {took:?}");
    assert_eq!(server.connections(), 0);
    // Each closing connection flushes for at most 200 ms, all at once.
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    drop(peers);
}

pub async fn past_the_memory_budget_the_connections_holding_the_most_are_ended<R: Rt>() {
    // A 1 MiB budget, four peers each sending 400 KiB of a line that never ends: whatever
    // the order the bytes arrive in, two connections must go, and the two left hold 800 KiB.
    let server = R::build_server(
        Server::builder().ping(None).memory_budget(1024 * 1024),
        |_conn| Interface::new(),
    );
    let mut events = Events::<R, _>::new(server.events());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let port = listener.port().unwrap();
    let partial = vec![b'x'; 400 * 1024];
    let mut peers = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(&partial).expect("write");
        peers.push(s);
    }
    for _ in 0..2 {
        let ev = events
            .wait_for("a connection ended for the budget", |e| {
                matches!(e, ServerEvent::Disconnected(..))
            })
            .await;
        assert!(
            matches!(
                ev,
                ServerEvent::Disconnected(
                    _,
                    LinkError::OverBudget {
                        budget: 1_048_576,
                        ..
                    }
                )
            ),
            "{ev:?}"
        );
    }
    // The two left hold the rest, within the budget.
    let settled = async {
        loop {
            if server.counters().len() == 2 {
                return;
            }
            R::sleep(ms(5)).await;
        }
    };
    within::<R, _>("two connections left", settled).await;
    assert_eq!(server.connections(), 2);
    drop(peers);
    listener.stop().await;
    within::<R, _>("shutdown", server.shutdown_now()).await;
}

/// A server whose `work(id, cb)` counts each run of `id` and answers it, except the first
/// run of `drop_id`: that one it runs, then ends the connection before answering (the
/// worst moment for a client: the work was done, the answer is lost).
fn forgetful_server<R: Rt>(runs: Arc<Mutex<HashMap<u64, usize>>>, drop_id: u64) -> Server {
    let dropped = Arc::new(AtomicBool::new(false));
    R::build_server(Server::builder().ping(None), move |conn| {
        let (runs, dropped) = (runs.clone(), dropped.clone());
        Interface::new().method("work", move |call| {
            let (runs, dropped, conn) = (runs.clone(), dropped.clone(), conn.clone());
            async move {
                let (id,): (u64,) = call.decode()?;
                *runs.lock().unwrap().entry(id).or_default() += 1;
                if id == drop_id && !dropped.swap(true, Ordering::SeqCst) {
                    conn.close();
                    return Ok(());
                }
                call.reply(&(id,))?;
                Ok(())
            }
        })
    })
}

pub async fn at_least_once_transactions_run_again_after_a_drop_and_at_most_once_ones_do_not<
    R: Rt,
>() {
    for at_least_once in [false, true] {
        let runs = Arc::new(Mutex::new(HashMap::new()));
        let server = forgetful_server::<R>(runs.clone(), 3);
        let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
        let client = fast_client()
            .connect_tcp::<R>(listener.local_addr())
            .unwrap();
        let mut failed = 0;
        for id in 0..6u64 {
            let r = if at_least_once {
                within::<R, _>(
                    "an at-least-once transaction",
                    client.at_least_once(None, |remote| async move {
                        remote.call::<_, (u64,)>("work", &(id,)).await
                    }),
                )
                .await
                .unwrap()
            } else {
                let remote = within::<R, _>("up", client.up()).await.unwrap();
                within::<R, _>("a call", remote.call::<_, (u64,)>("work", &(id,))).await
            };
            match r {
                Ok((n,)) => assert_eq!(n, id),
                Err(CallError::LinkDown) => failed += 1,
                Err(e) => panic!("call {id}: {e}"),
            }
        }
        let runs = runs.lock().unwrap().clone();
        let lost = (0..6u64).filter(|id| !runs.contains_key(id)).count();
        let duplicates: usize = runs.values().map(|n| n - 1).sum();
        assert_eq!(lost, 0, "every transaction ran on the server");
        if at_least_once {
            // Work 3 ran, its answer was lost with the link, and it ran again.
            assert_eq!((failed, duplicates), (0, 1), "{runs:?}");
        } else {
            // Work 3 ran once; the client was told the link went down.
            assert_eq!((failed, duplicates), (1, 0), "{runs:?}");
        }
        client.close().await;
        stop::<R>(listener, &server).await;
    }
}
