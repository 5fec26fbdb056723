//! Runtime-agnostic async plumbing of upnode, written once for every runtime adapter.
//!
//! The protocol and every decision live in [`upnode_core`]; this crate moves bytes between a
//! transport and the core's state machines, sleeps until their deadlines, and turns their
//! events into futures, streams and handler calls. An adapter (`upnode-tokio`,
//! `upnode-async-std`, `upnode-smol`) only supplies a [`Runtime`] (spawn, sleep, clock) and
//! sockets ([`net::Net`]); connecting (every check of the user's input), listening, TLS and
//! the accept loop are here, and [`adapter!`] writes the adapter's public functions.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![forbid(unsafe_code)]

mod adapter;
#[cfg(feature = "async-io")]
pub mod async_io;
mod client;
mod driver;
mod error;
mod handlers;
mod interface;
mod io;
mod listener;
mod lock;
pub mod net;
mod peer;
mod running;
mod runtime;
mod server;
mod tls;

pub use client::{Client, ClientBuilder, ClientEvent};
pub use driver::Counters;
pub use error::{
    BadAddress, CallError, ConnectError, GiveUp, HandlerError, ListenError, RpcError, UpError,
};
pub use futures_rustls::rustls;
pub use interface::Interface;
pub use listener::{Bound, Listener};
pub use peer::{Args, Call, Remote};
pub use runtime::{boxed, AsyncDuplex, BoxStream, Connector, Runtime};
pub use server::{ConnHandle, Server, ServerBuilder, ServerEvent};
pub use upnode_core;
pub use upnode_core::config::{
    Backoff, CallLimits, ClientConfig, CullPolicy, Exponential, Jitter, OutputLimits, PolicyError,
    ReconnectPolicy, ServerConfig, SessionConfig, WhenFull,
};
pub use upnode_core::link::{ConnId, LinkError, LinkState};
pub use upnode_core::{LocalError, RemoteError, Value};

/// How long a call waits for its answer unless told otherwise: 60 s. The default of
/// [`ClientBuilder::call_timeout`] and [`ServerBuilder::call_timeout`]; a handle's
/// [`Remote::with_timeout`] overrides it per call. A call past it fails with
/// [`CallError::TimedOut`] ([`RpcError::TimedOut`]) and its callback is forgotten, so a peer
/// that never answers cannot make a caller wait, or our tables grow, forever.
pub const DEFAULT_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
