//! Every setting and its default in one place: the session's limits, each side's link
//! settings ([`ClientConfig`], [`ServerConfig`]) and the reconnect policy
//! ([`ReconnectPolicy`]). This module imports nothing else from the crate, so every layer
//! may depend on it.

mod backoff;
mod link;

pub use backoff::{Backoff, Exponential, Jitter, PolicyError, ReconnectPolicy};
pub use link::{ClientConfig, ServerConfig};
use std::time::Duration;

/// Longest line accepted from the peer, in bytes, excluding the newline (8 MiB).
pub const DEFAULT_MAX_LINE_LEN: usize = 8 * 1024 * 1024;

/// Most of the peer's callbacks a connection holds at once (what the peer can make us keep):
/// 250 000, so that a peer with [`DEFAULT_MAX_IN_FLIGHT`] calls waiting on our handlers,
/// each with its answer callback, stays well inside it.
pub const DEFAULT_MAX_CALLBACKS: usize = 250_000;

/// Most of our own functions the peer may call on one connection at once (wire ids we handed
/// out and have not forgotten). Reply callbacks count until their call resolves; functions
/// that live longer (streams, functions inside objects) count until the peer culls them or
/// the connection ends. Sized to hold [`DEFAULT_MAX_IN_FLIGHT`] pending calls with room for
/// long-lived functions.
pub const DEFAULT_MAX_LOCAL_CALLBACKS: usize = 1_000_000;

/// Most of our calls waiting for an answer on one connection at once (100 000). Further
/// calls wait for a slot ([`WhenFull::Wait`]) or fail ([`WhenFull::Fail`]).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 100_000;

/// Most of our calls waiting for a slot on one connection (1 000 000): past
/// [`CallLimits::max_in_flight`], or while the peer does not read, calls wait in the order
/// they were made, and past this many a call fails with
/// [`SendError::TooManyWaiting`](crate::link::SendError::TooManyWaiting) rather than
/// growing the queue without bound.
pub const DEFAULT_MAX_WAITING_CALLS: usize = 1_000_000;

/// Connections a TCP listener lets wait to be accepted (1024): a crowd of a thousand
/// clients connecting at once is not turned away by the kernel (tokio's own default is
/// 128). Linux caps it at `net.core.somaxconn` (4096 on current kernels).
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;

/// What all connections of one server may hold at once in partial input lines and unsent
/// output (256 MiB). Past it the server ends the connections holding the most, until it is
/// back under, with `LinkError::OverBudget`: a thousand peers each sending most of a
/// maximum-length line cannot take the server's memory.
pub const DEFAULT_SERVER_MEMORY_BUDGET: usize = 256 * 1024 * 1024;

/// Most bytes written for the peer and not yet taken by the transport, per connection (8 MiB).
/// Past it the connection stops reading the peer's input and holds new calls back until the
/// peer has read enough ([`OutputLimits`]).
pub const DEFAULT_MAX_UNSENT: usize = 8 * 1024 * 1024;

/// How long a connection may stay over [`DEFAULT_MAX_UNSENT`] before it is closed (30 s):
/// a peer that does not read for that long is gone or hostile.
pub const DEFAULT_SEND_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long ending a connection may spend flushing what is left to send before the socket
/// is dropped (2 s): ending a connection never waits on a peer that does not read.
pub const DEFAULT_CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Bounds on what one connection holds for the peer to read.
///
/// ```
/// let o = upnode_core::config::OutputLimits::default();
/// assert_eq!(o.max_unsent, upnode_core::config::DEFAULT_MAX_UNSENT);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputLimits {
    /// Unsent bytes at which the connection stops reading input and holds new calls back
    /// (they wait, or fail as [`CallLimits::when_full`] says).
    pub max_unsent: usize,
    /// How long the connection may stay at or over `max_unsent` before it is closed with
    /// `LinkError::OutputStalled`.
    pub stall_timeout: Duration,
    /// How long ending the connection may spend flushing before the socket is dropped.
    pub close_flush_timeout: Duration,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            max_unsent: DEFAULT_MAX_UNSENT,
            stall_timeout: DEFAULT_SEND_STALL_TIMEOUT,
            close_flush_timeout: DEFAULT_CLOSE_FLUSH_TIMEOUT,
        }
    }
}

/// What a call does when [`CallLimits::max_in_flight`] calls already wait for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhenFull {
    /// The call waits (in the order calls were made) until an earlier one resolves, then
    /// goes out; its time limit runs from when it was made. The default.
    #[default]
    Wait,
    /// The call fails at once with `SendError::TooManyInFlight`.
    Fail,
}

/// Bounds on our own calls on one connection.
///
/// ```
/// let l = upnode_core::config::CallLimits::default();
/// assert_eq!(l.max_in_flight, upnode_core::config::DEFAULT_MAX_IN_FLIGHT);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallLimits {
    /// Most calls waiting for an answer at once (at least 1).
    pub max_in_flight: usize,
    /// What a call does past that.
    pub when_full: WhenFull,
    /// Most calls waiting for a slot ([`WhenFull::Wait`]); past it a call fails.
    pub max_waiting: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            when_full: WhenFull::Wait,
            max_waiting: DEFAULT_MAX_WAITING_CALLS,
        }
    }
}

