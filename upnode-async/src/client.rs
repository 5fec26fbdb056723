//! The reconnecting client: a handle plus one background task driving `ClientLink`.

use crate::driver::{self, drive, Core, Counters, Input, Machine, Side, Subscribers};
use crate::error::{CallError, ConnectError, GiveUp, HandlerError, UpError};
use crate::handlers::Handlers;
use crate::interface::Interface;
use crate::peer::{Attach, Handler, PeerOps, Remote};
use crate::runtime::{Connector, Runtime};
use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tracing::Instrument;
use upnode_core::config::{ClientConfig, ReconnectPolicy, WhenFull};
use upnode_core::link::{
    CallId, ClientLink, ConnId, LinkError, LinkEvent, LinkState, SendError, TxId,
};
use upnode_core::{CallArgs, LocalFn, RemoteFn, Target};

/// What a client reports on its event stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The link is up (queued transactions already ran).
    Up,
    /// The link went down.
    Down(LinkError),
    /// The next connection attempt starts after `delay`.
    Reconnect {
        /// Which reconnect this is, counted from 1 since the backoff last started afresh
        /// (after a connection that stayed up long enough, the count starts again at 1).
        attempt: u32,
        /// Wait before it.
        delay: Duration,
    },
    /// A heartbeat was answered.
    Ping(Duration),
    /// Something went wrong (see [`LinkError::is_remote`] for whose fault); or a handler of
    /// ours failed (`Handler`).
    Error(LinkError),
    /// One of our handlers returned an error or panicked.
    Handler(String),
    /// Closed for good.
    Closed,
    /// This subscriber fell a full channel behind
    /// ([`ClientBuilder::event_capacity`]) and missed `missed` events before the next one.
    Lagged {
        /// How many events it missed.
        missed: u64,
    },
}

impl crate::driver::Lagging for ClientEvent {
    fn lagged(missed: u64) -> Self {
        ClientEvent::Lagged { missed }
    }
}

type ConnectStep =
    Arc<dyn Fn(Remote) -> BoxFuture<'static, Result<Remote, HandlerError>> + Send + Sync>;

/// Builds a [`Client`]. Every setting defaults to upnode's behaviour.
pub struct ClientBuilder {
    config: ClientConfig,
    exports: Interface,
    on_connect: Option<ConnectStep>,
    call_timeout: Option<Duration>,
    event_capacity: usize,
    subscribers: Vec<mpsc::Sender<ClientEvent>>,
    /// Whether the user fixed the jitter's seed (else it is drawn at connect).
    seeded: bool,
    /// Where it connects, for the client's tracing span.
    peer: Option<String>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("exports", &self.exports)
            .field("on_connect", &self.on_connect.is_some())
            .field("call_timeout", &self.call_timeout)
            .field("seeded", &self.seeded)
            .finish_non_exhaustive()
    }
}

/// A seed for the reconnect jitter from the operating system's randomness (std's hash
/// keys, which are drawn from it once per thread and differ for every `RandomState`).
fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            config: ClientConfig::default(),
            exports: Interface::new(),
            on_connect: None,
            call_timeout: Some(crate::DEFAULT_CALL_TIMEOUT),
            event_capacity: 1024,
            subscribers: Vec::new(),
            seeded: false,
            peer: None,
        }
    }
}

impl ClientBuilder {
    /// Heartbeat interval; `None` disables pings (upnode's `ping: 0`). Default 10 s.
    pub fn ping(mut self, interval: Option<Duration>) -> Self {
        self.config.ping_interval = interval;
        self
    }

    /// How long a ping's answer may take before the link is declared dead (upnode's
    /// `timeout` option). Default 5 s.
    pub fn ping_timeout(mut self, t: Duration) -> Self {
        self.config.ping_timeout = t;
        self
    }

