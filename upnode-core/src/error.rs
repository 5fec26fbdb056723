//! Errors, with the peer's faults and our own kept apart.

use thiserror::Error;

/// Something the peer sent broke the protocol or named something that does not exist.
///
/// [`is_fatal`](RemoteError::is_fatal) tells which ones end the connection: those after which
/// the byte stream cannot be trusted (Node ends the connection for the same), or a limit of
/// ours the peer went over. The others are reported and the session carries on, as Node does.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// A line grew past our limit.
    #[error("peer sent a line longer than {limit} bytes")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// A line was not JSON (an empty line included).
    #[error("peer sent a line that is not JSON: {detail}")]
    BadJson {
        /// What the JSON reader said.
        detail: String,
    },
    /// The peer made us hold more of its callbacks than the configured cap.
    #[error("peer made us hold more than {limit} of its callbacks")]
    TooManyCallbacks {
        /// The cap in force.
        limit: usize,
    },
    /// A line was JSON but not a message object (`null`, a number, an array, a string).
    #[error("peer sent JSON that is not a message: {detail}")]
    NotAMessage {
        /// What was wrong.
        detail: String,
    },
    /// The peer called a method name we do not export.
    #[error("peer called no such method {name:?}")]
    NoSuchMethod {
        /// The name called.
        name: String,
    },
    /// The peer called an exported name that holds data, not a function.
    #[error("peer called {name:?}, which is not a function")]
    NotAFunction {
        /// The name called.
        name: String,
    },
    /// The peer called a callback id we never gave out, or one it already culled.
    #[error("peer called no such callback {id}")]
    NoSuchCallback {
        /// The id called.
        id: u64,
    },
}

impl RemoteError {
    /// Whether the connection must be ended after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            RemoteError::LineTooLong { .. }
                | RemoteError::BadJson { .. }
                | RemoteError::TooManyCallbacks { .. }
        )
    }
}

/// Something we were asked to do cannot be done; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LocalError {
    /// Sending these arguments would make the peer hold more of our callbacks than the cap.
    #[error("more than {limit} of our callbacks would be held by the peer")]
    TooManyCallbacks {
        /// The cap in force.
        limit: usize,
    },
    /// The value nests deeper than the peer could read back.
    #[error("value nests deeper than {limit} levels")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// The peer's interface has not arrived yet.
    #[error("the peer's methods have not arrived yet")]
    RemoteNotReady,
    /// The peer's interface has no such name.
    #[error("the peer exports no method {name:?}")]
    NoSuchRemoteMethod {
        /// The name asked for.
        name: String,
    },
    /// The peer exports this name, but as data, not a function.
    #[error("the peer's {name:?} is not a function")]
    RemoteNotAFunction {
        /// The name asked for.
        name: String,
    },
    /// The remote function was released (culled) or never received on this connection.
    #[error("remote callback {id} is not held on this connection")]
    UnknownRemoteFunction {
        /// The peer's id.
        id: u64,
    },
    /// The session has ended (closed locally or after a fatal error).
    #[error("the session has ended")]
    Closed,
}
