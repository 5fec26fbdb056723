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
//!     Interface::new().method("time", |call| async move {
//!         call.reply(&("it is now",))?;
//!         Ok(())
//!     })
//! });
//! let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await?;
//!
//! // Client: connects in the background and reconnects until closed.
//! let up = upnode_tokio::connect(listener.local_addr().to_string());
//! let remote = up.up().await?;                 // waits for the link
//! let (t,): (String,) = remote.call("time", &()).await?;
//! assert_eq!(t, "it is now");
//! up.close().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use futures::future::BoxFuture;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::TokioAsyncReadCompatExt;
use upnode_async::{BoxStream, Connector, Runtime};

pub use tokio_rustls::rustls;
pub use upnode_async::{
    upnode_core, Args, Call, CallError, Client, ClientBuilder, ClientEvent, ConnHandle, Counters,
    HandlerError, Interface, Remote, Server, ServerBuilder, ServerEvent, UpError,
};

/// The tokio [`Runtime`]: `tokio::spawn`, `tokio::time` (so `tokio::time::pause` gives
/// virtual time to the whole stack).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
            deadline,
        )))
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

fn runtime() -> Arc<dyn Runtime> {
    Arc::new(Tokio)
}

/// Boxes any tokio stream for the plumbing.
pub fn boxed<S>(s: S) -> BoxStream
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    Box::new(s.compat())
}

/// Connects to `addr` (`"host:port"`) with upnode's defaults. Returns at once; the client
/// connects in the background and reconnects until closed. Must be called inside a tokio
/// runtime.
pub fn connect(addr: impl Into<String>) -> Client {
    Client::builder().connect_tcp(addr)
}

/// How a [`ClientBuilder`] connects over tokio.
pub trait ClientBuilderExt {
    /// Over TCP to `"host:port"` (resolved on every attempt).
    fn connect_tcp(self, addr: impl Into<String>) -> Client;
    /// Over a Unix domain socket.
    #[cfg(unix)]
    fn connect_unix(self, path: impl Into<PathBuf>) -> Client;
    /// Over TLS (rustls) to `"host:port"`, verifying the server's certificate for
    /// `server_name` against `config`'s roots.
    fn connect_tls(
        self,
        addr: impl Into<String>,
        server_name: impl Into<String>,
        config: Arc<rustls::ClientConfig>,
    ) -> Client;
    /// Over whatever `factory` opens on each attempt (upnode's `createStream`).
    fn connect_stream<F, Fut, S>(self, factory: F) -> Client
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = io::Result<S>> + Send + 'static,
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static;
}

impl ClientBuilderExt for ClientBuilder {
    fn connect_tcp(self, addr: impl Into<String>) -> Client {
        let addr = addr.into();
        self.connect_stream(move || {
            let addr = addr.clone();
            async move {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                Ok(s)
            }
        })
    }

    #[cfg(unix)]
    fn connect_unix(self, path: impl Into<PathBuf>) -> Client {
        let path = path.into();
        self.connect_stream(move || tokio::net::UnixStream::connect(path.clone()))
    }

    fn connect_tls(
        self,
        addr: impl Into<String>,
        server_name: impl Into<String>,
        config: Arc<rustls::ClientConfig>,
    ) -> Client {
        let addr = addr.into();
        let name = server_name.into();
        let connector = tokio_rustls::TlsConnector::from(config);
        self.connect_stream(move || {
            let addr = addr.clone();
            let connector = connector.clone();
            let name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
            async move {
                let name = name?;
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                connector.connect(name, tcp).await
            }
        })
    }

    fn connect_stream<F, Fut, S>(self, factory: F) -> Client
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = io::Result<S>> + Send + 'static,
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let connector = move || -> BoxFuture<'static, io::Result<BoxStream>> {
            let fut = factory();
            Box::pin(async move { fut.await.map(boxed) })
        };
        let connector: Arc<dyn Connector> = Arc::new(connector);
        self.connect_with(runtime(), connector)
            .expect("the reconnect policy is valid")
    }
}

