//! `loopback`: the end-to-end benchmark over 127.0.0.1, every implementation side by side
//! in one run and one table.
//!
//! ```text
//! cargo run --release -p upnode-bench --bin loopback -- [--calls N] [--window K]
//!     [--sequential S] [--long-calls L] [--flush-calls F] [--warmup W] [--runs R]
//!     [--phases LIST] [--only LIST] [--multi-thread] [--no-pin]
//!     [--cull always|answers|never] [--deadline SECS]
//! ```
//!
//! Flags:
//!
//! - `--calls N` (100 000): calls of the `outstanding` phase (all `N` in flight at once) and
//!   of the `pipelined` phase;
//! - `--window K` (1 000): calls in flight in the `pipelined` and `long` phases;
//! - `--sequential S` (10 000): calls of the `sequential` phase;
//! - `--long-calls L` (1 000 000): calls of the `long` phase;
//! - `--flush-calls F` (10 000): transactions of the `flush` phase;
//! - `--warmup W` (`N / 5`, at least 200): calls made one at a time, then `W` more with `K`
//!   in flight, before anything is measured (each client process warms up once);
//! - `--runs R` (5): runs of every pairing, interleaved; the table shows medians and ranges;
//! - `--phases LIST` (all): which of `pipelined,outstanding,sequential,long,flush` to run;
//! - `--only LIST` (`raw,raw-dnode,tarpc-bincode,tarpc-json,jsonrpsee,rust,smol,async-std,node`): the
//!   pairings, also `rust-node` and `node-rust` (upnode-tokio with Node upnode, either way
//!   round);
//! - `--multi-thread`: tokio's multi-thread runtime in every Rust process, and a thread per
//!   core for smol's and async-std's executors (default: one thread, as a Node process has
//!   one event loop); pinning is then skipped;
//! - `--no-pin`: do not pin the server and client processes to cores (on a machine whose
//!   cores other work shares, a pinned process cannot move away from a busy core and waits
//!   out the other work's time slices: p99 latencies of milliseconds);
//! - `--cull`: the Rust upnode server's callback cull policy (default `answers`);
//! - `--deadline SECS` (1 200): the longest any client process or server start may take
//!   (a Node client's million calls take minutes: see the README's *Performance*).
//!
//! Pairings (client → server, each its own process, started afresh for every run):
//!
//! - `raw`: newline-delimited JSON echo over plain tokio TCP, no RPC layer (the ceiling);
//! - `raw-dnode`: the same echo exchanging the lines an upnode pair exchanges (the call
//!   `{"method":"echo","arguments":[msg,"[Function]"],"callbacks":{"N":["1"]},"links":[]}`,
//!   answered by the call of callback `N`): the server parses each line to a
//!   `serde_json::Value` and writes the answer straight out, the client reads each answer
//!   straight into its shape. What the wire format costs with no RPC layer at all;
//! - `tarpc-bincode`, `tarpc-json`: tarpc's `serde_transport` over tokio TCP with
//!   tokio-serde's Bincode or JSON codec;
//! - `jsonrpsee`: a jsonrpsee server and WebSocket client;
//! - `rust`: upnode-tokio → upnode-tokio;
//! - `smol`: upnode-smol → upnode-smol;
//! - `async-std`: upnode-async-std → upnode-async-std;
//! - `node`: Node upnode 0.6 → Node upnode 0.6;
//! - `rust-node`, `node-rust`: the mixed upnode pairings.
//!
//! The three upnode adapters run the same client and server code (see `adapters.rs`). Every
//! tokio process has one thread doing the work (a current-thread runtime; a server has a
//! second one blocked reading stdin). upnode-smol and upnode-async-std spawn their tasks
//! onto their runtime's global executor, which has threads of its own: there the
//! measuring loop (or the server) is spawned onto that executor too, kept to one thread
//! (`SMOL_THREADS`, `ASYNC_STD_THREAD_COUNT`), while the main thread waits in the
//! runtime's `block_on`, and async-io adds its reactor thread: three threads in a client
//! process, four in a server, one of them running tasks.
//!
//! The workload is the same everywhere: `echo(msg)` answers with `msg`, a sequence number
//! and a 31-byte string. Each client process warms up, then runs the phases selected, in
//! this order, and times itself (wall clock around each loop):
//!
//! - `sequential`: `S` calls one after the other: calls/s, p50 and p99 latency;
//! - `pipelined`: `N` calls with `K` in flight: calls/s;
//! - `outstanding`: `N` calls all sent at once: calls/s;
//! - `long`: `L` calls with `K` in flight on the same connection: the rate over the last
//!   tenth divided by the rate over the first (below 1 when the connection slows down);
//!
//! then makes one closing call and reports its peak resident set (`VmHWM`) and the CPU time
//! it used (user and system, from `/proc/self/stat`); the harness reads the server's from
//! `/proc/<pid>/status` and `/proc/<pid>/stat` before stopping it. The CPU columns divide
//! each process's CPU time over its whole run (warm-up, every phase, start-up) by the calls
//! the client made, so they compare the work per call of the implementations: unlike the
//! rates, they do not count the time a process waits. `flush` (upnode pairings only,
//! `n/a` for the others) starts a client first, with `F` transactions queued and a
//! reconnect every 5 ms, then the server: the time from the server listening until every
//! queued call is answered.
//!
//! Every answer is checked against what was sent, and every call must be answered once; any
//! mismatch aborts the whole run. With two cores or more the server runs pinned to one core
//! and the client to another (`sched_setaffinity`). Runs are interleaved across pairings
//! (all pairings once, then again) so that load from elsewhere on the machine spreads over
//! all of them.
//!
//! The child modes (`serve-*`, `client`, `flush-client`) are for the harness itself and
//! `bench/hostile.py`.

