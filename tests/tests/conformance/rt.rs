//! What the suite needs from a runtime: running a test, spawning, sleeping, and its
//! adapter's functions. `impl_rt!` implements it over an adapter crate; each runtime is one
//! module in `main.rs`.

use futures::future::BoxFuture;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use upnode_async::rustls;
use upnode_async::{
    Client, ClientBuilder, ConnHandle, ConnectError, Interface, ListenError, Listener, Server,
    ServerBuilder,
};

/// A runtime and its adapter, as the scenarios use them.
pub trait Rt: Send + Sync + 'static {
    /// Runs one test to its end.
    fn run(test: impl Future<Output = ()>);
    /// Runs a task in the background.
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
    /// The runtime's own sleep.
    fn sleep(d: Duration) -> BoxFuture<'static, ()>;
    /// The adapter's `connect_tcp`.
    fn connect_tcp(b: ClientBuilder, addr: String) -> Result<Client, ConnectError>;
    /// The adapter's `connect_tcp_failover`.
    fn connect_tcp_failover(b: ClientBuilder, addrs: Vec<String>) -> Result<Client, ConnectError>;
    /// The adapter's `connect_unix`.
    fn connect_unix(b: ClientBuilder, path: PathBuf) -> Result<Client, ConnectError>;
    /// The adapter's `connect_tls`.
    fn connect_tls(
        b: ClientBuilder,
        addr: String,
        name: String,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Client, ConnectError>;
    /// The adapter's `connect_stream`, over the runtime's own TCP stream type.
    fn connect_stream_tcp(b: ClientBuilder, addr: String) -> Result<Client, ConnectError>;
    /// The adapter's `build_server`.
    fn build_server(
        b: ServerBuilder,
        cons: impl Fn(ConnHandle) -> Interface + Send + Sync + 'static,
    ) -> Server;
    /// The adapter's `listen`.
    fn listen(server: &Server, addr: &str) -> impl Future<Output = Result<Listener, ListenError>>;
    /// The adapter's `listen_unix`.
    fn listen_unix(
        server: &Server,
        path: PathBuf,
    ) -> impl Future<Output = Result<Listener, ListenError>>;
    /// The adapter's `listen_tls`.
    fn listen_tls(
        server: &Server,
        addr: &str,
        config: Arc<rustls::ServerConfig>,
    ) -> impl Future<Output = Result<Listener, ListenError>>;

    /// The adapter's `server`.
    fn server(cons: impl Fn(ConnHandle) -> Interface + Send + Sync + 'static) -> Server {
        Self::build_server(Server::builder(), cons)
    }
}

/// `b.connect_tcp::<R>(addr)` in the scenarios, as a user writes `b.connect_tcp(addr)`.
pub trait Connect: Sized {
    fn connect_tcp<R: Rt>(self, addr: impl Into<String>) -> Result<Client, ConnectError>;
    fn connect_unix<R: Rt>(self, path: impl Into<PathBuf>) -> Result<Client, ConnectError>;
    fn connect_tls<R: Rt>(
        self,
        addr: impl Into<String>,
        name: impl Into<String>,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Client, ConnectError>;
}

impl Connect for ClientBuilder {
    fn connect_tcp<R: Rt>(self, addr: impl Into<String>) -> Result<Client, ConnectError> {
        R::connect_tcp(self, addr.into())
    }

    fn connect_unix<R: Rt>(self, path: impl Into<PathBuf>) -> Result<Client, ConnectError> {
        R::connect_unix(self, path.into())
    }

    fn connect_tls<R: Rt>(
        self,
        addr: impl Into<String>,
        name: impl Into<String>,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Client, ConnectError> {
        R::connect_tls(self, addr.into(), name.into(), config)
    }
}

/// Implements [`Rt`] for `$rt` through the adapter crate `$krate`.
macro_rules! impl_rt {
    (
        $rt:ident,
        $krate:ident,
        run: $run:expr,
        spawn: $spawn:expr,
        sleep: $sleep:expr,
        tcp: $tcp:path
    ) => {
        use crate::rt::Rt;
        use futures::future::BoxFuture;
        use std::future::Future;
        use std::path::PathBuf;
        use std::sync::Arc;
        use std::time::Duration;
        use upnode_async::{
            rustls, Client, ClientBuilder, ConnHandle, ConnectError, Interface, ListenError,
            Listener, Server, ServerBuilder,
        };

        /// The runtime, for the suite.
        pub struct $rt;

        impl Rt for $rt {
            fn run(test: impl Future<Output = ()>) {
                ($run)(test)
            }

            fn spawn(task: impl Future<Output = ()> + Send + 'static) {
                ($spawn)(task);
            }

            fn sleep(d: Duration) -> BoxFuture<'static, ()> {
                Box::pin(($sleep)(d))
            }

            fn connect_tcp(b: ClientBuilder, addr: String) -> Result<Client, ConnectError> {
                $krate::ClientBuilderExt::connect_tcp(b, addr)
            }

            fn connect_tcp_failover(
                b: ClientBuilder,
                addrs: Vec<String>,
            ) -> Result<Client, ConnectError> {
                $krate::ClientBuilderExt::connect_tcp_failover(b, addrs)
            }

            fn connect_unix(b: ClientBuilder, path: PathBuf) -> Result<Client, ConnectError> {
                $krate::ClientBuilderExt::connect_unix(b, path)
            }

            fn connect_tls(
                b: ClientBuilder,
                addr: String,
                name: String,
                config: Arc<rustls::ClientConfig>,
            ) -> Result<Client, ConnectError> {
                $krate::ClientBuilderExt::connect_tls(b, addr, name, config)
            }

            fn connect_stream_tcp(b: ClientBuilder, addr: String) -> Result<Client, ConnectError> {
                $krate::ClientBuilderExt::connect_stream(b, move || $tcp(addr.clone()))
            }

            fn build_server(
                b: ServerBuilder,
                cons: impl Fn(ConnHandle) -> Interface + Send + Sync + 'static,
            ) -> Server {
                $krate::build_server(b, cons)
            }

            async fn listen(server: &Server, addr: &str) -> Result<Listener, ListenError> {
                $krate::listen(server, addr).await
            }

            async fn listen_unix(server: &Server, path: PathBuf) -> Result<Listener, ListenError> {
                $krate::listen_unix(server, path).await
            }

            async fn listen_tls(
                server: &Server,
                addr: &str,
                config: Arc<rustls::ServerConfig>,
            ) -> Result<Listener, ListenError> {
                $krate::listen_tls(server, addr, config).await
            }
        }
    };
}
