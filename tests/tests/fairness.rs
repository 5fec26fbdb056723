//! A connection's driver shares its thread with the application. On a runtime without a
//! task budget (smol, async-std), a driver whose transport always has more to read must
//! still let the other tasks run: otherwise it reads and parses everything the peer sent
//! before the task that consumes the answers runs at all, and holds it all in memory.

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
    // global executor, on its one thread (this binary has this test only).
    std::env::set_var("SMOL_THREADS", "1");
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
