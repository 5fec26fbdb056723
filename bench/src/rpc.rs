//! The comparison peers: tarpc (over its `serde_transport` on TCP, with tokio-serde's
//! Bincode or JSON codec) and jsonrpsee (WebSocket). Each serves and calls the same
//! `echo(Msg) -> Msg` as the upnode and raw peers, with every answer checked by the shared
//! loops in [`crate::clients`].

use crate::clients::{Echo, Msg};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::server::{RpcModule, Server, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use std::time::{Duration, Instant};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::{Bincode, Json};

/// How long a call may take before tarpc or jsonrpsee gives up on it: far longer than any
/// run, so that no phase (a million calls, a hundred thousand outstanding) hits a limit of
/// the library rather than measuring it.
const CALL_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// The service, as tarpc declares one.
#[tarpc::service]
pub trait EchoService {
    /// Answers with the message it was given.
    async fn echo(m: Msg) -> Msg;
}

#[derive(Clone)]
struct EchoServer;

impl EchoService for EchoServer {
    async fn echo(self, _: tarpc::context::Context, m: Msg) -> Msg {
        m
    }
}

/// Which tokio-serde codec tarpc's transport uses.
#[derive(Debug, Clone, Copy)]
pub enum Codec {
    Bincode,
    Json,
}

/// Serves a tarpc listener accepting on `tcp`, one channel per connection, each request
/// run as a task of its own (tarpc's documented way). `$codec` is the codec constructor.
macro_rules! tarpc_accept {
    ($addr:expr, $codec:expr) => {{
        let mut incoming = tarpc::serde_transport::tcp::listen($addr, $codec)
            .await
            .expect("bind the tarpc listener");
        incoming.config_mut().max_frame_length(usize::MAX);
        let port = incoming.local_addr().port();
        tokio::spawn(async move {
            while let Some(t) = incoming.next().await {
                let Ok(t) = t else { continue };
                let _ = t.get_ref().set_nodelay(true);
                let channel = BaseChannel::with_defaults(t);
                tokio::spawn(channel.execute(EchoServer.serve()).for_each(|f| async {
                    tokio::spawn(f);
                }));
            }
        });
        port
    }};
}

/// Starts a tarpc server on `addr`; returns its port. It serves until the process ends.
pub async fn tarpc_serve(addr: &str, codec: Codec) -> u16 {
    match codec {
        Codec::Bincode => tarpc_accept!(addr, Bincode::default),
        Codec::Json => tarpc_accept!(addr, Json::default),
    }
}

type TarpcAnswer = BoxFuture<'static, Result<Msg, tarpc::client::RpcError>>;

/// A tarpc client: every call is one request on the same connection.
pub struct TarpcEcho {
    client: EchoServiceClient,
    pending: FuturesUnordered<TarpcAnswer>,
}

impl TarpcEcho {
    /// `window` is the most calls the run keeps outstanding: tarpc's client limit
    /// (`max_in_flight_requests`, 1 000 by default) is raised to it.
    pub async fn connect(port: u16, codec: Codec, window: usize) -> TarpcEcho {
        let mut config = tarpc::client::Config::default();
        config.max_in_flight_requests = config.max_in_flight_requests.max(window);
        let addr = ("127.0.0.1", port);
        let client = match codec {
            Codec::Bincode => {
                let mut c = tarpc::serde_transport::tcp::connect(addr, Bincode::default);
                c.config_mut().max_frame_length(usize::MAX);
                let t = c.await.expect("connect to the tarpc server");
                t.get_ref().set_nodelay(true).expect("set TCP_NODELAY");
                EchoServiceClient::new(config, t).spawn()
            }
            Codec::Json => {
                let mut c = tarpc::serde_transport::tcp::connect(addr, Json::default);
                c.config_mut().max_frame_length(usize::MAX);
                let t = c.await.expect("connect to the tarpc server");
                t.get_ref().set_nodelay(true).expect("set TCP_NODELAY");
                EchoServiceClient::new(config, t).spawn()
            }
        };
        TarpcEcho {
            client,
            pending: FuturesUnordered::new(),
        }
    }
}

impl Echo for TarpcEcho {
    fn send(&mut self, m: &Msg) {
        let client = self.client.clone();
        let m = m.clone();
        self.pending.push(Box::pin(async move {
            let mut ctx = tarpc::context::current();
            ctx.deadline = Instant::now() + CALL_DEADLINE;
            client.echo(ctx, m).await
        }));
    }

    async fn recv(&mut self) -> Msg {
        match self.pending.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => panic!("a tarpc echo call failed: {e}"),
            None => panic!("waiting for an answer with no call outstanding"),
        }
    }
}

/// Starts a jsonrpsee WebSocket server on `addr` with `echo([msg]) -> msg`; returns its port
/// and the handle that keeps it running.
pub async fn jsonrpsee_serve(addr: &str) -> (u16, ServerHandle) {
    // TCP_NODELAY is jsonrpsee's default.
    let server = Server::builder()
        .build(addr)
        .await
        .expect("bind the jsonrpsee server");
    let port = server.local_addr().expect("local address").port();
    let mut module = RpcModule::new(());
    module
        .register_method("echo", |params, _, _| -> Result<Msg, ErrorObjectOwned> {
            params.one::<Msg>()
        })
        .expect("register echo");
    (port, server.start(module))
}

type JsonrpseeAnswer = BoxFuture<'static, Result<Msg, jsonrpsee::core::client::Error>>;

/// A jsonrpsee WebSocket client: every call is one JSON-RPC request.
pub struct JsonrpseeEcho {
    client: std::sync::Arc<WsClient>,
    pending: FuturesUnordered<JsonrpseeAnswer>,
}

impl JsonrpseeEcho {
    /// `window` is the most calls the run keeps outstanding: the client's limit
    /// (`max_concurrent_requests`, 256 by default) is raised to it.
    pub async fn connect(port: u16, window: usize) -> JsonrpseeEcho {
        let client = WsClientBuilder::default()
            .max_concurrent_requests(window.max(256))
            .request_timeout(CALL_DEADLINE)
            .build(format!("ws://127.0.0.1:{port}"))
            .await
            .expect("connect to the jsonrpsee server");
        JsonrpseeEcho {
            client: std::sync::Arc::new(client),
            pending: FuturesUnordered::new(),
        }
    }
}

impl Echo for JsonrpseeEcho {
    fn send(&mut self, m: &Msg) {
        let client = self.client.clone();
        let m = m.clone();
        self.pending.push(Box::pin(async move {
            client.request("echo", jsonrpsee::rpc_params![m]).await
        }));
    }

    async fn recv(&mut self) -> Msg {
        match self.pending.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => panic!("a jsonrpsee echo call failed: {e}"),
            None => panic!("waiting for an answer with no call outstanding"),
        }
    }
}