    /// How long the server's `methods` may take after connecting. Default 10 s; never more
    /// than ping interval + ping timeout while the heartbeat runs
    /// ([`ClientConfig::liveness_bound`]).
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.config.handshake_timeout = t;
        self
    }

    /// How long opening a transport may take. Default 10 s; never more than ping interval +
    /// ping timeout while the heartbeat runs ([`ClientConfig::liveness_bound`]).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.config.connect_timeout = t;
        self
    }

    /// Delays between attempts. Default: a fixed 1 s, as upnode.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.config.reconnect = policy;
        self
    }

    /// Fixes the seed of the reconnect jitter, for delays that repeat from run to run. By
    /// default every client draws its own seed from the operating system's randomness (so
    /// clients started together do not reconnect in lockstep).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self.seeded = true;
        self
    }

    /// Most transactions waiting at once. Default 1 000 000.
    pub fn queue_cap(mut self, cap: usize) -> Self {
        self.config.queue_cap = cap;
        self
    }

    /// Most calls waiting for an answer at once, and what a call does past that. Default
    /// 100 000 ([`DEFAULT_MAX_IN_FLIGHT`](upnode_core::config::DEFAULT_MAX_IN_FLIGHT)),
    /// further calls waiting for a slot.
    pub fn max_in_flight(mut self, max: usize, when_full: WhenFull) -> Self {
        self.config.calls.max_in_flight = max;
        self.config.calls.when_full = when_full;
        self
    }

    /// Time limit of every call made through this client (and through the remote objects it
    /// hands out); `None` waits until the answer or the link going down. Default 60 s
    /// ([`DEFAULT_CALL_TIMEOUT`](crate::DEFAULT_CALL_TIMEOUT)); one call can set its own
    /// with [`Remote::with_timeout`].
    pub fn call_timeout(mut self, t: Option<Duration>) -> Self {
        self.call_timeout = t;
        self
    }

    /// What the client exports to the server (the link adds `ping`).
    pub fn exports(mut self, iface: Interface) -> Self {
        self.exports = iface;
        self
    }

    /// A stream of the client's events from its very start (so the first `Up` cannot be
    /// missed, as it can by [`Client::events`] called after connecting on a multi-threaded
    /// runtime).
    #[must_use = "events are only delivered to a receiver that is kept and read"]
    pub fn subscribe(&mut self) -> mpsc::Receiver<ClientEvent> {
        let (tx, rx) = mpsc::channel(self.event_capacity);
        self.subscribers.push(tx);
        rx
    }

    /// The link's full configuration, for settings without a shortcut here.
    /// A seed set here fixes the jitter as [`seed`](Self::seed) does.
    pub fn config(mut self, f: impl FnOnce(&mut ClientConfig)) -> Self {
        let seed = self.config.seed;
        f(&mut self.config);
        self.seeded |= self.config.seed != seed;
        self
    }

    /// The connect step, run on every (re)connection once the server's interface arrives:
    /// it returns what transactions receive from then on (upnode's
    /// `conn.emit('up', obj)`). An error (or panic) closes the transport and reconnects;
    /// a [`GiveUp`] error is final: the client closes, and [`Client::up`] and the other
    /// waiting transactions fail with [`UpError::Closed`] carrying its reason.
    ///
    /// ```no_run
    /// # fn f(b: upnode_async::ClientBuilder) -> upnode_async::ClientBuilder {
    /// use upnode_async::{GiveUp, RpcError};
    /// b.on_connect(|remote| async move {
    ///     // auth(user, pass, cb) answers cb("ACCESS DENIED") or cb(null, session).
    ///     match remote.rpc_remote::<_, String>("auth", &("moo", "hax")).await {
    ///         Ok(session) => Ok(session),
    ///         Err(RpcError::Remote(denied)) => Err(GiveUp::new(denied).into()),
    ///         Err(e) => Err(e.into()),
    ///     }
    /// })
    /// # }
    /// ```
    pub fn on_connect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Remote) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Remote, HandlerError>> + Send + 'static,
    {
        self.on_connect = Some(Arc::new(move |r| Box::pin(f(r))));
        self.config.connect_step = true;
        self
    }

    /// Names where the client connects, in its tracing span.
    pub(crate) fn peer_label(mut self, peer: &str) -> Self {
        self.peer = Some(peer.to_owned());
        self
    }

    /// How many events a subscriber ([`subscribe`](Self::subscribe), [`Client::events`]) may
    /// fall behind before it misses some (it is then told how many with
    /// [`ClientEvent::Lagged`]). Default 1024; at least 1.
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n.max(1);
        self
    }

    /// Starts the client: it connects through `connector` in the background (on `runtime`)
    /// and reconnects until closed. Returns at once, or with an error (and nothing
    /// started) if the reconnect policy is invalid. The adapters' `connect_*` functions
    /// call [`connect_over`](Self::connect_over), which also reports bad addresses.
    pub fn connect_with(
        mut self,
        runtime: Arc<dyn Runtime>,
        connector: Arc<dyn Connector>,
    ) -> Result<Client, upnode_core::config::PolicyError> {
        if !self.seeded {
            self.config.seed = os_seed();
        }
        let now = runtime.now();
        let mut handlers = Handlers::with_call_timeout(self.call_timeout);
        let exports = self.exports.install(&mut handlers, None);
        let seed = self.config.seed;
        let link = ClientLink::new(self.config, exports, now)?;
        let inner = Inner {
            link,
            handlers,
            waiters: Default::default(),
            up_remote: None,
            subscribers: Subscribers::from(self.subscribers),
            event_capacity: self.event_capacity,
            closed: false,
            close_waiters: Vec::new(),
            live_conn: None,
            pending: Vec::new(),
            last_error: None,
            final_cause: None,
            user_closed: false,
        };
        let shared = Arc::new(Shared {
            core: Core::new(inner, runtime.clone(), self.call_timeout),
            on_connect: self.on_connect,
            seed,
        });
        // Everything the client logs, its handlers' calls included, is inside this span.
        let span = tracing::info_span!("upnode.client", peer = self.peer.as_deref().unwrap_or("-"));
        runtime.spawn(Box::pin(
            drive(shared.clone(), Some(connector), None).instrument(span),
        ));
        Ok(Client {
            handle: Arc::new(Handle { shared }),
        })
    }

    /// [`connect_with`](Self::connect_with), its error as a [`ConnectError`].
    pub fn connect_over(
        self,
        runtime: Arc<dyn Runtime>,
        connector: Arc<dyn Connector>,
    ) -> Result<Client, ConnectError> {
        Ok(self.connect_with(runtime, connector)?)
    }
}