mod adapters;
mod clients;
mod procs;
mod rpc;
mod servers;
mod stats;

use adapters::Adapter;
use procs::Proc;
use stats::{Run, Spread};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: loopback [--calls N] [--window K] [--sequential S] \
[--long-calls L] [--flush-calls F] [--warmup W] [--runs R] \
[--phases pipelined,outstanding,sequential,long,flush] \
[--only raw,raw-dnode,tarpc-bincode,tarpc-json,jsonrpsee,rust,smol,async-std,node,rust-node,node-rust] \
[--multi-thread] [--no-pin] [--cull always|answers|never] [--deadline SECS]";

/// How long any one client process or server start may take before the harness gives up,
/// unless `--deadline` says otherwise.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(1200);

/// The deadline in force (`--deadline SECS`).
fn deadline() -> Duration {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--deadline")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .map_or(DEFAULT_DEADLINE, Duration::from_secs)
}

/// One side of a pairing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Impl {
    /// A raw echo, exchanging lines of the given shape.
    Raw(clients::Shape),
    TarpcBincode,
    TarpcJson,
    Jsonrpsee,
    /// upnode-tokio, upnode-smol or upnode-async-std.
    Upnode(Adapter),
    /// Node upnode 0.6.
    Node,
}

impl Impl {
    /// The name in the child modes (`serve-NAME`, `client NAME`).
    fn name(self) -> &'static str {
        match self {
            Impl::Raw(clients::Shape::Plain) => "raw",
            Impl::Raw(clients::Shape::Dnode) => "raw-dnode",
            Impl::TarpcBincode => "tarpc-bincode",
            Impl::TarpcJson => "tarpc-json",
            Impl::Jsonrpsee => "jsonrpsee",
            Impl::Upnode(Adapter::Tokio) => "upnode",
            Impl::Upnode(Adapter::Smol) => "upnode-smol",
            Impl::Upnode(Adapter::AsyncStd) => "upnode-async-std",
            Impl::Node => "node",
        }
    }

    fn from_name(name: &str) -> Option<Impl> {
        [
            RAW,
            RAW_DNODE,
            Impl::TarpcBincode,
            Impl::TarpcJson,
            Impl::Jsonrpsee,
            Impl::Upnode(Adapter::Tokio),
            Impl::Upnode(Adapter::Smol),
            Impl::Upnode(Adapter::AsyncStd),
            Impl::Node,
        ]
        .into_iter()
        .find(|i| i.name() == name)
    }

    fn is_upnode(self) -> bool {
        matches!(self, Impl::Upnode(_) | Impl::Node)
    }
}

const RAW: Impl = Impl::Raw(clients::Shape::Plain);
const RAW_DNODE: Impl = Impl::Raw(clients::Shape::Dnode);
const TOKIO: Impl = Impl::Upnode(Adapter::Tokio);
const SMOL: Impl = Impl::Upnode(Adapter::Smol);
const ASYNC_STD: Impl = Impl::Upnode(Adapter::AsyncStd);

#[derive(Debug, Clone, Copy, PartialEq)]
struct Pairing {
    name: &'static str,
    label: &'static str,
    client: Impl,
    server: Impl,
}