/// A server with upnode's defaults whose `cons` builds each connection's interface.
pub fn server(cons: impl Fn(ConnHandle) -> Interface + Send + Sync + 'static) -> Server {
    Server::builder().build(runtime(), cons)
}

/// Builds a server from a builder on tokio.
pub fn build_server(
    builder: ServerBuilder,
    cons: impl Fn(ConnHandle) -> Interface + Send + Sync + 'static,
) -> Server {
    builder.build(runtime(), cons)
}

/// A running accept loop; it stops when the server shuts down, when stopped, or when
/// dropped (then without waiting for the socket to close).
#[derive(Debug)]
pub struct Listener {
    local: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Listener {
    /// Where it listens (`"ip:port"` or a socket path).
    pub fn local_addr(&self) -> &str {
        &self.local
    }

    /// Stops accepting and waits until the listening socket is closed, so the address can
    /// be bound again at once (open connections stay).
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Runs `server`'s accept loop (written once, in `upnode-async`) as a tokio task.
fn spawn_accept_loop<A, Fut, S>(
    server: &Server,
    accept: A,
    on_stream: impl Fn(&Server, S) + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    A: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<S>> + Send + 'static,
    S: Send + 'static,
{
    tokio::spawn(server.accept_loop(accept, on_stream))
}

/// Serves `server` on a TCP address (port 0 picks a free port; see
/// [`Listener::local_addr`]).
pub async fn listen(server: &Server, addr: &str) -> io::Result<Listener> {
    let l = Arc::new(TcpListener::bind(addr).await?);
    let local: SocketAddr = l.local_addr()?;
    let task = spawn_accept_loop(
        server,
        move || {
            let l = l.clone();
            async move { l.accept().await }
        },
        |server, (s, peer): (TcpStream, SocketAddr)| {
            let _ = s.set_nodelay(true);
            tracing::debug!(%peer, "accepted");
            server.serve(boxed(s));
        },
    );
    Ok(Listener {
        local: local.to_string(),
        task: Some(task),
    })
}

/// Serves `server` on a Unix domain socket at `path`.
#[cfg(unix)]
pub async fn listen_unix(server: &Server, path: impl Into<PathBuf>) -> io::Result<Listener> {
    let path = path.into();
    let l = Arc::new(tokio::net::UnixListener::bind(&path)?);
    let task = spawn_accept_loop(
        server,
        move || {
            let l = l.clone();
            async move { l.accept().await }
        },
        |server, (s, _)| {
            server.serve(boxed(s));
        },
    );
    Ok(Listener {
        local: path.display().to_string(),
        task: Some(task),
    })
}

/// Serves `server` over TLS (rustls) on a TCP address. Each TLS handshake runs in its own
/// task, so a slow client cannot hold up the others.
pub async fn listen_tls(
    server: &Server,
    addr: &str,
    config: Arc<rustls::ServerConfig>,
) -> io::Result<Listener> {
    let l = Arc::new(TcpListener::bind(addr).await?);
    let local = l.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = spawn_accept_loop(
        server,
        move || {
            let l = l.clone();
            async move { l.accept().await }
        },
        move |server, (s, peer): (TcpStream, SocketAddr)| {
            let _ = s.set_nodelay(true);
            let acceptor = acceptor.clone();
            let server = server.clone();
            tokio::spawn(async move {
                match acceptor.accept(s).await {
                    Ok(tls) => {
                        server.serve(boxed(tls));
                    }
                    Err(e) => tracing::warn!(%peer, error = %e, "TLS handshake failed"),
                }
            });
        },
    );
    Ok(Listener {
        local: local.to_string(),
        task: Some(task),
    })
}

/// Serves one connection over any tokio stream (upnode's `up.pipe(stream).pipe(up)`).
pub fn serve<S>(server: &Server, stream: S) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    server.serve(boxed(stream))
}

/// The README's code, compiled as a doc test so it stays true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
