//! What client and server connections share: the table of our functions, remote objects,
//! arguments, calls, and exported interfaces.

use crate::error::{CallError, HandlerError, RpcError};
use futures::channel::{mpsc, oneshot};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::task::Context;
use std::time::Duration;
use tracing::Instrument;
use upnode_core::link::{CallFailure, CallId, ConnId};
use upnode_core::{
    from_args, from_value, to_args, to_value, Function, LocalFn, RemoteFn, Target, Value,
};

/// What a connection (client or server side) offers the handles living outside it.
pub(crate) trait PeerOps: Send + Sync {
    /// Makes a call on `conn`. With `reply`, that function is appended as the answer
    /// callback (the link forgets it once the call resolves) and its reply slot is armed
    /// with the call's id.
    fn call(
        &self,
        conn: ConnId,
        target: Target,
        args: Vec<Value>,
        timeout: Option<Duration>,
        reply: Option<LocalFn>,
    ) -> Result<(), CallError>;
    /// Gives back references on the peer's callbacks.
    fn release(&self, conn: ConnId, fns: &[RemoteFn]);
    /// Registers one of our functions for `conn`.
    fn register(&self, conn: ConnId, handler: Handler) -> LocalFn;
    /// Forgets a function registered for a call that could not be made.
    fn unregister(&self, f: LocalFn);
    /// Default time limit of calls.
    fn call_timeout(&self) -> Option<Duration>;
    /// Counts a method handler as running until the returned guard is dropped (a server's
    /// graceful shutdown waits for them).
    fn track_handler(&self) -> Option<Box<dyn Send>> {
        None
    }
}

/// One of our functions.
pub(crate) enum Handler {
    /// Answers one call; later calls go nowhere.
    Reply(oneshot::Sender<Result<Args, CallError>>),
    /// Every call is forwarded; the stream ends when the connection does.
    Stream(mpsc::UnboundedSender<Args>),
    /// A closure, run on each call.
    Callback(Arc<dyn Fn(Args) + Send + Sync>),
    /// An exported method (with its name; `None` for functions made by `Call::method`): run
    /// as a task.
    Method(MethodFn, Option<Arc<str>>),
}

pub(crate) type MethodFn =
    Arc<dyn Fn(Call) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync>;

/// What to do after a handler lookup, outside the connection's lock.
pub(crate) enum Dispatch {
    Callback(Arc<dyn Fn(Args) + Send + Sync>, Args),
    Method(MethodFn, Call, Option<Arc<str>>),
}

/// Our functions on one client or server: keys, handlers, and the connection each belongs
/// to (exports belong to none and live as long as their owner).
#[derive(Default)]
pub(crate) struct Handlers {
    next: u64,
    map: HashMap<LocalFn, (Handler, Option<ConnId>)>,
    /// Reply slots of calls in flight, with each call's time limit (for its error).
    replies: HashMap<CallId, (LocalFn, Option<Duration>)>,
}

impl Handlers {
    pub fn insert(&mut self, handler: Handler, conn: Option<ConnId>) -> LocalFn {
        let k = self.unused_key();
        self.map.insert(k, (handler, conn));
        k
    }

    /// A fresh key that names no function.
    pub fn unused_key(&mut self) -> LocalFn {
        let k = LocalFn(self.next);
        self.next += 1;
        k
    }

    pub fn arm_reply(&mut self, call: CallId, f: LocalFn, timeout: Option<Duration>) {
        self.replies.insert(call, (f, timeout));
    }

    /// The peer called `f`: what to run (the reply slot is fulfilled here).
    pub fn on_call(
        &mut self,
        f: LocalFn,
        answers: Option<CallId>,
        args: Args,
        peer: &Arc<dyn PeerOps>,
    ) -> Option<Dispatch> {
        if let Some(c) = answers {
            self.replies.remove(&c);
        }
        match self.map.get(&f) {
            Some((Handler::Reply(_), _)) => {
                if let Some((Handler::Reply(tx), _)) = self.map.remove(&f) {
                    let _ = tx.send(Ok(args));
                }
                None
            }
            Some((Handler::Stream(tx), _)) => {
                if tx.unbounded_send(args).is_err() {
                    // Nobody reads the stream any more: forget the handler.
                    self.map.remove(&f);
                }
                None
            }
            Some((Handler::Callback(cb), _)) => Some(Dispatch::Callback(cb.clone(), args)),
            Some((Handler::Method(m, name), _)) => Some(Dispatch::Method(
                m.clone(),
                Call {
                    args,
                    peer: Arc::downgrade(peer),
                },
                name.clone(),
            )),
            None => None,
        }
    }