/// When we send `cull` for a peer's callback whose last reference we released.
///
/// dnode 1.2 (Node) finds the id of every function it sends with a linear scan of all the
/// callbacks the connection ever sent, and each `cull` it receives leaves a hole in that
/// array that makes the scan many times slower; a Node peer without `weak` never culls
/// itself. Culling answers the way a Node server does not therefore slows Node clients down
/// as a connection ages. Our own client forgets a reply callback by itself once the answer
/// arrives, so nothing needs a `cull` for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CullPolicy {
    /// Cull every callback we release: the peer can free each one.
    Always,
    /// Cull every callback we release except an answer: a callback that came as the last
    /// argument of a call to us and that we called exactly once (the dnode reply
    /// convention). Callbacks released unanswered, called several times or received any
    /// other way are culled. The default: Node clients run as fast as against a Node
    /// server, and a Rust peer's tables stay bounded because it forgets its own reply
    /// callbacks.
    #[default]
    ExceptAnswers,
    /// Never cull; the peer keeps every callback it sent until the connection ends (as a
    /// Node peer without `weak` does anyway). Our own tables stay bounded either way.
    Never,
}

/// Deepest nesting of a value, in levels; the JSON reader enforces the same limit, so all we
/// write we can also read.
pub const MAX_DEPTH: usize = 128;

/// Delay before every reconnect attempt under the default policy, a fixed 1 s: upnode 0.6's
/// `reconnect: 1000`.
pub const DEFAULT_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Delay before the first reconnect attempt of the default exponential backoff (100 ms).
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(100);

/// Cap on the delay of the default exponential backoff (30 s).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Growth of the default exponential backoff per attempt (doubling).
pub const DEFAULT_BACKOFF_FACTOR: f64 = 2.0;

/// Jitter of the default exponential backoff: full, uniform over `[0, delay]`, which spreads
/// a crowd of clients that lost the same server the most.
pub const DEFAULT_BACKOFF_JITTER: Jitter = Jitter::Full;

/// Reconnect attempts allowed before the link gives up: unlimited, as upnode 0.6.
pub const DEFAULT_MAX_RECONNECT_ATTEMPTS: Option<u32> = None;

/// Most transactions a link queues while it waits to be up (one million). A push beyond it
/// fails and hands the transaction back.
///
/// Measured with `examples/queue_memory.rs` at a million entries that all have deadlines,
/// the queue's heap use, payload included, is about 113 bytes per entry for an 8-byte
/// payload and 215 for a 64-byte one (B-tree leaves run about half full), so a full queue of
/// small transactions holds roughly 110 to 220 MB.
pub const DEFAULT_QUEUE_CAP: usize = 1_000_000;

/// Client heartbeat: how often to ping the server (upnode's `ping`, 10 s).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(10);

/// Client heartbeat: how long an answer may take (upnode's `timeout`, 5 s).
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Server heartbeat: how often to ping a client that exports `ping` (10 s, as upnode).
pub const DEFAULT_SERVER_PING_INTERVAL: Duration = Duration::from_secs(10);

/// Server heartbeat: how long a client's answer may take (10 s; upnode 0.6 wrote 100 s).
pub const DEFAULT_SERVER_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a transport may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the peer's `methods` may take after the transport opened (new; upnode waits
/// forever).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a server waits for a new connection's `methods` (5 s): shorter than the client's
/// [`DEFAULT_HANDSHAKE_TIMEOUT`], as an idle connection that never handshakes (`null` lines,
/// one byte a second) holds a slot and memory. Node and Rust clients send `methods` as soon
/// as they connect.
pub const DEFAULT_SERVER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client's connect step (e.g. `auth`) may take to signal up.
pub const DEFAULT_CONNECT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a link must stay up before a drop restarts the backoff from its first delay.
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(10);