pub(crate) enum Waiter {
    Future(oneshot::Sender<Result<Remote, UpError>>),
    Closure(Box<dyn FnOnce(Option<Remote>) + Send>),
    /// An at-least-once transaction: told the up value every time it becomes ready (again
    /// after each drop of the link before it finished), or why its wait failed.
    Repeat(mpsc::UnboundedSender<Result<Remote, UpError>>),
}

/// How a transaction's wait ended.
pub(crate) enum Outcome {
    Ready(Option<Remote>),
    Failed(UpError),
}

impl Outcome {
    fn into_result(self) -> Result<Remote, UpError> {
        match self {
            Outcome::Ready(Some(r)) => Ok(r),
            Outcome::Ready(None) => Err(UpError::Closed { cause: None }),
            Outcome::Failed(e) => Err(e),
        }
    }
}

pub(crate) struct Inner {
    link: ClientLink,
    handlers: Handlers,
    waiters: std::collections::HashMap<TxId, Waiter>,
    up_remote: Option<Remote>,
    subscribers: Subscribers<ClientEvent>,
    event_capacity: usize,
    closed: bool,
    close_waiters: Vec<oneshot::Sender<()>>,
    /// The connection whose functions the handlers hold.
    live_conn: Option<ConnId>,
    /// Events of this turn, emitted at its end.
    pending: Vec<ClientEvent>,
    /// The last failure since the link was last up.
    last_error: Option<LinkError>,
    /// Why the client closed, when a connect step gave up.
    final_cause: Option<LinkError>,
    /// Whether the user closed the client.
    user_closed: bool,
}