    /// A tracked call failed: its reply slot learns why.
    pub fn on_call_failed(&mut self, call: CallId, reason: CallFailure) {
        let Some((f, timeout)) = self.replies.remove(&call) else {
            return;
        };
        let err = match reason {
            CallFailure::TimedOut => CallError::TimedOut(timeout.unwrap_or_default()),
            CallFailure::Closed => CallError::Closed,
            CallFailure::Dropped => CallError::Dropped,
            CallFailure::Refused(e) => CallError::Local(e),
            CallFailure::LinkDown => CallError::LinkDown,
            // A failure this version does not know keeps its cause.
            other => CallError::Failed(other),
        };
        match self.map.remove(&f) {
            Some((Handler::Reply(tx), _)) => {
                let _ = tx.send(Err(err));
            }
            Some(other) => {
                self.map.insert(f, other);
            }
            None => {}
        }
    }

    /// The peer freed `f`: a per-connection function goes away.
    pub fn on_released(&mut self, f: LocalFn) {
        if matches!(self.map.get(&f), Some((_, Some(_)))) {
            self.map.remove(&f);
        }
    }

    /// The connection ended: its functions go away (reply slots learn `LinkDown` through
    /// `CallFailed` first; anything left is dropped, which ends streams).
    pub fn on_conn_gone(&mut self, conn: ConnId) {
        self.map.retain(|_, (_, c)| *c != Some(conn));
    }

    /// Takes a function out (to drop outside the lock).
    pub fn remove(&mut self, f: LocalFn) -> Option<Handler> {
        self.map.remove(&f).map(|(h, _)| h)
    }

    /// Functions registered (exports, reply slots, streams, callbacks).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Everything goes (close).
    pub fn clear(&mut self) {
        self.map.clear();
        self.replies.clear();
    }
}

/// Runs a handler outside any lock, catching panics so they cannot take a connection down.
///
/// A method handler is started here, on the connection's task: its future is polled once
/// at once, so the part before its first `.await` runs in the order the calls arrived (as
/// Node runs them), whatever the runtime's flavour. Only a handler that is still pending
/// after that becomes a task of its own; one that finished costs no task.
pub(crate) fn run_dispatch(
    d: Dispatch,
    spawn: &dyn Fn(BoxFuture<'static, ()>),
    on_error: Arc<dyn Fn(String) + Send + Sync>,
) {
    match d {
        Dispatch::Callback(cb, args) => {
            if std::panic::catch_unwind(AssertUnwindSafe(|| cb(args))).is_err() {
                on_error("a callback panicked".into());
            }
        }
        Dispatch::Method(m, call, name) => {
            // A span per call, inside the connection's span: the method's name (or a
            // function passed in an answer) and the link's connection number.
            let span = tracing::debug_span!(
                "upnode.call",
                method = name.as_deref().unwrap_or("(function)"),
                link_conn = call.args.conn().0,
            );
            let _entered = span.enter();
            let running = call.peer.upgrade().and_then(|p| p.track_handler());
            let Ok(fut) = std::panic::catch_unwind(AssertUnwindSafe(|| m(call))) else {
                on_error("a method handler panicked".into());
                return;
            };
            let fut = fut.instrument(span.clone());
            let mut task: BoxFuture<'static, ()> = Box::pin(async move {
                let _running = running;
                match AssertUnwindSafe(fut).catch_unwind().await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => on_error(format!("a method handler failed: {e}")),
                    Err(_) => on_error("a method handler panicked".into()),
                }
            });
            // The first poll uses a waker that does nothing: a pending handler is spawned
            // right after, and a spawned task is always polled once more, which registers
            // its own waker with whatever it waits on.
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            if task.as_mut().poll(&mut cx).is_pending() {
                spawn(task);
            }
        }
    }
}

