//! Network faults between a client and a server, injected by the test's own loopback proxy
//! (`upnode_tests::proxy`): a black hole after `up` and its healing, resets before and
//! after the server's `methods`, a FIN in the middle of a line, byte-by-byte delivery both
//! ways, a fixed latency, refused connections, and 50 server restarts under a steady stream
//! of transactions. The proxy runs on a thread of its own, so the scenarios run on every
//! runtime; `tests/fault_proxy.rs` checks the proxy itself over plain sockets.
//!
//! Every wait is on an event, an answer or the proxy's counters, bounded by [`DEADLINE`]
//! only so that a broken build fails instead of hanging; time bounds on the link's own
//! timers are checked on real time (`std::time::Instant`, as the proxy and every runtime
//! use) with a stated allowance for a loaded machine.

use crate::common::{is_down, is_up, ms, spawned, timeout, within, DEADLINE};
use crate::rt::{Connect, Rt};
use futures::channel::mpsc;
use futures::StreamExt;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use upnode_async::upnode_core::config::ReconnectPolicy;
use upnode_async::upnode_core::link::LinkError;
use upnode_async::{
    CallError, Client, ClientBuilder, ClientEvent, Interface, Listener, Remote, Server, UpError,
};
use upnode_tests::proxy::{Admission, Cut, Direction, Fault, Proxy, Stats};

/// What a loaded two-core machine may add to a timer of the link before the test calls it
/// late: scheduling of the client's task, of the proxy's thread and of the test's task.
const SCHEDULING_ALLOWANCE: Duration = Duration::from_millis(300);

/// Waits until the proxy's counters satisfy `pred`.
async fn proxy_until<R: Rt>(
    proxy: &Proxy,
    what: &str,
    pred: impl FnMut(&Stats) -> bool + Send + 'static,
) -> Stats {
    match timeout::<R, _>(DEADLINE, proxy.wait_until(pred)).await {
        Ok(s) => s,
        Err(_) => panic!(
            "timed out after {DEADLINE:?} waiting for {what}; proxy: {:?}",
            proxy.stats()
        ),
    }
}

fn addr_of(l: &Listener) -> SocketAddr {
    l.local_addr()
        .parse()
        .unwrap_or_else(|e| panic!("listener address {:?}: {e}", l.local_addr()))
}

/// How many times the server ran each transaction id, over every server generation.
type Runs = Arc<Mutex<HashMap<u64, u32>>>;

/// A server with `record(id, cb)` (counts the id in `runs`, answers `cb(id)`),
/// `echo(i, cb)` (answers `cb(i, "answer i")`, recording `i` in `arrivals` in arrival
/// order) and `hello(cb)` (counts in `logins`, answers `cb(null)`). No heartbeat of its
/// own, so the only server-to-client traffic is what the client asks for.
fn server<R: Rt>(runs: Runs, arrivals: Arc<Mutex<Vec<u64>>>, logins: Arc<AtomicU64>) -> Server {
    let builder = Server::builder().ping(None);
    R::build_server(builder, move |_conn| {
        let runs = runs.clone();
        let arrivals = arrivals.clone();
        let logins = logins.clone();
        Interface::new()
            .method("record", move |call| {
                let runs = runs.clone();
                async move {
                    let (id,): (u64,) = call.decode()?;
                    *runs.lock().unwrap().entry(id).or_insert(0) += 1;
                    call.reply(&(id,))?;
                    Ok(())
                }
            })
            .method("echo", move |call| {
                let arrivals = arrivals.clone();
                async move {
                    let (i,): (u64,) = call.decode()?;
                    arrivals.lock().unwrap().push(i);
                    call.reply(&(i, format!("answer {i}")))?;
                    Ok(())
                }
            })
            .method("hello", move |call| {
                let logins = logins.clone();
                async move {
                    logins.fetch_add(1, Ordering::SeqCst);
                    call.reply(&((),))?;
                    Ok(())
                }
            })
    })
}

/// A server as [`server`] with fresh counters, listening on a free port.
struct TestServer {
    server: Server,
    listener: Listener,
    runs: Runs,
    arrivals: Arc<Mutex<Vec<u64>>>,
    logins: Arc<AtomicU64>,
}

impl TestServer {
    async fn start<R: Rt>() -> TestServer {
        Self::start_with::<R>(Runs::default()).await
    }

