//! The sans-IO core of upnode: the dnode wire protocol, the per-connection session, and
//! the link that keeps a connection alive.
//!
//! Nothing here reads a clock, sleeps, spawns or opens a socket. A driver feeds received
//! bytes, transport events and the current time in, and writes out what the core hands
//! back. Three layers, each a state machine with its driving contract on the type:
//!
//! - [`protocol`]: framing, [`Value`]s with functions, scrubbing, JSON as Node writes it;
//! - [`Session`]: one dnode conversation (callback tables, `methods`, calls, `cull`);
//! - [`link`]: [`ClientLink`](link::ClientLink) (connect, handshake, connect step, up,
//!   heartbeat, backoff, transactions) and [`ServerConn`](link::ServerConn).
//!
//! # A complete driver loop
//!
//! A driver owns the transports and one timer. After every call into the link it drains the
//! events and the bytes to send, then sleeps until the link's next deadline or until
//! something arrives. Here the "network" is in memory and time is virtual, which is also how
//! the simulation tests drive the core:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use upnode_core::config::{ClientConfig, ServerConfig};
//! use upnode_core::link::{ClientLink, ConnId, LinkEvent, ServerConn};
//! use upnode_core::{Function, LocalFn, Target, Value};
//!
//! let mut now = Instant::now(); // the driver's clock; the core only ever receives it
//! const TIME: LocalFn = LocalFn(1);
//! const REPLY: LocalFn = LocalFn(2);
//!
//! let mut client = ClientLink::new(ClientConfig::default(), Value::Null, now).unwrap();
//! let mut server: Option<ServerConn> = None;
//! let mut conn: Option<ConnId> = None;
//! let tx = client.transact(now, Some(Duration::from_secs(30)), false).unwrap();
//! let mut answer = None;
//!
//! for _ in 0..100 {
//!     // 1. Drain the client's events.
//!     while let Some(ev) = client.poll_event() {
//!         match ev {
//!             LinkEvent::OpenTransport { conn: c, .. } => {
//!                 // "Connect": the server side of the transport is a ServerConn.
//!                 let exports = Value::object([("time", Value::from(TIME))]);
//!                 server = Some(ServerConn::new(ServerConfig::default(), exports, now));
//!                 client.handle_connected(c, now);
//!                 conn = Some(c);
//!             }
//!             LinkEvent::TransactionReady { tx: t, conn: c } => {
//!                 assert_eq!(t, tx);
//!                 // The transaction runs: call `time` with a callback of ours.
//!                 let args = vec![Value::from(REPLY)];
//!                 client.call(c, now, Target::Method("time".into()), args, None).unwrap();
//!             }
//!             LinkEvent::Call { function: REPLY, args, .. } => answer = Some(args[0].clone()),
//!             _ => {}
//!         }
//!     }
//!     // 2. Drain the server's events (its handler answers `time`).
//!     if let Some(s) = server.as_mut() {
//!         while let Some(ev) = s.poll_event() {
//!             if let LinkEvent::Call { function: TIME, args, .. } = ev {
//!                 let Some(Function::Remote(cb)) = args[0].as_function() else { continue };
//!                 s.call(now, Target::Callback(cb), vec![Value::from("noon")], None).unwrap();
//!             }
//!         }
//!     }
//!     // 3. Move the bytes each side wants to send to the other.
//!     let mut moved = false;
//!     while let Some((_, bytes)) = client.poll_transmit() {
//!         server.as_mut().unwrap().handle_input(now, &bytes);
//!         moved = true;
//!     }
//!     if let (Some(s), Some(c)) = (server.as_mut(), conn) {
//!         while let Some(bytes) = s.poll_transmit() {
//!             client.handle_input(c, now, &bytes);
//!             moved = true;
//!         }
//!     }
//!     if answer.is_some() {
//!         break;
//!     }
//!     // 4. Nothing in flight: sleep until the earliest deadline, then run the timers.
//!     if !moved {
//!         let next = [client.poll_timeout(), server.as_ref().and_then(|s| s.poll_timeout())]
//!             .into_iter()
//!             .flatten()
//!             .min();
//!         if let Some(t) = next {
//!             now = now.max(t);
//!             client.handle_timeout(now);
//!             if let Some(s) = server.as_mut() {
//!                 s.handle_timeout(now);
//!             }
//!         }
//!     }
//! }
//! assert_eq!(answer, Some(Value::from("noon")));
//! ```
//!
//! # One session by hand
//!
//! ```
//! use upnode_core::{LocalFn, Session, SessionConfig, SessionEvent, Value};
//!
//! // Our side exports `time`; the peer is a Node upnode client.
//! let exports = Value::object([("time", Value::from(LocalFn(0)))]);
//! let mut s = Session::new(exports, SessionConfig::default()).unwrap();
//! let hello = s.poll_transmit().unwrap();
//! assert_eq!(&hello[..], &br#"{"method":"methods","arguments":[{"time":"[Function]"}],"callbacks":{"0":["0","time"]},"links":[]}
//! "#[..]);
//!
//! s.handle_input(br#"{"method":0,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}
//! "#).unwrap();
//! let Some(SessionEvent::Call { function, args }) = s.poll_event() else { panic!() };
//! assert_eq!(function, LocalFn(0));
//! let upnode_core::Function::Remote(reply_to) = args[0].as_function().unwrap() else { panic!() };
//! s.call(reply_to, vec![Value::from("Wed Nov 25 2026")]).unwrap();
//! assert_eq!(&s.poll_transmit().unwrap()[..],
//!     &b"{\"method\":1,\"arguments\":[\"Wed Nov 25 2026\"],\"callbacks\":{},\"links\":[]}\n"[..]);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
mod hash;
mod id_set;
pub mod link;
pub mod protocol;
pub mod seq_map;
pub mod session;

pub use config::SessionConfig;
pub use error::{LocalError, RemoteError};
pub use protocol::{
    from_args, from_value, to_args, to_value, CallArgs, Function, LocalFn, Map, Method, RemoteFn,
    TypedError, Value,
};
pub use session::{Session, SessionEvent, Target};
