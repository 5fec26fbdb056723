//! What happens in one run: the link's settings, the faults and the client's workload, all
//! drawn from one seed (or written by hand for a scenario).

use crate::harness::{
    Backoff, ClientConfig, CullPolicy, Duration, Exponential, Jitter, LocalFn, ReconnectPolicy,
    ServerConfig, SplitMix64, Value,
};

/// The server's exported functions (keys of the server's `LocalFn`s).
pub const TIME: LocalFn = LocalFn(1);
/// `echo(x, cb)` → `cb(x)`.
pub const ECHO: LocalFn = LocalFn(2);
/// `auth(user, pass, cb)` → `cb(null, {beep})` or `cb("ACCESS DENIED")`.
pub const AUTH: LocalFn = LocalFn(3);
/// `beep(cb)` → `cb("boop")`.
pub const BEEP: LocalFn = LocalFn(4);

/// What a transaction does once it is ready.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `remote.time(cb)`, called by the server's callback id (`Target::Method`).
    Time,
    /// `remote.echo(s, cb)`, called by name (`Target::Name`).
    Echo(String),
    /// `up_value.beep(cb)`: the function the connect step (or the server) handed out;
    /// falls back to `time` when there is none.
    Beep,
}

/// One transaction of the workload.
#[derive(Debug, Clone)]
pub struct TxPlan {
    /// When it is made.
    pub at: Duration,
    /// Its wait limit.
    pub timeout: Option<Duration>,
    /// At-least-once.
    pub retry: bool,
    /// What it calls.
    pub op: Op,
    /// The call's own time limit.
    pub call_timeout: Option<Duration>,
    /// For retry ones: give up (`finish`) when the call times out.
    pub finish_on_call_timeout: bool,
}

/// The connect step the client runs on every connection.
#[derive(Debug, Clone)]
pub enum Step {
    /// None: the link goes up with the server's interface by itself.
    None,
    /// A step that signals up with the server's interface at once.
    Remote,
    /// `remote.auth("moo", "hax", cb)`: up with the session object it returns.
    Auth {
        /// Chance the server answers an error (the driver calls `fail_connect_step`).
        p_fail: f64,
        /// Chance the server never answers.
        p_hang: f64,
        /// The server answers after up to this long.
        delay_max: Duration,
        /// The auth call's own time limit (on timeout the driver fails the step).
        call_timeout: Option<Duration>,
    },
}

/// How a direction's bytes are cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Split {
    /// One chunk per write.
    Whole,
    /// Random chunks of 1 to `max` bytes.
    Chunks(usize),
    /// One byte per chunk.
    Bytewise,
}