impl Inner {
    /// Why the client is closed, as waiting transactions are told.
    fn close_cause(&self) -> Option<LinkError> {
        if self.user_closed {
            return None;
        }
        self.final_cause.clone().or_else(|| self.last_error.clone())
    }
}

pub(crate) struct Shared {
    core: Core<Inner>,
    on_connect: Option<ConnectStep>,
    seed: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.core.lock()
    }

    fn wake(&self) {
        self.core.wake();
    }

    fn now(&self) -> Instant {
        self.core.runtime.now()
    }
}

impl PeerOps for Shared {
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
        // This runs in `Drop` of remote handles, which can happen while this very thread
        // holds `inner` (the driver dropping an up value, a reply nobody waits for, or a
        // handler's closure): the core queues them for the driver's next turn.
        self.core.release(conn, fns);
    }

    fn register(&self, conn: ConnId, handler: Handler) -> LocalFn {
        let mut inner = self.lock();
        if inner.link.conn() != Some(conn) {
            // A handle of a connection that is gone: nothing can call this function any
            // more, and that connection's functions may have been swept already, so
            // storing it would keep it (and whatever it captures) until close.
            let dead = inner.handlers.unused_key();
            drop(inner);
            drop(handler);
            return dead;
        }
        inner.handlers.insert(handler, Some(conn))
    }

    fn call_timeout(&self) -> Option<Duration> {
        self.core.call_timeout
    }
}

/// A reconnecting upnode client. Cheap to clone; all clones drive the same link, and when
/// the last clone is dropped the client closes (as [`close`](Self::close), without waiting).
///
/// Transactions ([`up`](Self::up), [`up_timeout`](Self::up_timeout),
/// [`transaction`](Self::transaction)) wait until the link is up and then receive the up
/// value: the server's interface, or what the connect step returned.
#[derive(Clone)]
#[must_use = "a Client closes when its last clone is dropped"]
pub struct Client {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state())
            .field("seed", &self.seed())
            .finish_non_exhaustive()
    }
}

/// Closes the link when the last [`Client`] clone goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let now = self.shared.now();
        {
            let mut inner = self.shared.lock();
            inner.user_closed = true;
            inner.link.close(now);
        }
        self.shared.wake();
    }
}

