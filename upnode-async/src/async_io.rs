//! The sockets and timers of `async-io` (through `async-net`), shared by the adapters whose
//! runtimes sit on it (smol, async-std): they differ only in how a task is spawned.

use crate::listener::Bound;
use crate::net::Net;
use crate::runtime::{boxed, BoxStream, Runtime};
use futures::future::{BoxFuture, FutureExt};
use std::io;
use std::path::PathBuf;
use std::time::Instant;

/// How a runtime on `async-io` spawns a task.
pub trait Spawn: Send + Sync + Clone + 'static {
    /// Runs `task` in the background, detached.
    fn spawn(&self, task: BoxFuture<'static, ()>);
}

/// A [`Runtime`] and [`Net`] on `async-io`, spawning with `S`. Its clock is the system's
/// monotonic clock (these runtimes have no virtual time).
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncIo<S>(pub S);

impl<S: Spawn> Runtime for AsyncIo<S> {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.0.spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(async_io::Timer::at(deadline).map(drop))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

impl<S: Spawn> Net for AsyncIo<S> {
    fn tcp(&self, addr: String) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move {
            let s = async_net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(boxed(s))
        })
    }

    fn bind_tcp(&self, addr: String) -> BoxFuture<'static, io::Result<Bound>> {
        Box::pin(async move {
            let l = async_net::TcpListener::bind(addr).await?;
            let local = l.local_addr()?.to_string();
            Ok(Bound::new(local, l, |l| async move {
                let (s, peer) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok((boxed(s), peer.to_string()))
            }))
        })
    }

    #[cfg(unix)]
    fn unix(&self, path: PathBuf) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move {
            let s = async_net::unix::UnixStream::connect(path).await?;
            Ok(boxed(s))
        })
    }

    #[cfg(unix)]
    fn bind_unix(&self, path: PathBuf) -> io::Result<Bound> {
        let l = async_net::unix::UnixListener::bind(&path)?;
        Ok(Bound::new(path.display().to_string(), l, |l| async move {
            let (s, _) = l.accept().await?;
            Ok((boxed(s), "unix".to_owned()))
        }))
    }
}
