//! Connecting and listening, written once over a runtime's sockets ([`Net`]): every check of
//! the user's input, TLS on both sides, and the accept loop. An adapter implements [`Net`]
//! and exposes these through [`adapter!`](crate::adapter).

use crate::client::{Client, ClientBuilder};
use crate::error::{BadAddress, ConnectError, ListenError};
use crate::listener::{Bound, Listener};
use crate::runtime::{BoxStream, Runtime};
use crate::server::{ConnHandle, Server, ServerBuilder};
use crate::tls::{self, TlsClient};
use crate::Interface;
use futures::future::{select, BoxFuture, Either};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A runtime's sockets: what an adapter supplies besides its [`Runtime`].
pub trait Net: Runtime + Clone {
    /// Opens a TCP connection to `addr` (`"host:port"`, resolved now), with Nagle's
    /// algorithm off.
    fn tcp(&self, addr: String) -> BoxFuture<'static, io::Result<BoxStream>>;
    /// Takes over a bound, listening TCP socket (made by [`tcp_listener`]); accepted
    /// streams have Nagle's algorithm off. Called on the runtime.
    fn bind_tcp(&self, listener: std::net::TcpListener) -> io::Result<Bound>;
    /// Opens a Unix domain socket connection.
    #[cfg(unix)]
    fn unix(&self, path: PathBuf) -> BoxFuture<'static, io::Result<BoxStream>>;
    /// Binds a Unix domain socket listener.
    #[cfg(unix)]
    fn bind_unix(&self, path: PathBuf) -> io::Result<Bound>;
}

/// Checks `"host:port"` (an IPv6 host in brackets). Port 0 is for listening only.
fn check_addr(addr: &str, listening: bool) -> Result<(), &'static str> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("expected \"host:port\"");
    };
    if host.is_empty() {
        return Err("the host is empty");
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("an IPv6 address goes in brackets, as in \"[::1]:7000\"");
    }
    match port.parse::<u16>() {
        Ok(0) if !listening => Err("port 0 cannot be connected to"),
        Ok(_) => Ok(()),
        Err(_) => Err("the port is not a number from 0 to 65535"),
    }
}

fn connect_addr(addr: impl Into<String>) -> Result<String, BadAddress> {
    let addr = addr.into();
    match check_addr(&addr, false) {
        Ok(()) => Ok(addr),
        Err(reason) => Err(BadAddress { addr, reason }),
    }
}