/// Reads an answer the error-first way: `cb(null, result)` or `cb(err)`.
fn error_first<T: DeserializeOwned, E: DeserializeOwned>(args: Args) -> Result<T, RpcError<E>> {
    peer_error(&args)?;
    let result = args.values().get(1).cloned().unwrap_or(Value::Null);
    from_value(result).map_err(RpcError::Decode)
}

/// The error argument of an error-first answer, if it is not null.
fn peer_error<E: DeserializeOwned>(args: &Args) -> Result<(), RpcError<E>> {
    match args.values().first() {
        None | Some(Value::Null) => Ok(()),
        Some(err) => Err(match from_value::<E>(err.clone()) {
            Ok(e) => RpcError::Remote(e),
            Err(_) => RpcError::RemoteOther(err.clone()),
        }),
    }
}

/// References on the peer's callbacks inside a received value; given back when the last
/// handle sharing them is dropped.
struct Held {
    conn: ConnId,
    peer: Weak<dyn PeerOps>,
    fns: Vec<RemoteFn>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(p) = self.peer.upgrade() {
            p.release(self.conn, &self.fns);
        }
    }
}

/// A value from the peer, bound to the connection it came on, with its functions callable:
/// the peer's interface, an object a callback returned (like `auth`'s session), or one
/// argument of a call.
///
/// Handles are cheap to clone. They stay valid for one connection; after a reconnect, calls
/// on an old handle fail with [`CallError::NotConnected`].
#[derive(Clone)]
pub struct Remote {
    value: Value,
    conn: ConnId,
    peer: Weak<dyn PeerOps>,
    /// The time limit of calls through this handle, when set by
    /// [`with_timeout`](Remote::with_timeout) (else the client's or server's).
    timeout: Option<Option<Duration>>,
    _held: Option<Arc<Held>>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("conn", &self.conn)
            .field("value", &self.value)
            .finish()
    }
}

fn remote_fns(v: &Value) -> Vec<RemoteFn> {
    let mut out = Vec::new();
    v.for_each_function(&mut |f| {
        if let Function::Remote(r) = f {
            out.push(r);
        }
    });
    out
}

impl Remote {
    /// A handle on a value whose references are owned elsewhere (the session's interface).
    pub(crate) fn borrowed(value: Value, conn: ConnId, peer: Weak<dyn PeerOps>) -> Remote {
        Remote {
            value,
            conn,
            peer,
            timeout: None,
            _held: None,
        }
    }

    /// A handle that owns the references of `value`.
    pub(crate) fn owned(value: Value, conn: ConnId, peer: Weak<dyn PeerOps>) -> Remote {
        let fns = remote_fns(&value);
        let held = (!fns.is_empty()).then(|| {
            Arc::new(Held {
                conn,
                peer: peer.clone(),
                fns,
            })
        });
        Remote {
            value,
            conn,
            peer,
            timeout: None,
            _held: held,
        }
    }

    /// The value itself (functions appear as [`Function::Remote`]).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The connection this handle belongs to.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// The member `key`, as a handle sharing this one's lifetime.
    pub fn get(&self, key: &str) -> Option<Remote> {
        let v = self.value.get(key)?.clone();
        Some(Remote {
            value: v,
            conn: self.conn,
            peer: self.peer.clone(),
            timeout: self.timeout,
            _held: self._held.clone(),
        })
    }

    /// The same handle with its own time limit for the calls made through it (and the
    /// handles taken from it by [`get`](Self::get)): `Some(d)` fails a call with no answer
    /// after `d`, `None` waits until the answer or the link going down. Without it, calls
    /// take the client's or server's `call_timeout` (default
    /// [`DEFAULT_CALL_TIMEOUT`](crate::DEFAULT_CALL_TIMEOUT), 60 s).
    ///
    /// ```no_run
    /// # async fn f(remote: upnode_async::Remote) -> Result<(), upnode_async::RpcError<String>> {
    /// use std::time::Duration;
    /// let sum: i64 = remote.with_timeout(Some(Duration::from_secs(2))).rpc("add", &(2, 3)).await?;
    /// # Ok(()) }
    /// ```
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Remote {
        let mut r = self.clone();
        r.timeout = Some(timeout);
        r
    }

