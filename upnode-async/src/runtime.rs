//! What an adapter supplies: a clock, timers, task spawning, and transports.

use futures::future::BoxFuture;
use futures::io::{AsyncRead, AsyncWrite};
use std::io;
use std::time::{Duration, Instant};

/// A byte stream to a peer: anything readable and writable (TCP, TLS, a Unix socket, a pipe).
pub trait AsyncDuplex: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncDuplex for T {}

/// A boxed [`AsyncDuplex`].
pub type BoxStream = Box<dyn AsyncDuplex>;

/// Boxes a futures-io stream.
pub fn boxed<S: AsyncDuplex>(stream: S) -> BoxStream {
    Box::new(stream)
}

/// The runtime services the plumbing needs. Each adapter implements this once.
pub trait Runtime: Send + Sync + 'static {
    /// Runs a task in the background.
    fn spawn(&self, task: BoxFuture<'static, ()>);
    /// Completes at `deadline` (or at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;
    /// The current time (a runtime with virtual time returns its virtual clock).
    fn now(&self) -> Instant;

    /// Completes `after` from now; a duration too long for the clock to hold never
    /// completes (a user-given limit of `Duration::MAX` means no limit, not a panic).
    fn sleep_for(&self, after: Duration) -> BoxFuture<'static, ()> {
        match self.now().checked_add(after) {
            Some(at) => self.sleep_until(at),
            None => Box::pin(futures::future::pending()),
        }
    }
}

/// Opens a transport on every connection attempt: upnode's `createStream`.
pub trait Connector: Send + Sync + 'static {
    /// Opens one transport.
    fn connect(&self) -> BoxFuture<'static, io::Result<BoxStream>>;
}

impl<F> Connector for F
where
    F: Fn() -> BoxFuture<'static, io::Result<BoxStream>> + Send + Sync + 'static,
{
    fn connect(&self) -> BoxFuture<'static, io::Result<BoxStream>> {
        self()
    }
}

#[cfg(test)]
mod tests {
    // The fake runtime needs some instant to stand still at.
    #![allow(clippy::disallowed_methods)]
    use super::*;
    use std::sync::Mutex;

    /// A clock that stands still and records the sleeps asked for.
    struct Still(Instant, Mutex<Vec<Instant>>);

    impl Runtime for Still {
        fn spawn(&self, _: BoxFuture<'static, ()>) {}
        fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
            self.1.lock().unwrap().push(deadline);
            Box::pin(futures::future::ready(()))
        }
        fn now(&self) -> Instant {
            self.0
        }
    }

    #[test]
    fn a_sleep_too_long_for_the_clock_never_completes_and_never_panics() {
        let rt = Still(Instant::now(), Mutex::new(Vec::new()));
        let mut forever = rt.sleep_for(Duration::MAX);
        let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
        assert!(forever.as_mut().poll(&mut cx).is_pending());
        assert!(rt.1.lock().unwrap().is_empty(), "no timer was asked for");
        let mut second = rt.sleep_for(Duration::from_secs(1));
        assert!(second.as_mut().poll(&mut cx).is_ready());
        assert_eq!(*rt.1.lock().unwrap(), [rt.0 + Duration::from_secs(1)]);
    }
}