/// Limits and options of one [`Session`](crate::session::Session).
///
/// ```
/// let mut c = upnode_core::SessionConfig::default();
/// c.escape_non_ascii = true;
/// assert_eq!(c.max_line_len, upnode_core::config::DEFAULT_MAX_LINE_LEN);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Longest line accepted from the peer; a longer one is a fatal protocol error and at most
    /// this many bytes are ever buffered for it.
    pub max_line_len: usize,
    /// Most of the peer's callbacks held at once; a peer sending more is a fatal protocol
    /// error ([`RemoteError::TooManyCallbacks`](crate::RemoteError::TooManyCallbacks)).
    pub max_callbacks: usize,
    /// Most of our functions the peer may call at once; a call that would pass it fails
    /// locally ([`LocalError::TooManyCallbacks`](crate::LocalError::TooManyCallbacks)).
    pub max_local_callbacks: usize,
    /// Write every non-ASCII character as `\uXXXX`, so a Node peer can never see a multi-byte
    /// character split across reads.
    pub escape_non_ascii: bool,
    /// Which released callbacks of the peer's we `cull` (default
    /// [`CullPolicy::ExceptAnswers`]).
    pub cull: CullPolicy,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_line_len: DEFAULT_MAX_LINE_LEN,
            max_callbacks: DEFAULT_MAX_CALLBACKS,
            max_local_callbacks: DEFAULT_MAX_LOCAL_CALLBACKS,
            escape_non_ascii: false,
            cull: CullPolicy::ExceptAnswers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_values() {
        assert_eq!(DEFAULT_MAX_LINE_LEN, 8_388_608);
        assert_eq!(DEFAULT_MAX_CALLBACKS, 250_000);
        assert_eq!(DEFAULT_MAX_LOCAL_CALLBACKS, 1_000_000);
        assert_eq!(MAX_DEPTH, 128);
        let c = SessionConfig::default();
        assert_eq!(c.max_line_len, DEFAULT_MAX_LINE_LEN);
        assert_eq!(c.max_callbacks, DEFAULT_MAX_CALLBACKS);
        assert_eq!(c.max_local_callbacks, DEFAULT_MAX_LOCAL_CALLBACKS);
        assert!(!c.escape_non_ascii);
        assert_eq!(c.cull, CullPolicy::ExceptAnswers);
    }

    #[test]
    fn listeners_let_a_thousand_connections_wait() {
        assert_eq!(DEFAULT_LISTEN_BACKLOG, 1024);
    }

    #[test]
    fn a_server_holds_at_most_256_mib_across_its_connections() {
        assert_eq!(DEFAULT_SERVER_MEMORY_BUDGET, 268_435_456);
    }

    #[test]
    fn output_limits_default_to_8_mib_unsent_30_s_stalled_and_2_s_to_flush() {
        assert_eq!(DEFAULT_MAX_UNSENT, 8_388_608);
        assert_eq!(DEFAULT_SEND_STALL_TIMEOUT, Duration::from_secs(30));
        assert_eq!(DEFAULT_CLOSE_FLUSH_TIMEOUT, Duration::from_secs(2));
        let o = OutputLimits::default();
        assert_eq!(o.max_unsent, DEFAULT_MAX_UNSENT);
        assert_eq!(o.stall_timeout, DEFAULT_SEND_STALL_TIMEOUT);
        assert_eq!(o.close_flush_timeout, DEFAULT_CLOSE_FLUSH_TIMEOUT);
    }

    #[test]
    fn call_limits_default_to_a_hundred_thousand_waiting_calls() {
        assert_eq!(DEFAULT_MAX_IN_FLIGHT, 100_000);
        let l = CallLimits::default();
        assert_eq!(l.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(l.when_full, WhenFull::Wait);
        assert_eq!(l.max_waiting, DEFAULT_MAX_WAITING_CALLS);
        assert_eq!(DEFAULT_MAX_WAITING_CALLS, 1_000_000);
        const { assert!(DEFAULT_MAX_LOCAL_CALLBACKS > DEFAULT_MAX_IN_FLIGHT) };
        const { assert!(DEFAULT_MAX_CALLBACKS > DEFAULT_MAX_IN_FLIGHT) };
    }

    #[test]
    fn link_defaults_are_the_documented_values() {
        assert_eq!(DEFAULT_RECONNECT_DELAY, Duration::from_millis(1000));
        assert_eq!(DEFAULT_BACKOFF_MIN, Duration::from_millis(100));
        assert_eq!(DEFAULT_BACKOFF_MAX, Duration::from_secs(30));
        assert_eq!(DEFAULT_BACKOFF_FACTOR, 2.0);
        assert_eq!(DEFAULT_BACKOFF_JITTER, Jitter::Full);
        assert_eq!(DEFAULT_MAX_RECONNECT_ATTEMPTS, None);
        assert_eq!(DEFAULT_QUEUE_CAP, 1_000_000);
        assert_eq!(DEFAULT_PING_INTERVAL, Duration::from_millis(10_000));
        assert_eq!(DEFAULT_PING_TIMEOUT, Duration::from_millis(5_000));
        assert_eq!(DEFAULT_SERVER_PING_INTERVAL, Duration::from_millis(10_000));
        assert_eq!(DEFAULT_SERVER_PING_TIMEOUT, Duration::from_millis(10_000));
        assert_eq!(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs(10));
        assert_eq!(DEFAULT_HANDSHAKE_TIMEOUT, Duration::from_secs(10));
        assert_eq!(DEFAULT_SERVER_HANDSHAKE_TIMEOUT, Duration::from_secs(5));
        assert_eq!(DEFAULT_CONNECT_STEP_TIMEOUT, Duration::from_secs(10));
        assert_eq!(DEFAULT_STABLE_AFTER, Duration::from_secs(10));
    }
}
