//! The ids the link hands out: transports ([`ConnId`]), tracked calls ([`CallId`]) and
//! transactions ([`TxId`]).

/// Which transport (connection attempt) an event belongs to. Events for a transport that is no
/// longer current are ignored, so a driver may report late without harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// One outgoing call that waits for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// A transaction: work that waits for the link to be up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId {
    pub(crate) id: u64,
    pub(crate) retry: bool,
}

impl TxId {
    /// Its number: transactions are numbered from 0 in the order they were made.
    pub fn number(self) -> u64 {
        self.id
    }

    /// Whether it runs again after a connection loss (at-least-once).
    pub fn retries(self) -> bool {
        self.retry
    }
}
