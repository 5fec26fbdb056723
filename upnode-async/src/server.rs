//! The server: a constructor per connection, and one task per connection driving
//! `ServerConn`.

use crate::driver::{self, drive, Core, Counters, Input, Machine, Side, Subscribers};
use crate::error::CallError;
use crate::handlers::Handlers;
use crate::interface::Interface;
use crate::io::Io;
use crate::lock::lock;
use crate::peer::{Attach, Handler, PeerOps, Remote};
use crate::running::{Running, RunningGuard};
use crate::runtime::{BoxStream, Runtime};
use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tracing::Instrument;
use upnode_core::config::ServerConfig;
use upnode_core::config::WhenFull;
use upnode_core::link::{CallId, ConnId, LinkError, LinkEvent, SendError, ServerConn};
use upnode_core::seq_map::SeqMap;
use upnode_core::{CallArgs, LocalFn, RemoteFn, Target};

/// What a server reports on its event stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A connection was accepted (its number).
    Connected(u64),
    /// A connection was refused: the connection limit was reached or the server is
    /// shutting down.
    Refused,
    /// A connection ended, and why.
    Disconnected(u64, LinkError),
    /// A problem on a connection that did not end it.
    Error(u64, LinkError),
    /// A handler returned an error or panicked; the connection lives on.
    Handler(u64, String),
    /// This subscriber fell a full channel behind (1024 events) and missed `missed` events
    /// before the next one.
    Lagged {
        /// How many events it missed.
        missed: u64,
    },
}

impl crate::driver::Lagging for ServerEvent {
    fn lagged(missed: u64) -> Self {
        ServerEvent::Lagged { missed }
    }
}

type Constructor = Arc<dyn Fn(ConnHandle) -> Interface + Send + Sync>;

/// Builds a [`Server`].
#[derive(Debug)]
pub struct ServerBuilder {
    config: ServerConfig,
    listen_backlog: Option<u32>,
    memory_budget: Option<usize>,
    max_connections: Option<usize>,
    call_timeout: Option<Duration>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            config: ServerConfig::default(),
            listen_backlog: None,
            memory_budget: None,
            max_connections: None,
            call_timeout: Some(crate::DEFAULT_CALL_TIMEOUT),
        }
    }
}

impl ServerBuilder {
    /// How often to ping clients that export `ping`; `None` never. Default 10 s.
    pub fn ping(mut self, interval: Option<Duration>) -> Self {
        self.config.ping_interval = interval;
        self
    }

    /// How long a client's answer to a ping may take. Default 10 s.
    pub fn ping_timeout(mut self, t: Duration) -> Self {
        self.config.ping_timeout = t;
        self
    }