impl Client {
    /// A builder with upnode's defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    fn transact(
        &self,
        timeout: Option<Duration>,
        waiter: Waiter,
    ) -> Result<TxId, (UpError, Waiter)> {
        let retry = matches!(waiter, Waiter::Repeat(_));
        let now = self.handle.shared.now();
        let mut inner = self.handle.shared.lock();
        match inner.link.transact(now, timeout, retry) {
            Ok(tx) => {
                inner.waiters.insert(tx, waiter);
                drop(inner);
                self.handle.shared.wake();
                Ok(tx)
            }
            Err(upnode_core::link::TransactError::QueueFull { .. }) => {
                Err((UpError::QueueFull, waiter))
            }
            Err(_) => {
                let cause = inner.close_cause();
                Err((UpError::Closed { cause }, waiter))
            }
        }
    }

    /// Waits until the link is up (at once if it is) and returns the up value. Fails only
    /// when the client closes first ([`UpError::Closed`], with the failure that closed it)
    /// or its queue is full.
    pub async fn up(&self) -> Result<Remote, UpError> {
        self.wait(None).await
    }

    /// Like [`up`](Self::up), but fails with [`UpError::TimedOut`] if the link is not up
    /// within `t` (the original's `up(t, fn)` calling `fn()` with nothing), carrying the last
    /// failure seen (a refused connection, a failing connect step…). The time covers only
    /// the wait.
    pub async fn up_timeout(&self, t: Duration) -> Result<Remote, UpError> {
        self.wait(Some(t)).await
    }

    async fn wait(&self, t: Option<Duration>) -> Result<Remote, UpError> {
        let (tx, rx) = oneshot::channel();
        let id = match self.transact(t, Waiter::Future(tx)) {
            Ok(id) => id,
            Err((e, _)) => return Err(e),
        };
        // Dropping this future before the answer withdraws the transaction.
        let mut guard = CancelOnDrop {
            shared: Arc::downgrade(&self.handle.shared),
            tx: Some(id),
        };
        let r = rx.await.unwrap_or(Err(UpError::Closed { cause: None }));
        guard.tx = None;
        r
    }

    /// An **at-least-once** transaction: once the link is up, runs `f` with the up value; if
    /// the link drops before `f`'s future completes (its calls fail with
    /// [`CallError::LinkDown`] or [`CallError::NotConnected`]), `f` runs again on the next
    /// connection, and so on until it completes. Its result is returned as `Ok(result)`; a
    /// failure other than the link's ends it too and is returned as `Ok(Err(_))`.
    ///
    /// The peer may therefore run the work more than once (the link may drop after the peer
    /// ran a call and before its answer came back): make it idempotent, or count on
    /// duplicates. [`up`](Self::up) and [`transaction`](Self::transaction) are at most
    /// once. `timeout` bounds only the first wait for the link ([`UpError::TimedOut`]);
    /// dropping the future withdraws the transaction.
    ///
    /// ```no_run
    /// # async fn f(client: upnode_async::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let (n,): (u64,) = client
    ///     .at_least_once(None, |remote| async move { remote.call("increment", &("key",)).await })
    ///     .await??;
    /// # Ok(()) }
    /// ```
    pub async fn at_least_once<F, Fut, T>(
        &self,
        timeout: Option<Duration>,
        f: F,
    ) -> Result<Result<T, CallError>, UpError>
    where
        F: Fn(Remote) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let (tx, mut rx) = mpsc::unbounded();
        let id = match self.transact(timeout, Waiter::Repeat(tx)) {
            Ok(id) => id,
            Err((e, _)) => return Err(e),
        };
        // However this ends (done, failed, dropped), the link forgets the transaction.
        let _finish = FinishOnDrop {
            shared: Arc::downgrade(&self.handle.shared),
            tx: id,
        };
        loop {
            match rx.next().await {
                Some(Ok(remote)) => match f(remote).await {
                    Err(CallError::LinkDown | CallError::NotConnected) => continue,
                    done => return Ok(done),
                },
                Some(Err(e)) => return Err(e),
                None => return Err(UpError::Closed { cause: None }),
            }
        }
    }

    /// The closure form, as upnode's `up(fn)` / `up(t, fn)`: `f` runs with the up value when
    /// the link is up, or with `None` when `timeout` passes or the client closes first.
    /// Exactly one call. `f` runs on the client's driver task, in transaction order (so calls
    /// it makes leave in that order): keep it short and never block in it.
    pub fn transaction(
        &self,
        timeout: Option<Duration>,
        f: impl FnOnce(Option<Remote>) + Send + 'static,
    ) -> Result<(), UpError> {
        match self.transact(timeout, Waiter::Closure(Box::new(f))) {
            Ok(_) => Ok(()),
            Err((e, Waiter::Closure(f))) => {
                f(None);
                Err(e)
            }
            Err((e, _)) => Err(e),
        }
    }

    /// A stream of the client's events, from now on; it ends after [`ClientEvent::Closed`]
    /// (at once if the client is already closed). A subscriber that falls more than
    /// [`event_capacity`](ClientBuilder::event_capacity) (1024) behind misses events, and is
    /// told how many by a [`ClientEvent::Lagged`] before the next one it receives.
    #[must_use = "events are only delivered to a receiver that is kept and read"]
    pub fn events(&self) -> mpsc::Receiver<ClientEvent> {
        let mut inner = self.handle.shared.lock();
        let capacity = inner.event_capacity;
        if inner.closed {
            // A stream that has already ended.
            return mpsc::channel(capacity).1;
        }
        inner.subscribers.add(capacity)
    }

    /// The seed of this client's reconnect jitter (drawn from the operating system unless
    /// fixed with [`ClientBuilder::seed`]).
    pub fn seed(&self) -> u64 {
        self.handle.shared.seed
    }

    /// Where the link is.
    pub fn state(&self) -> LinkState {
        self.handle.shared.lock().link.state()
    }

    /// What the client holds now: callbacks each way on the current connection, calls in
    /// flight and waiting for a slot, transactions queued, and functions registered. An
    /// idle client holds its exports, the server's interface and nothing else; anything
    /// that keeps growing is a leak.
    pub fn counters(&self) -> Counters {
        let inner = self.handle.shared.lock();
        Counters {
            link: inner.link.counters(),
            functions: inner.handlers.len(),
        }
    }

    /// Closes the link for good and waits until the background task has finished: waiting
    /// transactions resolve as closed, calls in flight fail, no reconnect follows.
    pub async fn close(&self) {
        let now = self.handle.shared.now();
        let rx = {
            let mut inner = self.handle.shared.lock();
            if inner.closed {
                return;
            }
            inner.user_closed = true;
            inner.link.close(now);
            let (tx, rx) = oneshot::channel();
            inner.close_waiters.push(tx);
            rx
        };
        self.handle.shared.wake();
        let _ = rx.await;
    }
}

