//! The Rust servers, each run in a child process of its own (`loopback serve-raw`,
//! `serve-upnode`, `serve-upnode-smol`, `serve-upnode-async-std`, `serve-tarpc-bincode`,
//! `serve-tarpc-json`, `serve-jsonrpsee`) so that every pairing is two processes, as with
//! Node. The upnode servers run on their adapter's executor (see [`crate::adapters`]), the
//! others on tokio.
//!
//! A server binds `127.0.0.1` on a port the system picks (or on `--port P`), prints the
//! port as its first stdout line (with `--stamp`, then the wall clock in µs since the Unix
//! epoch at which it began listening, for the flush phase), and exits when its stdin closes
//! (or after [`LIFETIME`]).

use crate::adapters::Adapter;
use crate::clients::Shape;
use futures::future::BoxFuture;
use std::io::{Read, Write};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use upnode_tokio::upnode_core::config::CullPolicy;
use upnode_tokio::upnode_core::Value;
use upnode_tokio::Interface;

/// The longest a server process lives, whatever happens to the harness.
const LIFETIME: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Newline-delimited JSON echo, no RPC layer: each line back as it came
    /// ([`Shape::Plain`]) or a dnode call answered through its callback ([`Shape::Dnode`]).
    Raw(Shape),
    /// An upnode server (upnode-tokio, upnode-smol or upnode-async-std) exporting
    /// `echo(x, cb)`.
    Upnode(Adapter),
    /// tarpc's `serde_transport` over TCP with the Bincode codec.
    TarpcBincode,
    /// tarpc's `serde_transport` over TCP with the JSON codec.
    TarpcJson,
    /// A jsonrpsee WebSocket server with an `echo` method.
    Jsonrpsee,
}

/// `--port P` from the command line, or 0 (the system picks).
fn port_arg() -> u16 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs a server until stdin closes; never returns.
pub fn serve(kind: Kind) -> ! {
    let want = port_arg();
    let addr = format!("127.0.0.1:{want}");
    if let Kind::Upnode(a) = kind {
        a.block_on(async move {
            let server = upnode_server(a);
            let l = a.listen(&server, &addr).await.expect("listen");
            let port: u16 = l
                .local_addr()
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("a port in the local address");
            announce_and_wait(port, a.sleep(LIFETIME)).await;
            drop((server, l));
        });
        std::process::exit(0)
    }
    crate::runtime().block_on(async move {
        // Whatever must stay alive while serving (the listener and the server handle).
        let (port, _serving): (u16, Box<dyn std::any::Any>) = match kind {
            Kind::TarpcBincode => {
                let port = crate::rpc::tarpc_serve(&addr, crate::rpc::Codec::Bincode).await;
                (port, Box::new(()))
            }
            Kind::TarpcJson => {
                let port = crate::rpc::tarpc_serve(&addr, crate::rpc::Codec::Json).await;
                (port, Box::new(()))
            }
            Kind::Jsonrpsee => {
                let (port, handle) = crate::rpc::jsonrpsee_serve(&addr).await;
                (port, Box::new(handle))
            }
            Kind::Raw(shape) => {
                let l = TcpListener::bind(&addr).await.expect("bind");
                let port = l.local_addr().expect("local address").port();
                (port, Box::new(tokio::spawn(raw_accept(l, shape))))
            }
            Kind::Upnode(_) => unreachable!("served above"),
        };
        announce_and_wait(port, Adapter::Tokio.sleep(LIFETIME)).await;
    });
    std::process::exit(0)
}

/// Called as soon as the server listens: prints the port (and with `--stamp` the time,
/// which is when listening began), then waits until stdin closes or `lifetime` completes.
/// Stdin is read on a thread of its own, whatever the runtime.
async fn announce_and_wait(port: u16, lifetime: BoxFuture<'static, ()>) {
    let listening = std::time::SystemTime::now();
    let mut out = std::io::stdout();
    writeln!(out, "{port}")
        .and_then(|()| out.flush())
        .expect("print the port");
    if std::env::args().any(|a| a == "--stamp") {
        let us = listening
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs_f64()
            * 1e6;
        writeln!(out, "{us}")
            .and_then(|()| out.flush())
            .expect("print when listening began");
    }
    let (closed, stdin_closed) = futures::channel::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = closed.send(());
        })
        .expect("start the thread reading stdin");
    if let futures::future::Either::Right(_) = futures::future::select(stdin_closed, lifetime).await
    {
        eprintln!("loopback server: lifetime of {LIFETIME:?} is over, exiting");
    }
}

/// `echo(x, cb)` answers `cb(x)`, passing the value through as it came. `--cull always`,
/// `answers` (the default policy) or `never` says which callbacks it culls when done.
pub fn upnode_server(adapter: Adapter) -> upnode_tokio::Server {
    let args: Vec<String> = std::env::args().collect();
    let cull = match args
        .iter()
        .position(|a| a == "--cull")
        .map(|i| args.get(i + 1))
    {
        Some(Some(v)) if v == "always" => CullPolicy::Always,
        Some(Some(v)) if v == "never" => CullPolicy::Never,
        _ => CullPolicy::ExceptAnswers,
    };
    let builder = upnode_tokio::Server::builder().config(|c| c.session.cull = cull);
    adapter.build_server(builder, |_conn| {
        Interface::new().method("echo", |mut call| async move {
            // The argument is moved into the answer, not copied (the raw echo and tarpc
            // servers own what they read, too).
            let mut values = call.take_values();
            values.truncate(1);
            if values.is_empty() {
                values.push(Value::Null);
            }
            call.reply_values(values)?;
            Ok(())
        })
    })
}

async fn raw_accept(l: TcpListener, shape: Shape) {
    loop {
        match l.accept().await {
            Ok((s, _)) => {
                let _ = s.set_nodelay(true);
                tokio::spawn(raw_conn(s, shape));
            }
            Err(e) => {
                eprintln!("loopback serve-raw: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads JSON lines and writes each back, parsed and written again (a dnode call: its first
/// argument, in a call of its callback). Answers are written when no further complete line
/// is waiting in the read buffer, so a burst of requests is answered with one write (as a
/// dnode session drains its output).
async fn raw_conn(s: TcpStream, shape: Shape) {
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    let mut out = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let v: serde_json::Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("loopback serve-raw: bad line from a client: {e}");
                return;
            }
        };
        match shape {
            Shape::Plain => serde_json::to_writer(&mut out, &v).expect("a JSON value serialises"),
            Shape::Dnode => {
                let Some((cb, arg)) = dnode_echo_call(v) else {
                    eprintln!("loopback serve-raw-dnode: a line that is not an echo call");
                    return;
                };
                // The answer is written straight out, not built as a value first.
                write!(out, r#"{{"method":{cb},"arguments":["#).expect("writing to a Vec");
                serde_json::to_writer(&mut out, &arg).expect("a JSON value serialises");
                out.extend_from_slice(br#"],"callbacks":{},"links":[]}"#);
            }
        }
        out.push(b'\n');
        if !r.buffer().contains(&b'\n') {
            if w.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// A dnode `echo(x, cb)` call's callback id and first argument.
fn dnode_echo_call(v: serde_json::Value) -> Option<(u64, serde_json::Value)> {
    use serde_json::Value as J;
    let J::Object(mut o) = v else { return None };
    let cb: u64 = match o.get("callbacks") {
        Some(J::Object(c)) if c.len() == 1 => c.keys().next()?.parse().ok()?,
        _ => return None,
    };
    let J::Array(mut args) = o.remove("arguments")? else {
        return None;
    };
    (!args.is_empty()).then(|| (cb, args.swap_remove(0)))
}