/// Everything one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The seed (also of the fault draws during the run).
    pub seed: u64,
    /// The client link's settings.
    pub client: ClientConfig,
    /// Every server connection's settings.
    pub server: ServerConfig,
    /// What the client exports.
    pub client_exports: Value,
    /// What the server exports (functions are the keys above).
    pub server_exports: Value,
    /// The connect step.
    pub step: Step,
    /// Whether the server is listening at time 0.
    pub server_up_at_start: bool,
    /// Server going down (connections cut, connects refused) at `.0` until `.1`.
    pub restarts: Vec<(Duration, Duration)>,
    /// The server ends every connection this long after accepting it.
    pub server_end_after: Option<Duration>,
    /// The server delays answers to `time`/`echo`/`beep` by up to this.
    pub reply_delay_max: Duration,
    /// Chance a connect is refused although the server is up.
    pub p_refuse: f64,
    /// Chance a connect never completes.
    pub p_hang: f64,
    /// Chance a connection is cut at a byte offset (below `cut_max`) in one direction.
    pub p_cut: f64,
    /// Largest offset of a cut.
    pub cut_max: usize,
    /// Chance a connection turns into a black hole (nothing, not even FIN, arrives).
    pub p_black_hole: f64,
    /// A black hole starts `black_hole_after` plus up to `black_hole_within` after the
    /// connect.
    pub black_hole_within: Duration,
    /// See `black_hole_within`.
    pub black_hole_after: Duration,
    /// Which directions a black hole swallows (`[toward client, toward server]`); drawn
    /// per connection when `None`.
    pub black_hole_dirs: Option<[bool; 2]>,
    /// Chance a newline is injected into one direction (the receiver sees bad JSON).
    pub p_garbage: f64,
    /// Largest offset of the injected newline.
    pub garbage_max: usize,
    /// How writes are cut into chunks.
    pub split: Split,
    /// Chance a connection delivers byte by byte whatever `split` says.
    pub p_bytewise: f64,
    /// Per-chunk latency, at least this...
    pub latency_min: Duration,
    /// ...and at most this; chunks stay in order per direction.
    pub latency_max: Duration,
    /// Reports for closed transports are still made (the link must ignore them).
    pub late_reports: bool,
    /// Extra `handle_timeout` calls at these times (harmless by contract).
    pub spurious: Vec<Duration>,
    /// The workload.
    pub txs: Vec<TxPlan>,
    /// `cancel` the transaction with this number at this time.
    pub cancels: Vec<(Duration, u64)>,
    /// Make a transaction (with this plan, `at` ignored) while handling `Remote`.
    pub transact_on_remote: Option<TxPlan>,
    /// When the client closes; `None` leaves it open (scenarios that end it otherwise).
    pub close_at: Option<Duration>,
    /// Times drawn during the run are rounded up to a multiple of this.
    pub quantum: Option<Duration>,
    /// Stop simulating here at the latest (a run that has not settled by then is a bug).
    pub horizon: Duration,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Draw(SplitMix64);

impl Draw {
    fn chance(&mut self, p: f64) -> bool {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        ms(self.0.range_inclusive(lo, hi))
    }
    fn int(&mut self, lo: u64, hi: u64) -> u64 {
        self.0.range_inclusive(lo, hi)
    }
    /// `p` with chance `on`, else 0: most faults are absent from most runs.
    fn maybe(&mut self, on: f64, max: f64) -> f64 {
        if self.chance(on) {
            self.unit() * max
        } else {
            0.0
        }
    }
}

impl Plan {
    /// A run without faults: the server up, no latency, no workload, no close.
    pub fn quiet(seed: u64) -> Plan {
        let mut client = ClientConfig::default();
        client.seed = seed;
        Plan {
            seed,
            client,
            server: ServerConfig::default(),
            client_exports: Value::object::<&str>([]),
            server_exports: Value::object([
                ("time", Value::from(TIME)),
                ("echo", Value::from(ECHO)),
                ("auth", Value::from(AUTH)),
            ]),
            step: Step::None,
            server_up_at_start: true,
            restarts: Vec::new(),
            server_end_after: None,
            reply_delay_max: Duration::ZERO,
            p_refuse: 0.0,
            p_hang: 0.0,
            p_cut: 0.0,
            cut_max: 0,
            p_black_hole: 0.0,
            black_hole_within: Duration::ZERO,
            black_hole_after: Duration::ZERO,
            black_hole_dirs: None,
            p_garbage: 0.0,
            garbage_max: 0,
            split: Split::Whole,
            p_bytewise: 0.0,
            latency_min: Duration::ZERO,
            latency_max: Duration::ZERO,
            late_reports: false,
            spurious: Vec::new(),
            txs: Vec::new(),
            cancels: Vec::new(),
            transact_on_remote: None,
            close_at: None,
            quantum: None,
            horizon: Duration::from_secs(600),
        }
    }

