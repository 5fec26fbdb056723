//! Every default in one place.

use crate::link::backoff::Jitter;
use std::time::Duration;

/// Longest line accepted from the peer, in bytes, excluding the newline (8 MiB).
pub const DEFAULT_MAX_LINE_LEN: usize = 8 * 1024 * 1024;

/// Most callbacks a connection holds in each direction: ours the peer may call, and the
/// peer's we hold.
pub const DEFAULT_MAX_CALLBACKS: usize = 100_000;

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
    /// Cap on callbacks held per connection in each direction.
    pub max_callbacks: usize,
    /// Write every non-ASCII character as `\uXXXX`, so a Node peer can never see a multi-byte
    /// character split across reads.
    pub escape_non_ascii: bool,
    /// Send `cull` when the last reference on a peer's callback is released, so the peer can
    /// free it (default). Turning it off keeps our own tables bounded all the same, but the
    /// peer keeps every callback it ever sent until the connection ends — which is how a
    /// Node dnode peer without `weak` behaves anyway, and avoids the slow path `cull` puts
    /// dnode 1.2's callback lookup on (see the README's performance section).
    pub send_cull: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_line_len: DEFAULT_MAX_LINE_LEN,
            max_callbacks: DEFAULT_MAX_CALLBACKS,
            escape_non_ascii: false,
            send_cull: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_values() {
        assert_eq!(DEFAULT_MAX_LINE_LEN, 8_388_608);
        assert_eq!(DEFAULT_MAX_CALLBACKS, 100_000);
        assert_eq!(MAX_DEPTH, 128);
        let c = SessionConfig::default();
        assert_eq!(c.max_line_len, DEFAULT_MAX_LINE_LEN);
        assert_eq!(c.max_callbacks, DEFAULT_MAX_CALLBACKS);
        assert!(!c.escape_non_ascii);
        assert!(c.send_cull);
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
        assert_eq!(DEFAULT_CONNECT_STEP_TIMEOUT, Duration::from_secs(10));
        assert_eq!(DEFAULT_STABLE_AFTER, Duration::from_secs(10));
    }
}
