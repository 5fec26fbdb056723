//! A [`ServerConn`] facing a scripted client that speaks literal dnode lines (PROTOCOL.md §11).

use super::*;

// ---- the scripted client's lines ------------------------------------------------------------------

/// The §11 server's methods: the user's `time` (our callback 0), then the link's `ping` (1).
pub const OUR_METHODS: &str = r#"{"method":"methods","arguments":[{"time":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","time"],"1":["0","ping"]},"links":[]}"#;
/// A Node upnode client: exports only `ping` (its callback 0).
pub const CLIENT_METHODS: &str = r#"{"method":"methods","arguments":[{"ping":"[Function]"}],"callbacks":{"0":["0","ping"]},"links":[]}"#;
/// A client that exports `beep` (0) and `ping` (1).
pub const CLIENT_METHODS_BEEP: &str = r#"{"method":"methods","arguments":[{"beep":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","beep"],"1":["0","ping"]},"links":[]}"#;
/// A plain dnode client without `ping`.
pub const CLIENT_METHODS_NO_PING: &str =
    r#"{"method":"methods","arguments":[{}],"callbacks":{},"links":[]}"#;
/// Our heartbeat, byte for byte the §11 server ping: the client's `ping` with our callback 2.
pub const OUR_PING: &str =
    r#"{"method":0,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}"#;
/// The client answering [`OUR_PING`].
pub const CLIENT_PONG: &str = r#"{"method":2,"arguments":[],"callbacks":{},"links":[]}"#;

/// The one connection id a server connection reports.
pub const CONN: ConnId = SERVER_CONN;

/// A server connection driven by the test; the test plays the client.
pub struct Server {
    pub conn: ServerConn,
    pub clock: Clock,
}

impl_drive!(Server, conn: ServerConn);

impl Server {
    /// A connection accepted at `t0` serving the §11 interface (`time` under key 1).
    pub fn new(config: ServerConfig) -> Server {
        Server::with_exports(config, Value::object([("time", Value::from(LocalFn(1)))]))
    }

    pub fn with_exports(config: ServerConfig, exports: Value) -> Server {
        let clock = Clock::start();
        Server {
            conn: ServerConn::new(config, exports, clock.base()),
            clock,
        }
    }

    /// The client writes `line` (a newline is added) at `d`.
    pub fn input(&mut self, d: Duration, line: &str) {
        let now = self.at(d);
        self.conn.handle_input(now, format!("{line}\n").as_bytes());
    }

    pub fn call(
        &mut self,
        d: Duration,
        target: Target,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, SendError> {
        let now = self.at(d);
        self.conn.call(now, target, args, timeout)
    }

    /// A call of the client's `beep` with our callback 9, at `d`.
    pub fn call_beep(
        &mut self,
        d: Duration,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, SendError> {
        self.call(
            d,
            Target::Method("beep".into()),
            vec![Value::from(LocalFn(9))],
            timeout,
        )
    }
}

/// A connection whose client sent `methods` at `d`; our methods and the events drained.
pub fn open_with(config: ServerConfig, client_methods: &str, d: Duration) -> Server {
    let mut s = Server::new(config);
    assert_eq!(s.sent(), [OUR_METHODS]);
    s.input(d, client_methods);
    assert_eq!(s.events(), [LinkEvent::Remote { conn: CONN }]);
    s
}

pub fn open(client_methods: &str) -> Server {
    open_with(ServerConfig::default(), client_methods, Duration::ZERO)
}

/// How a connection ends: (`CloseTransport`,) `Down`, `Closed`.
pub fn ended(reason: LinkError, close_transport: bool) -> Vec<LinkEvent> {
    let mut v = Vec::new();
    if close_transport {
        v.push(LinkEvent::CloseTransport { conn: CONN });
    }
    v.push(LinkEvent::Down { reason });
    v.push(LinkEvent::Closed);
    v
}

/// `ev` is [`ended`] with a `CloseTransport`, for a reason `is_reason` accepts.
#[track_caller]
pub fn assert_ended_by(ev: &[LinkEvent], is_reason: impl Fn(&LinkError) -> bool) {
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert_eq!(ev[0], LinkEvent::CloseTransport { conn: CONN });
    assert!(
        matches!(&ev[1], LinkEvent::Down { reason } if is_reason(reason)),
        "{ev:?}"
    );
    assert_eq!(ev[2], LinkEvent::Closed);
}