    /// The random plan of `seed`.
    pub fn random(seed: u64) -> Plan {
        let mut d = Draw(SplitMix64::new(seed ^ 0x7369_6d75_6c61_7465));
        let mut p = Plan::quiet(seed);

        // The client link.
        let c = &mut p.client;
        c.ping_interval = if d.chance(0.05) {
            None
        } else {
            Some(d.ms(200, 3000))
        };
        c.ping_timeout = d.ms(100, 2500);
        c.connect_timeout = d.ms(200, 3000);
        c.handshake_timeout = d.ms(200, 3000);
        c.connect_step_timeout = if d.chance(0.15) {
            None
        } else {
            Some(d.ms(200, 3000))
        };
        let backoff = if d.chance(0.5) {
            // A third of the fixed ones use upnode's default (1 s); drawn from a stream of
            // its own so the other seeds' plans stay as they were.
            let own = d.ms(10, 1500);
            let mut side = Draw(SplitMix64::new(seed ^ 0x6465_6661_756c_7431));
            if side.chance(1.0 / 3.0) {
                ReconnectPolicy::default().backoff
            } else {
                Backoff::Fixed(own)
            }
        } else {
            let min = d.ms(10, 300);
            let max = min + d.ms(0, 4000);
            let jitter = match d.int(0, 2) {
                0 => Jitter::None,
                1 => Jitter::Full,
                _ => Jitter::Proportional(d.unit()),
            };
            Backoff::Exponential(Exponential {
                min,
                max,
                factor: 1.0 + 2.0 * d.unit(),
                jitter,
            })
        };
        let max_attempts = if d.chance(0.3) {
            Some(d.int(0, 8) as u32)
        } else {
            None
        };
        c.reconnect = ReconnectPolicy::new(backoff).with_max_attempts(max_attempts);
        c.stable_after = d.ms(0, 5000);

        // The server.
        p.server.ping_interval = Some(d.ms(200, 3000));
        p.server.ping_timeout = d.ms(100, 3000);
        p.server.handshake_timeout = d.ms(200, 3000);

        // The connect step.
        let step = d.int(0, 99);
        if step < 40 {
            p.step = Step::None;
        } else if step < 55 {
            p.step = Step::Remote;
        } else {
            p.step = Step::Auth {
                p_fail: d.maybe(0.5, 0.5),
                p_hang: d.maybe(0.3, 0.3),
                delay_max: if d.chance(0.5) {
                    d.ms(0, 3000)
                } else {
                    Duration::ZERO
                },
                call_timeout: if d.chance(0.2) {
                    Some(d.ms(100, 3000))
                } else {
                    None
                },
            };
        }
        p.client.connect_step = !matches!(p.step, Step::None);

        // Faults.
        let duration = d.ms(3_000, 15_000);
        p.p_refuse = d.maybe(0.5, 0.5);
        p.p_hang = d.maybe(0.3, 0.3);
        p.p_cut = d.maybe(0.5, 0.5);
        p.cut_max = d.int(1, 3000) as usize;
        p.p_black_hole = d.maybe(0.4, 0.4);
        p.black_hole_within = d.ms(0, 8000);
        p.p_garbage = d.maybe(0.2, 0.2);
        p.garbage_max = d.int(1, 3000) as usize;
        p.split = match d.int(0, 2) {
            0 => Split::Whole,
            1 => Split::Chunks(d.int(1, 64) as usize),
            _ => Split::Chunks(1 + d.int(0, 8) as usize),
        };
        p.p_bytewise = d.maybe(0.3, 0.3);
        if d.chance(0.5) {
            p.latency_max = d.ms(0, 100);
        } else {
            p.latency_min = d.ms(0, 50);
            p.latency_max = p.latency_min + d.ms(0, 600);
        }
        p.late_reports = d.chance(0.3);
        p.reply_delay_max = if d.chance(0.3) {
            d.ms(0, 2000)
        } else {
            Duration::ZERO
        };
        p.server_up_at_start = !d.chance(0.1);
        for _ in 0..d.int(0, 3) {
            let down = d.ms(0, duration.as_millis() as u64);
            p.restarts.push((down, down + d.ms(100, 6000)));
        }
        for _ in 0..d.int(0, 20) {
            p.spurious.push(d.ms(0, duration.as_millis() as u64));
        }

        // The workload.
        let n = d.int(0, 30);
        for _ in 0..n {
            let op = match d.int(0, 2) {
                0 => Op::Time,
                1 => Op::Echo(format!("e{}", d.int(0, 999))),
                _ => Op::Beep,
            };
            p.txs.push(TxPlan {
                at: d.ms(0, duration.as_millis() as u64),
                timeout: if d.chance(0.5) {
                    Some(d.ms(0, 5000))
                } else {
                    None
                },
                retry: d.chance(0.3),
                op,
                call_timeout: if d.chance(0.5) {
                    Some(d.ms(50, 3000))
                } else {
                    None
                },
                finish_on_call_timeout: d.chance(0.5),
            });
        }
        for _ in 0..d.int(0, 3) {
            p.cancels
                .push((d.ms(0, duration.as_millis() as u64), d.int(0, n.max(1) - 1)));
        }
        if d.chance(0.2) {
            p.transact_on_remote = Some(TxPlan {
                at: Duration::ZERO,
                timeout: Some(d.ms(0, 3000)),
                retry: d.chance(0.3),
                op: Op::Time,
                call_timeout: Some(d.ms(50, 3000)),
                finish_on_call_timeout: true,
            });
        }
        p.close_at = Some(duration - d.ms(0, duration.as_millis() as u64 / 5));
        p.horizon = duration + Duration::from_secs(120);
        // Coarse runs: every time a multiple of one quantum and latency a fixed multiple (or
        // none), so that deadlines of different kinds fall on the same instant and the
        // orders of simultaneous events get explored.
        if d.chance(0.3) {
            let q = [10, 50, 100, 250][d.int(0, 3) as usize];
            let lat = ms(q * d.int(0, 1));
            p.latency_min = lat;
            p.latency_max = lat;
            p.quantize(ms(q));
        }
        // Which answered callbacks the server culls: all three policies get explored (drawn
        // last, so the draws above are those of the earlier plans).
        p.server.session.cull = match d.int(0, 2) {
            0 => CullPolicy::Always,
            1 => CullPolicy::ExceptAnswers,
            _ => CullPolicy::Never,
        };
        p
    }

