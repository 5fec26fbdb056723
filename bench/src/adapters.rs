//! The three upnode adapters the benchmark runs: upnode-tokio, upnode-smol and
//! upnode-async-std.
//!
//! All three re-export the same `upnode_async` types (`Client`, `ClientBuilder`, `Remote`,
//! `Server`, `Interface`, …: the `match` arms below only compile because they are one type
//! each), so the upnode client and server are written once. What differs is the adapter's
//! own functions (`ClientBuilderExt::connect_tcp`, `build_server`, `listen`), its timers and
//! the executor that runs everything: [`Adapter`] is that difference.
//!
//! Threads, with the harness's default of one executor thread:
//!
//! - tokio: a current-thread runtime on the main thread runs the measuring loop and every
//!   task upnode spawns;
//! - smol: upnode-smol spawns its tasks onto smol's global executor (`smol::spawn`), which
//!   runs on threads of its own (`smol-1`, …: `SMOL_THREADS`, one by default). The
//!   measuring loop (or the server) is spawned there too and the main thread waits in
//!   `smol::block_on` for it, so that the loop and the connection's tasks share one
//!   executor thread, as with tokio. `async-io` adds its reactor thread (`async-io`), which
//!   polls the sockets when no `block_on` has done so for a while;
//! - async-std: the same shape, `async_std::task::spawn` onto async-std's global executor
//!   (`async-std/runtime` threads: `ASYNC_STD_THREAD_COUNT`, one per core by default, set to
//!   one here) and the main thread in `async_std::task::block_on`, plus `async-io`'s thread.
//!
//! With `--multi-thread`, smol's and async-std's executors get a thread per core instead.
//! Each process's main thread may also poll the sockets from inside `block_on` (async-io
//! lets any thread blocked in `block_on` drive the reactor), so the executor thread is the
//! only one running tasks, not the only one awake. Every server process has one more
//! thread, blocked reading stdin.

use futures::future::{BoxFuture, Either};
use std::future::Future;
use std::time::Duration;
use upnode_tokio::{
    Client, ClientBuilder, ConnHandle, ConnectError, Interface, ListenError, Listener, Server,
    ServerBuilder,
};

/// An upnode adapter, with its runtime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Adapter {
    Tokio,
    Smol,
    AsyncStd,
}

impl Adapter {
    /// Connects `builder`'s client over TCP to `addr`, with this adapter's sockets and tasks.
    pub fn connect_tcp(self, builder: ClientBuilder, addr: String) -> Result<Client, ConnectError> {
        match self {
            Adapter::Tokio => upnode_tokio::ClientBuilderExt::connect_tcp(builder, addr),
            Adapter::Smol => upnode_smol::ClientBuilderExt::connect_tcp(builder, addr),
            Adapter::AsyncStd => upnode_async_std::ClientBuilderExt::connect_tcp(builder, addr),
        }
    }

    /// A server on this adapter from `builder`; `cons` builds each connection's interface.
    pub fn build_server(
        self,
        builder: ServerBuilder,
        cons: impl Fn(ConnHandle) -> Interface + Send + Sync + 'static,
    ) -> Server {
        match self {
            Adapter::Tokio => upnode_tokio::build_server(builder, cons),
            Adapter::Smol => upnode_smol::build_server(builder, cons),
            Adapter::AsyncStd => upnode_async_std::build_server(builder, cons),
        }
    }

    /// Serves `server` on the TCP address `addr`.
    pub async fn listen(self, server: &Server, addr: &str) -> Result<Listener, ListenError> {
        match self {
            Adapter::Tokio => upnode_tokio::listen(server, addr).await,
            Adapter::Smol => upnode_smol::listen(server, addr).await,
            Adapter::AsyncStd => upnode_async_std::listen(server, addr).await,
        }
    }

    /// Completes after `d`, on this adapter's timers.
    pub fn sleep(self, d: Duration) -> BoxFuture<'static, ()> {
        match self {
            Adapter::Tokio => Box::pin(tokio::time::sleep(d)),
            Adapter::Smol => Box::pin(async move {
                smol::Timer::after(d).await;
            }),
            Adapter::AsyncStd => Box::pin(async_std::task::sleep(d)),
        }
    }

    /// `fut`'s output, or `None` if `limit` passes first.
    pub async fn within<T>(self, limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
        match futures::future::select(std::pin::pin!(fut), self.sleep(limit)).await {
            Either::Left((t, _)) => Some(t),
            Either::Right(_) => None,
        }
    }

    /// Runs `work` to completion on this adapter's executor, the way the module doc says,
    /// from a process's main thread (before any other thread starts: it sets the executor's
    /// thread count in the environment, where smol and async-std read it).
    pub fn block_on<T: Send + 'static>(self, work: impl Future<Output = T> + Send + 'static) -> T {
        let threads = if crate::multi_thread() {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        };
        match self {
            Adapter::Tokio => crate::block_on_task(work),
            Adapter::Smol => {
                std::env::set_var("SMOL_THREADS", threads.to_string());
                smol::block_on(smol::spawn(work))
            }
            Adapter::AsyncStd => {
                std::env::set_var("ASYNC_STD_THREAD_COUNT", threads.to_string());
                async_std::task::block_on(async_std::task::spawn(work))
            }
        }
    }
}
