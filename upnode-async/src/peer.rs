//! What client and server connections share: the table of our functions, remote objects,
//! arguments, calls, and exported interfaces.

use crate::error::{CallError, HandlerError, RpcError};
use crate::running::RunningGuard;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use upnode_core::link::ConnId;
use upnode_core::{from_args, from_value, CallArgs, Function, LocalFn, RemoteFn, Target, Value};

/// What a connection (client or server side) offers the handles living outside it.
pub(crate) trait PeerOps: Send + Sync {
    /// Makes a call on `conn` carrying `attach` (see [`Attach`]), registering the attached
    /// function and handing the call to the link under one lock.
    fn call(
        &self,
        conn: ConnId,
        target: Target,
        args: CallArgs,
        attach: Attach,
    ) -> Result<(), CallError>;
    /// Gives back references on the peer's callbacks.
    fn release(&self, conn: ConnId, fns: &[RemoteFn]);
    /// Registers one of our functions for `conn`.
    fn register(&self, conn: ConnId, handler: Handler) -> LocalFn;
    /// Default time limit of calls.
    fn call_timeout(&self) -> Option<Duration>;
    /// Counts a method handler as running until the returned guard is dropped (a server's
    /// graceful shutdown waits for them).
    fn track_handler(&self) -> Option<RunningGuard> {
        None
    }
}

/// What a reply slot carries, boxed either way: the slot is allocated with every call and
/// held while the call is in flight, so it is kept small (48 bytes where the unboxed
/// answer made it 112); the answer is boxed only once it has come.
pub(crate) type Reply = Result<Box<Args>, Box<CallError>>;

/// Where the answer to a call goes.
pub(crate) type ReplyTx = ::oneshot::Sender<Reply>;

/// One of our functions that lives until the peer frees it or its connection ends.
pub(crate) enum Handler {
    /// Every call is forwarded; the stream ends when the connection does.
    Stream(mpsc::UnboundedSender<Args>),
    /// A closure, run on each call.
    Callback(Arc<dyn Fn(Args) + Send + Sync>),
    /// A method run as a task (exported, or made by `Call::method`).
    Method(Arc<Method>),
}

/// A method handler, with its exported name (`None` for functions made by `Call::method`).
pub(crate) struct Method {
    pub run: MethodFn,
    pub name: Option<Arc<str>>,
}

pub(crate) type MethodFn =
    Arc<dyn Fn(Call) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync>;

/// What a call carries that was made for it.
pub(crate) enum Attach {
    /// Nothing: the arguments are complete.
    Nothing,
    /// A reply slot: the link appends its function as the answer callback, answers the call
    /// by it alone and forgets it once the call resolves; `Option<Duration>` is the call's
    /// time limit, for its error.
    Reply(ReplyTx, Option<Duration>),
    /// A function appended as the last argument, living as long as the connection.
    Last(Handler),
}

impl Attach {
    /// The call's time limit: only a call with a reply slot has one.
    pub fn timeout(&self) -> Option<Duration> {
        match self {
            Attach::Reply(_, t) => *t,
            _ => None,
        }
    }
}

/// The answer to a call made with a reply slot, read by `read` (or why the call could not be
/// made): what [`Remote::call_raw`], [`Remote::call`] and [`Remote::rpc`] return. Written
/// by hand rather than as an `async` block so that a call in flight costs the caller 24
/// bytes, not the hundred and more of nested `async` state, and its reply slot (the `oneshot`
/// crate's channel) about a hundred more, where `futures`' took 160 (a client with 100 000 calls
/// outstanding holds 100 000 of them).
struct Answer<O> {
    slot: Result<::oneshot::Receiver<Reply>, Option<Box<CallError>>>,
    read: fn(Result<Args, CallError>) -> O,
}

impl<O> Answer<O> {
    fn new(
        sent: Result<::oneshot::Receiver<Reply>, CallError>,
        read: fn(Result<Args, CallError>) -> O,
    ) -> Answer<O> {
        Answer {
            slot: sent.map_err(|e| Some(Box::new(e))),
            read,
        }
    }
}