    /// A server counting runs in `runs` (shared across restarts).
    async fn start_with<R: Rt>(runs: Runs) -> TestServer {
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let logins = Arc::new(AtomicU64::new(0));
        let server = server::<R>(runs.clone(), arrivals.clone(), logins.clone());
        let listener = R::listen(&server, "127.0.0.1:0")
            .await
            .expect("listen on 127.0.0.1:0");
        TestServer {
            server,
            listener,
            runs,
            arrivals,
            logins,
        }
    }

    fn addr(&self) -> SocketAddr {
        addr_of(&self.listener)
    }

    fn runs_of(&self, id: u64) -> u32 {
        self.runs.lock().unwrap().get(&id).copied().unwrap_or(0)
    }

    fn total_runs(&self) -> usize {
        self.runs.lock().unwrap().len()
    }

    /// Stops accepting, ends every connection and waits until all have ended.
    async fn stop<R: Rt>(self) {
        crate::common::stop::<R>(self.listener, &self.server).await;
    }
}

/// A client builder with shorter timings than the suite's `fast_client`: 20 ms between
/// attempts, no heartbeat (tests that want one set it).
fn fast_client() -> ClientBuilder {
    Client::builder()
        .reconnect(ReconnectPolicy::fixed(ms(20)))
        .ping(None)
}

/// A client's events, remembering each one with the (real) time it was taken.
struct Events<R> {
    rx: mpsc::Receiver<ClientEvent>,
    seen: Vec<(Instant, ClientEvent)>,
    rt: PhantomData<R>,
}

impl<R: Rt> Events<R> {
    fn new(rx: mpsc::Receiver<ClientEvent>) -> Events<R> {
        Events {
            rx,
            seen: Vec::new(),
            rt: PhantomData,
        }
    }

    /// Takes events until one matches `pred`; returns it and when it was taken.
    async fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&ClientEvent) -> bool,
    ) -> (Instant, ClientEvent) {
        let fut = async {
            while let Some(ev) = self.rx.next().await {
                let at = Instant::now();
                self.seen.push((at, ev.clone()));
                if pred(&ev) {
                    return Some((at, ev));
                }
            }
            None
        };
        match timeout::<R, _>(DEADLINE, fut).await {
            Ok(Some(found)) => found,
            Ok(None) => panic!("events ended before {what}; seen: {:?}", self.kinds()),
            Err(_) => panic!("no {what} within {DEADLINE:?}; seen: {:?}", self.kinds()),
        }
    }

    /// Takes every event already delivered, without waiting.
    fn take_ready(&mut self) {
        while let Ok(ev) = self.rx.try_recv() {
            self.seen.push((Instant::now(), ev));
        }
    }

    fn count(&self, pred: impl Fn(&ClientEvent) -> bool) -> usize {
        self.seen.iter().filter(|(_, e)| pred(e)).count()
    }

    fn kinds(&self) -> Vec<&ClientEvent> {
        self.seen.iter().map(|(_, e)| e).collect()
    }
}

fn is_trouble_of_ours(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::Handler(_))
}

/// One transaction: wait for the link, then `record(id)`.
async fn record(client: Client, id: u64) -> Result<u64, CallError> {
    let remote = match client.up().await {
        Ok(r) => r,
        Err(UpError::Closed { .. }) => return Err(CallError::Closed),
        Err(e) => panic!("up failed: {e}"),
    };
    let (got,): (u64,) = remote.call("record", &(id,)).await?;
    assert_eq!(got, id, "the answer of record({id})");
    Ok(got)
}

/// The length of the first line in `bytes`, newline included.
fn first_line_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or_else(|| panic!("no full line in {:?}", String::from_utf8_lossy(bytes)))
}

pub async fn black_hole_after_up_is_detected_within_the_heartbeat_and_fails_calls_in_flight<
    R: Rt,
