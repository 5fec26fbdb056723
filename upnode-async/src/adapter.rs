//! The public surface of a runtime adapter, written once.

/// Writes a runtime adapter's public surface: `connect`, the `ClientBuilderExt` trait
/// (`connect_tcp`, `connect_tcp_failover`, `connect_unix`, `connect_tls`, `connect_stream`), `server`,
/// `build_server`, `listen`, `listen_unix`, `listen_tls` and `serve`, plus the re-exports
/// of the plumbing's types, all over the adapter's [`Net`](crate::net::Net).
///
/// - `net`: an expression giving the adapter's `Net` (a cheap value, made on every call);
/// - `name`: the runtime's name, for the docs;
/// - `stream`: the bounds of a stream the runtime's users hand to `connect_stream` and
///   `serve`;
/// - `boxed`: a function turning such a stream into a [`BoxStream`](crate::BoxStream).
///
/// `stream` and `boxed` may be left out for a runtime on futures-io streams (smol,
/// async-std): any [`AsyncDuplex`](crate::AsyncDuplex), boxed by [`boxed`](crate::boxed).
#[macro_export]
macro_rules! adapter {
    (net: $net:expr, name: $name:literal $(,)?) => {
        pub use $crate::boxed;
        $crate::adapter! {
            net: $net,
            name: $name,
            stream: [$crate::AsyncDuplex],
            boxed: $crate::boxed,
        }
    };
    (
        net: $net:expr,
        name: $name:literal,
        stream: [$($bound:tt)+],
        boxed: $boxed:path $(,)?
    ) => {
        pub use $crate::{
            rustls, upnode_core, Args, Backoff, BadAddress, Call, CallError, CallLimits, Client,
            ClientBuilder, ClientConfig, ClientEvent, ConnHandle, ConnId, ConnectError, Counters,
            CullPolicy, Exponential, GiveUp, HandlerError, Interface, Jitter, LinkError, LinkState,
            ListenError, Listener, LocalError, OutputLimits, PolicyError, ReconnectPolicy, Remote,
            RemoteError, RpcError, Server, ServerBuilder, ServerConfig, ServerEvent, SessionConfig,
            UpError, Value, WhenFull, DEFAULT_CALL_TIMEOUT,
        };

        #[doc = concat!("Connects to `addr` (`\"host:port\"`) with upnode's defaults, on ", $name, ".")]
        ///
        /// Returns at once: the client connects in the background and reconnects until
        /// closed. A malformed address is an error, and nothing is started.
        pub fn connect(addr: impl Into<String>) -> Result<Client, ConnectError> {
            ClientBuilderExt::connect_tcp(Client::builder(), addr)
        }

        #[doc = concat!("How a [`ClientBuilder`] connects on ", $name, ".")]
        ///
        /// Each method checks its input (the address, the path, the TLS server name and the
        /// builder's reconnect policy) and returns at once with the client, or with an error
        /// and nothing started. The client connects in the background and reconnects until
        /// closed.
        pub trait ClientBuilderExt {
            /// Over TCP to `"host:port"` (resolved on every attempt).
            fn connect_tcp(self, addr: impl Into<String>) -> Result<Client, ConnectError>;
            /// Over TCP to several servers, for failover: each attempt takes the next
            /// address in turn (resolved anew), under the reconnect policy; transactions
            /// queued meanwhile run on whichever server comes up. An empty list is
            /// [`ConnectError::NoAddress`].
            fn connect_tcp_failover<I>(self, addrs: I) -> Result<Client, ConnectError>
            where
                I: IntoIterator,
                I::Item: Into<String>;
            /// Over a Unix domain socket.
            #[cfg(unix)]
            fn connect_unix(
                self,
                path: impl Into<std::path::PathBuf>,
            ) -> Result<Client, ConnectError>;
            /// Over TLS (rustls) to `"host:port"`, verifying the server's certificate for
            /// `server_name` against `config`'s roots.
            fn connect_tls(
                self,
                addr: impl Into<String>,
                server_name: impl Into<String>,
                config: std::sync::Arc<rustls::ClientConfig>,
            ) -> Result<Client, ConnectError>;
            /// Over whatever `factory` opens on each attempt (upnode's `createStream`).
            fn connect_stream<F, Fut, S>(self, factory: F) -> Result<Client, ConnectError>
            where
                F: Fn() -> Fut + Send + Sync + 'static,
                Fut: std::future::Future<Output = std::io::Result<S>> + Send + 'static,
                S: $($bound)+;
        }

        impl ClientBuilderExt for ClientBuilder {
            fn connect_tcp(self, addr: impl Into<String>) -> Result<Client, ConnectError> {
                $crate::net::connect_tcp(&$net, self, addr)
            }

            fn connect_tcp_failover<I>(self, addrs: I) -> Result<Client, ConnectError>
            where
                I: IntoIterator,
                I::Item: Into<String>,
            {
                let addrs = addrs.into_iter().map(Into::into).collect();
                $crate::net::connect_tcp_failover(&$net, self, addrs)
            }

            #[cfg(unix)]
            fn connect_unix(
                self,
                path: impl Into<std::path::PathBuf>,
            ) -> Result<Client, ConnectError> {
                $crate::net::connect_unix(&$net, self, path)
            }

            fn connect_tls(
                self,
                addr: impl Into<String>,
                server_name: impl Into<String>,
                config: std::sync::Arc<rustls::ClientConfig>,
            ) -> Result<Client, ConnectError> {
                $crate::net::connect_tls(&$net, self, addr, &server_name.into(), config)
            }

            fn connect_stream<F, Fut, S>(self, factory: F) -> Result<Client, ConnectError>
            where
                F: Fn() -> Fut + Send + Sync + 'static,
                Fut: std::future::Future<Output = std::io::Result<S>> + Send + 'static,
                S: $($bound)+,
            {
                $crate::net::connect_stream(&$net, self, move || {
                    let fut = factory();
                    Box::pin(async move { fut.await.map($boxed) })
                })
            }
        }

        #[doc = concat!("A server on ", $name, " with upnode's defaults; `cons` builds each connection's interface (upnode's `upnode(cons)`).")]
        pub fn server(cons: impl Fn(ConnHandle) -> Interface + Send + Sync + 'static) -> Server {
            build_server(Server::builder(), cons)
        }

        #[doc = concat!("A server on ", $name, " from a builder.")]
        pub fn build_server(
            builder: ServerBuilder,
            cons: impl Fn(ConnHandle) -> Interface + Send + Sync + 'static,
        ) -> Server {
            $crate::net::build_server(&$net, builder, cons)
        }

        /// Serves `server` on a TCP address (port 0 picks a free port: see
        /// [`Listener::local_addr`]).
        pub async fn listen(server: &Server, addr: &str) -> Result<Listener, ListenError> {
            $crate::net::listen(&$net, server, addr).await
        }

        /// Serves `server` on a Unix domain socket at `path`.
        #[cfg(unix)]
        pub async fn listen_unix(
            server: &Server,
            path: impl Into<std::path::PathBuf>,
        ) -> Result<Listener, ListenError> {
            $crate::net::listen_unix(&$net, server, path)
        }

        /// Serves `server` over TLS (rustls) on a TCP address. Each TLS handshake runs in its
        /// own task, so a slow client cannot hold up the others.
        pub async fn listen_tls(
            server: &Server,
            addr: &str,
            config: std::sync::Arc<rustls::ServerConfig>,
        ) -> Result<Listener, ListenError> {
            $crate::net::listen_tls(&$net, server, addr, config).await
        }

        /// Serves one connection over any stream (upnode's `up.pipe(stream).pipe(up)`).
        /// Returns `false` (and drops the stream) when the connection limit is reached or
        /// the server shuts down.
        pub fn serve<S: $($bound)+>(server: &Server, stream: S) -> bool {
            server.serve($boxed(stream))
        }
    };
}
