//! The Rust clients and the measuring loops they share.
//!
//! Both clients implement [`Echo`]: queue a call, take the next answer. The loops
//! ([`sequential`], [`pipelined`]) are written once over it and check every answer.

use crate::adapters::Adapter;
use crate::stats::{percentile, Long, Pipelined, Run, Sequential};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use upnode_tokio::upnode_core::config::{ReconnectPolicy, DEFAULT_MAX_IN_FLIGHT};
use upnode_tokio::{CallError, Client, ClientEvent, Remote};

/// The payload every call carries next to its number (as in `bench/node/common.js`).
pub const DATA: &str = "upnode loopback echo 0123456789";

/// What each call sends and must get back, unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Msg {
    pub seq: u64,
    pub data: String,
}

fn message(seq: u64) -> Msg {
    Msg {
        seq,
        data: DATA.to_owned(),
    }
}

/// One connection to an echo server.
pub trait Echo {
    /// Queues a call (it may leave at once or at the next [`recv`](Echo::recv)).
    fn send(&mut self, m: &Msg);
    /// The next answer; sends whatever is queued first if it must wait.
    fn recv(&mut self) -> impl std::future::Future<Output = Msg>;
}

/// `echo(x, cb)` over an upnode client (on any of the [`Adapter`]s): every call is a
/// [`Remote::call`].
pub struct UpnodeEcho {
    client: Client,
    events: futures::channel::mpsc::Receiver<ClientEvent>,
    remote: Remote,
    pending: FuturesUnordered<BoxFuture<'static, Result<(Msg,), CallError>>>,
}

impl UpnodeEcho {
    /// `window` is the most calls the run keeps outstanding: the client's limit
    /// (`max_in_flight`, 100 000 by default) is raised to it if need be.
    pub async fn connect(adapter: Adapter, port: u16, window: usize) -> UpnodeEcho {
        let mut builder =
            Client::builder().max_in_flight(window.max(DEFAULT_MAX_IN_FLIGHT), Default::default());
        let events = builder.subscribe();
        let client = adapter
            .connect_tcp(builder, format!("127.0.0.1:{port}"))
            .unwrap();
        let remote = client.up().await.expect("the link comes up");
        UpnodeEcho {
            client,
            events,
            remote,
            pending: FuturesUnordered::new(),
        }
    }

    /// Closes the client after checking that nothing went wrong on the way: no call left
    /// unanswered, and no event but the link coming up and heartbeats (the link never went
    /// down, nothing was reported as an error). A repeated answer cannot be seen from here:
    /// a call's reply slot takes the first answer and the library ignores later ones.
    pub async fn close(mut self) {
        assert!(self.pending.is_empty(), "calls left unanswered");
        while let Ok(ev) = self.events.try_recv() {
            assert!(
                matches!(ev, ClientEvent::Up | ClientEvent::Ping(_)),
                "the upnode client reported {ev:?} during the run"
            );
        }
        self.client.close().await;
    }
}

impl Echo for UpnodeEcho {
    fn send(&mut self, m: &Msg) {
        self.pending.push(Box::pin(self.remote.call("echo", &(m,))));
    }

    async fn recv(&mut self) -> Msg {
        match self.pending.next().await {
            Some(Ok((m,))) => m,
            Some(Err(e)) => {
                let mut seen = Vec::new();
                while let Ok(ev) = self.events.try_recv() {
                    seen.push(ev);
                }
                panic!("an echo call failed: {e}; the client reported {seen:?}")
            }
            None => panic!("waiting for an answer with no call outstanding"),
        }
    }
}

/// What a raw echo line holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// The message alone, one JSON line per call: the transport without dnode.
    Plain,
    /// The message inside a dnode call (`{"method":"echo","arguments":[msg,"[Function]"],
    /// "callbacks":{"N":["1"]},"links":[]}`), answered by a dnode call of callback `N`: the
    /// bytes an upnode pair exchanges, parsed and written as the plain echo does, with none
    /// of an RPC library's bookkeeping (what the wire format costs by itself).
    Dnode,
}

/// A dnode call of a callback that answers an echo, `cb(msg)`: the callback's id and the
/// message (its `callbacks` and `links`, empty, are passed over).
#[derive(Deserialize)]
struct DnodeAnswer {
    method: u64,
    arguments: (Msg,),
}

/// One JSON line per call over a plain TCP stream, no RPC layer.
pub struct RawEcho {
    r: OwnedReadHalf,
    w: OwnedWriteHalf,
    /// Calls queued; the first `written` bytes have been written.
    out: Vec<u8>,
    written: usize,
    /// Bytes read; the first `taken` have been answered.
    input: Vec<u8>,
    taken: usize,
    shape: Shape,
    /// The next dnode callback id.
    next_cb: u64,
}