>() {
    const INTERVAL: Duration = ms(200);
    const TIMEOUT: Duration = ms(100);
    let server = TestServer::start::<R>().await;
    let proxy = Proxy::start(server.addr()).expect("a proxy");
    let mut builder = fast_client().ping(Some(INTERVAL)).ping_timeout(TIMEOUT);
    let mut events = Events::<R>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(proxy.addr().to_string()).unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let (i, a): (u64, String) = within::<R, _>("an echo", remote.call("echo", &(1,)))
        .await
        .unwrap();
    assert_eq!((i, a.as_str()), (1, "answer 1"));
    // A ping answered: the heartbeat runs through the proxy.
    events
        .wait_for("a ping", |e| matches!(e, ClientEvent::Ping(_)))
        .await;

    proxy.set_both(Fault::BlackHole);
    let holed_at = Instant::now();
    let calls: Vec<_> = (10..15)
        .map(|i| spawned::<R, _>(remote.call::<_, (u64, String)>("echo", &(i,))))
        .collect();
    let (down_at, down) = events.wait_for("down", is_down).await;
    assert_eq!(down, ClientEvent::Down(LinkError::PingTimeout(TIMEOUT)));
    let detected = down_at - holed_at;
    eprintln!("black hole detected after {detected:?} (ping {INTERVAL:?} + timeout {TIMEOUT:?})");
    assert!(
        detected <= INTERVAL + TIMEOUT + SCHEDULING_ALLOWANCE,
        "detected after {detected:?}"
    );
    for call in calls {
        let r = within::<R, _>("a call in flight", call).await.unwrap();
        assert_eq!(r, Err(CallError::LinkDown));
    }
    assert_eq!(
        events.count(is_up),
        1,
        "only the first: {:?}",
        events.kinds()
    );

    proxy.set_both(Fault::Pass);
    events.wait_for("up again", is_up).await;
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let (i, a): (u64, String) = within::<R, _>("an echo", remote.call("echo", &(2,)))
        .await
        .unwrap();
    assert_eq!((i, a.as_str()), (2, "answer 2"));
    // The five calls made into the black hole never reached the server.
    assert_eq!(*server.arrivals.lock().unwrap(), [1, 2]);
    events.take_ready();
    assert_eq!(events.count(is_down), 1, "{:?}", events.kinds());
    assert_eq!(events.count(is_up), 2, "{:?}", events.kinds());
    assert_eq!(events.count(is_trouble_of_ours), 0, "{:?}", events.kinds());

    client.close().await;
    server.stop::<R>().await;
}

pub async fn a_healed_black_hole_recovers_at_the_heartbeats_pace_not_the_handshake_default<
    R: Rt,
>() {
    const INTERVAL: Duration = ms(1000);
    const TIMEOUT: Duration = ms(300);
    const HANDSHAKE_DEFAULT: Duration = Duration::from_secs(10);
    let server = TestServer::start::<R>().await;
    let proxy = Proxy::start(server.addr()).expect("a proxy");
    let mut builder = fast_client().ping(Some(INTERVAL)).ping_timeout(TIMEOUT);
    let mut events = Events::<R>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(proxy.addr().to_string()).unwrap();
    within::<R, _>("up", client.up()).await.unwrap();
    let first = proxy.live_connections()[0];
    let methods = first_line_len(
        &proxy
            .transcript(first, Direction::ServerToClient)
            .expect("the first connection is open"),
    ) as u64;

    proxy.set_both(Fault::BlackHole);
    let holed_at = Instant::now();
    let (down_at, down) = events.wait_for("down", is_down).await;
    assert_eq!(down, ClientEvent::Down(LinkError::PingTimeout(TIMEOUT)));
    // A reconnect attempt inside the partition: accepted, and the server's `methods` for
    // it swallowed, so that attempt waits for its handshake timeout.
    let at_down = proxy.stats();
    proxy_until::<R>(
        &proxy,
        "an attempt whose methods were swallowed",
        move |s| {
            s.accepted > at_down.accepted
                && s.server_to_client.read >= at_down.server_to_client.read + methods
        },
    )
    .await;

    proxy.set_both(Fault::Pass);
    let healed_at = Instant::now();
    let (up_at, _) = events.wait_for("up after healing", is_up).await;
    let recovery = up_at - healed_at;
    eprintln!(
        "black hole detected after {:?}; Down → Up {:?} after healing (liveness bound {:?}, \
         handshake default {HANDSHAKE_DEFAULT:?})",
        down_at - holed_at,
        recovery,
        INTERVAL + TIMEOUT
    );
    // The attempt under way when the path healed had lost the server's `methods`: it ends
    // at its handshake timeout, capped at ping interval + timeout (1.3 s), and the next one
    // comes up. Under 5 s, where the uncapped 10 s handshake default would take 10 s.
    assert!(
        recovery < Duration::from_secs(5),
        "recovered {recovery:?} after healing; events after healing: {:?}",
        events
            .seen
            .iter()
            .filter(|(at, _)| *at >= healed_at)
            .map(|(at, e)| (*at - healed_at, e))
            .collect::<Vec<_>>()
    );
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let (i, _): (u64, String) = within::<R, _>("an echo", remote.call("echo", &(7,)))
        .await
        .unwrap();
    assert_eq!(i, 7);

    client.close().await;
    server.stop::<R>().await;
}