    /// How long a client's `methods` may take. Default 5 s
    /// ([`DEFAULT_SERVER_HANDSHAKE_TIMEOUT`](upnode_core::config::DEFAULT_SERVER_HANDSHAKE_TIMEOUT)).
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.config.handshake_timeout = t;
        self
    }

    /// Connections each TCP listener of this server lets wait to be accepted. Default 1024
    /// ([`DEFAULT_LISTEN_BACKLOG`](upnode_core::config::DEFAULT_LISTEN_BACKLOG)).
    pub fn listen_backlog(mut self, n: u32) -> Self {
        self.listen_backlog = Some(n);
        self
    }

    /// What all connections may hold at once in partial input lines and unsent output;
    /// past it, the connections holding the most are ended (`LinkError::OverBudget`).
    /// Default 256 MiB
    /// ([`DEFAULT_SERVER_MEMORY_BUDGET`](upnode_core::config::DEFAULT_SERVER_MEMORY_BUDGET)).
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// Most connections served at once; more are closed at once. Default: no limit.
    pub fn max_connections(mut self, n: Option<usize>) -> Self {
        self.max_connections = n;
        self
    }

    /// Most calls the server has waiting for an answer on one connection, and what a call
    /// does past that. Default 100 000, further calls waiting for a slot.
    pub fn max_in_flight(mut self, max: usize, when_full: WhenFull) -> Self {
        self.config.calls.max_in_flight = max;
        self.config.calls.when_full = when_full;
        self
    }

    /// Time limit of calls the server makes to clients; `None` waits until the answer or the
    /// connection ending. Default 60 s ([`DEFAULT_CALL_TIMEOUT`](crate::DEFAULT_CALL_TIMEOUT));
    /// one call can set its own with [`Remote::with_timeout`](crate::Remote::with_timeout).
    pub fn call_timeout(mut self, t: Option<Duration>) -> Self {
        self.call_timeout = t;
        self
    }

    /// The per-connection configuration, for settings without a shortcut here.
    pub fn config(mut self, f: impl FnOnce(&mut ServerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// A server on `runtime` whose `cons` builds the interface of each connection (upnode's
    /// `upnode(cons)`); it receives the connection's handle, whose
    /// [`remote`](ConnHandle::remote) gives the client's interface once it arrives.
    pub fn build(
        self,
        runtime: Arc<dyn Runtime>,
        cons: impl Fn(ConnHandle) -> Interface + Send + Sync + 'static,
    ) -> Server {
        Server {
            shared: Arc::new(ServerShared {
                runtime,
                cons: Arc::new(cons),
                config: self.config,
                listen_backlog: self
                    .listen_backlog
                    .unwrap_or(upnode_core::config::DEFAULT_LISTEN_BACKLOG),
                budget: Budget::new(
                    self.memory_budget
                        .unwrap_or(upnode_core::config::DEFAULT_SERVER_MEMORY_BUDGET),
                ),
                max_connections: self.max_connections,
                call_timeout: self.call_timeout,
                active: AtomicUsize::new(0),
                next_id: AtomicU64::new(0),
                shut_down: AtomicBool::new(false),
                conns: Mutex::new(HashMap::new()),
                subscribers: Mutex::new(Subscribers::default()),
                idle_waiters: Mutex::new(Vec::new()),
                shutdown_waiters: Mutex::new(Vec::new()),
                handlers: Arc::new(Running::default()),
                listeners: Arc::new(Running::default()),
            }),
        }
    }
}

struct ServerShared {
    runtime: Arc<dyn Runtime>,
    cons: Constructor,
    config: ServerConfig,
    listen_backlog: u32,
    budget: Budget,
    max_connections: Option<usize>,
    call_timeout: Option<Duration>,
    active: AtomicUsize,
    next_id: AtomicU64,
    shut_down: AtomicBool,
    conns: Mutex<HashMap<u64, Weak<ConnShared>>>,
    subscribers: Mutex<Subscribers<ServerEvent>>,
    idle_waiters: Mutex<Vec<oneshot::Sender<()>>>,
    shutdown_waiters: Mutex<Vec<oneshot::Sender<()>>>,
    /// Method handlers running now, on every connection.
    handlers: Arc<Running>,
    /// Listeners whose accept loop (and so listening socket) is still there.
    listeners: Arc<Running>,
}

impl ServerShared {
    fn emit(&self, ev: ServerEvent) {
        lock(&self.subscribers).emit(ev);
    }
}

/// An upnode server: serves any number of connections, each with its own interface from
/// the constructor. Cheap to clone; it runs until [`shutdown`](Self::shutdown) or
/// [`shutdown_now`](Self::shutdown_now) (dropping it stops nothing: listeners and
/// connections keep it alive).
#[derive(Clone)]
pub struct Server {
    shared: Arc<ServerShared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("connections", &self.connections())
            .field("handlers_running", &self.handlers_running())
            .field("shut_down", &self.is_shut_down())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder with upnode's defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Serves one connection over `stream` in a background task. Returns `false` (and
    /// drops the stream) when the connection limit is reached or the server shuts down.
    pub fn serve(&self, stream: BoxStream) -> bool {
        self.serve_from(stream, None)
    }

    /// [`serve`](Self::serve), naming the peer (its address) in the connection's tracing
    /// span.
    pub(crate) fn serve_from(&self, stream: BoxStream, peer: Option<&str>) -> bool {
        let s = &self.shared;
        if s.shut_down.load(Ordering::Acquire) {
            s.emit(ServerEvent::Refused);
            return false;
        }
        let n = s.active.fetch_add(1, Ordering::AcqRel);
        if s.max_connections.is_some_and(|m| n >= m) {
            s.active.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("connection refused: limit reached");
            s.emit(ServerEvent::Refused);
            return false;
        }
        let id = s.next_id.fetch_add(1, Ordering::Relaxed);
        let now = s.runtime.now();
        let inner = ConnInner {
            conn: None,
            handlers: Handlers::with_call_timeout(s.call_timeout),
            remote_waiters: Vec::new(),
            end_reason: None,
        };
        let conn = Arc::new(ConnShared {
            id,
            core: Core::new(inner, s.runtime.clone(), s.call_timeout),
            server: s.clone(),
            evicted: Mutex::new(None),
        });
        let iface = (s.cons)(ConnHandle {
            conn: Arc::downgrade(&conn),
        });
        {
            let mut inner = conn.lock();
            let exports = iface.install(&mut inner.handlers, None);
            inner.conn = Some(ServerConn::new(s.config.clone(), exports, now));
        }
        lock(&s.conns).insert(id, Arc::downgrade(&conn));
        s.emit(ServerEvent::Connected(id));
        tracing::debug!(conn = id, "connection accepted");
        let io = Some((ConnId(0), Io::new(stream)));
        // Everything the connection logs, its calls included, is inside this span.
        let span = tracing::info_span!("upnode.conn", conn = id, peer = peer.unwrap_or("-"));
        s.runtime
            .spawn(Box::pin(drive(conn, None, io).instrument(span)));
        true
    }

    /// How long a client may take to start the conversation (its `methods`, or a TLS
    /// handshake before that).
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.shared.config.handshake_timeout
    }

    /// Connections each TCP listener of this server lets wait to be accepted.
    pub fn listen_backlog(&self) -> u32 {
        self.shared.listen_backlog
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    /// What each open connection holds now, by connection number, in number order.
    pub fn counters(&self) -> Vec<(u64, Counters)> {
        let conns: Vec<Arc<ConnShared>> = lock(&self.shared.conns)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        let mut out: Vec<(u64, Counters)> = conns
            .iter()
            .filter_map(|c| Some((c.id, c.counters()?)))
            .collect();
        out.sort_unstable_by_key(|(id, _)| *id);
        out
    }

    /// Method handlers running now, across every connection (what
    /// [`shutdown`](Self::shutdown) waits for).
    pub fn handlers_running(&self) -> usize {
        self.shared.handlers.count()
    }

    /// Whether [`shutdown`](Self::shutdown) was called (accept loops stop on it).
    pub fn is_shut_down(&self) -> bool {
        self.shared.shut_down.load(Ordering::Acquire)
    }

    /// A stream of the server's events, from now on. A subscriber that falls more than 1024
    /// events behind misses events, and is told how many by a [`ServerEvent::Lagged`] before
    /// the next one it receives.
    #[must_use = "events are only delivered to a receiver that is kept and read"]
    pub fn events(&self) -> mpsc::Receiver<ServerEvent> {
        lock(&self.shared.subscribers).add(1024)
    }

    /// Completes once [`shutdown`](Self::shutdown) has been called (at once if it has):
    /// accept loops stop on it.
    pub fn shut_down_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let rx = {
            let mut waiters = lock(&self.shared.shutdown_waiters);
            if self.is_shut_down() {
                None
            } else {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Some(rx)
            }
        };
        async move {
            if let Some(rx) = rx {
                let _ = rx.await;
            }
        }
    }

    /// An accept loop for any listener, to run as a task: takes connections from `accept`
    /// and hands each to `on_stream` (which usually calls [`serve`](Self::serve), perhaps
    /// after a TLS handshake), until the server shuts down or the future is dropped. Errors
    /// of `accept` (e.g. too many open files) are logged and retried after 50 ms instead of
    /// ending the loop.
    pub fn accept_loop<A, Fut, S>(
        &self,
        mut accept: A,
        on_stream: impl Fn(&Server, S) + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        A: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = std::io::Result<S>> + Send + 'static,
        S: Send + 'static,
    {
        use futures::future::{select, Either};
        let server = self.clone();
        let mut shut_down = Box::pin(self.shut_down_signal());
        async move {
            loop {
                match select(&mut shut_down, Box::pin(accept())).await {
                    Either::Left(_) => break,
                    Either::Right((Ok(stream), _)) => on_stream(&server, stream),
                    Either::Right((Err(e), _)) => {
                        tracing::warn!(error = %e, "accept failed");
                        let rt = &server.shared.runtime;
                        rt.sleep_for(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    }

    /// Graceful shutdown: stops accepting (listeners stop, [`serve`](Self::serve) refuses),
    /// lets the method handlers already running finish and their answers leave, for at most
    /// `deadline`, then closes every connection as [`shutdown_now`](Self::shutdown_now)
    /// does and waits until all have ended. Open connections stay up meanwhile (calls that
    /// arrive then run too, within the same deadline); a handler still running at the
    /// deadline is left to finish on its own, its answer going nowhere.
    ///
    /// ```no_run
    /// # async fn f(server: upnode_async::Server) {
    /// server.shutdown(std::time::Duration::from_secs(10)).await;
    /// # }
    /// ```
    pub async fn shutdown(&self, deadline: Duration) {
        use futures::future::{select, Either};
        self.stop_accepting();
        let rt = &self.shared.runtime;
        let limit = rt.sleep_for(deadline);
        let idle = Box::pin(self.shared.handlers.idle());
        if let Either::Right(_) = select(idle, limit).await {
            tracing::info!(
                running = self.handlers_running(),
                ?deadline,
                "shutdown deadline: closing with handlers still running"
            );
        }
        self.close_all(true).await;
    }

    /// Counts a listener until the returned guard is dropped, which its task does once its
    /// accept loop, and the listening socket with it, is gone: a shutdown waits for that.
    pub(crate) fn count_listener(&self) -> RunningGuard {
        self.shared.listeners.start()
    }

    fn stop_accepting(&self) {
        let s = &self.shared;
        let mut waiters = lock(&s.shutdown_waiters);
        s.shut_down.store(true, Ordering::Release);
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }

    /// Abrupt shutdown: stops accepting (every listener's socket is closed when it returns),
    /// closes every open connection at once (running
    /// handlers lose their answers; callers see the link go down), and waits until all
    /// have ended (each connection's unsent output is flushed for at most
    /// `OutputLimits::close_flush_timeout`, 2 s by default).
    pub async fn shutdown_now(&self) {
        self.close_all(false).await;
    }

    /// Stops accepting, closes every connection (`graceful`: once its queued output has
    /// gone to the transport), and waits until all have ended, and every listener's socket
    /// is closed (a listener's accept loop ends at once on the shutdown signal, or within
    /// the 50 ms it waits after a failed accept).
    async fn close_all(&self, graceful: bool) {
        let s = &self.shared;
        self.stop_accepting();
        s.listeners.idle().await;
        let rx = {
            let (tx, rx) = oneshot::channel();
            lock(&s.idle_waiters).push(tx);
            rx
        };
        let conns: Vec<Arc<ConnShared>> =
            lock(&s.conns).values().filter_map(Weak::upgrade).collect();
        for c in conns {
            if graceful {
                c.close_after_output();
            } else {
                c.close();
            }
        }
        if s.active.load(Ordering::Acquire) == 0 {
            return;
        }
        let _ = rx.await;
    }
}

pub(crate) struct ConnInner {
    /// `None` before the constructor has run and after the connection ended.
    conn: Option<ServerConn>,
    handlers: Handlers,
    remote_waiters: Vec<oneshot::Sender<Option<Remote>>>,
    end_reason: Option<LinkError>,
}

pub(crate) struct ConnShared {
    id: u64,
    core: Core<ConnInner>,
    server: Arc<ServerShared>,
    /// Set when this connection is to end on its task's next turn: by another connection's
    /// task when the budget chose this one, or by a close.
    evicted: Mutex<Option<LinkError>>,
}

/// However the connection ended, its entry in the budget goes with it (its turns keep it
/// while it lives, holding nothing or not).
impl Drop for ConnShared {
    fn drop(&mut self) {
        self.server.budget.end(self.id);
    }
}

/// The server-wide memory budget: what each connection holds (partial input lines,
/// unsent output) as of its last turn, by connection id (ids the server hands out in
/// sequence, so a [`SeqMap`]: every turn of every connection reports here, and this costs
/// no hashing).
struct Budget {
    limit: usize,
    held: Mutex<(usize, SeqMap<usize>)>,
}

impl Budget {
    fn new(limit: usize) -> Budget {
        Budget {
            limit,
            held: Mutex::new((0, SeqMap::default())),
        }
    }

    /// Connection `id` holds `bytes` now. Returns the connections to end, the largest
    /// first, with what each held, until the total is back within the limit.
    ///
    /// A connection's entry stays while it lives, zero or not (what it holds comes and goes
    /// with each answer): [`end`](Self::end) takes it out.
    fn update(&self, id: u64, bytes: usize) -> Vec<(u64, usize)> {
        let mut guard = lock(&self.held);
        let (total, map) = &mut *guard;
        let old = match map.get_mut(id) {
            Some(held) => std::mem::replace(held, bytes),
            None => {
                map.insert(id, bytes);
                0
            }
        };
        *total = *total + bytes - old;
        if *total <= self.limit {
            return Vec::new();
        }
        // Past the limit (rare): the connections holding the most go first.
        let mut by_size = map.take_all();
        by_size.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut out = Vec::new();
        for (k, v) in by_size {
            if *total > self.limit && v > 0 {
                *total -= v;
                out.push((k, v));
            } else {
                map.insert(k, v);
            }
        }
        out
    }

    /// Connection `id` has ended (or is ending): it holds nothing and has no entry.
    fn end(&self, id: u64) {
        let mut guard = lock(&self.held);
        let (total, map) = &mut *guard;
        *total -= map.remove(id).unwrap_or(0);
    }

    /// Entries held, and the total they hold.
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let guard = lock(&self.held);
        (guard.1.len(), guard.0)
    }
}

impl ConnShared {
    fn lock(&self) -> MutexGuard<'_, ConnInner> {
        self.core.lock()
    }

    fn wake(&self) {
        self.core.wake();
    }

    fn counters(&self) -> Option<Counters> {
        let inner = self.lock();
        let conn = inner.conn.as_ref()?;
        Some(Counters {
            link: conn.counters(),
            functions: inner.handlers.len(),
        })
    }

    /// Ends the connection now: output not yet handed to the transport is dropped.
    fn close(&self) {
        let now = self.core.runtime.now();
        if let Some(c) = self.lock().conn.as_mut() {
            c.close(now);
        }
        self.wake();
    }

    /// Ends the connection on the driver's next turn, after the output queued so far (an
    /// answer a handler just gave) has gone to the transport, which flushes it.
    fn close_after_output(&self) {
        let mut evicted = lock(&self.evicted);
        if evicted.is_none() {
            *evicted = Some(LinkError::Local(upnode_core::LocalError::Closed));
        }
        drop(evicted);
        self.wake();
    }
}

impl PeerOps for ConnShared {
    fn call(
        &self,
        conn: ConnId,
        target: Target,
        args: CallArgs,
        attach: Attach,
    ) -> Result<(), CallError> {
        driver::call(self, conn, target, args, attach)
    }

    fn release(&self, conn: ConnId, fns: &[RemoteFn]) {
        // Runs in `Drop` of remote handles, possibly while this thread holds `inner` (see
        // the client's `release`): the core queues them for the driver.
        self.core.release(conn, fns);
    }

    fn register(&self, conn: ConnId, handler: Handler) -> LocalFn {
        self.lock().handlers.insert(handler, Some(conn))
    }

    fn call_timeout(&self) -> Option<Duration> {
        self.core.call_timeout
    }

    fn track_handler(&self) -> Option<RunningGuard> {
        Some(self.server.handlers.start())
    }
}

/// One served connection, as its constructor sees it.
#[derive(Clone)]
pub struct ConnHandle {
    conn: Weak<ConnShared>,
}

impl std::fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle")
            .field("id", &self.id())
            .finish()
    }
}

impl ConnHandle {
    /// The client's interface, once its `methods` arrives; `None` if the connection ends
    /// first.
    pub fn remote(&self) -> impl Future<Output = Option<Remote>> + Send + 'static {
        let rx = self.conn.upgrade().map(|c| {
            let (tx, rx) = oneshot::channel();
            let mut inner = c.lock();
            let peer: Arc<dyn PeerOps> = c.clone();
            match inner.conn.as_ref().and_then(|s| s.remote().cloned()) {
                Some(v) => {
                    let _ = tx.send(Some(Remote::borrowed(v, ConnId(0), Arc::downgrade(&peer))));
                }
                None => inner.remote_waiters.push(tx),
            }
            rx
        });
        async move {
            match rx {
                Some(rx) => rx.await.ok().flatten(),
                None => None,
            }
        }
    }

    /// The connection's number (as in [`ServerEvent`]).
    pub fn id(&self) -> Option<u64> {
        self.conn.upgrade().map(|c| c.id)
    }

    /// What this connection holds now (see [`Client::counters`](crate::Client::counters));
    /// `None` once it has ended.
    pub fn counters(&self) -> Option<Counters> {
        self.conn.upgrade().and_then(|c| c.counters())
    }

    /// Ends this connection.
    pub fn close(&self) {
        if let Some(c) = self.conn.upgrade() {
            c.close();
        }
    }
}

impl Machine for ServerConn {
    fn release(&mut self, _conn: ConnId, f: RemoteFn) {
        ServerConn::release(self, f);
    }

    fn poll_event(&mut self) -> Option<LinkEvent> {
        ServerConn::poll_event(self)
    }

    fn poll_transmit(&mut self) -> Option<(ConnId, Bytes)> {
        ServerConn::poll_transmit(self).map(|b| (ConnId(0), b))
    }

    fn poll_transmit_full(&mut self) -> Option<(ConnId, Bytes)> {
        ServerConn::poll_transmit_full(self).map(|b| (ConnId(0), b))
    }

    fn calls_in_flight(&self) -> usize {
        ServerConn::calls_in_flight(self)
    }

    fn reuse_output(&mut self, _conn: ConnId, done: Bytes) {
        ServerConn::reuse_output(self, done);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        ServerConn::poll_timeout(self)
    }

    fn handle_unsent(&mut self, _conn: ConnId, now: Instant, unsent: usize) {
        ServerConn::handle_unsent(self, now, unsent);
    }

    fn is_input_paused(&self) -> bool {
        ServerConn::is_input_paused(self)
    }

    fn close_flush_timeout(&self) -> Duration {
        self.output_limits().close_flush_timeout
    }

    fn call(
        &mut self,
        _conn: ConnId,
        now: Instant,
        target: Target,
        args: CallArgs,
        reply: Option<LocalFn>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, SendError> {
        match reply {
            Some(f) => self
                .call_with_reply(now, target, args, f, timeout)
                .map(Some),
            None => ServerConn::call(self, now, target, args, timeout),
        }
    }

    fn handle(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Timeout => self.handle_timeout(now),
            Input::Data(_, bytes) => self.handle_input(now, bytes),
            Input::Closed(_, e) => self.handle_transport_closed(now, e),
            // A served connection is open from the start.
            Input::Connected(_) | Input::ConnectFailed(..) => {}
        }
    }
}

impl Side for ConnShared {
    type Machine = ServerConn;
    type Inner = ConnInner;
    type Todo = std::convert::Infallible;

    fn core(&self) -> &Core<ConnInner> {
        &self.core
    }

    fn handlers(inner: &mut ConnInner) -> &mut Handlers {
        &mut inner.handlers
    }

    fn split(inner: &mut ConnInner) -> Option<(&mut ServerConn, &mut Handlers)> {
        Some((inner.conn.as_mut()?, &mut inner.handlers))
    }

    fn on_event(
        self: &Arc<Self>,
        inner: &mut ConnInner,
        ev: LinkEvent,
        weak: &Weak<dyn PeerOps>,
        _todo: &mut Vec<Self::Todo>,
    ) {
        match ev {
            LinkEvent::Remote { conn } => {
                let v = inner
                    .conn
                    .as_ref()
                    .and_then(|c| c.remote().cloned())
                    .unwrap_or_default();
                for w in inner.remote_waiters.drain(..) {
                    let _ = w.send(Some(Remote::borrowed(v.clone(), conn, weak.clone())));
                }
            }
            LinkEvent::Error(e) => {
                tracing::warn!(conn = self.id, error = %e, "connection error");
                self.server.emit(ServerEvent::Error(self.id, e));
            }
            LinkEvent::Down { reason } => inner.end_reason = Some(reason),
            _ => {}
        }
    }

    /// A connection's events go to the server's subscribers as they happen (`act`, `ended`).
    fn publish(&self, _inner: &mut ConnInner) {}

    fn end_turn(&self, inner: &mut ConnInner, closed: bool, now: Instant) {
        if closed {
            self.server.budget.end(self.id);
            inner.handlers.clear();
            inner.conn = None;
            for w in inner.remote_waiters.drain(..) {
                let _ = w.send(None);
            }
            return;
        }
        let Some(conn) = inner.conn.as_mut() else {
            return;
        };
        if let Some(reason) = lock(&self.evicted).take() {
            conn.close_for(now, reason);
            self.server.budget.end(self.id);
            self.wake();
            return;
        }
        let budget = self.server.budget.limit;
        for (victim, held) in self.server.budget.update(self.id, conn.memory_held()) {
            let reason = LinkError::OverBudget { held, budget };
            tracing::warn!(
                conn = victim,
                held,
                budget,
                "memory budget spent: ending the connection holding the most"
            );
            if victim == self.id {
                conn.close_for(now, reason);
                self.wake();
                continue;
            }
            let other = lock(&self.server.conns)
                .get(&victim)
                .and_then(Weak::upgrade);
            if let Some(other) = other {
                *lock(&other.evicted) = Some(reason);
                other.wake();
            }
        }
    }

    fn act(self: &Arc<Self>, todo: Self::Todo) {
        match todo {}
    }

    fn handler_failed(self: &Arc<Self>, msg: String) {
        tracing::warn!(conn = self.id, "{msg}");
        self.server.emit(ServerEvent::Handler(self.id, msg));
    }

    fn ended(self: &Arc<Self>) {
        let (id, server) = (self.id, &self.server);
        let reason = self
            .lock()
            .end_reason
            .take()
            .unwrap_or(LinkError::TransportClosed { detail: None });
        tracing::debug!(conn = id, %reason, "connection ended");
        lock(&server.conns).remove(&id);
        let last = server.active.fetch_sub(1, Ordering::AcqRel) == 1;
        server.emit(ServerEvent::Disconnected(id, reason));
        if last {
            let waiters = std::mem::take(&mut *lock(&server.idle_waiters));
            for w in waiters {
                let _ = w.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_connections_budget_entry_stays_while_it_lives_and_goes_when_it_ends() {
        let budget = Budget::new(1000);
        assert!(budget.update(1, 100).is_empty());
        assert_eq!(budget.held(), (1, 100));
        // What it holds comes and goes with each answer; the entry stays.
        assert!(budget.update(1, 0).is_empty());
        assert_eq!(budget.held(), (1, 0));
        assert!(budget.update(1, 40).is_empty());
        budget.end(1);
        assert_eq!(budget.held(), (0, 0));
        // Ending twice (the end of the turn, then the end of the task) is harmless.
        budget.end(1);
        assert_eq!(budget.held(), (0, 0));
    }

    #[test]
    fn past_the_limit_the_connections_holding_the_most_go_and_none_holding_nothing() {
        let budget = Budget::new(100);
        assert!(budget.update(1, 60).is_empty());
        assert!(budget.update(2, 30).is_empty());
        assert!(budget.update(3, 0).is_empty());
        assert_eq!(budget.update(3, 50), vec![(1, 60)]);
        assert_eq!(budget.held(), (2, 80));
        // Equal holdings: the lower id first.
        assert_eq!(budget.update(5, 50), vec![(3, 50)]);
        assert_eq!(budget.held(), (2, 80));
        // The one whose report takes the total over may be the one to go.
        assert_eq!(budget.update(2, 120), vec![(2, 120)]);
        assert_eq!(budget.held(), (1, 50));
        // One holding nothing is never chosen, whatever the others hold.
        let budget = Budget::new(10);
        assert!(budget.update(1, 0).is_empty());
        assert_eq!(budget.update(2, 50), vec![(2, 50)]);
        assert_eq!(budget.held(), (1, 0));
    }

    #[test]
    fn a_million_connections_opened_and_closed_leave_the_budget_empty() {
        let budget = Budget::new(usize::MAX);
        for id in 0..1_000_000u64 {
            budget.update(id, 10);
            budget.update(id, 0);
            if id % 2 == 0 {
                // Some end while holding something.
                budget.update(id, 25);
            }
            budget.end(id);
        }
        assert_eq!(budget.held(), (0, 0));
    }

    #[test]
    fn idle_waits_for_every_handler_even_one_started_after_the_count_reached_zero() {
        let running = Arc::new(Running::default());
        assert_eq!(running.idle().now_or_never(), Some(()), "nothing runs");
        let a = running.start();
        let b = running.start();
        let mut idle = Box::pin(running.idle());
        assert_eq!(idle.as_mut().now_or_never(), None);
        drop(a);
        assert_eq!(idle.as_mut().now_or_never(), None, "b still runs");
        drop(b);
        // The count reached zero and woke the waiter, but a handler starts before it looks.
        let c = running.start();
        assert_eq!(idle.as_mut().now_or_never(), None, "c runs");
        drop(c);
        assert_eq!(idle.as_mut().now_or_never(), Some(()));
    }
}
