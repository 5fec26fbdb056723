//! Our functions on one client or server: the table the driver looks calls up in, the
//! reply slots of calls in flight, and running the handler a call reaches.

use crate::error::{CallError, HandlerError};
use crate::peer::{Args, Attach, Call, Handler, Method, PeerOps, ReplyTx};
use futures::future::BoxFuture;
use futures::FutureExt;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tracing::Instrument;
use upnode_core::link::{CallFailure, CallId, ConnId, SendError};
use upnode_core::seq_map::SeqMap;
use upnode_core::{CallArgs, LocalFn, Value};

/// The keys are ours, handed out in sequence: no peer picks them, so a fast hasher with a
/// per-process seed is enough (no HashDoS to fear).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What to do after a handler lookup, outside the connection's lock.
pub(crate) enum Dispatch {
    Callback(Arc<dyn Fn(Args) + Send + Sync>, Args),
    Method(Arc<Method>, Call),
}

/// Our functions on one client or server: keys, handlers, and the connection each belongs
/// to (exports belong to none and live as long as their owner); and apart from them, the
/// reply slots of calls in flight, the one kind made and dropped with every call.
#[derive(Default)]
pub(crate) struct Handlers {
    next: u64,
    map: Map<LocalFn, (Handler, Option<ConnId>)>,
    replies: Replies,
    /// Handlers taken out of `map` under the connection's lock, for the driver to drop once
    /// it has released it ([`take_gone`](Self::take_gone)): they may hold the user's
    /// closures, and whatever those capture may lock the connection again when dropped.
    gone: Vec<Handler>,
}

/// Reply slots of calls in flight, and the time limit of each call whose limit is not the
/// side's own (the limit a timeout error names): one word per call in the common case.
#[derive(Default)]
struct Replies {
    /// By the key of the call's reply function: keys handed out in sequence, so the slots
    /// sit in a window indexed by key.
    slots: SeqMap<ReplyTx>,
    /// The side's call time limit.
    limit: Option<Duration>,
    /// The calls made with another limit.
    other_limits: Map<LocalFn, Option<Duration>>,
}

impl Replies {
    fn insert(&mut self, f: LocalFn, tx: ReplyTx, limit: Option<Duration>) {
        self.slots.insert(f.0, tx);
        if limit != self.limit {
            self.other_limits.insert(f, limit);
        }
    }

    /// Takes `f`'s slot out, with its call's time limit.
    fn take(&mut self, f: LocalFn) -> Option<(ReplyTx, Option<Duration>)> {
        let tx = self.slots.remove(f.0)?;
        let limit = match self.other_limits.is_empty() {
            true => self.limit,
            false => self.other_limits.remove(&f).unwrap_or(self.limit),
        };
        Some((tx, limit))
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.other_limits.clear();
    }
}

impl Handlers {
    /// An empty table for a side whose calls wait `call_timeout` for an answer unless told
    /// otherwise.
    pub fn with_call_timeout(call_timeout: Option<Duration>) -> Handlers {
        let mut h = Handlers::default();
        h.replies.limit = call_timeout;
        h
    }

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

