//! The one background-task loop that drives a state machine: the client's link and each
//! server connection alike. It owns the transport, the connection attempt and the timer,
//! gives released peer callbacks back, routes incoming calls, call failures and releases to
//! the handlers, moves bytes, and leaves to its [`Side`] only the events that are the
//! client's or the server's own.

use crate::error::CallError;
use crate::handlers::{run_dispatch, Dispatch, Handlers};
use crate::io::{Io, IoEvent};
use crate::lock::lock;
use crate::peer::{Args, Attach, Call, PeerOps};
use crate::runtime::{BoxStream, Connector, Runtime};
use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::task::AtomicWaker;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use upnode_core::link::{CallId, ConnId, LinkCounters, LinkEvent, SendError};
use upnode_core::{CallArgs, LocalFn, RemoteFn, Target};

/// Tells a background task that something changed (a call, a release, a close).
#[derive(Default)]
pub(crate) struct Signal {
    kick: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    pub fn wake(&self) {
        self.kick.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Registers the task and reports (and clears) a pending wake-up.
    pub fn take(&self, cx: &mut Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.kick.swap(false, Ordering::AcqRel)
    }
}

/// The one timer of a task. It is re-armed only when the state machine's deadline comes
/// earlier than the instant it is armed for: a deadline that moves later (each call's time
/// limit, when calls come and go) or goes away keeps the timer as it is, so no sleep is made
/// per call. The timer then fires early, the machine finds nothing due, and the next turn
/// arms it for the deadline in force then.
#[derive(Default)]
pub(crate) struct Timer {
    armed: Option<(Instant, BoxFuture<'static, ()>)>,
}

impl Timer {
    pub fn arm(&mut self, rt: &dyn Runtime, deadline: Option<Instant>) {
        match (deadline, &self.armed) {
            (Some(d), Some((t, _))) if *t <= d => {}
            (Some(d), _) => self.armed = Some((d, rt.sleep_until(d))),
            (None, _) => {}
        }
    }

    /// Whether the deadline has come (the timer is then disarmed).
    pub fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        let fired = match self.armed.as_mut() {
            Some((_, t)) => t.as_mut().poll(cx).is_ready(),
            None => false,
        };
        if fired {
            self.armed = None;
        }
        fired
    }
}

/// An event type with a way to say "you missed `n` events".
pub(crate) trait Lagging {
    fn lagged(missed: u64) -> Self;
}

/// Event streams handed out to users; a subscriber that falls a full channel behind misses
/// events and is told how many (a `Lagged` event) as soon as there is room again; one that
/// is dropped is forgotten.
pub(crate) struct Subscribers<T> {
    /// Each stream, with how many events it missed since it was last told.
    senders: Vec<(mpsc::Sender<T>, u64)>,
}

impl<T> Default for Subscribers<T> {
    fn default() -> Self {
        Subscribers {
            senders: Vec::new(),
        }
    }
}

impl<T: Clone + Lagging> Subscribers<T> {
    pub fn from(senders: Vec<mpsc::Sender<T>>) -> Self {
        Subscribers {
            senders: senders.into_iter().map(|s| (s, 0)).collect(),
        }
    }

    pub fn add(&mut self, capacity: usize) -> mpsc::Receiver<T> {
        let (tx, rx) = mpsc::channel(capacity);
        self.senders.push((tx, 0));
        rx
    }

    pub fn emit(&mut self, ev: T) {
        self.senders.retain_mut(|(s, missed)| {
            if *missed > 0 {
                match s.try_send(T::lagged(*missed)) {
                    Ok(()) => *missed = 0,
                    Err(e) if e.is_disconnected() => return false,
                    Err(_) => {
                        *missed += 1;
                        return true;
                    }
                }
            }
            match s.try_send(ev.clone()) {
                Ok(()) => true,
                Err(e) if e.is_disconnected() => false,
                Err(_) => {
                    *missed += 1;
                    true
                }
            }
        });
    }

