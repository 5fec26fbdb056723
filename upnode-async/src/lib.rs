//! Runtime-agnostic async plumbing of upnode, written once for every runtime adapter.
//!
//! The protocol and every decision live in [`upnode_core`]; this crate moves bytes between a
//! transport and the core's state machines, sleeps until their deadlines, and turns their
//! events into futures, streams and handler calls. An adapter (`upnode-tokio`,
//! `upnode-async-std`, `upnode-smol`) only supplies a [`Runtime`] (spawn, sleep, clock) and
//! transports (TCP, Unix sockets, TLS) as [`BoxStream`]s.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod client;
mod driver;
mod error;
mod io;
mod peer;
mod runtime;
mod server;

pub use client::{Client, ClientBuilder, ClientEvent};
pub use driver::Counters;
pub use error::{CallError, HandlerError, UpError};
pub use peer::{Args, Call, Interface, Remote};
pub use runtime::{AsyncDuplex, BoxStream, Connector, Runtime};
pub use server::{ConnHandle, Server, ServerBuilder, ServerEvent};
pub use upnode_core;
