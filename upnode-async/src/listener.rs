//! A running accept loop, whatever the runtime.

use crate::runtime::{BoxStream, Runtime};
use crate::server::Server;
use futures::channel::oneshot;
use futures::future::{select, BoxFuture};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// Takes the next connection from a bound socket, with the peer's address (for logs).
type Accept = Box<dyn FnMut() -> BoxFuture<'static, io::Result<(BoxStream, String)>> + Send>;

/// A bound listening socket of some runtime: where it listens, and how to take connections
/// from it.
pub struct Bound {
    local: String,
    accept: Accept,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Bound {
    /// A socket bound at `local` (`"ip:port"` or a path); `accept` takes its next
    /// connection (and is given the socket each time).
    pub fn new<L, F, Fut>(local: String, socket: L, accept: F) -> Bound
    where
        L: Send + Sync + 'static,
        F: Fn(Arc<L>) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<(BoxStream, String)>> + Send + 'static,
    {
        let socket = Arc::new(socket);
        Bound {
            local,
            accept: Box::new(move || Box::pin(accept(socket.clone()))),
        }
    }

    /// A Unix domain socket bound at `path`: `accept` takes the next connection from it.
    #[cfg(unix)]
    pub fn unix<L, F, Fut>(path: &std::path::Path, socket: L, accept: F) -> Bound
    where
        L: Send + Sync + 'static,
        F: Fn(Arc<L>) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<BoxStream>> + Send + 'static,
    {
        Bound::new(path.display().to_string(), socket, move |l| {
            let next = accept(l);
            async move { Ok((next.await?, "unix".to_owned())) }
        })
    }

    /// A TCP socket bound at `local`: `accept` takes the next connection and its peer from
    /// it, and `stream` readies that connection for the link (Nagle's algorithm off) and
    /// boxes it.
    pub fn tcp<L, S, F, Fut>(
        local: SocketAddr,
        socket: L,
        accept: F,
        stream: fn(S) -> io::Result<BoxStream>,
    ) -> Bound
    where
        L: Send + Sync + 'static,
        S: Send + 'static,
        F: Fn(Arc<L>) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<(S, SocketAddr)>> + Send + 'static,
    {
        Bound::new(local.to_string(), socket, move |l| {
            let next = accept(l);
            async move {
                let (s, peer) = next.await?;
                Ok((stream(s)?, peer.to_string()))
            }
        })
    }
}

/// A running accept loop. It stops when the server shuts down, when [`stop`](Self::stop)ped,
/// or when dropped (then without waiting for the socket to close): keep it as long as the
/// server should accept.
#[derive(Debug)]
#[must_use = "a Listener stops accepting when it is dropped"]
pub struct Listener {
    local: String,
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
}

impl Listener {
    /// Runs `server`'s accept loop over `bound` as a task on `runtime`, handing each
    /// connection to `on_stream` (which serves it, perhaps after a TLS handshake).
    pub fn spawn(
        runtime: &dyn Runtime,
        server: &Server,
        bound: Bound,
        on_stream: impl Fn(&Server, BoxStream, String) + Send + 'static,
    ) -> Listener {
        let (stop, stopped) = oneshot::channel::<()>();
        let (finished, done) = oneshot::channel();
        // Counted from now, so that a shutdown called before the task first runs waits too.
        let counted = server.count_listener();
        let accepting = server.accept_loop(bound.accept, move |server, (stream, peer)| {
            on_stream(server, stream, peer)
        });
        runtime.spawn(Box::pin(async move {
            let mut accepting = Box::pin(accepting);
            let _ = select(accepting.as_mut(), stopped).await;
            // The socket closes with the loop, before `stop` (or a shutdown) returns.
            drop(accepting);
            drop(counted);
            let _ = finished.send(());
        }));
        Listener {
            local: bound.local,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Where it listens: `"ip:port"` (with the port the system picked for port 0) or the
    /// socket path.
    pub fn local_addr(&self) -> &str {
        &self.local
    }

    /// The port of a TCP listener (`None` for a Unix socket).
    pub fn port(&self) -> Option<u16> {
        self.local
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|a| a.port())
    }

    /// Stops accepting and waits until the listening socket is closed, so the address can
    /// be bound again at once (open connections stay).
    pub fn stop(mut self) -> impl Future<Output = ()> + Send + 'static {
        drop(self.stop.take());
        let done = self.done.take();
        async move {
            if let Some(done) = done {
                let _ = done.await;
            }
        }
    }
}