/// Ends an at-least-once transaction with the link when its future ends.
struct FinishOnDrop {
    shared: Weak<Shared>,
    tx: TxId,
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let Some(s) = self.shared.upgrade() {
            let gone = {
                let mut inner = s.lock();
                inner.link.finish(self.tx);
                inner.waiters.remove(&self.tx)
            };
            drop(gone);
            s.wake();
        }
    }
}

struct CancelOnDrop {
    shared: Weak<Shared>,
    tx: Option<TxId>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let (Some(s), Some(tx)) = (self.shared.upgrade(), self.tx) {
            let mut inner = s.lock();
            inner.link.cancel(tx);
            inner.waiters.remove(&tx);
        }
    }
}

/// Work decided under the lock, done after it.
pub(crate) enum Todo {
    Resolve(Waiter, Outcome),
    ConnectStep(ConnId, Remote),
}

impl Machine for ClientLink {
    fn release(&mut self, conn: ConnId, f: RemoteFn) {
        ClientLink::release(self, conn, f);
    }

    fn poll_event(&mut self) -> Option<LinkEvent> {
        ClientLink::poll_event(self)
    }

    fn poll_transmit(&mut self) -> Option<(ConnId, Bytes)> {
        ClientLink::poll_transmit(self)
    }

    fn poll_transmit_full(&mut self) -> Option<(ConnId, Bytes)> {
        ClientLink::poll_transmit_full(self)
    }

    fn calls_in_flight(&self) -> usize {
        ClientLink::calls_in_flight(self)
    }

    fn reuse_output(&mut self, conn: ConnId, done: Bytes) {
        ClientLink::reuse_output(self, conn, done);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        ClientLink::poll_timeout(self)
    }

    fn handle_unsent(&mut self, conn: ConnId, now: Instant, unsent: usize) {
        ClientLink::handle_unsent(self, conn, now, unsent);
    }

    fn is_input_paused(&self) -> bool {
        ClientLink::is_input_paused(self)
    }

    fn close_flush_timeout(&self) -> Duration {
        self.output_limits().close_flush_timeout
    }

    fn call(
        &mut self,
        conn: ConnId,
        now: Instant,
        target: Target,
        args: CallArgs,
        reply: Option<LocalFn>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, SendError> {
        match reply {
            Some(f) => self
                .call_with_reply(conn, now, target, args, f, timeout)
                .map(Some),
            None => ClientLink::call(self, conn, now, target, args, timeout),
        }
    }

    fn handle(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Timeout => self.handle_timeout(now),
            Input::Connected(conn) => self.handle_connected(conn, now),
            Input::ConnectFailed(conn, e) => self.handle_connect_failed(conn, now, e),
            Input::Data(conn, bytes) => self.handle_input(conn, now, bytes),
            Input::Closed(conn, e) => self.handle_transport_closed(conn, now, e),
        }
    }
}

