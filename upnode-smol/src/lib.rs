//! upnode for the `smol` runtime — not written yet.
//!
//! This crate will be a thin adapter like `upnode-tokio`: a `Runtime` implementation
//! (spawn, timers, clock) and transports (TCP, Unix sockets, TLS through `futures-rustls`)
//! for the runtime-agnostic plumbing in `upnode-async`, which already holds the client,
//! server, transactions and remote calls. Until then it exports nothing; use `upnode-tokio`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
