//! What an adapter supplies: a clock, timers, task spawning, and transports.

use futures::future::BoxFuture;
use futures::io::{AsyncRead, AsyncWrite};
use std::io;
use std::time::Instant;

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