/// Connections cut before the client ever saw the server's `methods`: transactions queued
/// meanwhile wait, never run, and run once each when a connection finally comes up.
async fn cut_before_methods_then_heal<R: Rt>(fault: Fault, expect_forwarded_per_cut: u64) {
    const QUEUED: u64 = 5;
    let server = TestServer::start::<R>().await;
    let proxy = Proxy::start(server.addr()).expect("a proxy");
    proxy.set_new(Direction::ServerToClient, fault);
    let mut builder = fast_client();
    let mut events = Events::<R>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(proxy.addr().to_string()).unwrap();
    let queued: Vec<_> = (0..QUEUED)
        .map(|id| spawned::<R, _>(record(client.clone(), id)))
        .collect();

    let cut = proxy_until::<R>(&proxy, "three connections cut", |s| s.cuts >= 3).await;
    // Each cut connection carried exactly the bytes allowed, and never a whole `methods`.
    assert!(
        cut.server_to_client.forwarded >= cut.cuts * expect_forwarded_per_cut,
        "{cut:?}"
    );
    assert_eq!(server.total_runs(), 0, "nothing ran before the link was up");
    events.take_ready();
    assert_eq!(events.count(is_up), 0, "{:?}", events.kinds());

    proxy.set_new(Direction::ServerToClient, Fault::Pass);
    for (id, t) in queued.into_iter().enumerate() {
        let r = within::<R, _>("a queued transaction", t).await.unwrap();
        assert_eq!(r, Ok(id as u64));
    }
    for id in 0..QUEUED {
        assert_eq!(server.runs_of(id), 1, "transaction {id}");
    }
    events.take_ready();
    assert_eq!(events.count(is_up), 1, "{:?}", events.kinds());
    assert_eq!(events.count(is_down), 0, "never up, so never down");
    assert!(
        events.count(|e| matches!(e, ClientEvent::Reconnect { .. })) >= 3,
        "{:?}",
        events.kinds()
    );
    assert_eq!(events.count(is_trouble_of_ours), 0, "{:?}", events.kinds());
    client.close().await;
    server.stop::<R>().await;
}

pub async fn a_reset_before_methods_reconnects_and_runs_the_queued_transactions_once<R: Rt>() {
    cut_before_methods_then_heal::<R>(
        Fault::CutAt {
            offset: 0,
            how: Cut::Rst,
        },
        0,
    )
    .await;
}

pub async fn a_fin_in_the_middle_of_a_line_reconnects_and_runs_the_queued_transactions_once<
    R: Rt,
>() {
    // `{"method":` and then the end of the stream: half a `methods` line.
    cut_before_methods_then_heal::<R>(
        Fault::CutAt {
            offset: 10,
            how: Cut::Fin,
        },
        10,
    )
    .await;
}

