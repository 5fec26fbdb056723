//! A count of the method handlers running on a server, for its graceful shutdown.

use crate::lock::lock;
use futures::channel::oneshot;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A count of running method handlers, and who waits for it to reach zero (a server's
/// graceful shutdown).
#[derive(Default)]
pub(crate) struct Running {
    count: AtomicUsize,
    idle: Mutex<Vec<oneshot::Sender<()>>>,
}

/// One running handler: counted from its start until its future ends or is dropped.
pub(crate) struct RunningGuard(Arc<Running>);

impl Running {
    pub fn start(self: &Arc<Self>) -> RunningGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        RunningGuard(self.clone())
    }

    /// How many run now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Completes when no handler runs (at once if none does). A wake-up from the count
    /// reaching zero is checked again: a handler that started in between keeps it waiting.
    pub fn idle(self: &Arc<Self>) -> impl std::future::Future<Output = ()> + Send + 'static {
        let running = self.clone();
        async move {
            loop {
                let rx = {
                    let mut waiters = lock(&running.idle);
                    if running.count.load(Ordering::Acquire) == 0 {
                        return;
                    }
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    rx
                };
                let _ = rx.await;
            }
        }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waiters = std::mem::take(&mut *lock(&self.0.idle));
            for w in waiters {
                let _ = w.send(());
            }
        }
    }
}
