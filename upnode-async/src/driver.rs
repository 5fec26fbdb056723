//! The pieces both background tasks (the client's and each server connection's) are made of:
//! the wake-up signal, the one timer, the event subscribers, the queue of released peer
//! callbacks, and the bookkeeping after a call.

use crate::client::map_call_error;
use crate::error::CallError;
use crate::peer::Handlers;
use crate::runtime::Runtime;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::task::AtomicWaker;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Context;
use std::time::Instant;
use upnode_core::link::{CallId, LinkCounters};
use upnode_core::LocalFn;

/// Locks a mutex, carrying on if a thread panicked while holding it (the state machines
/// stay consistent between calls, and a panicking user callback never runs under a lock).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

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

/// The one timer of a task, re-armed only when the state machine's deadline changes.
#[derive(Default)]
pub(crate) struct Timer {
    armed: Option<(Instant, BoxFuture<'static, ()>)>,
}

impl Timer {
    pub fn arm(&mut self, rt: &dyn Runtime, deadline: Option<Instant>) {
        match (deadline, &self.armed) {
            (Some(d), Some((t, _))) if *t == d => {}
            (Some(d), _) => self.armed = Some((d, rt.sleep_until(d))),
            (None, _) => self.armed = None,
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

/// Event streams handed out to users; a subscriber that falls a full channel behind misses
/// events, one that is dropped is forgotten.
pub(crate) struct Subscribers<T> {
    senders: Vec<mpsc::Sender<T>>,
}

impl<T> Default for Subscribers<T> {
    fn default() -> Self {
        Subscribers {
            senders: Vec::new(),
        }
    }
}

impl<T: Clone> Subscribers<T> {
    pub fn from(senders: Vec<mpsc::Sender<T>>) -> Self {
        Subscribers { senders }
    }

    pub fn add(&mut self, capacity: usize) -> mpsc::Receiver<T> {
        let (tx, rx) = mpsc::channel(capacity);
        self.senders.push(tx);
        rx
    }

    pub fn emit(&mut self, ev: T) {
        self.senders.retain_mut(|s| match s.try_send(ev.clone()) {
            Ok(()) => true,
            Err(e) => !e.is_disconnected(),
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

    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *lock(&self.queue))
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

/// After a call was handed to the link: arms the reply slot of a tracked call.
pub(crate) fn after_call(
    handlers: &mut Handlers,
    result: Result<Option<CallId>, upnode_core::link::CallError>,
    reply: Option<LocalFn>,
) -> Result<(), CallError> {
    match result {
        Ok(Some(id)) => {
            if let Some(f) = reply {
                handlers.arm_reply(id, f);
            }
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(map_call_error(e)),
    }
}