impl Pairing {
    const ALL: [Pairing; 11] = [
        Pairing::new("raw", "raw JSON lines (ceiling)", RAW, RAW),
        Pairing::new(
            "raw-dnode",
            "raw dnode lines (the wire format alone)",
            RAW_DNODE,
            RAW_DNODE,
        ),
        Pairing::new(
            "tarpc-bincode",
            "tarpc, Bincode",
            Impl::TarpcBincode,
            Impl::TarpcBincode,
        ),
        Pairing::new(
            "tarpc-json",
            "tarpc, JSON",
            Impl::TarpcJson,
            Impl::TarpcJson,
        ),
        Pairing::new(
            "jsonrpsee",
            "jsonrpsee, WebSocket",
            Impl::Jsonrpsee,
            Impl::Jsonrpsee,
        ),
        Pairing::new("rust", "upnode Rust → Rust", TOKIO, TOKIO),
        Pairing::new("smol", "upnode Rust → Rust, smol", SMOL, SMOL),
        Pairing::new(
            "async-std",
            "upnode Rust → Rust, async-std",
            ASYNC_STD,
            ASYNC_STD,
        ),
        Pairing::new("node", "upnode Node → Node", Impl::Node, Impl::Node),
        Pairing::new("rust-node", "upnode Rust → Node", TOKIO, Impl::Node),
        Pairing::new("node-rust", "upnode Node → Rust", Impl::Node, TOKIO),
    ];

    /// The pairings run when `--only` is not given.
    const DEFAULT: [&'static str; 9] = [
        "raw",
        "raw-dnode",
        "tarpc-bincode",
        "tarpc-json",
        "jsonrpsee",
        "rust",
        "smol",
        "async-std",
        "node",
    ];

    const fn new(name: &'static str, label: &'static str, client: Impl, server: Impl) -> Self {
        Pairing {
            name,
            label,
            client,
            server,
        }
    }

    fn named(name: &str) -> Option<Pairing> {
        Pairing::ALL.into_iter().find(|p| p.name == name)
    }

    fn uses_node(self) -> bool {
        self.client == Impl::Node || self.server == Impl::Node
    }

    /// Whether a side is upnode on smol or async-std.
    fn other_runtime(self) -> bool {
        [self.client, self.server]
            .iter()
            .any(|&i| matches!(i, SMOL | ASYNC_STD))
    }

    /// Whether the flush phase means anything here: both sides upnode.
    fn flushes(self) -> bool {
        self.client.is_upnode() && self.server.is_upnode()
    }
}

/// Which phases run.
#[derive(Debug, Clone, Copy)]
struct Phases {
    pipelined: bool,
    outstanding: bool,
    sequential: bool,
    long: bool,
    flush: bool,
}

