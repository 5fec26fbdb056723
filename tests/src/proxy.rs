//! A loopback TCP proxy under a test's control, for injecting network faults between a
//! client and a server.
//!
//! [`Proxy::start`] binds `127.0.0.1` on a port the system picks and forwards every
//! connection it accepts to a target address. What happens to the bytes of each direction
//! ([`Direction`]) is a [`Fault`], which the test can change at any time, for the
//! connections already open, for the next ones, or both:
//!
//! - [`Fault::Pass`]: forward as they come;
//! - [`Fault::Delay`]: forward each chunk a fixed time after it was read;
//! - [`Fault::CutAt`]: forward exactly `offset` bytes of the direction, then cut the whole
//!   connection with a FIN or a reset ([`Cut`]) when the next byte is due;
//! - [`Fault::ByteByByte`]: forward one byte per write;
//! - [`Fault::BlackHole`]: read and drop everything (the end of the stream too);
//! - [`Fault::StopReading`]: read nothing, so the sender's kernel buffers fill up.
//!
//! New connections can also be refused ([`Admission`]): closed at once, or reset.
//! [`Proxy::cut_live`] cuts every open connection at once. [`Proxy::stats`] counts
//! connections and bytes per direction, and [`Proxy::wait_until`] waits for a condition on
//! those counts (a future for any async runtime, to be bounded by the caller).
//!
//! The proxy runs on a thread of its own (a one-thread tokio runtime), so it works under
//! any runtime or none. Dropping the [`Proxy`] stops that thread and waits for it: every
//! socket it opened is closed. It sleeps only to carry out a [`Fault::Delay`]; otherwise
//! it waits on sockets and on the test's commands. Nothing a peer does makes it panic: a
//! failed read or write ends that connection (with a reset of the other side), nothing
//! else.

use socket2::SockRef;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// Most bytes one direction of a connection holds inside the proxy (read, not yet
/// forwarded) before it stops reading from the sender.
pub const MAX_BUFFERED: usize = 64 * 1024;

/// How many bytes of each direction of an open connection [`Proxy::transcript`] keeps.
pub const TRANSCRIPT_LIMIT: usize = 64 * 1024;

/// Size of one read.
const CHUNK: usize = 16 * 1024;

/// One direction of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the side that connected to the proxy towards the target.
    ClientToServer,
    /// From the target back towards the side that connected.
    ServerToClient,
}

impl Direction {
    /// Both directions.
    pub const BOTH: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];

    fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
}

/// How a connection is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// An orderly close: both peers read the end of the stream. What the proxy held for
    /// them is dropped; it then reads and drops whatever they still send until they close.
    Fin,
    /// A reset (`SO_LINGER` 0, then close): both peers see the connection reset.
    Rst,
}

/// What the proxy does with the bytes of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Forward every byte as soon as it is read.
    #[default]
    Pass,
    /// Forward every chunk this long after it was read (a fixed latency; chunks keep
    /// their order).
    Delay(Duration),
    /// Forward the first `offset` bytes of this direction of the connection; when a byte
    /// at position `offset` or later is ready to go, cut the connection instead (both
    /// directions, both peers). Set on a connection that is already past `offset`, it
    /// cuts at the next byte. The end of the stream before that passes as usual.
    CutAt {
        /// How many bytes of the direction pass (counted from the connection's start).
        offset: u64,
        /// FIN or reset.
        how: Cut,
    },
    /// Forward one byte per write (and per TCP segment: the proxy's sockets have
    /// `TCP_NODELAY`).
    ByteByByte,
    /// Read everything and forward nothing, not even the end of the stream: the sender
    /// sees its writes succeed, the receiver hears nothing. Bytes read before this took
    /// effect and not yet forwarded are dropped. A sender's end of stream is held back
    /// and forwarded once the direction no longer black-holes.
    BlackHole,
    /// Read nothing: the sender's writes fill the kernel buffers, then block. Bytes
    /// already read are still forwarded.
    StopReading,
}