pub async fn a_reset_after_methods_reconnects_and_runs_the_queued_transactions_once<R: Rt>() {
    const QUEUED: u64 = 5;
    let server = TestServer::start::<R>().await;
    let proxy = Proxy::start(server.addr()).expect("a proxy");
    let mut builder = fast_client().on_connect(|remote: Remote| async move {
        remote.call_raw("hello", &()).await?;
        Ok(remote)
    });
    let mut events = Events::<R>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(proxy.addr().to_string()).unwrap();
    within::<R, _>("up", client.up()).await.unwrap();
    assert_eq!(server.logins.load(Ordering::SeqCst), 1);
    // The client's first line is its `methods`; what follows is its connect step's
    // `hello`, sent only once the server's `methods` arrived.
    let first = proxy.live_connections()[0];
    let client_methods = first_line_len(
        &proxy
            .transcript(first, Direction::ClientToServer)
            .expect("the first connection is open"),
    ) as u64;
    let server_methods = first_line_len(
        &proxy
            .transcript(first, Direction::ServerToClient)
            .expect("the first connection is open"),
    ) as u64;

    // From now on every connection is reset 10 bytes into the client's `hello`.
    proxy.set_new(
        Direction::ClientToServer,
        Fault::CutAt {
            offset: client_methods + 10,
            how: Cut::Rst,
        },
    );
    proxy.cut_live(Cut::Rst);
    events.wait_for("down", is_down).await;
    let at_down = proxy.stats();
    let queued: Vec<_> = (0..QUEUED)
        .map(|id| spawned::<R, _>(record(client.clone(), id)))
        .collect();

    let cuts_at_down = at_down.cuts;
    let cut = proxy_until::<R>(&proxy, "three more connections cut", move |s| {
        s.cuts >= cuts_at_down + 3
    })
    .await;
    let cuts = cut.cuts - at_down.cuts;
    assert!(
        cut.server_to_client.forwarded - at_down.server_to_client.forwarded
            >= cuts * server_methods,
        "each cut connection delivered the server's methods first: {cut:?}"
    );
    assert_eq!(
        server.total_runs(),
        0,
        "nothing ran while the link was down"
    );
    assert_eq!(
        server.logins.load(Ordering::SeqCst),
        1,
        "no half-sent hello ran"
    );

    proxy.set_new(Direction::ClientToServer, Fault::Pass);
    for (id, t) in queued.into_iter().enumerate() {
        let r = within::<R, _>("a queued transaction", t).await.unwrap();
        assert_eq!(r, Ok(id as u64));
    }
    for id in 0..QUEUED {
        assert_eq!(server.runs_of(id), 1, "transaction {id}");
    }
    assert_eq!(server.logins.load(Ordering::SeqCst), 2, "one more login");
    events.take_ready();
    assert_eq!(events.count(is_up), 2, "{:?}", events.kinds());
    assert_eq!(events.count(is_down), 1, "{:?}", events.kinds());
    assert_eq!(events.count(is_trouble_of_ours), 0, "{:?}", events.kinds());
    client.close().await;
    server.stop::<R>().await;
}

pub async fn byte_by_byte_delivery_both_ways_keeps_calls_and_answers_correct_and_in_order<R: Rt>() {
    const SEQUENTIAL: u64 = 10;
    const PIPELINED: u64 = 30;
    let server = TestServer::start::<R>().await;
    let proxy = Proxy::start(server.addr()).expect("a proxy");
    proxy.set_both(Fault::ByteByByte);
    let mut builder = fast_client();
    let mut events = Events::<R>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(proxy.addr().to_string()).unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();

    for i in 0..SEQUENTIAL {
        let (j, a): (u64, String) = within::<R, _>("an echo", remote.call("echo", &(i,)))
            .await
            .unwrap();
        assert_eq!((j, a), (i, format!("answer {i}")));
    }
    let calls: Vec<_> = (SEQUENTIAL..SEQUENTIAL + PIPELINED)
        .map(|i| remote.call::<_, (u64, String)>("echo", &(i,)))
        .collect();
    let answers = within::<R, _>("the pipelined echoes", futures::future::join_all(calls)).await;
    for (k, r) in answers.into_iter().enumerate() {
        let i = SEQUENTIAL + k as u64;
        assert_eq!(r, Ok((i, format!("answer {i}"))));
    }
    let all: Vec<u64> = (0..SEQUENTIAL + PIPELINED).collect();
    assert_eq!(*server.arrivals.lock().unwrap(), all, "calls in order");

    // The answers crossed the proxy in order, one byte per write, and so did the calls.
    let conn = proxy.live_connections()[0];
    let down = proxy
        .transcript(conn, Direction::ServerToClient)
        .expect("open");
    let down = String::from_utf8(down).expect("UTF-8");
    let mut from = 0;
    for i in &all {
        let needle = format!("\"answer {i}\"");
        let at = down[from..]
            .find(&needle)
            .unwrap_or_else(|| panic!("answer {i} missing or out of order"));
        from += at + needle.len();
    }
    let s = proxy.stats();
    for d in Direction::BOTH {
        let d = s.direction(d);
        assert!(d.forwarded > 0, "{s:?}");
        assert_eq!(d.writes, d.forwarded, "one byte per write: {s:?}");
    }
    events.take_ready();
    assert_eq!(events.count(is_up), 1, "{:?}", events.kinds());
    assert_eq!(events.count(is_down), 0, "{:?}", events.kinds());
    client.close().await;
    server.stop::<R>().await;
}