    /// The value as a Rust type (functions only into [`RemoteFn`] fields).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CallError> {
        Ok(from_value(self.value.clone())?)
    }

    fn peer(&self) -> Result<Arc<dyn PeerOps>, CallError> {
        self.peer.upgrade().ok_or(CallError::Closed)
    }

    fn target(&self, method: &str) -> Result<Target, CallError> {
        if method.is_empty() {
            if let Value::Function(Function::Remote(r)) = self.value {
                return Ok(Target::Callback(r));
            }
        }
        match self.value.get(method) {
            Some(Value::Function(Function::Remote(r))) => Ok(Target::Callback(*r)),
            _ => Err(CallError::NoSuchMethod(method.to_owned())),
        }
    }

    /// **The usual way to call the peer**: a typed call with Node's error-first answer.
    ///
    /// Calls `method` with `args` (a tuple, `()` for none) plus an answer callback, and reads
    /// the answer as Node code writes it: `cb(null, result)` gives `Ok(result)` (decoded as
    /// `T`; a missing result reads as null, so `()` and `Option<_>` accept `cb(null)`;
    /// `serde::de::IgnoredAny` takes any result, and [`rpc_remote`](Self::rpc_remote) one
    /// with functions), and `cb(err)` gives [`RpcError::Remote`]`(err)` (decoded as `E`).
    /// A failure of the link, the time limit ([`with_timeout`](Self::with_timeout), else the client's or server's
    /// `call_timeout`, default 60 s) or decoding is a different variant, so a remote error
    /// is never mistaken for a dropped link. The call is sent at once, before the future is
    /// first polled.
    ///
    /// ```no_run
    /// # async fn f(remote: upnode_async::Remote) {
    /// use upnode_async::RpcError;
    /// match remote.rpc::<_, f64, String>("div", &(1, 0)).await {
    ///     Ok(q) => println!("1 / 0 = {q}"),
    ///     Err(RpcError::Remote(e)) => println!("the server said no: {e}"),
    ///     Err(e) => println!("no answer: {e}"),
    /// }
    /// # }
    /// ```
    ///
    /// The lower-level forms: [`call`](Self::call) (the answer's arguments as a tuple, no
    /// error convention), [`call_raw`](Self::call_raw) (the answer as [`Args`]),
    /// [`call_stream`](Self::call_stream) and [`invoke`](Self::invoke).
    pub fn rpc<A, T, E>(
        &self,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<T, RpcError<E>>> + Send + 'static
    where
        A: Serialize + ?Sized,
        T: DeserializeOwned,
        E: DeserializeOwned,
    {
        let reply = self.call_raw(method, args);
        async move { error_first(reply.await?) }
    }

    /// [`rpc`](Self::rpc) for a result holding the peer's functions, such as the session
    /// object an `auth` method answers with (`cb(null, {beep: fn})`): the result as a
    /// callable handle.
    ///
    /// ```no_run
    /// # async fn f(remote: upnode_async::Remote) -> Result<(), upnode_async::RpcError<String>> {
    /// let session = remote.rpc_remote::<_, String>("auth", &("moo", "hax")).await?;
    /// let beep: String = session.rpc("beep", &()).await?;
    /// # Ok(()) }
    /// ```
    pub fn rpc_remote<A, E>(
        &self,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<Remote, RpcError<E>>> + Send + 'static
    where
        A: Serialize + ?Sized,
        E: DeserializeOwned,
    {
        let reply = self.call_raw(method, args);
        async move {
            let args = reply.await?;
            peer_error(&args)?;
            Ok(args.remote(1).unwrap_or_else(|| {
                let mut r = args.remote.clone();
                r.value = Value::Null;
                r
            }))
        }
    }

    /// Lower level than [`rpc`](Self::rpc): calls `method` with `args` (a tuple; `()` for
    /// none) and one more argument: a callback whose first call is the answer. The call is sent at once, before the returned future
    /// is first polled, so calls leave in the order they are made. The future fails with
    /// [`CallError::LinkDown`] if the connection drops first, or [`CallError::TimedOut`]
    /// after the client's call timeout.
    ///
    /// `method` may be `""` when this handle is itself a function.
    pub fn call_raw<A: Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<Args, CallError>> + Send + 'static {
        let sent = self.send_with_reply(method, args);
        async move {
            match sent {
                Ok(rx) => rx.await.unwrap_or(Err(CallError::Closed)),
                Err(e) => Err(e),
            }
        }
    }

    fn send_with_reply<A: Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<oneshot::Receiver<Result<Args, CallError>>, CallError> {
        let (tx, rx) = oneshot::channel();
        self.send_with_callback(method, args, Handler::Reply(tx))?;
        Ok(rx)
    }

    /// Calls `method` with `args` plus one more argument: a function of ours run by
    /// `handler`. A reply handler is armed with the call, so the call's failure reaches it.
    fn send_with_callback<A: Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
        handler: Handler,
    ) -> Result<(), CallError> {
        let target = self.target(method)?;
        let mut values = to_args(args)?;
        let peer = self.peer()?;
        let reply = matches!(handler, Handler::Reply(_));
        let f = peer.register(self.conn, handler);
        let sent = if reply {
            // The link appends it, answers the call by it alone and forgets it after.
            let timeout = self.timeout.unwrap_or_else(|| peer.call_timeout());
            peer.call(self.conn, target, values, timeout, Some(f))
        } else {
            values.push(Value::from(f));
            peer.call(self.conn, target, values, None, None)
        };
        if sent.is_err() {
            peer.unregister(f);
        }
        sent
    }

    /// Lower level than [`rpc`](Self::rpc) (no error-first convention): like
    /// [`call_raw`](Self::call_raw), decoding the answer's arguments as `R` (a tuple:
    /// `(String,)`, `(Option<String>, Value)`; missing trailing arguments read as null). For
    /// peers that answer without an error argument, like upnode's README `time(cb)`.
    ///
    /// ```no_run
    /// # async fn f(remote: upnode_async::Remote) -> Result<(), upnode_async::CallError> {
    /// let (t,): (String,) = remote.call("time", &()).await?;
    /// # Ok(()) }
    /// ```
    pub fn call<A: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<R, CallError>> + Send + 'static {
        let reply = self.call_raw(method, args);
        async move { reply.await?.decode() }
    }

    /// Calls `method` with `args` plus a callback, and returns every call of that callback
    /// as a stream (for callbacks the peer calls many times). The stream ends when the
    /// connection does.
    pub fn call_stream<A: Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<mpsc::UnboundedReceiver<Args>, CallError> {
        let (tx, rx) = mpsc::unbounded();
        self.send_with_callback(method, args, Handler::Stream(tx))?;
        Ok(rx)
    }

    /// Calls `method` with exactly these values, expecting no answer. Put our functions in
    /// them with [`callback`](Self::callback).
    pub fn invoke(&self, method: &str, args: Vec<Value>) -> Result<(), CallError> {
        let target = self.target(method)?;
        self.peer()?.call(self.conn, target, args, None, None)
    }

    /// Makes one of our functions, callable by the peer on this connection (any number of
    /// times), to pass inside the values of [`invoke`](Self::invoke) or in typed arguments
    /// (it serializes as a function). `f` runs on the connection's driver task, in the order
    /// calls arrive: keep it short and never block in it (send to a channel or spawn).
    pub fn callback(&self, f: impl Fn(Args) + Send + Sync + 'static) -> Result<LocalFn, CallError> {
        Ok(self
            .peer()?
            .register(self.conn, Handler::Callback(Arc::new(f))))
    }
}

