//! Helpers shared by the scenarios, for any runtime.
//!
//! Nothing here sleeps to wait for something that can be awaited: every wait is on an
//! event, a reply or a task, bounded by [`DEADLINE`] only so that a broken build fails
//! instead of hanging. Everything binds to 127.0.0.1 on a port the system picks.

use crate::rt::{Connect, Rt};
use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::StreamExt;
use std::fmt::Debug;
use std::future::Future;
use std::marker::PhantomData;
use std::net::TcpListener as StdListener;
use std::time::{Duration, Instant};
use upnode_async::upnode_core::config::ReconnectPolicy;
use upnode_async::{Client, ClientBuilder, ClientEvent, HandlerError, Listener, Remote, Server};

/// The longest any single wait may take before the test fails (a passing run never comes near
/// it; it only bounds a failing one on a busy machine), milliseconds for brevity, and the
/// tables of a connection's counters: shared with the crate's other test files.
pub use upnode_tests::{ms, tables, DEADLINE};

/// `fut`'s output, or `Err(())` if it takes longer than `d` on `R`'s clock.
pub async fn timeout<R: Rt, T>(d: Duration, fut: impl Future<Output = T>) -> Result<T, ()> {
    match select(std::pin::pin!(fut), R::sleep(d)).await {
        Either::Left((v, _)) => Ok(v),
        Either::Right(_) => Err(()),
    }
}

/// Awaits `fut`, failing the test with `what` if it takes longer than [`DEADLINE`].
pub async fn within<R: Rt, T>(what: &str, fut: impl Future<Output = T>) -> T {
    match timeout::<R, T>(DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// Ends the whole test process if it is still alive after twice [`DEADLINE`]: for tests
/// of deadlocks, where a blocked lock would keep [`within`]'s timer from ever firing
/// (and the test would hang instead of failing). Drop the guard when the test is done.
pub struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    /// Starts watching; `what` names the test in the message.
    pub fn start(what: &'static str) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(DEADLINE * 2) {
                eprintln!("{what}: still running after {:?}: deadlock", DEADLINE * 2);
                std::process::exit(101);
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// A client builder with short timings: a fixed 50 ms between attempts and no heartbeat
/// (tests that want one turn it on).
pub fn fast_client() -> ClientBuilder {
    Client::builder()
        .reconnect(ReconnectPolicy::fixed(ms(50)))
        .ping(None)
}

/// A port on 127.0.0.1 that was free a moment ago (bound and released at once), for a
/// client that must start before its server.
pub fn free_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// The port of a TCP listener.
pub fn port_of(l: &Listener) -> u16 {
    l.local_addr()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {:?}", l.local_addr()))
}

/// Serves `server` on 127.0.0.1:`port`.
///
/// Right after a restart the previous accept loop may not have released the port yet
/// (a killed Node peer's socket, or one closing in another runtime), so "address in use" is
/// retried for a short while.
/// There is nothing to await for that release, hence the short pause between tries.
pub async fn listen_on<R: Rt>(server: &Server, port: u16) -> Listener {
    let addr = format!("127.0.0.1:{port}");
    let give_up = Instant::now() + DEADLINE;
    loop {
        match R::listen(server, &addr).await {
            Ok(l) => return l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < give_up => {
                R::sleep(ms(10)).await;
            }
            Err(e) => panic!("cannot listen on {addr}: {e}"),
        }
    }
}

/// Serves `server` on a port of 127.0.0.1 the system picks and connects a [`fast_client`]
/// to it: the listener, the client and its remote once the link is up.
pub async fn serve_and_connect<R: Rt>(server: &Server) -> (Listener, Client, Remote) {
    let listener = R::listen(server, "127.0.0.1:0").await.unwrap();
    let client = fast_client()
        .connect_tcp::<R>(listener.local_addr())
        .unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    (listener, client, remote)
}

/// Takes a server off the network: stops accepting, closes every connection and waits
/// until all have ended.
pub async fn stop<R: Rt>(listener: Listener, server: &Server) {
    listener.stop().await;
    within::<R, _>("the server to shut down", server.shutdown_now()).await;
    assert_eq!(server.connections(), 0, "connections left after shutdown");
}

/// An event stream that remembers everything it has delivered, for counting afterwards.
pub struct Events<R, T> {
    rx: mpsc::Receiver<T>,
    /// Every event taken so far, in order.
    pub seen: Vec<T>,
    rt: PhantomData<R>,
}

impl<R: Rt, T: Clone + Debug> Events<R, T> {
    /// Wraps a subscription.
    pub fn new(rx: mpsc::Receiver<T>) -> Self {
        Events {
            rx,
            seen: Vec::new(),
            rt: PhantomData,
        }
    }

    /// The next event, or `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<T> {
        let ev = within::<R, _>("the next event", self.rx.next()).await;
        if let Some(e) = &ev {
            self.seen.push(e.clone());
        }
        ev
    }

    /// Takes events until one matches `pred`, and returns it.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&T) -> bool) -> T {
        let fut = async {
            while let Some(ev) = self.rx.next().await {
                self.seen.push(ev.clone());
                if pred(&ev) {
                    return ev;
                }
            }
            panic!(
                "the event stream ended before {what}; seen: {:?}",
                self.seen
            )
        };
        match timeout::<R, T>(DEADLINE, fut).await {
            Ok(ev) => ev,
            Err(_) => panic!("no {what} within {DEADLINE:?}; seen: {:?}", self.seen),
        }
    }

    /// Takes every event until the stream ends.
    pub async fn drain(&mut self) {
        while self.next().await.is_some() {}
    }

    /// How many of the events seen so far match `pred`.
    pub fn count(&self, pred: impl Fn(&T) -> bool) -> usize {
        self.seen.iter().filter(|e| pred(e)).count()
    }
}

/// Runs `task` in the background on `R`; the returned future gives its output (an error if
/// the task was dropped unfinished).
pub fn spawned<R: Rt, T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> futures::channel::oneshot::Receiver<T> {
    let (tx, rx) = futures::channel::oneshot::channel();
    R::spawn(async move {
        let _ = tx.send(task.await);
    });
    rx
}

/// Lets other tasks run once (pending once, then ready), on any runtime.
pub async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

/// The connect step of the README's authenticated client: log in, and hand out the
/// session object `auth` returned.
pub async fn log_in(remote: Remote) -> Result<Remote, HandlerError> {
    let reply = remote.call_raw("auth", &("moo", "hax")).await?;
    if let Some(err) = reply.get::<Option<String>>(0)? {
        return Err(err.into());
    }
    reply
        .remote(1)
        .ok_or_else(|| "auth answered no session".into())
}

/// One transaction: wait for the link, then beep.
pub async fn beep_once(client: Client) -> String {
    let session = client.up().await.expect("the client is open");
    let (s,): (String,) = session.call("beep", &()).await.expect("beep answers");
    s
}

/// The client went up.
pub fn is_up(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::Up)
}

/// The client went down.
pub fn is_down(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::Down(_))
}

/// The client is about to reconnect.
pub fn is_reconnect(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::Reconnect { .. })
}

/// `remote`'s `time()`, on `R`'s clock within [`DEADLINE`] (the conformance servers answer
/// `"now"`).
pub async fn call_time<R: Rt>(remote: &Remote) -> String {
    let (t,): (String,) = within::<R, _>("time", remote.call("time", &()))
        .await
        .unwrap();
    t
}
