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
}

/// An error a method handler returns; reported as an event, the connection lives on.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;