/// The arguments of a call the peer made to one of our functions (or of an answer).
#[derive(Debug, Clone)]
pub struct Args {
    /// The arguments as one array value, holding the references on the peer's callbacks
    /// inside them.
    remote: Remote,
}

impl Args {
    pub(crate) fn new(values: Vec<Value>, conn: ConnId, peer: Weak<dyn PeerOps>) -> Args {
        Args {
            remote: Remote::owned(Value::Array(values), conn, peer),
        }
    }

    /// The raw values.
    pub fn values(&self) -> &[Value] {
        match &self.remote.value {
            Value::Array(a) => a,
            _ => &[],
        }
    }

    /// How many arguments.
    pub fn len(&self) -> usize {
        self.values().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values().is_empty()
    }

    /// All arguments as a Rust tuple or struct (JavaScript call semantics: missing trailing
    /// arguments are null, extra ones ignored).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CallError> {
        Ok(from_args(self.values().to_vec())?)
    }

    /// Argument `i` as a Rust value (`null` when missing).
    pub fn get<T: DeserializeOwned>(&self, i: usize) -> Result<T, CallError> {
        Ok(from_value(
            self.values().get(i).cloned().unwrap_or(Value::Null),
        )?)
    }

    /// Argument `i` as a callable handle (for objects with functions, or a function).
    pub fn remote(&self, i: usize) -> Option<Remote> {
        let v = self.values().get(i)?.clone();
        let mut r = self.remote.clone();
        r.value = v;
        Some(r)
    }

    /// The connection the call came on.
    pub fn conn(&self) -> ConnId {
        self.remote.conn
    }
}

