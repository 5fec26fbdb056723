//! The test's own loopback proxy (`upnode_tests::proxy`), over plain sockets: what each
//! fault does to the bytes. The scenarios that put it between an upnode client and server
//! (black holes, resets, a FIN mid-line, byte-by-byte delivery, latency, refused
//! connections, 50 server restarts) are in the conformance suite,
//! `tests/conformance/faults.rs`, and run on every runtime.
//!
//! Every wait is bounded by [`DEADLINE`] only so that a broken build fails instead of
//! hanging. Everything binds to 127.0.0.1 on ports the system picks.

use std::io::ErrorKind;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use upnode_tests::proxy::{Admission, Cut, Direction, Fault, Proxy, Stats};
use upnode_tests::{ms, within, DEADLINE};

/// Waits until the proxy's counters satisfy `pred`.
async fn proxy_until(
    proxy: &Proxy,
    what: &str,
    pred: impl FnMut(&Stats) -> bool + Send + 'static,
) -> Stats {
    let wait = proxy.wait_until(pred);
    match tokio::time::timeout(DEADLINE, wait).await {
        Ok(s) => s,
        Err(_) => panic!(
            "timed out after {DEADLINE:?} waiting for {what}; proxy: {:?}",
            proxy.stats()
        ),
    }
}

/// A listener on a free port, and a proxy to it.
async fn target_and_proxy() -> (TcpListener, Proxy) {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = Proxy::start(target.local_addr().unwrap()).expect("a proxy");
    (target, proxy)
}

/// A connection through `proxy`, and the target's end of it.
async fn connect(target: &TcpListener, proxy: &Proxy) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(proxy.addr()).await.unwrap();
    let (server, _) = within("the proxied connection", target.accept())
        .await
        .unwrap();
    (client, server)
}

async fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    within("bytes", s.read_exact(&mut buf)).await.unwrap();
    buf
}

async fn read_end(s: &mut TcpStream) -> std::io::Result<usize> {
    let mut buf = [0u8; 64];
    within("the end of the stream", s.read(&mut buf)).await
}

/// Connects to `addr` and reads until the end: the connect's error (a reset may come
/// before the connect is seen to complete), or the read's outcome.
async fn connect_and_read_end(addr: SocketAddr) -> std::io::Result<usize> {
    let mut c = TcpStream::connect(addr).await?;
    read_end(&mut c).await
}

#[tokio::test]
async fn passes_both_ways_and_counts_bytes_and_connections() {
    let (target, proxy) = target_and_proxy().await;
    let (mut client, mut server) = connect(&target, &proxy).await;
    client.write_all(b"hello").await.unwrap();
    assert_eq!(read_exact(&mut server, 5).await, b"hello");
    server.write_all(b"hi back").await.unwrap();
    assert_eq!(read_exact(&mut client, 7).await, b"hi back");
    // The counters move just after each write: wait for them, then check them all.
    let s = proxy_until(&proxy, "the counters", |s| {
        s.client_to_server.forwarded == 5 && s.server_to_client.forwarded == 7
    })
    .await;
    assert_eq!((s.accepted, s.live, s.refused, s.cuts), (1, 1, 0, 0));
    assert_eq!(s.client_to_server.read, 5);
    assert_eq!(s.server_to_client.read, 7);
    // An orderly end passes through, and the connection is gone.
    drop(client);
    assert_eq!(read_end(&mut server).await.unwrap(), 0);
    drop(server);
    proxy_until(&proxy, "the connection to end", |s| s.live == 0).await;
}

async fn cut_at_40(how: Cut) -> (std::io::Result<usize>, std::io::Result<usize>) {
    let (target, proxy) = target_and_proxy().await;
    proxy.set_new(Direction::ClientToServer, Fault::CutAt { offset: 40, how });
    let (mut client, mut server) = connect(&target, &proxy).await;
    client.write_all(&[b'a'; 40]).await.unwrap();
    assert_eq!(read_exact(&mut server, 40).await, [b'a'; 40]);
    // The 41st byte is never delivered: the connection is cut instead.
    client.write_all(&[b'b'; 60]).await.unwrap();
    let at_server = read_end(&mut server).await;
    let at_client = read_end(&mut client).await;
    // After a FIN the proxy reads until the peers close: close them.
    drop((client, server));
    let s = proxy_until(&proxy, "the cut", |s| s.cuts == 1 && s.live == 0).await;
    assert_eq!(s.client_to_server.forwarded, 40);
    (at_server, at_client)
}

#[tokio::test]
async fn a_fin_cut_delivers_exactly_the_offset_then_the_end_of_stream_to_both() {
    let (at_server, at_client) = cut_at_40(Cut::Fin).await;
    assert_eq!(at_server.unwrap(), 0);
    assert_eq!(at_client.unwrap(), 0);
}

