//! Errors of the async API.

use std::time::Duration;
use upnode_core::{LocalError, TypedError};

/// Why a remote call gave no answer, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The remote object has no function under that name.
    #[error("the remote object has no function {0:?}")]
    NoSuchMethod(String),
    /// The connection went down before any answer; the peer may or may not have run the call.
    #[error("the link went down before the call was answered")]
    LinkDown,
    /// The peer dropped the answer callback without calling it (it sent `cull`): no answer
    /// will come.
    #[error("the peer dropped the callback without answering")]
    Dropped,
    /// No answer within the call's time limit.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The client or server was closed.
    #[error("closed")]
    Closed,
    /// The connection this remote object belongs to is gone (objects from the peer are valid
    /// for one connection only).
    #[error("the connection of this remote object is gone")]
    NotConnected,
    /// Arguments could not be encoded, or the answer did not fit the type asked for.
    #[error(transparent)]
    Typed(#[from] TypedError),
    /// The peer is not reading (this connection's output is over its cap) and the client or
    /// server is set to fail calls rather than hold them
    /// ([`WhenFull::Fail`](upnode_core::config::WhenFull::Fail)).
    #[error("the peer is not reading: this connection's output is over its cap")]
    OutputFull,
    /// The session refused the call (a limit).
    #[error(transparent)]
    Local(#[from] LocalError),
    /// `limit` calls already wait for an answer on this connection, and the client or
    /// server is set to fail further calls instead of making them wait
    /// ([`WhenFull::Fail`](upnode_core::config::WhenFull::Fail)).
    #[error("{limit} calls already wait for an answer on this connection")]
    TooManyInFlight {
        /// The limit in force.
        limit: usize,
    },
    /// The link refused to send the call, for a reason not listed above.
    #[error("the link refused the call: {0}")]
    Refused(upnode_core::link::SendError),
    /// The call resolved without an answer, for a reason not listed above.
    #[error("the call failed: {0:?}")]
    Failed(upnode_core::link::CallFailure),
}

/// Why waiting for the link ended without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpError {
    /// The client was closed (or gave up reconnecting) first.
    #[error("the client is closed")]
    Closed,
    /// The transaction queue is full.
    #[error("the transaction queue is full")]
    QueueFull,
    /// The link was not up within the transaction's time limit.
    #[error("the link was not up in time")]
    TimedOut,
}

/// An error a method handler returns; reported as an event, the connection lives on.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl CallError {
    /// The async API's form of a call the link refused.
    pub(crate) fn from_link(e: upnode_core::link::SendError) -> CallError {
        use upnode_core::link::SendError as E;
        match e {
            E::Closed => CallError::Closed,
            E::Local(l) => CallError::Local(l),
            E::TooManyInFlight { limit } => CallError::TooManyInFlight { limit },
            E::OutputFull => CallError::OutputFull,
            E::NotConnected => CallError::NotConnected,
            // The reserved-key refusal, and any the core adds later, keep their cause.
            other => CallError::Refused(other),
        }
    }
}

/// An address that is not `"host:port"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address {addr:?}: {reason}")]
pub struct BadAddress {
    /// The address as given.
    pub addr: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Why a client could not be started: the input given to a `connect_*` function was wrong.
/// Nothing was spawned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The reconnect policy is out of range (e.g. an exponential `factor` below 1).
    #[error("invalid reconnect policy: {0}")]
    Policy(#[from] upnode_core::config::PolicyError),
    /// The address is not `host:port` with a port from 1 to 65535.
    #[error(transparent)]
    Address(#[from] BadAddress),
    /// The Unix socket path is empty.
    #[error("invalid Unix socket path {0:?}: it is empty")]
    Path(std::path::PathBuf),
    /// The TLS server name is neither a DNS name nor an IP address.
    #[error("invalid TLS server name {0:?}: not a DNS name or an IP address")]
    ServerName(String),
}

/// Why a server could not start listening.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The address is not `host:port` with a port from 0 to 65535 (0 picks a free port).
    #[error(transparent)]
    Address(#[from] BadAddress),
    /// The Unix socket path is empty.
    #[error("invalid Unix socket path {0:?}: it is empty")]
    Path(std::path::PathBuf),
    /// The socket could not be bound (address in use, no permission, unknown host…).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address or path as given.
        addr: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

impl ListenError {
    /// The system's error kind when binding failed (e.g. `AddrInUse`), else `InvalidInput`.
    pub fn kind(&self) -> std::io::ErrorKind {
        match self {
            ListenError::Bind { source, .. } => source.kind(),
            _ => std::io::ErrorKind::InvalidInput,
        }
    }
}
