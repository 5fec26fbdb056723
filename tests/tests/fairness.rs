//! A connection's driver shares its thread with the application.
//!
//! - On a runtime without a task budget (smol, async-std), a driver whose transport always
//!   has more to read must still let the other tasks run: otherwise it reads and parses
//!   everything the peer sent before the task that consumes the answers runs at all, and
//!   holds it all in memory.
//! - The other way round, a task making a burst of calls without yielding keeps the driver
//!   from running: each 64 KiB of output is written by the call that fills it, so the burst
//!   leaves while it is made instead of being held whole until the task yields.
//! - A lone call (asking for an answer, one at a time, the others answered) is written by
//!   the call itself, before the driver's next turn; calls made many at a time, and calls
//!   that ask for no answer, still wait for that turn and leave together.

use futures::stream::{FuturesUnordered, StreamExt};
use upnode_smol::{Client, ClientBuilderExt, Interface, Server};

/// Calls made at once.
const CALLS: usize = 20_000;
/// The most answers the client may have parsed ahead of the task consuming them: the driver
/// runs at most 8 turns before yielding, each taking at most 256 events (or 16 KiB of
/// input, under 300 of these answers); twice that, for the turns of the server sharing the
/// thread and the slot answered last.
const MAX_AHEAD: usize = 2 * 8 * 300;

#[test]
fn on_one_thread_the_client_driver_yields_to_the_task_consuming_its_answers() {
    // The test's task, the client's driver and the server's connection all run on smol's
    // global executor, on its one thread (unless `SMOL_THREADS` gives it more).
    if std::env::var("SMOL_THREADS").is_ok_and(|n| n.trim() != "1") {
        eprintln!("skipped: SMOL_THREADS gives smol's executor several threads");
        return;
    }
    let run = smol::spawn(async {
        let server = upnode_smol::build_server(Server::builder().ping(None), |_conn| {
            Interface::new().method("echo", |call| async move {
                let (n,): (u64,) = call.decode()?;
                call.reply(&(n,))?;
                Ok(())
            })
        });
        let listener = upnode_smol::listen(&server, "127.0.0.1:0")
            .await
            .expect("listening");
        let client = Client::builder()
            .ping(None)
            .connect_tcp(listener.local_addr())
            .expect("a valid address");
        let remote = client.up().await.expect("up");
        let mut pending: FuturesUnordered<_> = (0..CALLS as u64)
            .map(|n| remote.call::<_, (u64,)>("echo", &(n,)))
            .collect();
        let (mut consumed, mut most_ahead) = (0, 0);
        while let Some(answer) = pending.next().await {
            answer.expect("answered");
            consumed += 1;
            // Answered by the link (parsed), not yet taken by this task.
            let answered = CALLS - client.counters().link.calls_in_flight;
            most_ahead = most_ahead.max(answered - consumed);
        }
        client.close().await;
        listener.stop().await;
        server.shutdown_now().await;
        most_ahead
    });
    let most_ahead = smol::block_on(run);
    eprintln!("at most {most_ahead} answers parsed ahead of the consuming task");
    assert!(
        most_ahead <= MAX_AHEAD,
        "the client parsed {most_ahead} answers ahead of the task consuming them"
    );
}

#[test]
fn a_burst_made_without_yielding_leaves_while_it_is_made() {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    let (addr, sink, reader) = counting_server();
    let received = &sink.bytes;
    const CALLS: u64 = 5_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (before, after) = rt.block_on(async {
        // (The tokio adapter's client: a task of this thread.)
        let client = upnode_tokio::ClientBuilderExt::connect_tcp(
            upnode_tokio::Client::builder().ping(None),
            &addr,
        )
        .expect("a valid address");
        let remote = client.up().await.expect("up");
        let before = received.load(Ordering::Relaxed);
        // The calls, then a wait on this thread: the driver (a task of this thread) cannot
        // run until this task yields, so whatever the server receives meanwhile was written
        // by the calls themselves.
        let calls: Vec<_> = (0..CALLS)
            .map(|n| remote.call::<_, (u64,)>("echo", &(n,)))
            .collect();
        let want = before + 256 * 1024;
        let give_up = Instant::now() + Duration::from_secs(20);
        while received.load(Ordering::Relaxed) < want && Instant::now() < give_up {
            std::thread::yield_now();
        }
        let after = received.load(Ordering::Relaxed);
        drop(calls);
        client.close().await;
        (before, after)
    });
    reader.join().expect("the reader thread");
    assert!(
        after - before >= 256 * 1024,
        "only {} bytes of {CALLS} calls reached the server before the calling task yielded",
        after - before
    );
}