#[tokio::test]
async fn a_reset_cut_delivers_exactly_the_offset_then_resets_both() {
    let (at_server, at_client) = cut_at_40(Cut::Rst).await;
    assert_eq!(at_server.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert_eq!(at_client.unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn a_black_hole_reads_and_drops_then_passing_again_forwards_new_bytes() {
    let (target, proxy) = target_and_proxy().await;
    let (mut client, mut server) = connect(&target, &proxy).await;
    proxy.set(Direction::ClientToServer, Fault::BlackHole);
    client.write_all(b"lost").await.unwrap();
    let s = proxy_until(&proxy, "the bytes read", |s| s.client_to_server.read == 4).await;
    assert_eq!(s.client_to_server.forwarded, 0);
    // Nothing was written to the target: nothing is there to read.
    let mut buf = [0u8; 8];
    assert_eq!(
        server.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // Its end of stream is held back too, until the hole heals.
    client.shutdown().await.unwrap();
    proxy.set(Direction::ClientToServer, Fault::Pass);
    assert_eq!(read_end(&mut server).await.unwrap(), 0);
    assert_eq!(proxy.stats().client_to_server.forwarded, 0);
}

#[tokio::test]
async fn stopped_reading_fills_the_senders_buffers_and_resuming_delivers_every_byte() {
    let (target, proxy) = target_and_proxy().await;
    proxy.set_new(Direction::ClientToServer, Fault::StopReading);
    let (client, mut server) = connect(&target, &proxy).await;
    // Write until the kernel refuses more: the proxy reads nothing.
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0usize;
    loop {
        within("writable", client.writable()).await.unwrap();
        match client.try_write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    assert_eq!(proxy.stats().client_to_server.read, 0);
    proxy.set(Direction::ClientToServer, Fault::Pass);
    let got = read_exact(&mut server, sent).await;
    assert!(got.iter().all(|b| *b == 7));
    eprintln!("{sent} bytes held in kernel buffers while the proxy did not read");
}

#[tokio::test]
async fn a_delay_holds_every_chunk_for_that_long() {
    const DELAY: std::time::Duration = ms(100);
    let (target, proxy) = target_and_proxy().await;
    proxy.set_new(Direction::ServerToClient, Fault::Delay(DELAY));
    let (mut client, mut server) = connect(&target, &proxy).await;
    for round in 0..3u8 {
        let sent_at = Instant::now();
        server.write_all(&[round; 10]).await.unwrap();
        assert_eq!(read_exact(&mut client, 10).await, [round; 10]);
        let took = sent_at.elapsed();
        assert!(took >= DELAY, "round {round} took {took:?}");
        // The other way is not delayed (no bound asserted on a busy machine).
        client.write_all(&[round]).await.unwrap();
        assert_eq!(read_exact(&mut server, 1).await, [round]);
    }
}

#[tokio::test]
async fn refused_connections_are_closed_or_reset_and_accepted_again_after() {
    let (target, proxy) = target_and_proxy().await;
    proxy.admit(Admission::Close);
    assert_eq!(connect_and_read_end(proxy.addr()).await.unwrap(), 0);
    proxy.admit(Admission::Reset);
    assert_eq!(
        connect_and_read_end(proxy.addr()).await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    proxy.admit(Admission::Accept);
    let (mut client, mut server) = connect(&target, &proxy).await;
    client.write_all(b"x").await.unwrap();
    assert_eq!(read_exact(&mut server, 1).await, b"x");
    let s = proxy.stats();
    assert_eq!((s.accepted, s.refused, s.live), (3, 2, 1));
}

#[tokio::test]
async fn an_unreachable_target_resets_the_connector() {
    // A socket bound but not listening: connecting to it is refused, and the port stays
    // ours (no other test can take it meanwhile).
    let bound = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    bound
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let gone = bound.local_addr().unwrap().as_socket().unwrap();
    let proxy = Proxy::start(gone).expect("a proxy");
    assert_eq!(
        connect_and_read_end(proxy.addr()).await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    assert_eq!(proxy.stats().target_failures, 1);
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections_and_its_port() {
    let (target, proxy) = target_and_proxy().await;
    let addr = proxy.addr();
    let (mut client, mut server) = connect(&target, &proxy).await;
    let started = Instant::now();
    drop(proxy);
    assert!(started.elapsed() < DEADLINE);
    assert_eq!(read_end(&mut client).await.unwrap(), 0);
    assert_eq!(read_end(&mut server).await.unwrap(), 0);
    assert_eq!(
        TcpStream::connect(addr).await.unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
}