impl Side for Shared {
    type Machine = ClientLink;
    type Inner = Inner;
    type Todo = Todo;

    fn core(&self) -> &Core<Inner> {
        &self.core
    }

    fn handlers(inner: &mut Inner) -> &mut Handlers {
        &mut inner.handlers
    }

    fn split(inner: &mut Inner) -> Option<(&mut ClientLink, &mut Handlers)> {
        Some((&mut inner.link, &mut inner.handlers))
    }

    fn on_event(
        self: &Arc<Self>,
        inner: &mut Inner,
        ev: LinkEvent,
        weak: &Weak<dyn PeerOps>,
        todo: &mut Vec<Todo>,
    ) {
        match ev {
            LinkEvent::Remote { conn } => {
                let iface = inner.link.remote().cloned().unwrap_or_default();
                let remote = Remote::borrowed(iface, conn, weak.clone());
                if self.on_connect.is_some() {
                    todo.push(Todo::ConnectStep(conn, remote));
                } else {
                    inner.up_remote = Some(remote);
                }
            }
            LinkEvent::Up { conn } => {
                tracing::info!(conn = conn.0, "link up");
                inner.last_error = None;
                inner.pending.push(ClientEvent::Up);
            }
            LinkEvent::Down { reason } => {
                tracing::info!(%reason, "link down");
                inner.last_error = Some(reason.clone());
                inner.pending.push(ClientEvent::Down(reason));
            }
            LinkEvent::Reconnecting { attempt, delay } => {
                tracing::info!(attempt, ?delay, "reconnecting");
                inner
                    .pending
                    .push(ClientEvent::Reconnect { attempt, delay });
            }
            LinkEvent::TransactionReady { tx, .. } => {
                let ready = Outcome::Ready(inner.up_remote.clone());
                if let Some(Waiter::Repeat(s)) = inner.waiters.get(&tx) {
                    // It stays: it may be ready again after a drop.
                    let w = Waiter::Repeat(s.clone());
                    todo.push(Todo::Resolve(w, ready));
                } else if let Some(w) = inner.waiters.remove(&tx) {
                    todo.push(Todo::Resolve(w, ready));
                }
            }
            LinkEvent::TransactionTimedOut { tx } => {
                if let Some(w) = inner.waiters.remove(&tx) {
                    let last_cause = inner.last_error.clone();
                    todo.push(Todo::Resolve(
                        w,
                        Outcome::Failed(UpError::TimedOut { last_cause }),
                    ));
                }
            }
            LinkEvent::TransactionClosed { tx } => {
                if let Some(w) = inner.waiters.remove(&tx) {
                    let cause = inner.close_cause();
                    todo.push(Todo::Resolve(w, Outcome::Failed(UpError::Closed { cause })));
                }
            }
            LinkEvent::Ping { rtt } => {
                tracing::trace!(?rtt, "ping");
                inner.pending.push(ClientEvent::Ping(rtt));
            }
            LinkEvent::Error(e) => {
                if matches!(e, LinkError::ConnectFailed { .. }) {
                    tracing::info!(error = %e, "connection attempt failed");
                } else {
                    tracing::warn!(error = %e, "link error");
                }
                if !matches!(e, LinkError::GaveUp { .. }) {
                    inner.last_error = Some(e.clone());
                }
                inner.pending.push(ClientEvent::Error(e));
            }
            LinkEvent::Closed => inner.pending.push(ClientEvent::Closed),
            _ => {}
        }
    }

    fn end_turn(&self, inner: &mut Inner, closed: bool, _now: Instant) {
        // Functions of a connection that is gone go with it.
        let current = inner.link.conn();
        if inner.live_conn != current {
            if let Some(c) = inner.live_conn {
                inner.handlers.on_conn_gone(c);
            }
            inner.live_conn = current;
        }
        if !matches!(
            inner.link.state(),
            LinkState::Up | LinkState::Authenticating
        ) {
            inner.up_remote = None;
        }
        if closed {
            inner.closed = true;
            inner.handlers.clear();
            inner.up_remote = None;
        }
    }

