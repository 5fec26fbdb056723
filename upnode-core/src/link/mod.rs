//! The upnode link on top of a session: what keeps a dnode connection alive.
//!
//! [`ClientLink`] connects, handshakes, runs the connect step, goes up, detects dead links with
//! heartbeats, backs off and reconnects, and keeps a transactional queue of work that waits
//! for the link. [`ServerConn`] is the server's side of one connection. Both are pure state
//! machines: no clock, no IO, see their driving contracts. Their settings are in
//! [`crate::config`].
//!
//! The files, each one idea: `ids` (what the link numbers), `error`, `event` (what it
//! reports), `timers` (its deadlines in one table), `heartbeat`, `calls` (our calls in
//! flight), `backlog` (output the peer has not read), `route` (session events, both sides),
//! `backoff` (walking a reconnect policy), `client`, `server`; `queue` and `rng` are the
//! transaction queue and the jitter generator, public only for the benches.

mod backlog;
pub mod backoff;
mod calls;
mod client;
mod deadlines;
mod error;
mod event;
mod heartbeat;
mod ids;
#[doc(hidden)]
pub mod queue;
#[doc(hidden)]
pub mod rng;
mod route;
mod server;
mod timers;

pub use client::{ClientLink, LinkState};
pub use error::{CallFailure, LinkError, SendError, TransactError};
pub use event::{LinkCounters, LinkEvent};
pub use heartbeat::RESERVED_FN_BASE;
pub use ids::{CallId, ConnId, TxId};
pub use server::ServerConn;
