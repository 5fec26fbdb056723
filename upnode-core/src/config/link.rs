//! Settings of each side's link: [`ClientConfig`] for a client link, [`ServerConfig`] for
//! each connection a server accepts.

use super::{
    CallLimits, OutputLimits, ReconnectPolicy, SessionConfig, DEFAULT_CONNECT_STEP_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT, DEFAULT_QUEUE_CAP, DEFAULT_SERVER_HANDSHAKE_TIMEOUT,
    DEFAULT_SERVER_PING_INTERVAL, DEFAULT_SERVER_PING_TIMEOUT, DEFAULT_STABLE_AFTER,
};
use std::time::Duration;

/// Settings of a [`ClientLink`](crate::link::ClientLink). Every default is a named constant in this module.
///
/// ```
/// use std::time::Duration;
/// let mut c = upnode_core::config::ClientConfig::default();
/// assert_eq!(c.ping_interval, Some(Duration::from_secs(10)));
/// c.ping_interval = None; // no heartbeat
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// How often to ping the server once its `methods` arrived; `None` (or zero) disables
    /// (upnode's `ping: 0`).
    pub ping_interval: Option<Duration>,
    /// How long an answer to a ping may take before the link is declared dead.
    pub ping_timeout: Duration,
    /// How long opening the transport may take, at most: see
    /// [`liveness_bound`](Self::liveness_bound).
    pub connect_timeout: Duration,
    /// How long the server's `methods` may take after the transport opened, at most: see
    /// [`liveness_bound`](Self::liveness_bound).
    pub handshake_timeout: Duration,
    /// Whether the driver runs a connect step (upnode's connect callback) on
    /// [`LinkEvent::Remote`](crate::link::LinkEvent::Remote) and then calls [`ClientLink::signal_up`](crate::link::ClientLink::signal_up). When `false` the link
    /// goes up with the server's interface itself as soon as it arrives.
    pub connect_step: bool,
    /// How long the connect step may take to signal up; `None` waits as long as the
    /// transport lives (upnode's behaviour).
    pub connect_step_timeout: Option<Duration>,
    /// Delays between attempts.
    pub reconnect: ReconnectPolicy,
    /// How long the link must have been proven alive (by traffic from the server) after
    /// going up before a drop starts the backoff afresh. A server that goes silent right
    /// after the handshake therefore never resets the backoff, however long the heartbeat
    /// takes to notice.
    pub stable_after: Duration,
    /// Most transactions waiting at once.
    pub queue_cap: usize,
    /// Seed of the jitter's random numbers.
    pub seed: u64,
    /// Protocol limits of each connection's session.
    pub session: SessionConfig,
    /// Bounds on our calls in flight on each connection.
    pub calls: CallLimits,
    /// Bounds on what each connection holds for the server to read.
    pub output: OutputLimits,
}

impl ClientConfig {
    /// How long a link may go without hearing from the server when the heartbeat runs:
    /// `ping_interval + ping_timeout`, or `None` with the heartbeat off.
    ///
    /// A connection attempt is held to the same bound: opening the transport and the
    /// server's `methods` each take at most the smaller of their own timeout and this. A
    /// user who shortens the heartbeat to find a dead link within a second also gets a
    /// reconnect attempt that gives up within a second (through a healed partition, the
    /// link recovers in about that time, not in the 10 s handshake default).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut c = upnode_core::config::ClientConfig::default();
    /// assert_eq!(c.liveness_bound(), Some(Duration::from_secs(15)));
    /// assert_eq!(c.effective_handshake_timeout(), Duration::from_secs(10));
    /// c.ping_interval = Some(Duration::from_millis(1000));
    /// c.ping_timeout = Duration::from_millis(300);
    /// assert_eq!(c.effective_handshake_timeout(), Duration::from_millis(1300));
    /// ```
    pub fn liveness_bound(&self) -> Option<Duration> {
        self.ping_interval
            .filter(|i| !i.is_zero())
            .map(|i| i.saturating_add(self.ping_timeout))
    }

    /// The handshake timeout in force: `handshake_timeout`, capped by
    /// [`liveness_bound`](Self::liveness_bound).
    pub fn effective_handshake_timeout(&self) -> Duration {
        self.liveness_bound()
            .map_or(self.handshake_timeout, |b| b.min(self.handshake_timeout))
    }

    /// The connect timeout in force: `connect_timeout`, capped by
    /// [`liveness_bound`](Self::liveness_bound).
    pub fn effective_connect_timeout(&self) -> Duration {
        self.liveness_bound()
            .map_or(self.connect_timeout, |b| b.min(self.connect_timeout))
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            connect_step: false,
            connect_step_timeout: Some(DEFAULT_CONNECT_STEP_TIMEOUT),
            reconnect: ReconnectPolicy::default(),
            stable_after: DEFAULT_STABLE_AFTER,
            queue_cap: DEFAULT_QUEUE_CAP,
            seed: 0,
            session: SessionConfig::default(),
            calls: CallLimits::default(),
            output: OutputLimits::default(),
        }
    }
}

/// Settings of a [`ServerConn`](crate::link::ServerConn); defaults are named constants in this module.
///
/// ```
/// use std::time::Duration;
/// let c = upnode_core::config::ServerConfig::default();
/// assert_eq!(c.ping_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// How often to ping a client that exports `ping`; `None` (or zero) never pings.
    pub ping_interval: Option<Duration>,
    /// How long an answer may take before the connection is ended. (upnode 0.6 meant 10 s
    /// and wrote 100 s.)
    pub ping_timeout: Duration,
    /// How long the client's `methods` may take after the connection opened.
    pub handshake_timeout: Duration,
    /// Protocol limits of the connection's session.
    pub session: SessionConfig,
    /// Bounds on the server's calls in flight to the client.
    pub calls: CallLimits,
    /// Bounds on what the connection holds for the client to read.
    pub output: OutputLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ping_interval: Some(DEFAULT_SERVER_PING_INTERVAL),
            ping_timeout: DEFAULT_SERVER_PING_TIMEOUT,
            handshake_timeout: DEFAULT_SERVER_HANDSHAKE_TIMEOUT,
            session: SessionConfig::default(),
            calls: CallLimits::default(),
            output: OutputLimits::default(),
        }
    }
}