/// What the proxy does with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Admission {
    /// Accept it and forward it to the target.
    #[default]
    Accept,
    /// Accept it and close it at once (the connector reads the end of the stream).
    Close,
    /// Accept it and reset it at once.
    Reset,
}

/// Counters of one direction, over every connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Bytes read from the sender.
    pub read: u64,
    /// Bytes written to the receiver. Counted just before each write (and taken back at
    /// once if the socket took fewer), so a byte the receiver has read is always counted.
    pub forwarded: u64,
    /// Write calls that wrote at least one byte.
    pub writes: u64,
}

/// What the proxy has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted by the listener (refused ones included).
    pub accepted: u64,
    /// Connections closed or reset at once by [`Admission`].
    pub refused: u64,
    /// Connections whose target could not be reached (the connector was reset).
    pub target_failures: u64,
    /// Connections being forwarded now.
    pub live: usize,
    /// Connections cut by a [`Fault::CutAt`] or [`Proxy::cut_live`].
    pub cuts: u64,
    /// Client-to-server counters.
    pub client_to_server: DirectionStats,
    /// Server-to-client counters.
    pub server_to_client: DirectionStats,
}

impl Stats {
    /// The counters of direction `d`.
    pub fn direction(&self, d: Direction) -> &DirectionStats {
        match d {
            Direction::ClientToServer => &self.client_to_server,
            Direction::ServerToClient => &self.server_to_client,
        }
    }

    fn direction_mut(&mut self, d: Direction) -> &mut DirectionStats {
        match d {
            Direction::ClientToServer => &mut self.client_to_server,
            Direction::ServerToClient => &mut self.server_to_client,
        }
    }
}

/// A loopback TCP proxy under test control. See the [module docs](self).
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the test and the proxy's tasks share.
struct Shared {
    state: Mutex<State>,
    /// Bumped on every command, so each connection re-reads its settings.
    commands: watch::Sender<u64>,
    stats: watch::Sender<Stats>,
}

struct State {
    target: SocketAddr,
    admission: Admission,
    new_faults: [Fault; 2],
    next_id: u64,
    conns: HashMap<u64, ConnState>,
}