    /// Makes a call carrying `attach`, under the one lock the caller holds: registers the
    /// attached function, hands the call to `send` (the link: with the reply function, or
    /// with the function appended to `args`), and takes the function out again if the link
    /// refused the call (a handler is parked for [`take_gone`](Self::take_gone)).
    pub fn call(
        &mut self,
        conn: ConnId,
        mut args: CallArgs,
        attach: Attach,
        send: impl FnOnce(CallArgs, Option<LocalFn>) -> Result<Option<CallId>, SendError>,
    ) -> Result<(), CallError> {
        let registered = match attach {
            Attach::Nothing => None,
            Attach::Reply(tx, timeout) => {
                let f = self.unused_key();
                self.replies.insert(f, tx, timeout);
                Some((f, true))
            }
            Attach::Last(h) => {
                let f = self.insert(h, Some(conn));
                args.push(Value::from(f));
                Some((f, false))
            }
        };
        let reply = registered.and_then(|(f, reply)| reply.then_some(f));
        match send(args, reply) {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some((f, _)) = registered {
                    self.replies.take(f);
                    self.forget(f);
                }
                Err(CallError::from_link(e))
            }
        }
    }

    /// The peer called `f`: what to run (a reply slot is fulfilled here).
    pub fn on_call(
        &mut self,
        f: LocalFn,
        args: Args,
        make_call: impl FnOnce(Args) -> Call,
    ) -> Option<Dispatch> {
        if let Some((tx, _)) = self.replies.take(f) {
            let _ = tx.send(Ok(Box::new(args)));
            return None;
        }
        match self.map.get(&f) {
            Some((Handler::Stream(tx), _)) => {
                if tx.unbounded_send(args).is_err() {
                    // Nobody reads the stream any more: forget the handler.
                    self.map.remove(&f);
                }
                None
            }
            Some((Handler::Callback(cb), _)) => Some(Dispatch::Callback(cb.clone(), args)),
            Some((Handler::Method(m), _)) => Some(Dispatch::Method(m.clone(), make_call(args))),
            None => None,
        }
    }

    /// A tracked call failed: its reply slot, if it has one, learns why.
    pub fn on_call_failed(&mut self, reply: Option<LocalFn>, reason: CallFailure) {
        let Some((tx, timeout)) = reply.and_then(|f| self.replies.take(f)) else {
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
        let _ = tx.send(Err(Box::new(err)));
    }

    /// Takes handler `f` out, to be dropped outside the lock.
    fn forget(&mut self, f: LocalFn) {
        if let Some((h, _)) = self.map.remove(&f) {
            self.gone.push(h);
        }
    }

    /// The peer freed `f`: a per-connection function goes away.
    pub fn on_released(&mut self, f: LocalFn) {
        if matches!(self.map.get(&f), Some((_, Some(_)))) {
            self.forget(f);
        }
    }

    /// The connection ended: its functions go away (reply slots learn `LinkDown` through
    /// `CallFailed` first; anything left is dropped, which ends streams).
    pub fn on_conn_gone(&mut self, conn: ConnId) {
        let of_conn: Vec<LocalFn> = self
            .map
            .iter()
            .filter(|(_, (_, c))| *c == Some(conn))
            .map(|(f, _)| *f)
            .collect();
        for f in of_conn {
            self.forget(f);
        }
    }

    /// The handlers taken out since the last call, for the caller to drop once it has
    /// released the connection's lock.
    pub fn take_gone(&mut self) -> Vec<Handler> {
        std::mem::take(&mut self.gone)
    }

    /// Functions registered (exports, reply slots, streams, callbacks).
    pub fn len(&self) -> usize {
        self.map.len() + self.replies.len()
    }

    /// Everything goes (close); the handlers are dropped by the driver, outside the lock.
    pub fn clear(&mut self) {
        self.gone.extend(self.map.drain().map(|(_, (h, _))| h));
        self.replies.clear();
    }
}