    /// Ends every stream.
    pub fn clear(&mut self) {
        self.senders.clear();
    }
}

/// Peer callbacks whose last handle was dropped. Handles are dropped in places that hold the
/// task's main lock, so they are queued here and given back by the task on its next turn.
pub(crate) struct Released<T> {
    queue: Mutex<Vec<T>>,
}

impl<T> Default for Released<T> {
    fn default() -> Self {
        Released {
            queue: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Released<T> {
    pub fn push(&self, items: impl IntoIterator<Item = T>) {
        lock(&self.queue).extend(items);
    }

    /// Swaps the queue with `into` (emptied first): both keep their room, so a steady
    /// flow of releases allocates nothing.
    pub fn take_into(&self, into: &mut Vec<T>) {
        into.clear();
        std::mem::swap(&mut *lock(&self.queue), into);
    }
}

/// What a client, or one server connection, holds right now: read it to see a leak without
/// a debugger.
///
/// ```no_run
/// # fn f(client: &upnode_async::Client) {
/// let n = client.counters();
/// println!("{} calls in flight, {} of our functions", n.link.calls_in_flight, n.functions);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Counters {
    /// The link's tables: callbacks held each way on the current connection, calls in
    /// flight and waiting for a slot, transactions queued.
    pub link: LinkCounters,
    /// Our functions registered with a handler: exported methods, answer slots of calls in
    /// flight, streams and callbacks (on an idle connection, the exported methods only).
    pub functions: usize,
}

/// What the driver feeds a state machine.
pub(crate) enum Input<'a> {
    /// Its deadline has come.
    Timeout,
    /// The transport it asked for is open.
    Connected(ConnId),
    /// Opening the transport failed.
    ConnectFailed(ConnId, String),
    /// Bytes arrived.
    Data(ConnId, &'a [u8]),
    /// The transport ended (with the error, if any).
    Closed(ConnId, Option<String>),
}

/// A state machine of `upnode-core` as the driver sees it (`ClientLink`, `ServerConn`).
pub(crate) trait Machine {
    fn release(&mut self, conn: ConnId, f: RemoteFn);
    /// The transport's unsent bytes (see `ClientLink::handle_unsent`).
    fn handle_unsent(&mut self, conn: ConnId, now: Instant, unsent: usize);
    /// Whether reading is paused (the peer does not read our output).
    fn is_input_paused(&self) -> bool;
    /// How long a closing transport may flush.
    fn close_flush_timeout(&self) -> Duration;
    fn poll_event(&mut self) -> Option<LinkEvent>;
    fn poll_transmit(&mut self) -> Option<(ConnId, Bytes)>;
    /// Output set aside full (about 64 KiB), written from the caller's side after a call.
    fn poll_transmit_full(&mut self) -> Option<(ConnId, Bytes)>;
    /// Calls sent and waiting for an answer.
    fn calls_in_flight(&self) -> usize;
    /// Output of `conn` the transport has taken all of, handed back for its room.
    fn reuse_output(&mut self, conn: ConnId, done: Bytes);
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle(&mut self, now: Instant, input: Input<'_>);
    /// Makes a call on `conn`: with `reply` as its answer callback
    /// (`ClientLink::call_with_reply`), or as it is (`ClientLink::call`).
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        conn: ConnId,
        now: Instant,
        target: Target,
        args: CallArgs,
        reply: Option<LocalFn>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, SendError>;
}

/// A call from a handle, the same on the client and on a server connection: under the
/// side's one lock, the attached function is registered and the call handed to the machine
/// (a side that has ended refuses it with [`CallError::Closed`]); the handlers taken out
/// meanwhile (the attached one, if the call was refused) are dropped once the lock is
/// released; then the driver is woken.
///
/// A call that fills a piece of output (about 64 KiB, see [`write_through`]) writes it to
/// the transport itself: a burst of calls made without yielding (a hundred thousand in one
/// loop) leaves the process while it is made, as it would from Node, rather than being held
/// whole until the driver's next turn.
///
/// So does a lone call: one that asks for an answer, made while the driver runs no handler,
/// the first since the driver's last turn, while no other call waits for an answer (a call
/// made one at a time). It leaves now rather than after the turn it wakes the driver for;
/// calls made many at a time still leave together, one write for many. Answers, and other
/// calls that ask for none, wait for the driver's turn: a handler's answer leaves only once
/// the handler is done and what it let go of (the answer callback among it) is given back,
/// so a peer that has the answer finds our tables as they are after the call.
pub(crate) fn call<S: Side>(
    side: &S,
    conn: ConnId,
    target: Target,
    args: CallArgs,
    attach: Attach,
) -> Result<(), CallError> {
    let core = side.core();
    let now = core.runtime.now();
    let asks = matches!(attach, Attach::Reply(..));
    let mut guard = core.lock();
    let (r, gone) = match S::split(&mut guard) {
        Some((machine, handlers)) => {
            let timeout = attach.timeout();
            let r = handlers.call(conn, args, attach, |args, reply| {
                machine.call(conn, now, target, args, reply, timeout)
            });
            if r.is_ok() {
                let lone = asks
                    && core.lone.swap(false, Ordering::Relaxed)
                    && machine.calls_in_flight() <= 1;
                write_through(machine, &core.transport, lone);
            }
            (r, handlers.take_gone())
        }
        // (`attach`, unused, is dropped on return, after the lock.)
        None => (Err(CallError::Closed), Vec::new()),
    };
    drop(guard);
    drop(gone);
    core.wake();
    r
}

/// The open transport of a side, with its connection: the driver's, lent to callers for
/// [`write_through`]. Locked after the side's own lock, never before it, and never held
/// across an `await`.
pub(crate) type Transport = Mutex<Option<(ConnId, Io)>>;

/// Moves the machine's full pieces of output to the transport and writes what it takes
/// now, on the caller's thread, under the side's lock (so the bytes keep their order with
/// the driver's). Nothing is done while the driver holds the transport: it takes the output
/// itself on its turn. The last piece, still being filled, is left to the driver unless the
/// call is `lone` (see [`call`]) and the transport has nothing unsent.
pub(crate) fn write_through(machine: &mut impl Machine, transport: &Transport, lone: bool) {
    let Ok(mut guard) = transport.try_lock() else {
        return;
    };
    let Some((conn, io)) = guard.as_mut() else {
        return;
    };
    let mut any = false;
    while let Some((c, bytes)) = machine.poll_transmit_full() {
        // Output for a transport that is gone is dropped, as the driver does.
        if c == *conn {
            io.send(bytes);
            any = true;
        }
    }
    if lone && io.unsent() == 0 {
        while let Some((c, bytes)) = machine.poll_transmit() {
            if c == *conn {
                io.send(bytes);
                any = true;
            }
        }
    }
    if any {
        io.write_through();
        // The pieces it wrote serve the burst's next ones.
        hand_back_written(machine, *conn, io);
    }
}

/// Gives the machine back the buffers the transport has written in full, for its next
/// output.
fn hand_back_written(machine: &mut impl Machine, conn: ConnId, io: &mut Io) {
    while let Some(done) = io.take_written() {
        machine.reuse_output(conn, done);
    }
}

/// What every side shares with its handles: its state behind one lock, the released
/// callbacks, the wake-up signal, the runtime and the calls' time limit.
pub(crate) struct Core<I> {
    inner: Mutex<I>,
    /// Peer callbacks whose last handle was dropped, for the driver to give back. Kept
    /// apart from `inner`: handles are dropped in places that hold `inner`'s lock.
    pub released: Released<(ConnId, RemoteFn)>,
    signal: Signal,
    /// The open transport: the driver's, lent to callers after a call ([`write_through`]).
    pub transport: Transport,
    /// The driver is between turns (not running handlers) and no call was made since its
    /// last one: the next call is written at once if it is lone (see [`call`]).
    lone: AtomicBool,
    pub runtime: Arc<dyn Runtime>,
    pub call_timeout: Option<Duration>,
}

impl<I> Core<I> {
    pub fn new(inner: I, runtime: Arc<dyn Runtime>, call_timeout: Option<Duration>) -> Self {
        Core {
            inner: Mutex::new(inner),
            released: Released::default(),
            signal: Signal::default(),
            transport: Mutex::new(None),
            lone: AtomicBool::new(false),
            runtime,
            call_timeout,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, I> {
        lock(&self.inner)
    }

    pub fn wake(&self) {
        self.signal.wake();
    }

    /// Queues released callbacks for the driver (never locks `inner`: this runs in `Drop`
    /// of remote handles, possibly while this very thread holds it).
    pub fn release(&self, conn: ConnId, fns: &[RemoteFn]) {
        self.released.push(fns.iter().map(|f| (conn, *f)));
        self.wake();
    }
}

/// The client or a server connection: what the driver leaves to it.
pub(crate) trait Side: PeerOps + Sized + 'static {
    type Machine: Machine;
    type Inner: Send;
    /// Work a side decides under the lock and does after it.
    type Todo: Send;

    fn core(&self) -> &Core<Self::Inner>;
    /// The machine and the handlers; `None` once the side has ended.
    fn split(inner: &mut Self::Inner) -> Option<(&mut Self::Machine, &mut Handlers)>;
    /// The handlers, whether or not the side has ended.
    fn handlers(inner: &mut Self::Inner) -> &mut Handlers;
    /// An event that is the side's own (not a transport request, call, failure or release).
    fn on_event(
        self: &Arc<Self>,
        inner: &mut Self::Inner,
        ev: LinkEvent,
        weak: &Weak<dyn PeerOps>,
        todo: &mut Vec<Self::Todo>,
    );
    /// The end of a turn, still under the lock; `closed` when the machine has closed. `now`
    /// is the time the turn began with.
    fn end_turn(&self, inner: &mut Self::Inner, closed: bool, now: Instant);
    /// Tells the side's subscribers what the turn brought, under the lock, once the
    /// handlers the turn took out are gone (whoever sees `Down` sees the old connection's
    /// functions dropped).
    fn publish(&self, inner: &mut Self::Inner);
    /// Does a todo outside the lock.
    fn act(self: &Arc<Self>, todo: Self::Todo);
    /// A handler or callback failed.
    fn handler_failed(self: &Arc<Self>, msg: String);
    /// The machine has closed and its transport is shut down: the task ends after this.
    fn ended(self: &Arc<Self>);
}

/// Events a turn takes from its machine before the transport may write again: a burst (the
/// transactions queued while the link was down, all run as it comes up) then leaves in
/// pieces while the rest is still being made, rather than all of it at the end.
const EVENTS_PER_TURN: usize = 256;

/// Released callbacks whose room a driver keeps from one turn to the next at most.
const KEEP_RELEASED: usize = 1024;

/// Turns a driver runs without waiting before it lets the other tasks of its thread run
/// (it wakes itself and returns `Pending` once). Without it, a driver whose transport
/// always has more to read would read, parse and hold everything the peer sent before the
/// task that consumes the answers (or another connection's driver) ran at all: tokio caps
/// this with its own task budget, smol and async-std do not. Each turn reads at most
/// 16 KiB and takes at most [`EVENTS_PER_TURN`] events.
const TURNS_BEFORE_YIELD: u32 = 8;

/// Returns `Pending` once, after waking its task: the task goes to the back of the queue.
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Work decided under the lock, in the order of the events.
enum Step<T> {
    Dispatch(Dispatch),
    Side(T),
}

enum Wake {
    Connected(ConnId, io::Result<BoxStream>),
    Io(ConnId, IoEvent),
    Timer,
    Kick,
}

/// The background task of a side: runs until its machine closes. `connector` opens the
/// transports the machine asks for; `io` is a transport that is already open.
pub(crate) async fn drive<S: Side>(
    side: Arc<S>,
    connector: Option<Arc<dyn Connector>>,
    io: Option<(ConnId, Io)>,
) {
    let peer: Arc<dyn PeerOps> = side.clone();
    let weak = Arc::downgrade(&peer);
    let core = side.core();
    *lock(&core.transport) = io;
    let rt = core.runtime.clone();
    let on_error: Arc<dyn Fn(String) + Send + Sync> = {
        let s = side.clone();
        Arc::new(move |msg| s.handler_failed(msg))
    };
    let mut connecting: Option<(ConnId, BoxFuture<'static, io::Result<BoxStream>>)> = None;
    let mut timer = Timer::default();
    // Turns run since the task last waited or yielded.
    let mut streak = 0u32;
    // Buffers of a turn, kept from one turn to the next (emptied at the end of each).
    let mut steps = Vec::new();
    let mut todo = Vec::new();
    let mut released = Vec::new();
    // The time of a turn: read once when the task starts, then once per wake (step 4),
    // which runs straight into the next turn's step 1 with no wait between.
    let mut now = rt.now();
    loop {
        // 1. Drain the machine under the lock.
        let mut open = None;
        let mut close = Vec::new();
        let mut closed = false;
        let mut deadline = None;
        let mut flush_bound = Duration::ZERO;
        // Events are left for the next turn.
        let mut more = false;
        let gone;
        {
            core.released.take_into(&mut released);
            let mut guard = core.lock();
            let inner = &mut *guard;
            let Some((machine, _)) = S::split(inner) else {
                return;
            };
            for (conn, f) in released.drain(..) {
                machine.release(conn, f);
            }
            released.shrink_to(KEEP_RELEASED);
            let mut transport = lock(&core.transport);
            // What the transport took since the last turn (it may free held calls), and
            // the buffers it is done with.
            if let Some((conn, io)) = transport.as_mut() {
                machine.handle_unsent(*conn, now, io.unsent());
                hand_back_written(machine, *conn, io);
            }
            let mut taken = 0;
            while let Some((machine, handlers)) = S::split(inner) {
                if taken == EVENTS_PER_TURN {
                    more = true;
                    break;
                }
                let Some(ev) = machine.poll_event() else {
                    break;
                };
                taken += 1;
                match ev {
                    LinkEvent::OpenTransport { conn, attempt } => {
                        tracing::debug!(conn = conn.0, attempt, "connecting");
                        open = Some(conn);
                    }
                    LinkEvent::CloseTransport { conn } => close.push(conn),
                    LinkEvent::Call {
                        conn,
                        function,
                        args,
                        ..
                    } => {
                        let args = Args::new(args, conn, weak.clone());
                        let make_call = |args| Call::new(args, weak.clone());
                        if let Some(d) = handlers.on_call(function, args, make_call) {
                            steps.push(Step::Dispatch(d));
                        }
                    }
                    LinkEvent::CallFailed { reply, reason, .. } => {
                        handlers.on_call_failed(reply, reason);
                    }
                    LinkEvent::Released { function, .. } => handlers.on_released(function),
                    ev => {
                        closed |= matches!(ev, LinkEvent::Closed);
                        side.on_event(inner, ev, &weak, &mut todo);
                        steps.extend(todo.drain(..).map(Step::Side));
                    }
                }
            }
            if let Some((machine, _)) = S::split(inner) {
                while let Some((conn, bytes)) = machine.poll_transmit() {
                    match transport.as_mut() {
                        Some((c, io)) if *c == conn => io.send(bytes),
                        _ => {}
                    }
                }
                // What this turn added may take the output over its cap: reading stops
                // and calls are held back until the peer reads.
                if let Some((conn, io)) = transport.as_mut() {
                    machine.handle_unsent(*conn, now, io.unsent());
                    io.set_paused(machine.is_input_paused());
                }
                deadline = machine.poll_timeout();
                flush_bound = machine.close_flush_timeout();
            }
            drop(transport);
            side.end_turn(inner, closed, now);
            gone = S::handlers(inner).take_gone();
            if gone.is_empty() {
                side.publish(inner);
            }
        }
        // Handlers taken out this turn go now that the lock is released; then the turn's
        // events go out.
        if !gone.is_empty() {
            drop(gone);
            side.publish(&mut core.lock());
        }
        // 2. Act outside the lock.
        if let Some(conn) = open {
            if let Some(c) = &connector {
                connecting = Some((conn, c.connect()));
            }
        }
        let mut closing = Vec::new();
        for conn in close {
            if connecting.as_ref().is_some_and(|(c, _)| *c == conn) {
                connecting = None;
            }
            let mut transport = lock(&core.transport);
            if transport.as_ref().is_some_and(|(c, _)| *c == conn) {
                closing.extend(transport.take().map(|(_, old)| old));
            }
        }
        // Calls made by the handlers run here are not lone (see [`call`]).
        core.lone.store(false, Ordering::Relaxed);
        for step in steps.drain(..) {
            match step {
                Step::Dispatch(d) => run_dispatch(d, &*peer, &|f| rt.spawn(f), on_error.clone()),
                Step::Side(t) => side.act(t),
            }
        }
        core.lone.store(true, Ordering::Relaxed);
        if closed {
            // The last transport is flushed before the task ends; one closed while the
            // machine lives is shut down in the background.
            closing.extend(lock(&core.transport).take().map(|(_, old)| old));
            for old in closing {
                old.shutdown(&*rt, flush_bound).await;
            }
            side.ended();
            return;
        }
        for old in closing {
            let rt2 = rt.clone();
            rt.spawn(Box::pin(
                async move { old.shutdown(&*rt2, flush_bound).await },
            ));
        }
        if more {
            core.wake();
        }
        // 3. Wait for something to happen. While events wait for the next turn, what earlier
        // turns made is written first (nothing is read: the output cap is checked first).
        timer.arm(&*rt, deadline);
        streak += 1;
        if streak >= TURNS_BEFORE_YIELD {
            streak = 0;
            YieldNow(false).await;
        }
        let wake = futures::future::poll_fn(|cx| {
            let mut transport = lock(&core.transport);
            if let (true, Some((conn, io))) = (more, transport.as_mut()) {
                if let Some(ev) = io.write_out(cx) {
                    return Poll::Ready(Wake::Io(*conn, ev));
                }
            }
            if core.signal.take(cx) {
                return Poll::Ready(Wake::Kick);
            }
            if let Some((conn, fut)) = connecting.as_mut() {
                if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                    let conn = *conn;
                    connecting = None;
                    return Poll::Ready(Wake::Connected(conn, r));
                }
            }
            if let Some((conn, io)) = transport.as_mut() {
                if let Poll::Ready(ev) = io.poll(cx) {
                    return Poll::Ready(Wake::Io(*conn, ev));
                }
            }
            drop(transport);
            if timer.poll(cx) {
                return Poll::Ready(Wake::Timer);
            }
            // The task waits: the others run meanwhile.
            streak = 0;
            Poll::Pending
        })
        .await;
        // 4. Tell the machine.
        now = rt.now();
        let mut guard = core.lock();
        let Some((machine, _)) = S::split(&mut guard) else {
            return;
        };
        let mut transport = lock(&core.transport);
        match wake {
            Wake::Kick => {}
            Wake::Timer => machine.handle(now, Input::Timeout),
            Wake::Connected(conn, Ok(stream)) => {
                *transport = Some((conn, Io::new(stream)));
                machine.handle(now, Input::Connected(conn));
            }
            Wake::Connected(conn, Err(e)) => {
                tracing::debug!(conn = conn.0, error = %e, "connect failed");
                machine.handle(now, Input::ConnectFailed(conn, e.to_string()));
            }
            Wake::Io(conn, IoEvent::Data(n)) => {
                if let Some((_, io)) = transport.as_ref() {
                    machine.handle(now, Input::Data(conn, io.received(n)));
                }
            }
            Wake::Io(conn, IoEvent::Eof) => {
                *transport = None;
                machine.handle(now, Input::Closed(conn, None));
            }
            Wake::Io(conn, IoEvent::Error(e)) => {
                *transport = None;
                machine.handle(now, Input::Closed(conn, Some(e.to_string())));
            }
            // The next turn reports the unsent count.
            Wake::Io(_, IoEvent::Sent) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[derive(Debug, Clone, PartialEq)]
    enum Ev {
        N(u32),
        Lagged(u64),
    }

    impl Lagging for Ev {
        fn lagged(missed: u64) -> Self {
            Ev::Lagged(missed)
        }
    }

    /// A runtime that only counts the sleeps made; they never complete.
    #[derive(Default)]
    struct CountSleeps(std::sync::atomic::AtomicUsize);

    impl Runtime for CountSleeps {
        fn spawn(&self, _: BoxFuture<'static, ()>) {}
        fn sleep_until(&self, _: Instant) -> BoxFuture<'static, ()> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Box::pin(futures::future::pending())
        }
        fn now(&self) -> Instant {
            unreachable!("the timer never reads the clock")
        }
    }

    #[test]
    fn the_timer_is_re_armed_only_for_an_earlier_deadline() {
        let rt = CountSleeps::default();
        let t0 = Instant::now();
        let at = |s: u64| Some(t0 + Duration::from_secs(s));
        let mut timer = Timer::default();
        timer.arm(&rt, at(60));
        // A thousand calls, each moving the earliest deadline a little later: no new sleep.
        for i in 0..1000 {
            timer.arm(&rt, at(60 + i));
        }
        timer.arm(&rt, None);
        timer.arm(&rt, at(60));
        assert_eq!(rt.0.load(Ordering::Relaxed), 1);
        assert_eq!(timer.armed.as_ref().map(|(t, _)| *t), at(60));
        // An earlier one re-arms it.
        timer.arm(&rt, at(30));
        assert_eq!(rt.0.load(Ordering::Relaxed), 2);
        assert_eq!(timer.armed.as_ref().map(|(t, _)| *t), at(30));
    }

    #[test]
    fn a_lagging_subscriber_is_told_how_many_events_it_missed() {
        let mut subs = Subscribers::<Ev>::default();
        // Room for 1 plus one per sender: two events fit.
        let mut rx = subs.add(1);
        for n in 0..5 {
            subs.emit(Ev::N(n));
        }
        futures::executor::block_on(async {
            assert_eq!(rx.next().await, Some(Ev::N(0)));
            assert_eq!(rx.next().await, Some(Ev::N(1)));
            // Room again: the next event comes after the count of those missed.
            subs.emit(Ev::N(5));
            assert_eq!(rx.next().await, Some(Ev::Lagged(3)));
            assert_eq!(rx.next().await, Some(Ev::N(5)));
            subs.emit(Ev::N(6));
            assert_eq!(rx.next().await, Some(Ev::N(6)));
        });
    }
}