/// A call to one of our exported methods.
pub struct Call {
    args: Args,
    peer: Weak<dyn PeerOps>,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").field("args", &self.args).finish()
    }
}

impl Call {
    /// The arguments.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// All arguments decoded (see [`Args::decode`]).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CallError> {
        self.args.decode()
    }

    /// The arguments before the answer callback, decoded (see [`Args::decode`]): a trailing
    /// function is left out, so `(i64, i64)` reads `add(2, 3, cb)` and a missing argument
    /// reads as null, never as the callback.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, CallError> {
        let mut values = self.args.values().to_vec();
        if matches!(values.last(), Some(Value::Function(_))) {
            values.pop();
        }
        Ok(from_args(values)?)
    }

    /// Calls the last argument back with `args` (a tuple): the dnode convention for an
    /// answer. Does nothing if the last argument is not a function.
    pub fn reply<A: Serialize + ?Sized>(&self, args: &A) -> Result<(), CallError> {
        self.reply_values(to_args(args)?)
    }

    /// Like [`reply`](Self::reply) with values that may hold our own functions (for
    /// example an object with methods, as `auth` returns).
    pub fn reply_values(&self, values: Vec<Value>) -> Result<(), CallError> {
        let Some(Value::Function(Function::Remote(cb))) = self.args.values().last() else {
            return Ok(());
        };
        let peer = self.peer.upgrade().ok_or(CallError::Closed)?;
        peer.call(self.args.conn(), Target::Callback(*cb), values, None, None)
    }

    /// Makes a function of ours for this connection (e.g. `beep` inside `auth`'s answer)
    /// from an async handler, like an exported method.
    pub fn method<F, Fut>(&self, f: F) -> Result<Value, CallError>
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let peer = self.peer.upgrade().ok_or(CallError::Closed)?;
        let m: MethodFn = Arc::new(move |c| Box::pin(f(c)));
        Ok(Value::from(
            peer.register(self.args.conn(), Handler::Method(m, None)),
        ))
    }
}

/// What one side exports: methods (async handlers) and data values, in order.
///
/// ```
/// use upnode_async::Interface;
/// let iface = Interface::new()
///     .method("time", |call| async move { call.reply(&("now",))?; Ok(()) })
///     .value("beep", &5)
///     .unwrap();
/// assert_eq!(iface.names(), vec!["time", "beep"]);
/// ```
#[derive(Clone, Default)]
pub struct Interface {
    entries: Vec<(String, Export)>,
}

#[derive(Clone)]
enum Export {
    Method(MethodFn),
    Value(Value),
}

impl fmt::Debug for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Interface {
    /// Exports nothing (the link still adds `ping`).
    pub fn new() -> Interface {
        Interface::default()
    }