/// A TCP socket bound at `addr` (`"ip:port"`, or a host name resolved now, blocking) and
/// listening with room for `backlog` connections waiting to be accepted, non-blocking: what
/// every adapter's [`Net::bind_tcp`] takes over. `SO_REUSEADDR` is set on Unix, as the
/// runtimes' own `bind` do, so a restarted server can bind its port at once.
pub fn tcp_listener(addr: &str, backlog: u32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::ToSocketAddrs;
    let sockaddr = match addr.parse::<std::net::SocketAddr>() {
        Ok(a) => a,
        Err(_) => addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::AddrNotAvailable, "the name has no address")
        })?,
    };
    let socket = Socket::new(
        Domain::for_address(sockaddr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&sockaddr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

async fn bind_tcp<N: Net>(net: &N, server: &Server, addr: &str) -> Result<Bound, ListenError> {
    let addr = addr.to_owned();
    if let Err(reason) = check_addr(&addr, true) {
        return Err(BadAddress { addr, reason }.into());
    }
    tcp_listener(&addr, server.listen_backlog())
        .and_then(|l| net.bind_tcp(l))
        .map_err(|source| ListenError::Bind { addr, source })
}

fn runtime<N: Net>(net: &N) -> Arc<dyn Runtime> {
    Arc::new(net.clone())
}

/// Starts a client that opens its transport with `factory` on every attempt.
pub fn connect_stream<N: Net>(
    net: &N,
    builder: ClientBuilder,
    factory: impl Fn() -> BoxFuture<'static, io::Result<BoxStream>> + Send + Sync + 'static,
) -> Result<Client, ConnectError> {
    builder.connect_over(runtime(net), Arc::new(factory))
}

/// Starts a client over TCP to `addr`.
pub fn connect_tcp<N: Net>(
    net: &N,
    builder: ClientBuilder,
    addr: impl Into<String>,
) -> Result<Client, ConnectError> {
    let addr = connect_addr(addr)?;
    let n = net.clone();
    let builder = builder.peer_label(&addr);
    connect_stream(net, builder, move || n.tcp(addr.clone()))
}

/// Starts a client over TCP to several servers, for failover: each connection attempt
/// takes the next address in turn (the first attempt the first address, the first
/// reconnect the second, …, wrapping around), resolving its name anew, with the reconnect
/// policy's delay between attempts. Transactions queued while no server answers run on
/// whichever comes up first.
pub fn connect_tcp_failover<N: Net>(
    net: &N,
    builder: ClientBuilder,
    addrs: Vec<String>,
) -> Result<Client, ConnectError> {
    let addrs: Vec<String> = addrs
        .into_iter()
        .map(connect_addr)
        .collect::<Result<_, _>>()?;
    if addrs.is_empty() {
        return Err(ConnectError::NoAddress);
    }
    let n = net.clone();
    let builder = builder.peer_label(&addrs.join(","));
    let next = AtomicUsize::new(0);
    connect_stream(net, builder, move || {
        let i = next.fetch_add(1, Ordering::Relaxed) % addrs.len();
        tracing::debug!(addr = %addrs[i], "trying");
        n.tcp(addrs[i].clone())
    })
}

/// Starts a client over a Unix domain socket.
#[cfg(unix)]
pub fn connect_unix<N: Net>(
    net: &N,
    builder: ClientBuilder,
    path: impl Into<PathBuf>,
) -> Result<Client, ConnectError> {
    let path = path.into();
    if path.as_os_str().is_empty() {
        return Err(ConnectError::Path(path));
    }
    let n = net.clone();
    let builder = builder.peer_label(&path.display().to_string());
    connect_stream(net, builder, move || n.unix(path.clone()))
}

/// Starts a client over TLS to `addr`, verifying the server's certificate for
/// `server_name` as `config` says.
pub fn connect_tls<N: Net>(
    net: &N,
    builder: ClientBuilder,
    addr: impl Into<String>,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<Client, ConnectError> {
    let addr = connect_addr(addr)?;
    let tls = TlsClient::new(config, server_name)?;
    let n = net.clone();
    let builder = builder.peer_label(&addr);
    connect_stream(net, builder, move || {
        let tcp = n.tcp(addr.clone());
        let tls = tls.clone();
        Box::pin(async move { tls.handshake(tcp.await?).await })
    })
}

/// A server on `net`.
pub fn build_server<N: Net>(
    net: &N,
    builder: ServerBuilder,
    cons: impl Fn(ConnHandle) -> Interface + Send + Sync + 'static,
) -> Server {
    builder.build(runtime(net), cons)
}

fn serve_plain(server: &Server, stream: BoxStream, peer: String) {
    tracing::debug!(%peer, "accepted");
    server.serve_from(stream, Some(&peer));
}

/// Serves `server` on a TCP address (port 0 picks a free one).
pub async fn listen<N: Net>(net: &N, server: &Server, addr: &str) -> Result<Listener, ListenError> {
    let bound = bind_tcp(net, server, addr).await?;
    Ok(Listener::spawn(net, server, bound, serve_plain))
}

/// Serves `server` on a Unix domain socket at `path`.
#[cfg(unix)]
pub fn listen_unix<N: Net>(
    net: &N,
    server: &Server,
    path: impl Into<PathBuf>,
) -> Result<Listener, ListenError> {
    let path = path.into();
    if path.as_os_str().is_empty() {
        return Err(ListenError::Path(path));
    }
    let bound = net
        .bind_unix(path.clone())
        .map_err(|source| ListenError::Bind {
            addr: path.display().to_string(),
            source,
        })?;
    Ok(Listener::spawn(net, server, bound, serve_plain))
}

/// Serves `server` over TLS on a TCP address. Each handshake runs in its own task, so a
/// slow client cannot hold up the others, and is bounded by the server's handshake timeout.
pub async fn listen_tls<N: Net>(
    net: &N,
    server: &Server,
    addr: &str,
    config: Arc<rustls::ServerConfig>,
) -> Result<Listener, ListenError> {
    let bound = bind_tcp(net, server, addr).await?;
    let rt = runtime(net);
    let on_stream = move |server: &Server, stream: BoxStream, peer: String| {
        let (server, config) = (server.clone(), config.clone());
        let limit = rt.sleep_for(server.handshake_timeout());
        rt.spawn(Box::pin(async move {
            match select(Box::pin(tls::accept(config, stream)), limit).await {
                Either::Left((Ok(tls), _)) => serve_plain(&server, tls, peer),
                Either::Left((Err(e), _)) => {
                    tracing::warn!(%peer, error = %e, "TLS handshake failed")
                }
                Either::Right(_) => tracing::warn!(%peer, "TLS handshake timed out"),
            }
        }));
    };
    Ok(Listener::spawn(net, server, bound, on_stream))
}
