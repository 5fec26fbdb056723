//! A [`ClientLink`] facing a scripted server that speaks literal dnode lines (PROTOCOL.md §11).

use super::*;

// ---- the scripted server's lines ------------------------------------------------------------------

/// The Node server of PROTOCOL.md §11: `time` is its callback 0, `ping` its callback 1.
pub const SERVER_METHODS: &str = r#"{"method":"methods","arguments":[{"time":"[Function]","ping":"[Function]"}],"callbacks":{"0":["0","time"],"1":["0","ping"]},"links":[]}"#;
/// A plain dnode server without upnode's `ping`.
pub const SERVER_METHODS_NO_PING: &str = r#"{"method":"methods","arguments":[{"time":"[Function]"}],"callbacks":{"0":["0","time"]},"links":[]}"#;
/// What a client that exports nothing of its own sends: only the link's `ping`.
pub const OUR_METHODS: &str = r#"{"method":"methods","arguments":[{"ping":"[Function]"}],"callbacks":{"0":["0","ping"]},"links":[]}"#;
/// Our heartbeat: the server's `ping` (its callback 1) with our callback 1 (0 is our `ping`).
pub const OUR_PING: &str =
    r#"{"method":1,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#;
/// The server answering [`OUR_PING`].
pub const SERVER_PONG: &str = r#"{"method":1,"arguments":[],"callbacks":{},"links":[]}"#;

pub const C1: ConnId = ConnId(1);
pub const C2: ConnId = ConnId(2);
pub const C3: ConnId = ConnId(3);

/// A client link driven by the test; the test plays the server.
pub struct Client {
    pub link: ClientLink,
    pub clock: Clock,
}

impl_drive!(Client, link: ClientLink);

impl Client {
    pub fn new(config: ClientConfig) -> Client {
        Client::with_exports(config, Value::Null)
    }

    pub fn with_exports(config: ClientConfig, exports: Value) -> Client {
        let clock = Clock::start();
        let link = ClientLink::new(config, exports, clock.base()).expect("valid policy");
        Client { link, clock }
    }

    /// The server writes `line` (a newline is added) on `conn` at `d`.
    pub fn input(&mut self, conn: ConnId, d: Duration, line: &str) {
        let now = self.at(d);
        self.link
            .handle_input(conn, now, format!("{line}\n").as_bytes());
    }

    pub fn connected(&mut self, conn: ConnId, d: Duration) {
        let now = self.at(d);
        self.link.handle_connected(conn, now);
    }

    pub fn closed(&mut self, conn: ConnId, d: Duration) {
        let now = self.at(d);
        self.link.handle_transport_closed(conn, now, None);
    }

    pub fn refused(&mut self, conn: ConnId, d: Duration) {
        let now = self.at(d);
        self.link.handle_connect_failed(conn, now, "refused");
    }

    /// The pending transport `conn` opens at `opened` (our methods are drained unread) and the
    /// server's `methods` line arrives at `methods_at`. Events are left for the test.
    pub fn handshake(
        &mut self,
        conn: ConnId,
        opened: Duration,
        methods_at: Duration,
        methods: &str,
    ) {
        self.connected(conn, opened);
        self.sent();
        self.input(conn, methods_at, methods);
    }

    /// The pending transport `conn` opens at `d` and the §11 server handshakes at once; the
    /// link must go up (no connect step). Transmissions and events are drained.
    pub fn up(&mut self, conn: ConnId, d: Duration) -> Vec<LinkEvent> {
        self.connected(conn, d);
        assert_eq!(self.sent(), [OUR_METHODS]);
        self.input(conn, d, SERVER_METHODS);
        let ev = self.events();
        assert_eq!(ev.first(), Some(&LinkEvent::Remote { conn }), "{ev:?}");
        assert_eq!(ev.last(), Some(&LinkEvent::Up { conn }), "{ev:?}");
        assert_eq!(self.link.state(), LinkState::Up);
        ev
    }

    /// The reconnect timer fires at `timer` (its events drained unread), then [`Client::up`]
    /// on `conn` at `d`.
    pub fn reconnect_up(&mut self, timer: Duration, conn: ConnId, d: Duration) -> Vec<LinkEvent> {
        self.timeout(timer);
        self.events();
        self.up(conn, d)
    }

    /// The transport `conn` closes at `d`; what the link reports.
    pub fn down_for(&mut self, conn: ConnId, d: Duration) -> Vec<LinkEvent> {
        self.closed(conn, d);
        self.events()
    }

    /// A call of the server's `time` method on `conn` at `d`.
    pub fn call_time(
        &mut self,
        conn: ConnId,
        d: Duration,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Option<CallId>, SendError> {
        let now = self.at(d);
        self.link
            .call(conn, now, Target::Method("time".into()), args, timeout)
    }
}

/// A fresh client whose first transport is pending (its `OpenTransport` already read).
pub fn connecting(config: ClientConfig) -> Client {
    let mut c = Client::new(config);
    assert_eq!(c.events(), [open_transport(C1, 1)]);
    c
}

/// A client that is up on [`C1`] since `t0`.
pub fn up_at_t0(config: ClientConfig) -> Client {
    let mut c = connecting(config);
    c.up(C1, Duration::ZERO);
    c
}

pub fn no_ping() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.ping_interval = None;
    config
}

pub fn with_connect_step() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.connect_step = true;
    config
}