/// What [`counting_server`] has received: bytes, and whole lines.
#[derive(Default)]
struct Received {
    bytes: std::sync::atomic::AtomicUsize,
    lines: std::sync::atomic::AtomicUsize,
}

/// A dnode server of a few lines on a thread of its own: it announces `echo`, then counts
/// what it receives (never answering).
fn counting_server() -> (
    String,
    std::sync::Arc<Received>,
    std::thread::JoinHandle<()>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let received = std::sync::Arc::new(Received::default());
    let reader = {
        let received = received.clone();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.write_all(
                b"{\"method\":\"methods\",\"arguments\":[{\"echo\":\"[Function]\"}],\
\"callbacks\":{\"0\":[\"0\",\"echo\"]},\"links\":[]}\n",
            )
            .expect("write methods");
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let lines = buf[..n].iter().filter(|b| **b == b'\n').count();
                received.bytes.fetch_add(n, Ordering::Relaxed);
                received.lines.fetch_add(lines, Ordering::Relaxed);
            }
        })
    };
    (addr, received, reader)
}

/// Waits, spinning on this thread (so no task of it runs), until `lines` is `want` past
/// `from` or `wait` has passed; returns how many past `from` it is.
fn lines_after(
    lines: &std::sync::atomic::AtomicUsize,
    from: usize,
    want: usize,
    wait: std::time::Duration,
) -> usize {
    let give_up = std::time::Instant::now() + wait;
    while lines.load(std::sync::atomic::Ordering::Relaxed) < from + want
        && std::time::Instant::now() < give_up
    {
        std::thread::yield_now();
    }
    lines.load(std::sync::atomic::Ordering::Relaxed) - from
}

#[test]
fn a_lone_call_leaves_before_the_calling_task_yields_and_other_calls_wait_for_the_driver() {
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    // Long enough for a line written now to arrive on a loaded machine.
    const ARRIVES: Duration = Duration::from_secs(20);
    // How long a line that must not be written yet is waited for.
    const HELD: Duration = Duration::from_millis(200);

    let (addr, sink, reader) = counting_server();
    let lines = &sink.lines;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let seen = rt.block_on(async {
        let client = upnode_tokio::ClientBuilderExt::connect_tcp(
            upnode_tokio::Client::builder().ping(None),
            &addr,
        )
        .expect("a valid address");
        let remote = client.up().await.expect("up");
        // Let the driver finish its turns after coming up.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // The driver is a task of this thread: until this task yields, what the server
        // receives was written by the calls themselves.
        let mut seen = Vec::new();
        // The one line the client wrote on coming up (its `methods`) is counted first:
        // the reader is a thread of its own, and on a loaded machine it may count that line
        // only after the lone call's below, as if the call had written two.
        assert_eq!(
            lines_after(lines, 0, 1, ARRIVES),
            1,
            "the client's methods line"
        );
        let at = lines.load(Ordering::Relaxed);
        // 1. A lone call leaves at once.
        let first = remote.call::<_, (u64,)>("echo", &(1,));
        seen.push(lines_after(lines, at, 1, ARRIVES));
        // 2. After the driver's turn, calls that ask for no answer (as a handler's answer)
        //    wait for its next one, one write for all of them.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let at = lines.load(Ordering::Relaxed);
        for n in 0..2 {
            remote
                .invoke("echo", vec![upnode_tokio::Value::from(n)])
                .expect("sent");
        }
        seen.push(lines_after(lines, at, 1, HELD));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        seen.push(lines_after(lines, at, 2, ARRIVES));
        // 3. After the driver's turn, a call made while another waits for its answer is not
        //    lone: calls made many at a time leave together.
        let at = lines.load(Ordering::Relaxed);
        let second = remote.call::<_, (u64,)>("echo", &(2,));
        seen.push(lines_after(lines, at, 1, HELD));
        drop((first, second));
        client.close().await;
        seen
    });
    reader.join().expect("the reader thread");
    assert_eq!(
        seen,
        [1, 0, 2, 0],
        "lines received: the lone call's at once, those asking for no answer after a yield, \
         none of a call made while another waits"
    );
}