impl Phases {
    const NAMES: [&'static str; 5] = ["pipelined", "outstanding", "sequential", "long", "flush"];

    fn parse(list: &str) -> Result<Phases, String> {
        let mut p = Phases {
            pipelined: false,
            outstanding: false,
            sequential: false,
            long: false,
            flush: false,
        };
        for name in list.split(',').map(str::trim) {
            match name {
                "pipelined" => p.pipelined = true,
                "outstanding" => p.outstanding = true,
                "sequential" => p.sequential = true,
                "long" => p.long = true,
                "flush" => p.flush = true,
                "all" => return Phases::parse(&Phases::NAMES.join(",")),
                _ => {
                    return Err(format!(
                        "no phase called {name:?} (there are {})",
                        Phases::NAMES.join(", ")
                    ))
                }
            }
        }
        Ok(p)
    }

    /// Whether a client run (everything but flush) is needed.
    fn any_client_phase(&self) -> bool {
        self.pipelined || self.outstanding || self.sequential || self.long
    }
}

struct Opts {
    calls: usize,
    window: usize,
    seq_calls: usize,
    long_calls: usize,
    flush_calls: usize,
    warmup: usize,
    runs: usize,
    phases: Phases,
    pairings: Vec<Pairing>,
    multi_thread: bool,
    pin: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut o = Opts {
            calls: 100_000,
            window: 1_000,
            seq_calls: 10_000,
            long_calls: 1_000_000,
            flush_calls: 10_000,
            warmup: 0,
            runs: 5,
            phases: Phases::parse("all")?,
            pairings: Pairing::DEFAULT
                .iter()
                .filter_map(|n| Pairing::named(n))
                .collect(),
            multi_thread: false,
            pin: true,
        };
        let mut warmup = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
            let mut number = || -> Result<usize, String> {
                let v = value()?;
                v.parse::<usize>()
                    .map_err(|_| format!("{a} wants a whole number, not {v:?}"))
            };
            match a.as_str() {
                "--calls" => o.calls = number()?,
                "--window" => o.window = number()?,
                "--sequential" => o.seq_calls = number()?,
                "--long-calls" => o.long_calls = number()?,
                "--flush-calls" => o.flush_calls = number()?,
                "--deadline" => {
                    if number()? == 0 {
                        return Err("--deadline must be at least 1".into());
                    }
                }
                "--warmup" => warmup = Some(number()?),
                "--runs" => o.runs = number()?,
                "--phases" => o.phases = Phases::parse(value()?)?,
                "--only" => {
                    let list = value()?;
                    o.pairings = list
                        .split(',')
                        .map(|name| {
                            Pairing::named(name.trim())
                                .ok_or_else(|| format!("no pairing called {name:?}"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--multi-thread" => o.multi_thread = true,
                "--no-pin" => o.pin = false,
                // Read by the Rust upnode server process (see servers::upnode_server).
                "--cull" => match value()?.as_str() {
                    "always" | "answers" | "never" => {}
                    v => return Err(format!("--cull wants always, answers or never, not {v:?}")),
                },
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if o.window == 0 || o.runs == 0 {
            return Err("--window and --runs must be at least 1".into());
        }
        let ph = o.phases;
        let zero = |on: bool, n: usize, flag: &str| -> Result<(), String> {
            if on && n == 0 {
                Err(format!("{flag} must be at least 1 when its phase runs"))
            } else {
                Ok(())
            }
        };
        zero(ph.pipelined || ph.outstanding, o.calls, "--calls")?;
        zero(ph.sequential, o.seq_calls, "--sequential")?;
        zero(ph.long, o.long_calls, "--long-calls")?;
        zero(ph.flush, o.flush_calls, "--flush-calls")?;
        o.warmup = warmup.unwrap_or((o.calls / 5).max(200));
        Ok(o)
    }

    /// What every client process of a run does.
    fn plan(&self) -> clients::Plan {
        let ph = self.phases;
        clients::Plan {
            warmup: self.warmup,
            sequential: if ph.sequential { self.seq_calls } else { 0 },
            pipelined: if ph.pipelined { self.calls } else { 0 },
            window: self.window,
            outstanding: if ph.outstanding { self.calls } else { 0 },
            long: if ph.long { self.long_calls } else { 0 },
        }
    }
}

/// The runtime every Rust process of the benchmark uses: one thread, as a Node process has
/// one event loop, unless `--multi-thread` asks for tokio's default (a worker per core).
fn runtime_with(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut b = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all().build().expect("a tokio runtime")
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    runtime_with(multi_thread())
}

/// Runs `work` as a task of a fresh tokio runtime (see [`runtime`]) until it ends. A task,
/// not `block_on`'s own future: a current-thread runtime wakes that future through its
/// driver (an eventfd write and an extra `epoll_wait`), where waking a task is a push on
/// its run queue, and a client's work and its connection's tasks then take turns as tasks
/// do in an application. Every tokio row runs this way (smol's and async-std's spawn too).
pub(crate) fn block_on_task<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    runtime().block_on(async move {
        match tokio::spawn(work).await {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    })
}

/// Whether this process was asked for `--multi-thread`.
pub(crate) fn multi_thread() -> bool {
    std::env::args().any(|a| a == "--multi-thread")
}

fn bench_node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

fn node_command(script: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(bench_node_dir().join(script))
        .env("NODE_PATH", upnode_tests::node_dir().join("node_modules"));
    cmd
}

fn self_command() -> Command {
    Command::new(std::env::current_exe().expect("the path of this program"))
}

/// Which core the servers and which the clients run on, if any.
struct Pinning {
    server: Option<usize>,
    client: Option<usize>,
    /// One line for the header.
    note: String,
}

impl Pinning {
    fn choose(o: &Opts) -> Pinning {
        let none = |why: &str| Pinning {
            server: None,
            client: None,
            note: format!("Pinning skipped: {why}."),
        };
        if !o.pin {
            return none("--no-pin");
        }
        if o.multi_thread {
            return none("--multi-thread runs a worker per core");
        }
        let cores = allowed_cores();
        match cores.as_slice() {
            [] => none("the cores allowed to this process are unknown (not Linux?)"),
            [only] => none(&format!("only core {only} is allowed to this process")),
            [s, c, ..] => Pinning {
                server: Some(*s),
                client: Some(*c),
                note: format!(
                    "Pinned: every server to core {s}, every client to core {c} (of {} allowed: {cores:?}).",
                    cores.len()
                ),
            },
        }
    }

    fn server(&self, cmd: &mut Command) {
        pin(cmd, self.server);
    }

    fn client(&self, cmd: &mut Command) {
        pin(cmd, self.client);
    }
}

/// The cores this process may run on, ascending.
#[cfg(target_os = "linux")]
fn allowed_cores() -> Vec<usize> {
    // SAFETY: `set` is a plain bit set that sched_getaffinity fills in; the CPU_* helpers
    // only read and write within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cores() -> Vec<usize> {
    Vec::new()
}

/// Makes the child of `cmd` run on `core` only.
#[cfg(target_os = "linux")]
fn pin(cmd: &mut Command, core: Option<usize>) {
    use std::os::unix::process::CommandExt;
    let Some(core) = core else { return };
    // SAFETY: the closure runs in the child between fork and exec; it only fills a bit set on
    // its stack and makes one system call, both async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(core, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn pin(_: &mut Command, _: Option<usize>) {}

/// Starts the server of `i`, on `port` (0: the system picks); with `stamp`, it also prints
/// when it began listening.
fn start_server(i: Impl, port: u16, stamp: bool, o: &Opts, pins: &Pinning) -> (Proc, u16) {
    let mut cmd = if i == Impl::Node {
        let mut cmd = node_command("echo_server.js");
        cmd.arg(port.to_string());
        if stamp {
            cmd.arg("stamp");
        }
        cmd
    } else {
        let mut cmd = self_command();
        cmd.arg(format!("serve-{}", i.name()));
        cmd.args(["--port", &port.to_string()]);
        if stamp {
            cmd.arg("--stamp");
        }
        if o.multi_thread {
            cmd.arg("--multi-thread");
        }
        let args: Vec<String> = std::env::args().collect();
        if let Some(k) = args.iter().position(|a| a == "--cull") {
            cmd.args(&args[k..(k + 2).min(args.len())]);
        }
        cmd
    };
    pins.server(&mut cmd);
    Proc::server(&format!("{} server", i.name()), cmd, deadline())
}

/// What one run of a pairing measured.
#[derive(Debug, Clone, Default)]
struct Measured {
    client: Run,
    server_rss_kb: Option<u64>,
    server_cpu_us: Option<u64>,
    flush_ms: Option<f64>,
}

/// The server's peak resident set (KiB) and CPU time (µs), read before it is stopped.
type ServerUse = (Option<u64>, Option<u64>);

/// The client run of `p`: a fresh server, a client process doing every selected phase but
/// flush, the server's peak resident set and CPU time read before it is stopped.
fn client_run(p: Pairing, o: &Opts, pins: &Pinning) -> (Run, ServerUse) {
    let (server, port) = start_server(p.server, 0, false, o, pins);
    let plan = o.plan();
    let numbers = [
        plan.warmup,
        plan.sequential,
        plan.pipelined,
        plan.window,
        plan.outstanding,
        plan.long,
    ];
    let mut cmd = if p.client == Impl::Node {
        node_command("echo_client.js")
    } else {
        let mut cmd = self_command();
        cmd.args(["client", p.client.name()]);
        cmd
    };
    cmd.arg(port.to_string());
    cmd.args(numbers.iter().map(usize::to_string));
    if o.multi_thread && p.client != Impl::Node {
        cmd.arg("--multi-thread");
    }
    pins.client(&mut cmd);
    let name = format!("{} client", p.client.name());
    let (status, lines, stderr) = Proc::spawn(&name, cmd).finish(deadline());
    assert!(
        status.success(),
        "{name} ({}) failed ({status}); stdout {lines:?}\n--- its stderr:\n{stderr}",
        p.label
    );
    let last = lines.last().map(String::as_str).unwrap_or("");
    let run: Run = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{name} printed {lines:?}, not a result line: {e}\n{stderr}"));
    // Whoever measured, it must have done what was asked.
    let did = (
        run.sequential.as_ref().map_or(0, |s| s.calls),
        run.pipelined.as_ref().map_or(0, |s| s.calls),
        run.outstanding.as_ref().map_or(0, |s| s.calls),
        run.long.as_ref().map_or(0, |s| s.calls),
    );
    assert_eq!(
        did,
        (plan.sequential, plan.pipelined, plan.outstanding, plan.long),
        "{}: the client ran something else",
        p.label
    );
    if let Some(pl) = &run.pipelined {
        assert_eq!(pl.window, plan.window, "{}: another window", p.label);
    }
    let pid = server.pid().to_string();
    let used = (stats::peak_rss_kb(&pid), stats::cpu_us(&pid));
    drop(server);
    (run, used)
}

/// A port nobody listens on now (the system picks it; we let it go at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The flush of `p`: the client first, with its transactions queued, then the server. Returns
/// the milliseconds from the server listening to the last answer.
fn flush_run(p: Pairing, o: &Opts, pins: &Pinning) -> f64 {
    let port = free_port();
    let mut cmd = if p.client == Impl::Node {
        node_command("flush_client.js")
    } else {
        let mut cmd = self_command();
        cmd.args(["flush-client", p.client.name()]);
        cmd
    };
    cmd.args([port.to_string(), o.flush_calls.to_string()]);
    if o.multi_thread && p.client != Impl::Node {
        cmd.arg("--multi-thread");
    }
    pins.client(&mut cmd);
    let name = format!("{} flush client", p.client.name());
    let mut client = Proc::spawn(&name, cmd);
    let line = client.line(deadline());
    if line.trim() != "queued" {
        client.fail(&format!("printed {line:?} instead of \"queued\""));
    }
    let (mut server, _) = start_server(p.server, port, true, o, pins);
    // The clock starts when the server began listening, as it says.
    let stamp = server.line(deadline());
    let listening: f64 = stamp
        .trim()
        .parse()
        .unwrap_or_else(|_| server.fail(&format!("printed {stamp:?} instead of a time")));
    let (status, lines, stderr) = client.finish(deadline());
    drop(server);
    assert!(
        status.success(),
        "{name} ({}) failed ({status}); stdout {lines:?}\n--- its stderr:\n{stderr}",
        p.label
    );
    #[derive(serde::Deserialize)]
    struct Flushed {
        done_unix_us: f64,
    }
    let last = lines.last().map(String::as_str).unwrap_or("");
    let f: Flushed = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{name} printed {lines:?}, not a result line: {e}\n{stderr}"));
    (f.done_unix_us - listening) / 1e3
}

fn node_version() -> String {
    Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

/// `loopback client IMPL PORT WARMUP SEQUENTIAL PIPELINED WINDOW OUTSTANDING LONG`: one client
/// process; prints one JSON result line.
fn client_main(args: &[String]) -> ! {
    let parsed = (|| -> Option<(Impl, u16, clients::Plan)> {
        let i = Impl::from_name(args.first()?)?;
        let port = args.get(1)?.parse().ok()?;
        let n: Vec<usize> = args
            .get(2..8)?
            .iter()
            .map(|a| a.parse().ok())
            .collect::<Option<_>>()?;
        let plan = clients::Plan {
            warmup: n[0],
            sequential: n[1],
            pipelined: n[2],
            window: n[3],
            outstanding: n[4],
            long: n[5],
        };
        (i != Impl::Node && plan.window > 0).then_some((i, port, plan))
    })();
    let Some((i, port, plan)) = parsed else {
        eprintln!(
            "usage: loopback client raw|raw-dnode|tarpc-bincode|tarpc-json|jsonrpsee|upnode|upnode-smol|\
upnode-async-std PORT WARMUP SEQUENTIAL PIPELINED WINDOW OUTSTANDING LONG [--multi-thread]"
        );
        std::process::exit(2)
    };
    let dl = deadline();
    let late = move || -> ! { panic!("a Rust client run took longer than {dl:?}") };
    let run = if let Impl::Upnode(a) = i {
        a.block_on(async move {
            let work = async move {
                let mut e = clients::UpnodeEcho::connect(a, port, plan.max_window()).await;
                let run = clients::run(&mut e, plan).await;
                e.close().await;
                run
            };
            a.within(dl, work).await.unwrap_or_else(|| late())
        })
    } else {
        block_on_task(async move {
            let w = plan.max_window();
            let work = async move {
                match i {
                    Impl::Raw(shape) => {
                        let mut e = clients::RawEcho::connect(port, shape).await;
                        clients::run(&mut e, plan).await
                    }
                    Impl::TarpcBincode => {
                        let mut e = rpc::TarpcEcho::connect(port, rpc::Codec::Bincode, w).await;
                        clients::run(&mut e, plan).await
                    }
                    Impl::TarpcJson => {
                        let mut e = rpc::TarpcEcho::connect(port, rpc::Codec::Json, w).await;
                        clients::run(&mut e, plan).await
                    }
                    Impl::Jsonrpsee => {
                        let mut e = rpc::JsonrpseeEcho::connect(port, w).await;
                        clients::run(&mut e, plan).await
                    }
                    Impl::Upnode(_) | Impl::Node => unreachable!("handled above"),
                }
            };
            tokio::time::timeout(dl, work)
                .await
                .unwrap_or_else(|_| late())
        })
    };
    println!(
        "{}",
        serde_json::to_string(&run).expect("a result serialises")
    );
    std::process::exit(0)
}

/// `loopback flush-client upnode|upnode-smol|upnode-async-std PORT N`.
fn flush_client_main(args: &[String]) -> ! {
    let parsed = (|| {
        let Impl::Upnode(a) = Impl::from_name(args.first()?)? else {
            return None;
        };
        Some((a, args.get(1)?.parse().ok()?, args.get(2)?.parse().ok()?))
    })();
    let Some((a, port, n)) = parsed else {
        eprintln!(
            "usage: loopback flush-client upnode|upnode-smol|upnode-async-std PORT N \
[--multi-thread]"
        );
        std::process::exit(2)
    };
    let dl = deadline();
    a.block_on(async move {
        a.within(dl, clients::flush(a, port, n))
            .await
            .unwrap_or_else(|| panic!("the flush took longer than {dl:?}"))
    });
    std::process::exit(0)
}

/// CPU µs per call: a process's CPU time over its run divided by the calls the client made.
fn per_call(cpu_us: Option<u64>, calls: f64) -> Option<f64> {
    cpu_us.map(|us| us as f64 / calls)
}

fn mb(kb: Option<u64>) -> Option<f64> {
    kb.map(|k| k as f64 / 1024.0)
}

/// `median (min–max)` of `f` over the runs, or `n/a` when no run has it.
fn column(
    ms: &[Measured],
    f: impl Fn(&Measured) -> Option<f64>,
    show: fn(&Spread) -> String,
) -> String {
    let v: Vec<f64> = ms.iter().filter_map(f).collect();
    if v.is_empty() {
        "n/a".into()
    } else {
        show(&Spread::of(v))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("");
    if let Some(name) = mode.strip_prefix("serve-") {
        let kind = match Impl::from_name(name) {
            Some(Impl::Raw(shape)) => servers::Kind::Raw(shape),
            Some(Impl::Upnode(a)) => servers::Kind::Upnode(a),
            Some(Impl::TarpcBincode) => servers::Kind::TarpcBincode,
            Some(Impl::TarpcJson) => servers::Kind::TarpcJson,
            Some(Impl::Jsonrpsee) => servers::Kind::Jsonrpsee,
            Some(Impl::Node) | None => {
                eprintln!("loopback: no server called {name:?}\n{USAGE}");
                std::process::exit(2)
            }
        };
        servers::serve(kind);
    }
    match mode {
        "client" => client_main(&args[1..]),
        "flush-client" => flush_client_main(&args[1..]),
        _ => {}
    }
    let o = Opts::parse(&args).unwrap_or_else(|e| {
        eprintln!("loopback: {e}\n{USAGE}");
        std::process::exit(2)
    });
    if o.pairings.iter().any(|p| p.uses_node()) {
        upnode_tests::ensure_node_modules();
    }
    let pins = Pinning::choose(&o);
    let ph = o.phases;

    let began = Instant::now();
    let mut measured: Vec<Vec<Measured>> = vec![Vec::new(); o.pairings.len()];
    for r in 1..=o.runs {
        for (k, &p) in o.pairings.iter().enumerate() {
            let mut m = Measured::default();
            if ph.any_client_phase() {
                (m.client, (m.server_rss_kb, m.server_cpu_us)) = client_run(p, &o, &pins);
            }
            if ph.flush && p.flushes() {
                m.flush_ms = Some(flush_run(p, &o, &pins));
            }
            let c = &m.client;
            eprintln!(
                "run {r}/{}  {:<29} pipelined {:>9}/s  outstanding {:>9}/s  sequential p50 {:>6} µs  long ×{:>5}  flush {:>7} ms",
                o.runs,
                p.label,
                c.pipelined.as_ref().map_or("-".into(), |x| format!("{:.0}", x.rate())),
                c.outstanding.as_ref().map_or("-".into(), |x| format!("{:.0}", x.rate())),
                c.sequential.as_ref().map_or("-".into(), |x| format!("{:.1}", x.p50_us)),
                c.long.as_ref().map_or("-".into(), |x| format!("{:.2}", x.ratio())),
                m.flush_ms.map_or("-".into(), |x| format!("{x:.1}")),
            );
            measured[k].push(m);
        }
    }

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("$ loopback {}", args.join(" "));
    println!(
        "Machine: {cpus} CPUs available ({}); node {}; {} tokio runtime{}; Rust upnode server \
cull policy {}.",
        cpu_model(),
        node_version(),
        if o.multi_thread {
            "multi-thread"
        } else {
            "current-thread"
        },
        match (o.multi_thread, o.pairings.iter().any(|p| p.other_runtime())) {
            (_, false) => "",
            (false, true) => ", smol's and async-std's executors on one thread",
            (true, true) => ", smol's and async-std's executors on a thread per core",
        },
        args.iter()
            .position(|a| a == "--cull")
            .and_then(|i| args.get(i + 1))
            .map_or("answers", String::as_str)
    );
    println!("{}", pins.note);
    let warm = if ph.any_client_phase() {
        format!(
            "; each client process warms up with {} calls one at a time and {} with {} in flight",
            o.warmup, o.warmup, o.window
        )
    } else {
        String::new()
    };
    println!(
        "{} runs of every pairing, interleaved{warm}. Figures: median (min–max) over runs.",
        o.runs
    );
    println!();

    let plan = o.plan();
    let per_client =
        2 * plan.warmup + plan.sequential + plan.pipelined + plan.outstanding + plan.long + 1;
    let mut head = vec!["client → server".to_owned()];
    type Cell = Box<dyn Fn(&[Measured]) -> String>;
    let mut cells: Vec<Cell> = Vec::new();
    let fixed1: fn(&Spread) -> String = |s| s.show_fixed(1);
    let fixed2: fn(&Spread) -> String = |s| s.show_fixed(2);
    let whole: fn(&Spread) -> String = Spread::show;
    if ph.pipelined {
        head.push(format!("pipelined calls/s (window {})", o.window));
        cells.push(Box::new(move |ms| {
            column(ms, |m| m.client.pipelined.as_ref().map(|x| x.rate()), whole)
        }));
    }
    if ph.outstanding {
        head.push(format!("calls/s, all {} outstanding", o.calls));
        cells.push(Box::new(move |ms| {
            column(
                ms,
                |m| m.client.outstanding.as_ref().map(|x| x.rate()),
                whole,
            )
        }));
    }
    if ph.sequential {
        head.push(format!("sequential calls/s ({})", o.seq_calls));
        cells.push(Box::new(move |ms| {
            column(
                ms,
                |m| m.client.sequential.as_ref().map(|x| x.rate()),
                whole,
            )
        }));
        head.push("p50 µs".into());
        cells.push(Box::new(move |ms| {
            column(
                ms,
                |m| m.client.sequential.as_ref().map(|x| x.p50_us),
                fixed1,
            )
        }));
        head.push("p99 µs".into());
        cells.push(Box::new(move |ms| {
            column(
                ms,
                |m| m.client.sequential.as_ref().map(|x| x.p99_us),
                fixed1,
            )
        }));
    }
    if ph.long {
        head.push(format!(
            "{} calls: last-tenth / first-tenth rate",
            o.long_calls
        ));
        cells.push(Box::new(move |ms| {
            column(ms, |m| m.client.long.as_ref().map(|x| x.ratio()), fixed2)
        }));
    }
    if ph.any_client_phase() {
        head.push("client peak RSS MB".into());
        cells.push(Box::new(move |ms| {
            column(ms, |m| mb(m.client.rss_kb), fixed1)
        }));
        head.push("server peak RSS MB".into());
        cells.push(Box::new(move |ms| {
            column(ms, |m| mb(m.server_rss_kb), fixed1)
        }));
        let calls = per_client as f64;
        head.push("client CPU µs per call".into());
        cells.push(Box::new(move |ms| {
            column(ms, |m| per_call(m.client.cpu_us, calls), fixed2)
        }));
        head.push("server CPU µs per call".into());
        cells.push(Box::new(move |ms| {
            column(ms, |m| per_call(m.server_cpu_us, calls), fixed2)
        }));
    }
    if ph.flush {
        head.push(format!("flush of {} queued, ms", o.flush_calls));
        cells.push(Box::new(move |ms| column(ms, |m| m.flush_ms, fixed1)));
    }
    println!("| {} |", head.join(" | "));
    println!("|---|{}", "---:|".repeat(head.len() - 1));
    for (p, ms) in o.pairings.iter().zip(&measured) {
        let row: Vec<String> = cells.iter().map(|c| c(ms)).collect();
        println!("| {} | {} |", p.label, row.join(" | "));
    }
    println!();
    let mut checked = Vec::new();
    if ph.any_client_phase() {
        checked.push(format!("{per_client} calls per client process"));
    }
    if ph.flush {
        checked.push(format!("{} per flush", o.flush_calls));
    }
    print!("Every answer checked ({})", checked.join(", "));
    if ph.any_client_phase() {
        print!(
            "; RSS is each process's VmHWM at the end of its run; CPU is each process's user \
and system time over its whole run (warm-up, every phase and start-up), in ticks of 10 ms, \
divided by the {per_client} calls"
        );
    }
    println!("; total time {:.1} s.", began.elapsed().as_secs_f64());
}
