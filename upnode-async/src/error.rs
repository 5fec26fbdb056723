//! Errors of the async API.

use std::time::Duration;
use upnode_core::link::LinkError;
use upnode_core::{LocalError, TypedError, Value};

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

/// Why a typed, error-first call ([`Remote::rpc`](crate::Remote::rpc)) did not give a
/// result: the peer answered with an error ([`Remote`](Self::Remote), the only case where
/// the peer ran the call and said no), or no usable answer came (the link, the time limit,
/// decoding).
///
/// ```
/// use upnode_async::{CallError, RpcError};
/// let e: RpcError<String> = RpcError::Remote("ACCESS DENIED".into());
/// assert_eq!(e.remote(), Some(&"ACCESS DENIED".to_owned()));
/// let e: RpcError<String> = CallError::LinkDown.into();
/// assert!(e.is_link_failure() && e.remote().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError<E> {
    /// The peer answered with an error, `cb(err)`: `err` decoded as `E`.
    #[error("the peer answered with an error: {0:?}")]
    Remote(E),
    /// The peer answered with an error that does not decode as `E` (for example an object
    /// where a string was expected); the raw value.
    #[error("the peer answered with an error of an unexpected shape: {0:?}")]
    RemoteOther(Value),
    /// No answer within the call's time limit (the peer may still run the call).
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The link failed before an answer came: it went down ([`CallError::LinkDown`]), the
    /// remote object's connection is gone ([`CallError::NotConnected`]), the client or
    /// server was closed ([`CallError::Closed`]), or the peer dropped the answer callback
    /// ([`CallError::Dropped`]). The peer may or may not have run the call.
    #[error("the link failed: {0}")]
    Link(CallError),
    /// The peer answered `cb(null, result)` but `result` does not decode as the type asked
    /// for.
    #[error("the result does not decode: {0}")]
    Decode(TypedError),
    /// The call could not be made: no such method, arguments that do not encode, or a
    /// limit of this side ([`CallError::TooManyInFlight`], [`CallError::OutputFull`], …).
    #[error("the call could not be made: {0}")]
    Call(CallError),
}

impl<E> RpcError<E> {
    /// The peer's error, when it answered with one of type `E`.
    pub fn remote(&self) -> Option<&E> {
        match self {
            RpcError::Remote(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the peer answered with an error (of type `E` or not): it ran the call.
    pub fn is_remote(&self) -> bool {
        matches!(self, RpcError::Remote(_) | RpcError::RemoteOther(_))
    }

    /// Whether the call's time limit passed first.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RpcError::TimedOut(_))
    }

    /// Whether the link failed before an answer (see [`Link`](Self::Link)).
    pub fn is_link_failure(&self) -> bool {
        matches!(self, RpcError::Link(_))
    }
}

impl<E> From<CallError> for RpcError<E> {
    fn from(e: CallError) -> Self {
        match e {
            CallError::TimedOut(d) => RpcError::TimedOut(d),
            CallError::LinkDown
            | CallError::NotConnected
            | CallError::Closed
            | CallError::Dropped => RpcError::Link(e),
            other => RpcError::Call(other),
        }
    }
}

/// Why waiting for the link ended without it, with the last failure seen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum UpError {
    /// The client closed first.
    #[error("the client is closed{}", because(.cause))]
    Closed {
        /// Why: the failure that made it close (a connect step that gave up with
        /// [`GiveUp`], or the last attempt's failure when the reconnect policy ran out of
        /// attempts); `None` when the user closed it.
        cause: Option<LinkError>,
    },
    /// The transaction queue is full.
    #[error("the transaction queue is full")]
    QueueFull,
    /// The link was not up within the transaction's time limit.
    #[error("the link was not up in time{}", because(.last_cause))]
    TimedOut {
        /// The last failure since the link was last up (a refused connection, a handshake
        /// timeout, a failing connect step…); `None` if nothing failed (the server is slow).
        last_cause: Option<LinkError>,
    },
}

fn because(cause: &Option<LinkError>) -> String {
    cause
        .as_ref()
        .map_or_else(String::new, |c| format!(" (last failure: {c})"))
}

/// What a connect step ([`ClientBuilder::on_connect`](crate::ClientBuilder::on_connect))
/// returns to say its failure is final: instead of reconnecting, the client closes, and
/// waiting transactions fail with [`UpError::Closed`] whose cause is
/// `LinkError::ConnectStepFailed` with this reason. Any other error reconnects.
///
/// ```no_run
/// # fn f(b: upnode_async::ClientBuilder) -> upnode_async::ClientBuilder {
/// use upnode_async::GiveUp;
/// b.on_connect(|remote| async move {
///     match remote.rpc_remote::<_, String>("auth", &("moo", "hax")).await {
///         Ok(session) => Ok(session),
///         // Wrong credentials will not get better by retrying.
///         Err(upnode_async::RpcError::Remote(denied)) => Err(GiveUp::new(denied).into()),
///         Err(e) => Err(e.into()),
///     }
/// })
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct GiveUp {
    reason: String,
}

impl GiveUp {
    /// A final failure, for this reason.
    pub fn new(reason: impl std::fmt::Display) -> GiveUp {
        GiveUp {
            reason: reason.to_string(),
        }
    }

    /// The reason given.
    pub fn reason(&self) -> &str {
        &self.reason
    }
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
    /// A failover client was given no address.
    #[error("no address to connect to")]
    NoAddress,
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