struct ConnState {
    faults: [Fault; 2],
    cut: Option<Cut>,
    transcript: [Vec<u8>; 2],
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a test thread panicked while holding it; the state
        // itself is always consistent between statements.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn command(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.commands.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        self.stats.send_modify(f);
    }
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1` (a free port) forwarding to `target`, every direction
    /// passing and every connection accepted.
    ///
    /// # Errors
    /// If the port cannot be bound or the proxy's thread cannot start.
    pub fn start(target: SocketAddr) -> io::Result<Proxy> {
        let listener = StdListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                target,
                admission: Admission::Accept,
                new_faults: [Fault::Pass; 2],
                next_id: 1,
                conns: HashMap::new(),
            }),
            commands: watch::Sender::new(0),
            stats: watch::Sender::new(Stats::default()),
        });
        let (stop, stopped) = oneshot::channel();
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(_) => return,
                    };
                    tokio::select! {
                        _ = accept_loop(for_thread, listener) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime drops every connection task and closes its sockets.
                drop(runtime);
            })?;
        Ok(Proxy {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where new connections go from now on (open ones keep theirs).
    pub fn set_target(&self, target: SocketAddr) {
        self.shared.command(|s| s.target = target);
    }

    /// Sets direction `dir` to `fault` on every open connection and every new one.
    pub fn set(&self, dir: Direction, fault: Fault) {
        self.set_live(dir, fault);
        self.set_new(dir, fault);
    }

    /// Sets both directions to `fault`, on open and new connections.
    pub fn set_both(&self, fault: Fault) {
        for d in Direction::BOTH {
            self.set(d, fault);
        }
    }

    /// Sets direction `dir` to `fault` on every connection opened from now on.
    pub fn set_new(&self, dir: Direction, fault: Fault) {
        self.shared.command(|s| s.new_faults[dir.index()] = fault);
    }

    /// Sets direction `dir` to `fault` on every connection open now.
    pub fn set_live(&self, dir: Direction, fault: Fault) {
        self.shared.command(|s| {
            for c in s.conns.values_mut() {
                c.faults[dir.index()] = fault;
            }
        });
    }

    /// What happens to new connections from now on.
    pub fn admit(&self, admission: Admission) {
        self.shared.command(|s| s.admission = admission);
    }

    /// Cuts every open connection now, with a FIN or a reset to both peers.
    pub fn cut_live(&self, how: Cut) {
        let mut cut = 0;
        self.shared.command(|s| {
            for c in s.conns.values_mut() {
                if c.cut.is_none() {
                    c.cut = Some(how);
                    cut += 1;
                }
            }
        });
        self.shared.count(|s| s.cuts += cut);
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats.borrow().clone()
    }

    /// Waits until `pred` holds for the counters and returns them. The future works on
    /// any async runtime; it never times out by itself (bound it). If the proxy is dropped
    /// meanwhile it returns the last counters. `pred` runs while the counters are locked:
    /// it must not call the proxy.
    pub fn wait_until(
        &self,
        mut pred: impl FnMut(&Stats) -> bool + Send + 'static,
    ) -> impl std::future::Future<Output = Stats> + Send + 'static {
        let mut rx = self.shared.stats.subscribe();
        async move {
            let found = rx.wait_for(|s| pred(s)).await.map(|s| s.clone());
            found.unwrap_or_else(|_| rx.borrow().clone())
        }
    }

    /// The ids of the connections being forwarded now, oldest first (ids number the
    /// connections admitted, from 1, in the order they were accepted; refused ones get
    /// none).
    pub fn live_connections(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.shared.lock().conns.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The first [`TRANSCRIPT_LIMIT`] bytes forwarded in direction `dir` of the open
    /// connection `conn`, or `None` if it is not open. Like the counters, it holds every
    /// byte the receiver may have read.
    pub fn transcript(&self, conn: u64, dir: Direction) -> Option<Vec<u8>> {
        self.shared
            .lock()
            .conns
            .get(&conn)
            .map(|c| c.transcript[dir.index()].clone())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("stats", &self.stats())
            .finish()
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            // A failed accept (out of descriptors, a connection reset while queued) leaves
            // the listener usable; the next accept waits for the next connection.
            tokio::task::yield_now().await;
            continue;
        };
        shared.count(|s| s.accepted += 1);
        let (admission, target, id) = {
            let mut s = shared.lock();
            let admission = s.admission;
            let mut id = 0;
            if admission == Admission::Accept {
                id = s.next_id;
                s.next_id += 1;
                let faults = s.new_faults;
                s.conns.insert(
                    id,
                    ConnState {
                        faults,
                        cut: None,
                        transcript: [Vec::new(), Vec::new()],
                    },
                );
            }
            (admission, s.target, id)
        };
        match admission {
            Admission::Accept => {
                shared.count(|s| s.live += 1);
                tokio::spawn(connection(shared.clone(), id, socket, target));
            }
            Admission::Close => {
                shared.count(|s| s.refused += 1);
                drop(socket);
            }
            Admission::Reset => {
                shared.count(|s| s.refused += 1);
                reset(socket);
            }
        }
    }
}

/// Closes `socket` with a reset.
fn reset(socket: TcpStream) {
    let _ = SockRef::from(&socket).set_linger(Some(Duration::ZERO));
    drop(socket);
}

/// How one direction ended.
enum End {
    /// The sender ended its stream and that end was forwarded.
    Eof,
    /// The connection is to be cut.
    Cut(Cut),
    /// A read or a write failed, or the proxy is stopping.
    Broken,
}

async fn connection(shared: Arc<Shared>, id: u64, mut client: TcpStream, target: SocketAddr) {
    match TcpStream::connect(target).await {
        Ok(mut server) => {
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let end = forward(&shared, id, &mut client, &mut server).await;
            finish(end, client, server).await;
        }
        Err(_) => {
            shared.count(|s| s.target_failures += 1);
            reset(client);
        }
    }
    shared.lock().conns.remove(&id);
    shared.count(|s| s.live -= 1);
}

/// Runs both directions until both ended with the end of their stream, or one asks for a
/// cut or broke.
async fn forward(shared: &Shared, id: u64, client: &mut TcpStream, server: &mut TcpStream) -> End {
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let up = pump(
        shared,
        id,
        Direction::ClientToServer,
        client_read,
        server_write,
    );
    let down = pump(
        shared,
        id,
        Direction::ServerToClient,
        server_read,
        client_write,
    );
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let end = tokio::select! {
            e = &mut up, if !up_done => { up_done = true; e }
            e = &mut down, if !down_done => { down_done = true; e }
        };
        if !matches!(end, End::Eof) {
            return end;
        }
    }
    End::Eof
}

/// Closes both sockets as `end` asks.
async fn finish(end: End, mut client: TcpStream, mut server: TcpStream) {
    match end {
        End::Eof => {}
        End::Cut(Cut::Fin) => {
            let _ = client.shutdown().await;
            let _ = server.shutdown().await;
            // Read and drop what the peers still send until they close, so that closing
            // our side does not turn the FIN into a reset (unread data does that).
            tokio::join!(drain(&mut client), drain(&mut server));
        }
        End::Cut(Cut::Rst) | End::Broken => {
            reset(client);
            reset(server);
        }
    }
}

async fn drain(socket: &mut TcpStream) {
    let mut buf = vec![0u8; CHUNK];
    while let Ok(n) = socket.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// One chunk read and not yet (fully) forwarded.
struct Pending {
    read_at: Instant,
    bytes: Vec<u8>,
    /// How much of `bytes` is already forwarded.
    sent: usize,
}

enum Step {
    Command,
    Read(io::Result<usize>),
    /// The front chunk is due and the receiver's socket is writable.
    Writable(io::Result<()>),
}

/// Moves the bytes of direction `dir` of connection `id` from `src` to `dst`, applying the
/// direction's fault as it is at each step.
async fn pump(
    shared: &Shared,
    id: u64,
    dir: Direction,
    mut src: ReadHalf<'_>,
    mut dst: WriteHalf<'_>,
) -> End {
    let mut commands = shared.commands.subscribe();
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let mut buffered = 0usize;
    let mut forwarded = 0u64;
    let mut eof = false;
    let mut buf = vec![0u8; CHUNK];
    loop {
        commands.borrow_and_update();
        let (fault, cut) = match shared.lock().conns.get(&id) {
            Some(c) => (c.faults[dir.index()], c.cut),
            None => return End::Broken,
        };
        if let Some(how) = cut {
            return End::Cut(how);
        }
        if fault == Fault::BlackHole {
            queue.clear();
            buffered = 0;
        }
        if let Fault::CutAt { offset, how } = fault {
            if !queue.is_empty() && forwarded >= offset {
                count_cut(shared, id, how);
                return End::Cut(how);
            }
        }
        if eof && queue.is_empty() && fault != Fault::BlackHole {
            // The sender ended its stream and everything before the end is through.
            let _ = dst.shutdown().await;
            return End::Eof;
        }
        let can_read = !eof && fault != Fault::StopReading && buffered < MAX_BUFFERED;
        let can_write = !queue.is_empty();
        // With a delay, the front chunk is due that long after it was read.
        let due = match (fault, queue.front()) {
            (Fault::Delay(d), Some(p)) => Some(p.read_at + d),
            _ => None,
        };
        let step = tokio::select! {
            biased;
            r = commands.changed() => match r {
                Ok(()) => Step::Command,
                Err(_) => return End::Broken,
            },
            r = src.read(&mut buf), if can_read => Step::Read(r),
            r = writable_at(&dst, due), if can_write => Step::Writable(r),
        };
        match step {
            Step::Command => {}
            Step::Read(Ok(0)) => eof = true,
            Step::Read(Ok(n)) => {
                shared.count(|s| s.direction_mut(dir).read += n as u64);
                if fault != Fault::BlackHole {
                    queue.push_back(Pending {
                        read_at: Instant::now(),
                        bytes: buf[..n].to_vec(),
                        sent: 0,
                    });
                    buffered += n;
                }
            }
            Step::Writable(Ok(())) => {
                let Some(front) = queue.front_mut() else {
                    continue;
                };
                // How much the write may carry.
                let limit = match fault {
                    Fault::ByteByByte => 1,
                    Fault::CutAt { offset, .. } => {
                        usize::try_from(offset.saturating_sub(forwarded)).unwrap_or(usize::MAX)
                    }
                    _ => usize::MAX,
                };
                let rest = &front.bytes[front.sent..];
                let chunk = &rest[..rest.len().min(limit)];
                if chunk.is_empty() {
                    continue;
                }
                let n = match write_counted(shared, id, dir, &dst, chunk) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(_) => return End::Broken,
                };
                front.sent += n;
                if front.sent == front.bytes.len() {
                    queue.pop_front();
                }
                buffered -= n;
                forwarded += n as u64;
            }
            Step::Read(Err(_)) | Step::Writable(Err(_)) => return End::Broken,
        }
    }
}

/// Marks connection `id` as cut (unless a cut was already asked for) and counts it.
fn count_cut(shared: &Shared, id: u64, how: Cut) {
    let first = match shared.lock().conns.get_mut(&id) {
        Some(c) if c.cut.is_none() => {
            c.cut = Some(how);
            true
        }
        _ => false,
    };
    if first {
        shared.count(|s| s.cuts += 1);
    }
}

/// Waits until `due` (if any: a timer even for a past instant costs a tick of the timer
/// wheel, so none is armed without a delay), then until `dst` is writable.
async fn writable_at(dst: &WriteHalf<'_>, due: Option<Instant>) -> io::Result<()> {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
    dst.writable().await
}

/// Writes `chunk` (or what of it the socket takes) without waiting. The transcript and the
/// counters take the bytes *before* the write, so that whatever a receiver has read is
/// already counted when it looks; a short or refused write takes the rest back at once.
fn write_counted(
    shared: &Shared,
    id: u64,
    dir: Direction,
    dst: &WriteHalf<'_>,
    chunk: &[u8],
) -> io::Result<usize> {
    let k = chunk.len();
    let kept = {
        let mut state = shared.lock();
        state.conns.get_mut(&id).map(|c| {
            let t = &mut c.transcript[dir.index()];
            let before = t.len();
            let room = TRANSCRIPT_LIMIT.saturating_sub(before);
            t.extend_from_slice(&chunk[..k.min(room)]);
            before
        })
    };
    shared.count(|s| {
        let d = s.direction_mut(dir);
        d.forwarded += k as u64;
        d.writes += 1;
    });
    let r = match dst.try_write(chunk) {
        Ok(0) => Err(io::ErrorKind::WriteZero.into()),
        r => r,
    };
    let n = *r.as_ref().unwrap_or(&0);
    if n < k {
        if let Some(before) = kept {
            if let Some(c) = shared.lock().conns.get_mut(&id) {
                let t = &mut c.transcript[dir.index()];
                t.truncate((before + n).min(t.len()));
            }
        }
        shared.count(|s| {
            let d = s.direction_mut(dir);
            d.forwarded -= (k - n) as u64;
            if n == 0 {
                d.writes -= 1;
            }
        });
    }
    r
}
