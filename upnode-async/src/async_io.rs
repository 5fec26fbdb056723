//! The sockets and timers of `async-io` (through `async-net`), shared by the adapters whose
//! runtimes sit on it (smol, async-std): they differ only in how a task is spawned.

use crate::listener::Bound;
use crate::net::Net;
use crate::runtime::{boxed, BoxStream, Runtime};
use futures::future::{BoxFuture, FutureExt};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// A [`Runtime`] and [`Net`] on `async-io`, spawning with the runtime's own function. Its
/// clock is the system's monotonic clock (these runtimes have no virtual time).
#[derive(Debug, Clone, Copy)]
pub struct AsyncIo {
    spawn: fn(BoxFuture<'static, ()>),
}

/// A TCP connection readied for the link: Nagle's algorithm off.
fn ready(s: async_net::TcpStream) -> io::Result<BoxStream> {
    s.set_nodelay(true)?;
    Ok(boxed(s))
}

impl AsyncIo {
    /// A runtime whose `spawn` runs a task in the background, detached.
    pub const fn new(spawn: fn(BoxFuture<'static, ()>)) -> AsyncIo {
        AsyncIo { spawn }
    }
}

impl Runtime for AsyncIo {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        (self.spawn)(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(async_io::Timer::at(deadline).map(drop))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

impl Net for AsyncIo {
    fn tcp(&self, addr: String) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move { ready(async_net::TcpStream::connect(addr).await?) })
    }

    fn bind_tcp(&self, listener: std::net::TcpListener) -> io::Result<Bound> {
        let l = async_net::TcpListener::try_from(listener)?;
        let accept = |l: Arc<async_net::TcpListener>| async move { l.accept().await };
        Ok(Bound::tcp(l.local_addr()?, l, accept, ready))
    }

    #[cfg(unix)]
    fn unix(&self, path: PathBuf) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move { Ok(boxed(async_net::unix::UnixStream::connect(path).await?)) })
    }

    #[cfg(unix)]
    fn bind_unix(&self, path: PathBuf) -> io::Result<Bound> {
        let l = async_net::unix::UnixListener::bind(&path)?;
        Ok(Bound::unix(&path, l, |l| async move {
            Ok(boxed(l.accept().await?.0))
        }))
    }
}