    /// Rounds every time of the plan up to a multiple of `q` (latency excepted).
    pub fn quantize(&mut self, q: Duration) {
        let r = |d: Duration| -> Duration {
            let n = d.as_nanos().div_ceil(q.as_nanos()).max(1);
            q * n as u32
        };
        let c = &mut self.client;
        c.ping_interval = c.ping_interval.map(r);
        c.ping_timeout = r(c.ping_timeout);
        c.connect_timeout = r(c.connect_timeout);
        c.handshake_timeout = r(c.handshake_timeout);
        c.connect_step_timeout = c.connect_step_timeout.map(r);
        if let Backoff::Fixed(f) = c.reconnect.backoff {
            c.reconnect.backoff = Backoff::Fixed(r(f));
        }
        c.stable_after = r(c.stable_after);
        let s = &mut self.server;
        s.ping_interval = s.ping_interval.map(r);
        s.ping_timeout = r(s.ping_timeout);
        s.handshake_timeout = r(s.handshake_timeout);
        if let Step::Auth { call_timeout, .. } = &mut self.step {
            *call_timeout = call_timeout.map(r);
        }
        // Delays drawn during the run (replies, black holes) are rounded by the world.
        self.quantum = Some(q);
        for (a, b) in &mut self.restarts {
            *a = r(*a);
            *b = r(*b);
        }
        for t in &mut self.spurious {
            *t = r(*t);
        }
        for t in self.txs.iter_mut().chain(self.transact_on_remote.as_mut()) {
            t.at = r(t.at);
            t.timeout = t.timeout.map(r);
            t.call_timeout = t.call_timeout.map(r);
        }
        for (t, _) in &mut self.cancels {
            *t = r(*t);
        }
        self.close_at = self.close_at.map(r);
    }
}