    /// **The usual way to export a function**: typed arguments in, Node's error-first answer
    /// out.
    ///
    /// `f` receives the call's arguments before the answer callback, decoded as `A` (a
    /// tuple, `()` for none; missing trailing arguments read as null, extra ones are
    /// ignored), and its result answers the caller as Node code expects: `Ok(v)` calls
    /// `cb(null, v)`, `Err(e)` calls `cb(e)`. Arguments that do not decode are answered
    /// `cb("invalid arguments to NAME: …")` (a string) without running `f`, so the caller
    /// always hears back. A panic in `f` is reported as a handler event and answered
    /// `cb("internal error in NAME")`. Ordering is as for [`method`](Self::method).
    ///
    /// ```
    /// use upnode_async::Interface;
    /// let iface = Interface::new().rpc("div", |(a, b): (f64, f64)| async move {
    ///     if b == 0.0 {
    ///         return Err("division by zero".to_owned());
    ///     }
    ///     Ok(a / b)
    /// });
    /// assert_eq!(iface.names(), vec!["div"]);
    /// ```
    ///
    /// [`method`](Self::method) is the lower-level form: the raw [`Call`], answered by hand.
    pub fn rpc<A, T, E, F, Fut>(self, name: impl Into<String>, f: F) -> Interface
    where
        A: DeserializeOwned + Send + 'static,
        T: Serialize + 'static,
        E: Serialize + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let name: Arc<str> = name.into().into();
        let label = name.clone();
        self.method(name.to_string(), move |call: Call| {
            let name = label.clone();
            let started = call
                .params::<A>()
                .map(|a| AssertUnwindSafe(f(a)).catch_unwind());
            async move {
                let fut = match started {
                    Ok(fut) => fut,
                    Err(e) => {
                        tracing::debug!(method = %name, error = %e, "invalid arguments");
                        call.reply(&(format!("invalid arguments to {name}: {e}"),))?;
                        return Ok(());
                    }
                };
                let answer = match fut.await {
                    Ok(Ok(v)) => to_value(&v).map(|v| vec![Value::Null, v]),
                    Ok(Err(e)) => to_value(&e).map(|e| vec![e]),
                    Err(_) => {
                        call.reply(&(format!("internal error in {name}"),))?;
                        return Err(format!("the handler of {name} panicked").into());
                    }
                };
                match answer {
                    Ok(values) => call.reply_values(values)?,
                    Err(e) => {
                        call.reply(&(format!("internal error in {name}"),))?;
                        return Err(format!("the answer of {name} does not encode: {e}").into());
                    }
                }
                Ok(())
            }
        })
    }

    /// Lower level than [`rpc`](Self::rpc): exports an async method that receives the raw
    /// [`Call`] and answers it by hand ([`Call::reply`]), for calls outside the error-first
    /// convention, callbacks called many times, or functions in the answer. A handler that
    /// returns an error or panics is reported as an error event; the connection lives on.
    ///
    /// Handlers of one connection start in the order the calls arrived: the part of each
    /// before its first `.await` runs on the connection's task, one call after the other, as
    /// Node runs them (so answers given there leave in call order). What follows an
    /// `.await` runs as a task of its own, concurrently with later calls. Keep the part
    /// before the first `.await` short and never block in it.
    pub fn method<F, Fut>(mut self, name: impl Into<String>, f: F) -> Interface
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let m: MethodFn = Arc::new(move |c| Box::pin(f(c)));
        self.set(name.into(), Export::Method(m));
        self
    }

    /// Exports a data value (travels as data, like upnode's `beep = 5`).
    pub fn value<T: Serialize + ?Sized>(
        mut self,
        name: impl Into<String>,
        v: &T,
    ) -> Result<Interface, CallError> {
        self.set(name.into(), Export::Value(to_value(v)?));
        Ok(self)
    }

    fn set(&mut self, name: String, e: Export) {
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = e,
            None => self.entries.push((name, e)),
        }
    }

    /// Exported names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// Registers the methods and returns the exports value for a session.
    pub(crate) fn install(&self, handlers: &mut Handlers, conn: Option<ConnId>) -> Value {
        Value::object(self.entries.iter().map(|(k, e)| {
            let v = match e {
                Export::Method(m) => Value::from(
                    handlers.insert(Handler::Method(m.clone(), Some(k.as_str().into())), conn),
                ),
                Export::Value(v) => v.clone(),
            };
            (k.clone(), v)
        }))
    }
}