impl<O> Future for Answer<O> {
    type Output = O;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        let read = self.read;
        let answer = match &mut self.slot {
            Ok(rx) => {
                // A slot dropped unanswered: the client or connection is gone.
                let answer = match ready!(Pin::new(rx).poll(cx)) {
                    Ok(Ok(args)) => Ok(*args),
                    Ok(Err(e)) => Err(*e),
                    Err(_) => Err(CallError::Closed),
                };
                // The receiver is done with: never polled again.
                self.slot = Err(None);
                answer
            }
            // Polled again after the answer was given: nothing more to say.
            Err(e) => Err(e.take().map_or(CallError::Closed, |e| *e)),
        };
        Poll::Ready(read(answer))
    }
}

/// An answer's arguments decoded as `R`.
fn decoded_answer<R: DeserializeOwned>(r: Result<Args, CallError>) -> Result<R, CallError> {
    // The answer is ours alone: its values are moved into `R`, not copied.
    let (values, _held) = r?.into_values();
    Ok(from_args(values)?)
}

/// An answer read the error-first way.
fn error_first_answer<T: DeserializeOwned, E: DeserializeOwned>(
    r: Result<Args, CallError>,
) -> Result<T, RpcError<E>> {
    error_first(r?)
}

/// Reads an answer the error-first way: `cb(null, result)` or `cb(err)`.
fn error_first<T: DeserializeOwned, E: DeserializeOwned>(args: Args) -> Result<T, RpcError<E>> {
    peer_error(&args)?;
    let (mut values, _held) = args.into_values();
    let result = if values.len() > 1 {
        values.swap_remove(1)
    } else {
        Value::Null
    };
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
    fns: HeldFns,
}