pub async fn a_fixed_latency_each_way_shows_in_every_ping_and_answer_and_nothing_fails<R: Rt>() {
    const LATENCY: Duration = ms(50);
    let server = TestServer::start::<R>().await;
    let proxy = Proxy::start(server.addr()).expect("a proxy");
    proxy.set_both(Fault::Delay(LATENCY));
    let mut builder = fast_client().ping(Some(ms(100))).ping_timeout(ms(1000));
    let mut events = Events::<R>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(proxy.addr().to_string()).unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    // Every round trip crosses the proxy twice, each crossing held back `LATENCY`.
    for i in 0..3 {
        let asked = Instant::now();
        let (j, a): (u64, String) = within::<R, _>("an echo", remote.call("echo", &(i,)))
            .await
            .unwrap();
        assert_eq!((j, a), (i, format!("answer {i}")));
        let took = asked.elapsed();
        assert!(took >= 2 * LATENCY, "echo {i} answered in {took:?}");
    }
    for _ in 0..3 {
        let (_, ping) = events
            .wait_for("a ping", |e| matches!(e, ClientEvent::Ping(_)))
            .await;
        let ClientEvent::Ping(rtt) = ping else {
            unreachable!()
        };
        assert!(rtt >= 2 * LATENCY, "a ping took {rtt:?}");
    }
    events.take_ready();
    assert_eq!(events.count(is_up), 1, "{:?}", events.kinds());
    assert_eq!(events.count(is_down), 0, "{:?}", events.kinds());
    client.close().await;
    server.stop::<R>().await;
}

pub async fn refused_connections_keep_the_client_retrying_and_queued_transactions_run_once_accepted<
    R: Rt,
>() {
    const QUEUED: u64 = 5;
    let server = TestServer::start::<R>().await;
    let proxy = Proxy::start(server.addr()).expect("a proxy");
    proxy.admit(Admission::Reset);
    let mut builder = fast_client();
    let mut events = Events::<R>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(proxy.addr().to_string()).unwrap();
    let queued: Vec<_> = (0..QUEUED)
        .map(|id| spawned::<R, _>(record(client.clone(), id)))
        .collect();
    proxy_until::<R>(&proxy, "three resets", |s| s.refused >= 3).await;
    proxy.admit(Admission::Close);
    proxy_until::<R>(&proxy, "three closes", |s| s.refused >= 6).await;
    assert_eq!(server.total_runs(), 0);
    assert_eq!(server.server.connections(), 0, "no connection reached it");

    proxy.admit(Admission::Accept);
    for (id, t) in queued.into_iter().enumerate() {
        let r = within::<R, _>("a queued transaction", t).await.unwrap();
        assert_eq!(r, Ok(id as u64));
    }
    for id in 0..QUEUED {
        assert_eq!(server.runs_of(id), 1, "transaction {id}");
    }
    events.take_ready();
    assert_eq!(events.count(is_up), 1, "{:?}", events.kinds());
    assert_eq!(events.count(is_down), 0, "{:?}", events.kinds());
    client.close().await;
    server.stop::<R>().await;
}

/// What became of one transaction on the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    /// Its call was cut off: reported, and run at most once (the server may have run it
    /// and lost the answer with the connection).
    LinkDown,
    /// The connection its `up` gave had gone before the call left: reported, never run.
    NotConnected,
}

pub async fn fifty_server_restarts_under_a_stream_of_transactions_lose_and_duplicate_nothing<
    R: Rt,
