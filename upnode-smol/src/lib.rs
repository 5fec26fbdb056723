//! upnode for smol: keep a dnode connection alive, re-establish state between reconnects,
//! and queue work until the link is up. Wire-compatible with Node's `upnode` 0.6 / `dnode`
//! 1.2 in both directions, and the same API as `upnode-tokio`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use upnode_smol::Interface;
//!
//! smol::block_on(async {
//!     // Server: an interface per connection, like `upnode(cons)`.
//!     let server = upnode_smol::server(|_conn| {
//!         // `rpc`: typed arguments, an error-first answer (`cb(null, t)` or `cb(err)`).
//!         Interface::new().rpc("time", |()| async move { Ok::<_, String>("it is now") })
//!     });
//!     let listener = upnode_smol::listen(&server, "127.0.0.1:0").await?;
//!
//!     // Client: connects in the background and reconnects until closed.
//!     let up = upnode_smol::connect(listener.local_addr())?;
//!     let remote = up.up().await?; // waits for the link
//!     let t: String = remote.rpc::<_, _, String>("time", &()).await?;
//!     assert_eq!(t, "it is now");
//!     up.close().await;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Tasks go to smol's global executor (`smol::spawn`); sockets and timers are `async-io`'s
//! (shared with `upnode-async-std` in `upnode_async::async_io`). Time is the system's clock:
//! smol has no virtual time.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use upnode_async::async_io::AsyncIo;

/// smol's [`Runtime`](upnode_async::Runtime) and sockets: tasks go to `smol::spawn`.
pub const SMOL: AsyncIo = AsyncIo::new(|task| smol::spawn(task).detach());

upnode_async::adapter!(net: SMOL, name: "smol");