/// The peer's callbacks a value holds; one (a call's answer callback, the usual case) is
/// kept without a vector of its own.
enum HeldFns {
    One(RemoteFn),
    Many(Vec<RemoteFn>),
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(p) = self.peer.upgrade() {
            let fns = match &self.fns {
                HeldFns::One(f) => std::slice::from_ref(f),
                HeldFns::Many(v) => v,
            };
            p.release(self.conn, fns);
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

/// The peer's callbacks inside `v`, in wire order; `None` when there are none.
fn remote_fns(v: &Value) -> Option<HeldFns> {
    let mut out = None;
    v.for_each_function(&mut |f| {
        if let Function::Remote(r) = f {
            out = Some(match out.take() {
                None => HeldFns::One(r),
                Some(HeldFns::One(first)) => HeldFns::Many(vec![first, r]),
                Some(HeldFns::Many(mut v)) => {
                    v.push(r);
                    HeldFns::Many(v)
                }
            });
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
        let held = remote_fns(&value).map(|fns| {
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
        T: DeserializeOwned + 'static,
        E: DeserializeOwned + 'static,
    {
        Answer::new(
            self.send_with_reply(method, args),
            error_first_answer::<T, E>,
        )
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
        Answer::new(self.send_with_reply(method, args), |r| r)
    }

    fn send_with_reply<A: Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<::oneshot::Receiver<Reply>, CallError> {
        let (tx, rx) = ::oneshot::channel();
        let peer = self.peer()?;
        let timeout = self.timeout.unwrap_or_else(|| peer.call_timeout());
        self.send_with(&*peer, method, args, Attach::Reply(tx, timeout))?;
        Ok(rx)
    }

    /// Calls `method` with `args` and what `attach` adds (one lock for the whole call).
    fn send_with<A: Serialize + ?Sized>(
        &self,
        peer: &dyn PeerOps,
        method: &str,
        args: &A,
        attach: Attach,
    ) -> Result<(), CallError> {
        let target = self.target(method)?;
        let args = CallArgs::from_typed(args)?;
        peer.call(self.conn, target, args, attach)
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
    pub fn call<A: Serialize + ?Sized, R: DeserializeOwned + 'static>(
        &self,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<R, CallError>> + Send + 'static {
        Answer::new(self.send_with_reply(method, args), decoded_answer::<R>)
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
        let peer = self.peer()?;
        self.send_with(&*peer, method, args, Attach::Last(Handler::Stream(tx)))?;
        Ok(rx)
    }

    /// Calls `method` with exactly these values, expecting no answer. Put our functions in
    /// them with [`callback`](Self::callback).
    pub fn invoke(&self, method: &str, args: Vec<Value>) -> Result<(), CallError> {
        let target = self.target(method)?;
        self.peer()?
            .call(self.conn, target, args.into(), Attach::Nothing)
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

    /// The values, moved out, with the references on the peer's callbacks inside them,
    /// which are given back when the second part is dropped (unless other handles share
    /// them).
    fn into_values(self) -> (Vec<Value>, Option<Arc<Held>>) {
        let Remote { value, _held, .. } = self.remote;
        match value {
            Value::Array(a) => (a, _held),
            _ => (Vec::new(), _held),
        }
    }

    /// The values, to take some out (see [`Call::take_params`]).
    fn values_mut(&mut self) -> &mut Vec<Value> {
        if !matches!(self.remote.value, Value::Array(_)) {
            self.remote.value = Value::Array(Vec::new());
        }
        match &mut self.remote.value {
            Value::Array(a) => a,
            _ => unreachable!("made an array above"),
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

impl Call {
    pub(crate) fn new(args: Args, peer: Weak<dyn PeerOps>) -> Call {
        Call { args, peer }
    }
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

    /// Like [`params`](Self::params), moving the arguments into `T` instead of copying them
    /// first (see [`take_values`](Self::take_values)).
    ///
    /// ```no_run
    /// # use upnode_async::Interface;
    /// let iface = Interface::new().method("upper", |mut call| async move {
    ///     let (text,): (String,) = call.take_params()?;
    ///     call.reply(&(text.to_uppercase(),))?;
    ///     Ok(())
    /// });
    /// ```
    pub fn take_params<T: DeserializeOwned>(&mut self) -> Result<T, CallError> {
        Ok(from_args(self.take_values())?)
    }

    /// The arguments before the answer callback, moved out of the call: nothing is copied.
    /// Afterwards the call's [`args`](Self::args) hold only the answer callback, so
    /// [`reply`](Self::reply) still answers; taking again gives nothing.
    ///
    /// ```no_run
    /// # use upnode_async::Interface;
    /// // Answers with its first argument, as it came.
    /// let iface = Interface::new().method("echo", |mut call| async move {
    ///     let mut values = call.take_values();
    ///     values.truncate(1);
    ///     call.reply_values(values)?;
    ///     Ok(())
    /// });
    /// ```
    pub fn take_values(&mut self) -> Vec<Value> {
        let values = self.args.values_mut();
        let n = match values.last() {
            Some(Value::Function(_)) => values.len() - 1,
            _ => values.len(),
        };
        if n == values.len() {
            return std::mem::take(values);
        }
        let callback = values.pop();
        let taken = std::mem::take(values);
        values.extend(callback);
        taken
    }

    /// Calls the last argument back with `args` (a tuple): the dnode convention for an
    /// answer. Does nothing if the last argument is not a function.
    pub fn reply<A: Serialize + ?Sized>(&self, args: &A) -> Result<(), CallError> {
        self.reply_args(CallArgs::from_typed(args)?)
    }

    /// Like [`reply`](Self::reply) with values that may hold our own functions (for
    /// example an object with methods, as `auth` returns).
    pub fn reply_values(&self, values: Vec<Value>) -> Result<(), CallError> {
        self.reply_args(values.into())
    }

    /// Answers with these arguments (see [`reply`](Self::reply)).
    fn reply_args(&self, args: CallArgs) -> Result<(), CallError> {
        let Some(Value::Function(Function::Remote(cb))) = self.args.values().last() else {
            return Ok(());
        };
        let peer = self.peer.upgrade().ok_or(CallError::Closed)?;
        peer.call(
            self.args.conn(),
            Target::Callback(*cb),
            args,
            Attach::Nothing,
        )
    }

    /// Makes a function of ours for this connection (e.g. `beep` inside `auth`'s answer)
    /// from an async handler, like an exported method.
    pub fn method<F, Fut>(&self, f: F) -> Result<Value, CallError>
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let peer = self.peer.upgrade().ok_or(CallError::Closed)?;
        let run: MethodFn = Arc::new(move |c| Box::pin(f(c)));
        let m = Arc::new(Method { run, name: None });
        Ok(Value::from(
            peer.register(self.args.conn(), Handler::Method(m)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_in_flight_costs_its_caller_24_bytes() {
        assert_eq!(std::mem::size_of::<Answer<Result<(u64,), CallError>>>(), 24);
    }

    #[test]
    fn a_reply_slot_carries_two_words_whatever_the_answer() {
        // The slot's allocation is this, a waker and a state byte: 48 bytes with malloc's
        // rounding, held by every call in flight.
        assert_eq!(std::mem::size_of::<Reply>(), 16);
    }
}