/// Runs a handler outside any lock, catching panics so they cannot take a connection down.
/// `peer` may count a method handler until it ends (a server's graceful shutdown waits for
/// them).
///
/// A method handler is started here, on the connection's task: its future is polled once
/// at once, so the part before its first `.await` runs in the order the calls arrived (as
/// Node runs them), whatever the runtime's flavour. Only a handler that is still pending
/// after that becomes a task of its own; one that finished costs no task.
pub(crate) fn run_dispatch(
    d: Dispatch,
    peer: &dyn PeerOps,
    spawn: &dyn Fn(BoxFuture<'static, ()>),
    on_error: Arc<dyn Fn(String) + Send + Sync>,
) {
    match d {
        Dispatch::Callback(cb, args) => {
            if std::panic::catch_unwind(AssertUnwindSafe(|| cb(args))).is_err() {
                on_error("a callback panicked".into());
            }
        }
        Dispatch::Method(m, call) => {
            // A span per call, inside the connection's span: the method's name (or a
            // function passed in an answer) and the link's connection number.
            let span = tracing::debug_span!(
                "upnode.call",
                method = m.name.as_deref().unwrap_or("(function)"),
                link_conn = call.args().conn().0,
            );
            let _entered = span.enter();
            let running = peer.track_handler();
            let Ok(fut) = std::panic::catch_unwind(AssertUnwindSafe(|| (m.run)(call))) else {
                on_error("a method handler panicked".into());
                return;
            };
            // Wrapped in its span only when something listens for it.
            let mut fut = if span.is_disabled() {
                fut
            } else {
                Box::pin(fut.instrument(span.clone()))
            };
            let report = move |r: std::thread::Result<Result<(), HandlerError>>| match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => on_error(format!("a method handler failed: {e}")),
                Err(_) => on_error("a method handler panicked".into()),
            };
            // The first poll uses a waker that does nothing: a pending handler is spawned
            // right after, and a spawned task is always polled once more, which registers
            // its own waker with whatever it waits on. A handler that finishes here costs
            // neither a task nor a wrapper.
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            let first =
                match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
                    Ok(Poll::Ready(r)) => Ok(r),
                    Err(panic) => Err(panic),
                    Ok(Poll::Pending) => {
                        spawn(Box::pin(async move {
                            let r = AssertUnwindSafe(fut).catch_unwind().await;
                            report(r);
                            drop(running);
                        }));
                        return;
                    }
                };
            report(first);
            drop(fut);
            drop(running);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;

    #[test]
    fn a_handler_registered_for_a_refused_call_is_handed_back_and_nothing_is_kept() {
        let mut h = Handlers::default();
        for _ in 0..1000 {
            let (tx, _rx) = mpsc::unbounded();
            let r = h.call(
                ConnId(1),
                CallArgs::default(),
                Attach::Last(Handler::Stream(tx)),
                |_, _| Err(SendError::ReservedKey),
            );
            assert!(matches!(r, Err(CallError::Refused(_))), "{r:?}");
            assert_eq!(
                h.take_gone().len(),
                1,
                "the handler comes back to be dropped"
            );
        }
        let (tx, _rx) = ::oneshot::channel();
        let r = h.call(
            ConnId(1),
            CallArgs::default(),
            Attach::Reply(tx, None),
            |_, reply| {
                assert!(
                    reply.is_some(),
                    "a reply slot goes to the link as the answer callback"
                );
                Err(SendError::ReservedKey)
            },
        );
        assert!(r.is_err());
        assert_eq!(h.len(), 0, "no reply slot or handler is left behind");
        assert!(h.take_gone().is_empty());
    }

    /// Makes a call with a reply slot and the time limit `limit`; its answer function.
    fn call_with_slot(
        h: &mut Handlers,
        limit: Option<Duration>,
    ) -> (LocalFn, ::oneshot::Receiver<crate::peer::Reply>) {
        let (tx, rx) = ::oneshot::channel();
        let mut f = None;
        h.call(
            ConnId(1),
            CallArgs::default(),
            Attach::Reply(tx, limit),
            |_, reply| {
                f = reply;
                Ok(Some(CallId(0)))
            },
        )
        .unwrap();
        (f.unwrap(), rx)
    }

    #[test]
    fn a_timed_out_call_names_its_own_limit_and_only_other_limits_are_stored() {
        let side = Some(Duration::from_secs(60));
        let mut h = Handlers::with_call_timeout(side);
        let (a, rx_a) = call_with_slot(&mut h, side);
        assert!(
            h.replies.other_limits.is_empty(),
            "the side's limit is not stored per call"
        );
        let (b, rx_b) = call_with_slot(&mut h, Some(Duration::from_millis(250)));
        let (c, rx_c) = call_with_slot(&mut h, None);
        assert_eq!(h.replies.other_limits.len(), 2);
        for f in [c, b, a] {
            h.on_call_failed(Some(f), CallFailure::TimedOut);
        }
        let err = |rx: ::oneshot::Receiver<crate::peer::Reply>| match rx.recv() {
            Ok(Err(e)) => *e,
            other => panic!("expected an error, got {:?}", other.map(|r| r.map(|_| ()))),
        };
        assert!(matches!(err(rx_a), CallError::TimedOut(d) if Some(d) == side));
        assert!(matches!(err(rx_b), CallError::TimedOut(d) if d == Duration::from_millis(250)));
        assert!(matches!(err(rx_c), CallError::TimedOut(d) if d == Duration::ZERO));
        assert_eq!(h.len(), 0);
        assert!(h.replies.other_limits.is_empty(), "nothing is left behind");
    }
}