>() {
    const RESTARTS: usize = 50;
    const WORKERS: usize = 4;
    /// Transactions that must complete on each server before it is killed.
    const PROGRESS: u64 = 5;
    let runs = Runs::default();
    let mut server = TestServer::start_with::<R>(runs.clone()).await;
    let proxy = Proxy::start(server.addr()).expect("a proxy");
    let mut builder = fast_client();
    let mut events = Events::<R>::new(builder.subscribe());
    let client = builder.connect_tcp::<R>(proxy.addr().to_string()).unwrap();
    within::<R, _>("up", client.up()).await.unwrap();

    let next_id = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let outcomes: Arc<Mutex<HashMap<u64, Outcome>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    // tokio's watch channel is runtime-independent (as the proxy's `wait_until`, built on
    // it): it needs no tokio runtime.
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0u64);
    let progress_tx = Arc::new(progress_tx);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (client, next_id, completed, outcomes, stop, progress_tx) = (
                client.clone(),
                next_id.clone(),
                completed.clone(),
                outcomes.clone(),
                stop.clone(),
                progress_tx.clone(),
            );
            spawned::<R, _>(async move {
                while !stop.load(Ordering::SeqCst) {
                    let id = next_id.fetch_add(1, Ordering::SeqCst);
                    let outcome = match record(client.clone(), id).await {
                        Ok(_) => Outcome::Completed,
                        Err(CallError::LinkDown) => Outcome::LinkDown,
                        Err(CallError::NotConnected) => Outcome::NotConnected,
                        Err(e) => panic!("transaction {id} failed unexpectedly: {e}"),
                    };
                    let before = outcomes.lock().unwrap().insert(id, outcome);
                    assert_eq!(before, None, "transaction {id} resolved twice");
                    if outcome == Outcome::Completed {
                        let n = completed.fetch_add(1, Ordering::SeqCst) + 1;
                        progress_tx.send_replace(n);
                    }
                }
            })
        })
        .collect();

    let started = Instant::now();
    for restart in 0..RESTARTS {
        // The current server has served some transactions: the link is up and busy.
        let target = completed.load(Ordering::SeqCst) + PROGRESS;
        within::<R, _>(
            "progress on the current server",
            progress.wait_for(|n| *n >= target),
        )
        .await
        .unwrap();
        let next = TestServer::start_with::<R>(runs.clone()).await;
        proxy.set_target(next.addr());
        // Kill: the client's connection is cut (resets and FINs in turn), the old server
        // goes away, and the next connection reaches the new one.
        proxy.cut_live(if restart % 2 == 0 { Cut::Rst } else { Cut::Fin });
        std::mem::replace(&mut server, next).stop::<R>().await;
    }
    let target = completed.load(Ordering::SeqCst) + PROGRESS;
    within::<R, _>(
        "progress on the last server",
        progress.wait_for(|n| *n >= target),
    )
    .await
    .unwrap();
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        within::<R, _>("a worker", w).await.unwrap();
    }
    let elapsed = started.elapsed();

    let issued = next_id.load(Ordering::SeqCst);
    let outcomes = outcomes.lock().unwrap().clone();
    let runs = runs.lock().unwrap().clone();
    let done = outcomes
        .values()
        .filter(|o| **o == Outcome::Completed)
        .count() as u64;
    let failed = outcomes.len() as u64 - done;
    let lost = (0..issued).filter(|id| !outcomes.contains_key(id)).count();
    let duplicated = runs.values().filter(|n| **n > 1).count();
    let count = |o: Outcome| outcomes.values().filter(|x| **x == o).count();
    let (link_down, not_connected) = (count(Outcome::LinkDown), count(Outcome::NotConnected));
    let failed_but_ran = outcomes
        .iter()
        .filter(|(id, o)| **o == Outcome::LinkDown && runs.contains_key(id))
        .count();
    eprintln!(
        "{RESTARTS} restarts in {elapsed:?}: {issued} transactions, {done} completed, \
         {failed} failed and reported ({link_down} LinkDown, {failed_but_ran} of them run on \
         the server; {not_connected} NotConnected), {lost} lost, {duplicated} duplicated"
    );
    assert_eq!(lost, 0, "every transaction resolved");
    assert_eq!(duplicated, 0, "no transaction ran twice: {runs:?}");
    for (id, o) in &outcomes {
        if *o == Outcome::Completed {
            assert_eq!(
                runs.get(id),
                Some(&1),
                "completed transaction {id} ran once"
            );
        }
        if *o == Outcome::NotConnected {
            assert_eq!(runs.get(id), None, "transaction {id} never left, never ran");
        }
    }
    assert!(
        runs.keys().all(|id| *id < issued),
        "the server ran only issued ids"
    );
    assert!(done >= (RESTARTS as u64 + 1) * PROGRESS);

    events.take_ready();
    assert_eq!(events.count(is_down), RESTARTS, "one down per kill");
    assert_eq!(events.count(is_up), RESTARTS + 1, "one up per server");
    assert_eq!(events.count(is_trouble_of_ours), 0, "{:?}", events.kinds());
    client.close().await;
    server.stop::<R>().await;
}
