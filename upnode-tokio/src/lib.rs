//! upnode for tokio: keep a dnode connection alive, re-establish state between reconnects,
//! and queue work until the link is up. Wire-compatible with Node's `upnode` 0.6 / `dnode`
//! 1.2 in both directions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use upnode_tokio::{Interface, Server};
//!
//! // Server: an interface per connection, like `upnode(cons)`.
//! let server = upnode_tokio::server(|_conn| {
//!     // `rpc`: typed arguments, an error-first answer (`cb(null, t)` or `cb(err)`).
//!     Interface::new().rpc("time", |()| async move { Ok::<_, String>("it is now") })
//! });
//! let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await?;
//!
//! // Client: connects in the background and reconnects until closed.
//! let up = upnode_tokio::connect(listener.local_addr())?;
//! let remote = up.up().await?;                 // waits for the link
//! let t: String = remote.rpc::<_, _, String>("time", &()).await?;
//! assert_eq!(t, "it is now");
//! up.close().await;
//! # Ok(()) }
//! ```
//!
//! Everything but the runtime (the client, the server, connecting, listening, TLS over
//! rustls) is in `upnode-async`; this crate is tokio's [`Runtime`] and sockets. tokio
//! streams reach the plumbing through `tokio-util`'s `compat`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use futures::future::BoxFuture;
use std::io;
use std::path::PathBuf;
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::TokioAsyncReadCompatExt;
use upnode_async::{net::Net, Bound, BoxStream, Runtime};

/// The tokio [`Runtime`]: `tokio::spawn`, `tokio::time` (so `tokio::time::pause` gives
/// virtual time to the whole stack). Calls need a tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

impl Net for Tokio {
    fn tcp(&self, addr: String) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move { nodelay(TcpStream::connect(addr).await?) })
    }

    fn bind_tcp(&self, listener: std::net::TcpListener) -> io::Result<Bound> {
        let l = TcpListener::from_std(listener)?;
        Ok(Bound::tcp(
            l.local_addr()?,
            l,
            |l| async move { l.accept().await },
            nodelay,
        ))
    }

    #[cfg(unix)]
    fn bind_unix(&self, path: PathBuf) -> io::Result<Bound> {
        let l = tokio::net::UnixListener::bind(&path)?;
        Ok(Bound::unix(&path, l, |l| async move {
            Ok(boxed(l.accept().await?.0))
        }))
    }

    #[cfg(unix)]
    fn unix(&self, path: PathBuf) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move { Ok(boxed(tokio::net::UnixStream::connect(path).await?)) })
    }
}

/// Boxes any tokio stream for the plumbing.
pub fn boxed<S>(s: S) -> BoxStream
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    Box::new(s.compat())
}

/// Nagle's algorithm off, for a TCP stream of the link.
fn nodelay(s: TcpStream) -> io::Result<BoxStream> {
    s.set_nodelay(true)?;
    Ok(boxed(s))
}

upnode_async::adapter! {
    net: Tokio,
    name: "tokio",
    stream: [tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static],
    boxed: boxed,
}