impl RawEcho {
    pub async fn connect(port: u16, shape: Shape) -> RawEcho {
        let s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the raw echo server");
        s.set_nodelay(true).expect("set TCP_NODELAY");
        let (r, w) = s.into_split();
        RawEcho {
            r,
            w,
            out: Vec::new(),
            written: 0,
            input: Vec::with_capacity(64 * 1024),
            taken: 0,
            shape,
            next_cb: 0,
        }
    }
}

impl Echo for RawEcho {
    fn send(&mut self, m: &Msg) {
        if self.shape == Shape::Dnode {
            self.out
                .extend_from_slice(br#"{"method":"echo","arguments":["#);
        }
        serde_json::to_writer(&mut self.out, m).expect("a message serialises");
        if self.shape == Shape::Dnode {
            use std::io::Write;
            let cb = self.next_cb;
            self.next_cb += 1;
            write!(
                self.out,
                r#","[Function]"],"callbacks":{{"{cb}":["1"]}},"links":[]}}"#
            )
            .expect("writing to a Vec");
        }
        self.out.push(b'\n');
    }

    async fn recv(&mut self) -> Msg {
        // Answers already read come first; only write (and then wait) when there are none,
        // so refilling the window is one write. While calls are being written, answers are
        // read too: a burst larger than the sockets' buffers must not wait for itself.
        let end = loop {
            if let Some(i) = memchr::memchr(b'\n', &self.input[self.taken..]) {
                break self.taken + i + 1;
            }
            if self.taken > 0 {
                self.input.drain(..self.taken);
                self.taken = 0;
            }
            if self.input.capacity() - self.input.len() < 16 * 1024 {
                self.input.reserve(64 * 1024);
            }
            let n = if self.written < self.out.len() {
                tokio::select! {
                    biased;
                    w = self.w.write(&self.out[self.written..]) => {
                        let n = w.expect("write to the server");
                        assert!(n > 0, "the raw echo server takes no more bytes");
                        self.written += n;
                        if self.written == self.out.len() {
                            self.out.clear();
                            self.written = 0;
                        }
                        continue;
                    }
                    r = self.r.read_buf(&mut self.input) => r,
                }
            } else {
                self.r.read_buf(&mut self.input).await
            };
            assert!(
                n.expect("read from the server") > 0,
                "the raw echo server hung up"
            );
        };
        let line = &self.input[self.taken..end];
        self.taken = end;
        let bad = |e: &dyn std::fmt::Display| -> ! {
            panic!(
                "the raw echo server answered {:?}: {e}",
                String::from_utf8_lossy(line)
            )
        };
        match self.shape {
            Shape::Plain => serde_json::from_slice(line).unwrap_or_else(|e| bad(&e)),
            Shape::Dnode => {
                // Straight into the answer's shape, as the plain echo reads its message.
                let a: DnodeAnswer = serde_json::from_slice(line).unwrap_or_else(|e| bad(&e));
                if a.method >= self.next_cb {
                    bad(&"a call of a callback never sent");
                }
                a.arguments.0
            }
        }
    }
}

fn check(got: &Msg, seq: u64) {
    assert!(
        got.seq == seq && got.data == DATA,
        "call {seq} answered with {got:?}"
    );
}

/// `n` calls one after the other, numbered from `first`: wall clock and latencies (µs).
pub async fn sequential<E: Echo>(e: &mut E, first: u64, n: usize) -> (f64, Vec<f64>) {
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n as u64 {
        let t0 = Instant::now();
        e.send(&message(first + i));
        let got = e.recv().await;
        lat.push(t0.elapsed().as_secs_f64() * 1e6);
        check(&got, first + i);
    }
    (start.elapsed().as_secs_f64(), lat)
}

/// `n` calls numbered from `first` with up to `window` unanswered: wall clock, and for
/// each of `marks` (answer counts, ascending) the time since the start when that many
/// answers had come. Every call must be answered exactly once, in any order.
pub async fn pipelined<E: Echo>(
    e: &mut E,
    first: u64,
    n: usize,
    window: usize,
    marks: &[usize],
) -> (f64, Vec<f64>) {
    let mut seen = vec![false; n];
    let mut at = Vec::with_capacity(marks.len());
    let (mut sent, mut got) = (0usize, 0usize);
    let start = Instant::now();
    while got < n {
        while sent < n && sent - got < window {
            e.send(&message(first + sent as u64));
            sent += 1;
        }
        let answer = e.recv().await;
        let k = answer
            .seq
            .checked_sub(first)
            .map(|k| k as usize)
            .filter(|&k| k < sent && !seen[k])
            .unwrap_or_else(|| panic!("unexpected answer {answer:?}"));
        check(&answer, first + k as u64);
        seen[k] = true;
        got += 1;
        while at.len() < marks.len() && marks[at.len()] <= got {
            at.push(start.elapsed().as_secs_f64());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(seen.iter().all(|&s| s), "a call was never answered");
    (secs, at)
}

/// What one client process measures; a count of 0 leaves a phase out.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup: usize,
    pub sequential: usize,
    /// Calls of the pipelined phase, `window` in flight.
    pub pipelined: usize,
    pub window: usize,
    /// Calls of the outstanding phase, all in flight at once.
    pub outstanding: usize,
    /// Calls of the long phase, `window` in flight.
    pub long: usize,
}

impl Plan {
    /// The most calls any phase keeps in flight.
    pub fn max_window(&self) -> usize {
        self.window.max(self.outstanding)
    }
}

/// The whole client run, the same steps as `echo_client.js`: warm up, then the phases in
/// order (sequential, pipelined, outstanding, long), then one last call that must be the
/// next answer (nothing extra arrived). Sequence numbers never repeat on a connection.
pub async fn run<E: Echo>(e: &mut E, p: Plan) -> Run {
    let mut seq = 0u64;
    let mut run = Run::default();
    sequential(e, seq, p.warmup).await;
    seq += p.warmup as u64;
    pipelined(e, seq, p.warmup, p.window, &[]).await;
    seq += p.warmup as u64;
    if p.sequential > 0 {
        let (secs, mut lat) = sequential(e, seq, p.sequential).await;
        seq += p.sequential as u64;
        lat.sort_by(f64::total_cmp);
        run.sequential = Some(Sequential {
            calls: p.sequential,
            secs,
            p50_us: percentile(&lat, 50.0),
            p99_us: percentile(&lat, 99.0),
        });
    }
    if p.pipelined > 0 {
        let (secs, _) = pipelined(e, seq, p.pipelined, p.window, &[]).await;
        seq += p.pipelined as u64;
        run.pipelined = Some(Pipelined {
            calls: p.pipelined,
            window: p.window,
            secs,
        });
    }
    if p.outstanding > 0 {
        let (secs, _) = pipelined(e, seq, p.outstanding, p.outstanding, &[]).await;
        seq += p.outstanding as u64;
        run.outstanding = Some(Pipelined {
            calls: p.outstanding,
            window: p.outstanding,
            secs,
        });
    }
    if p.long > 0 {
        let tenth = (p.long / 10).max(1);
        let (secs, at) = pipelined(e, seq, p.long, p.window, &[tenth, p.long - tenth]).await;
        seq += p.long as u64;
        run.long = Some(Long {
            calls: p.long,
            window: p.window,
            tenth,
            first_tenth_secs: at[0],
            last_tenth_secs: secs - at[1],
            secs,
        });
    }
    sequential(e, seq, 1).await;
    run.rss_kb = crate::stats::own_peak_rss_kb();
    run.cpu_us = crate::stats::cpu_us("self");
    run
}

/// Flush: `n` transactions queued on an upnode client (on `adapter`) whose server is not up
/// yet (reconnecting every 5 ms), each making one `echo` call. Prints `queued` once they all
/// wait, then, when the last answer has come, one JSON line: `{"done_unix_us": …,
/// "rss_kb": …}` (wall clock, for the harness to compare with when the server listened).
pub async fn flush(adapter: Adapter, port: u16, n: usize) {
    use std::io::Write;
    let builder = Client::builder()
        .reconnect(ReconnectPolicy::fixed(std::time::Duration::from_millis(5)))
        .max_in_flight(n.max(DEFAULT_MAX_IN_FLIGHT), Default::default());
    let client = adapter
        .connect_tcp(builder, format!("127.0.0.1:{port}"))
        .unwrap();
    let (tx, rx) = futures::channel::mpsc::unbounded();
    for i in 0..n as u64 {
        let tx = tx.clone();
        client
            .transaction(None, move |remote| {
                let remote = remote.expect("the link comes up");
                let _ = tx.unbounded_send((i, remote.call::<_, (Msg,)>("echo", &(message(i),))));
            })
            .expect("queue a transaction");
    }
    drop(tx);
    let mut out = std::io::stdout();
    writeln!(out, "queued")
        .and_then(|()| out.flush())
        .expect("print to the harness");
    // Each call is awaited as soon as its transaction has run, all of them at once: the
    // first `n` transactions to run are taken (never waiting for the channel to close,
    // which the client's copies of `tx` may keep open), and every answer as it comes.
    let mut answers = rx
        .take(n)
        .map(|(i, call)| async move { (i, call.await) })
        .buffer_unordered(n.max(1));
    let mut seen = vec![false; n];
    let mut got = 0usize;
    while got < n {
        let (i, answer) = answers.next().await.expect("every transaction ran");
        let (m,) = answer.unwrap_or_else(|e| panic!("queued call {i} failed: {e}"));
        check(&m, i);
        assert!(!seen[i as usize], "call {i} answered twice");
        seen[i as usize] = true;
        got += 1;
    }
    let done = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970");
    client.close().await;
    writeln!(
        out,
        "{}",
        serde_json::json!({
            "done_unix_us": done.as_secs_f64() * 1e6,
            "rss_kb": crate::stats::own_peak_rss_kb(),
        })
    )
    .and_then(|()| out.flush())
    .expect("print to the harness");
}
