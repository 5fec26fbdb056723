//! upnode for async-std: keep a dnode connection alive, re-establish state between
//! reconnects, and queue work until the link is up. Wire-compatible with Node's `upnode` 0.6
//! / `dnode` 1.2 in both directions, and the same API as `upnode-tokio`.
//!
//! **async-std is discontinued upstream** (its maintainers point to smol; see
//! [RUSTSEC-2025-0052](https://rustsec.org/advisories/RUSTSEC-2025-0052.html)). This crate is
//! kept for users who still run it and is a thin layer: its sockets and timers are
//! `async-io`'s, shared with `upnode-smol`; only spawning is async-std's. New code should use
//! `upnode-smol`, whose API is the same.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use upnode_async_std::Interface;
//!
//! async_std::task::block_on(async {
//!     let server = upnode_async_std::server(|_conn| {
//!         // `rpc`: typed arguments, an error-first answer (`cb(null, t)` or `cb(err)`).
//!         Interface::new().rpc("time", |()| async move { Ok::<_, String>("it is now") })
//!     });
//!     let listener = upnode_async_std::listen(&server, "127.0.0.1:0").await?;
//!
//!     let up = upnode_async_std::connect(listener.local_addr())?;
//!     let remote = up.up().await?;
//!     let t: String = remote.rpc::<_, _, String>("time", &()).await?;
//!     assert_eq!(t, "it is now");
//!     up.close().await;
//!     Ok(())
//! })
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use upnode_async::async_io::AsyncIo;

/// async-std's [`Runtime`](upnode_async::Runtime) and sockets: tasks go to
/// `async_std::task::spawn`.
pub const ASYNC_STD: AsyncIo = AsyncIo::new(|task| drop(async_std::task::spawn(task)));

upnode_async::adapter!(net: ASYNC_STD, name: "async-std");