    fn publish(&self, inner: &mut Inner) {
        for ev in std::mem::take(&mut inner.pending) {
            inner.subscribers.emit(ev);
        }
        if inner.closed {
            // `Closed` was the last: the streams end.
            inner.subscribers.clear();
        }
    }

    fn act(self: &Arc<Self>, todo: Todo) {
        match todo {
            Todo::Resolve(Waiter::Future(tx), outcome) => {
                let _ = tx.send(outcome.into_result());
            }
            Todo::Resolve(Waiter::Repeat(s), outcome) => {
                let _ = s.unbounded_send(outcome.into_result());
            }
            Todo::Resolve(Waiter::Closure(f), outcome) => {
                let remote = match outcome {
                    Outcome::Ready(r) => r,
                    Outcome::Failed(_) => None,
                };
                if std::panic::catch_unwind(AssertUnwindSafe(|| f(remote))).is_err() {
                    self.handler_failed("a transaction panicked".into());
                }
            }
            Todo::ConnectStep(conn, remote) => {
                let Some(step) = self.on_connect.clone() else {
                    return;
                };
                let s = self.clone();
                // The closure itself may panic before it returns its future: that fails the
                // step like a panic inside the future, and never takes the driver down.
                let started = std::panic::catch_unwind(AssertUnwindSafe(|| step(remote)));
                self.core.runtime.spawn(Box::pin(async move {
                    let r = match started {
                        Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
                        Err(panic) => Err(panic),
                    };
                    let now = s.now();
                    let mut inner = s.lock();
                    match r {
                        Ok(Ok(up)) => {
                            let value = up.value().clone();
                            if inner.link.conn() == Some(conn) {
                                inner.up_remote = Some(up);
                            }
                            inner.link.signal_up(conn, now, value);
                        }
                        Ok(Err(e)) => match e.downcast_ref::<GiveUp>() {
                            Some(give_up)
                                if inner.link.conn() == Some(conn)
                                    && inner.link.state() == LinkState::Authenticating =>
                            {
                                // Final: close with this cause instead of reconnecting.
                                let cause = LinkError::ConnectStepFailed {
                                    detail: give_up.reason().to_owned(),
                                };
                                tracing::warn!(error = %cause, "the connect step gave up");
                                inner.final_cause = Some(cause.clone());
                                inner.pending.push(ClientEvent::Error(cause));
                                inner.link.close(now);
                            }
                            _ => inner.link.fail_connect_step(conn, now, e.to_string()),
                        },
                        Err(_) => {
                            inner
                                .link
                                .fail_connect_step(conn, now, "the connect step panicked")
                        }
                    }
                    drop(inner);
                    s.wake();
                }));
            }
        }
    }

    fn handler_failed(self: &Arc<Self>, msg: String) {
        tracing::warn!("{msg}");
        self.lock().subscribers.emit(ClientEvent::Handler(msg));
    }

    fn ended(self: &Arc<Self>) {
        let waiters = std::mem::take(&mut self.lock().close_waiters);
        for w in waiters {
            let _ = w.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_time_out_after_sixty_seconds_unless_told_otherwise() {
        assert_eq!(crate::DEFAULT_CALL_TIMEOUT, Duration::from_secs(60));
        let b = Client::builder();
        assert_eq!(b.call_timeout, Some(crate::DEFAULT_CALL_TIMEOUT));
        assert_eq!(b.call_timeout(None).call_timeout, None);
        let s = crate::Server::builder();
        assert!(
            format!("{s:?}").contains("call_timeout: Some(60s)"),
            "{s:?}"
        );
    }

    #[test]
    fn every_client_draws_its_own_jitter_seed_unless_one_is_fixed() {
        assert_ne!(os_seed(), os_seed());
        assert!(!Client::builder().seeded);
        assert!(Client::builder().seed(7).seeded);
        assert!(Client::builder().config(|c| c.seed = 9).seeded);
        assert!(!Client::builder().config(|c| c.queue_cap = 9).seeded);
    }
}
