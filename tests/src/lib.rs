//! Helpers for testing `upnode-core` against real Node.js `upnode` / `dnode` peers.
//!
//! The Node side lives in `interop/node/` next to this crate's manifest: a
//! `package.json` pinning upnode 0.6.0 and dnode 1.2.2, and small scripts that
//! act as servers or clients. This crate provides:
//!
//! - [`ensure_node_modules`]: runs `npm ci` there once, safely across concurrent
//!   test processes;
//! - [`NodePeer`]: a child `node` process that is killed when dropped, with its
//!   stdout read line by line (a server prints its port first);
//! - [`Driver`]: a blocking, test-only driver running a [`Session`] over a
//!   [`TcpStream`], recording every line sent and received;
//! - [`reencode`] / [`assert_reencodes_identically`]: check that our writer
//!   produces exactly the bytes Node produced for the same message;
//! - [`ms`], [`within`], [`within_for`], [`tables`]: the small helpers every test file of
//!   this crate uses (the conformance suite's runtime-generic ones are in its `common.rs`);
//! - [`proxy::Proxy`]: a loopback TCP proxy that injects network faults under the test's
//!   control (delay, cut with FIN or reset at a byte, byte-by-byte writes, black hole,
//!   stopped reads, refused connections).
//!
//! Nothing here sleeps to wait for the peer: reads block, and timeouts exist only
//! as failure deadlines. Everything binds or connects to `127.0.0.1` only.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod proxy;

use std::collections::VecDeque;
use std::fs;
use std::future::Future;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use upnode_core::protocol::{parse_message, unscrub, write_cull, write_message, Method};
use upnode_core::{
    Function, LocalFn, Map, RemoteFn, Session, SessionConfig, SessionEvent, Target, Value,
};

/// How long any single wait (on a Node peer, a connection, an answer) may take before the
/// test fails.
///
/// Generous because the test machine may be busy; a passing test never waits
/// this long, it only bounds a failing one.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Milliseconds, for brevity.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Awaits `fut` on tokio's clock, failing the test with `what` if it takes longer than
/// `limit`.
pub async fn within_for<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// [`within_for`] [`DEADLINE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within_for(DEADLINE, what, fut).await
}

/// The tables of `c`: everything but the unsent-bytes gauge, which moves with every write.
pub fn tables(mut c: upnode_async::Counters) -> upnode_async::Counters {
    c.link.unsent_bytes = 0;
    c
}

/// The folder holding `package.json` and the Node scripts.
pub fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join("node")
}

/// Makes sure `interop/node/node_modules` is installed, running `npm ci` if
/// `node_modules/.package-lock.json` is missing.
///
/// Runs at most once per test process. Across processes, the install is guarded
/// by a lock directory (`interop/node/.npm-ci.lock`): the process that creates it
/// installs, the others wait for it to finish. A lock older than ten minutes is
/// taken to be left over from a killed run and removed.
///
/// # Panics
/// If `npm` cannot be started or `npm ci` fails (with its output in the message),
/// or if another process holds the lock for too long.
pub fn ensure_node_modules() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(install_node_modules);
}

fn install_node_modules() {
    let dir = node_dir();
    let marker = dir.join("node_modules").join(".package-lock.json");
    let lock = dir.join(".npm-ci.lock");
    let give_up = Instant::now() + Duration::from_secs(900);
    loop {
        if marker.exists() {
            return;
        }
        match fs::create_dir(&lock) {
            Ok(()) => {
                let _guard = LockDir(lock.clone());
                if !marker.exists() {
                    run_npm_ci(&dir);
                    assert!(
                        marker.exists(),
                        "`npm ci` in {} succeeded but {} is still missing",
                        dir.display(),
                        marker.display()
                    );
                }
                return;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let age = fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .unwrap_or_default();
                if age > Duration::from_secs(600) {
                    // Left over by a run that was killed while installing.
                    let _ = fs::remove_dir(&lock);
                    continue;
                }
                assert!(
                    Instant::now() < give_up,
                    "another process has been running `npm ci` in {} for too long \
                     (remove {} if no install is running)",
                    dir.display(),
                    lock.display()
                );
                // Waiting for another process: there is nothing to block on.
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot create the lock {}: {e}", lock.display()),
        }
    }
}

/// Removes the install lock directory when dropped, also when `npm ci` panics.
struct LockDir(PathBuf);

impl Drop for LockDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

fn run_npm_ci(dir: &Path) {
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `npm ci` in {}: {e}; the interop tests need Node.js 20 and npm on PATH",
                dir.display()
            )
        });
    if !out.status.success() {
        panic!(
            "`npm ci` in {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// How a [`NodePeer`] ended: its exit status and everything it printed.
#[derive(Debug)]
pub struct NodeExit {
    /// The exit status.
    pub status: ExitStatus,
    /// The stdout lines not yet taken with [`NodePeer::next_line`], without newlines.
    pub stdout: Vec<String>,
    /// All of stderr.
    pub stderr: String,
}

/// A `node` child process running one of the scripts in [`node_dir`].
///
/// The child's stdin is a pipe held by this value; the scripts exit when it
/// closes, so they also go away if the test process dies. Dropping the value
/// kills the child and reaps it.
pub struct NodePeer {
    script: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    port: Option<u16>,
}

/// A child process with every stdio piped: stdout arrives line by line on a channel (a
/// reader thread), stderr is collected whole by another thread.
#[derive(Debug)]
pub struct Piped {
    /// The process.
    pub child: Child,
    /// Its stdin; dropping it tells our peers to exit.
    pub stdin: Option<ChildStdin>,
    /// Its stdout, one line per message; disconnected when stdout closes.
    pub stdout: Receiver<String>,
    /// Everything it wrote to stderr, once it closes stderr.
    pub stderr: JoinHandle<String>,
}

/// Starts `cmd` with stdin, stdout and stderr piped (see [`Piped`]).
pub fn spawn_piped(mut cmd: Command) -> std::io::Result<Piped> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take();
    let out = child.stdout.take().expect("stdout is piped");
    let err = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(err).read_to_string(&mut s);
        s
    });
    Ok(Piped {
        child,
        stdin,
        stdout: rx,
        stderr,
    })
}

impl NodePeer {
    /// Starts `node SCRIPT ARGS...` in [`node_dir`] (installing `node_modules`
    /// first if needed).
    ///
    /// # Panics
    /// If `node` cannot be started.
    pub fn spawn(script: &str, args: &[&str]) -> NodePeer {
        NodePeer::spawn_with_env(script, args, &[])
    }

    /// Like [`spawn`](Self::spawn), with environment variables set for the script (for
    /// example `UPNODE_INTEROP_SAFETY_MS`, the lifetime of a long run's peer).
    ///
    /// # Panics
    /// If `node` cannot be started.
    pub fn spawn_with_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> NodePeer {
        ensure_node_modules();
        let mut cmd = Command::new("node");
        cmd.arg(script).args(args).current_dir(node_dir());
        cmd.envs(env.iter().copied());
        let Piped {
            child,
            stdin,
            stdout: rx,
            stderr,
        } = spawn_piped(cmd)
            .unwrap_or_else(|e| panic!("cannot start `node {script}`: {e} (is Node.js on PATH?)"));
        NodePeer {
            script: script.to_owned(),
            child,
            stdin,
            stdout: rx,
            stderr: Some(stderr),
            port: None,
        }
    }

    /// Starts a server script on a free port and reads the port it prints as its
    /// first stdout line.
    ///
    /// # Panics
    /// If the script does not print a port within [`DEADLINE`].
    pub fn server(script: &str) -> NodePeer {
        NodePeer::server_with_env(script, &[])
    }

    /// Like [`server`](Self::server), with environment variables set for the script.
    ///
    /// # Panics
    /// If the script does not print a port within [`DEADLINE`].
    pub fn server_with_env(script: &str, env: &[(&str, &str)]) -> NodePeer {
        let mut peer = NodePeer::spawn_with_env(script, &[], env);
        let line = peer
            .next_line()
            .unwrap_or_else(|| peer.fail("exited before printing its port"));
        let port = line
            .trim()
            .parse::<u16>()
            .unwrap_or_else(|_| peer.fail(&format!("printed {line:?} instead of a port")));
        peer.port = Some(port);
        peer
    }

    /// The port a server started with [`NodePeer::server`] listens on.
    ///
    /// # Panics
    /// If this peer was not started with [`NodePeer::server`].
    pub fn port(&self) -> u16 {
        self.port.expect("not started with NodePeer::server")
    }

    /// The next stdout line, or `None` once stdout is closed.
    ///
    /// # Panics
    /// If no line arrives within [`DEADLINE`].
    pub fn next_line(&mut self) -> Option<String> {
        match self.stdout.recv_timeout(DEADLINE) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => self.fail("printed nothing in time"),
        }
    }

    /// Waits for the script to end by itself and returns what it printed.
    ///
    /// # Panics
    /// If it does not close stdout within [`DEADLINE`].
    pub fn wait_exit(mut self) -> NodeExit {
        let give_up = Instant::now() + DEADLINE;
        let mut stdout = Vec::new();
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => stdout.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("did not exit in time; stdout so far: {stdout:?}"))
                }
            }
        }
        // Stdout is closed, so the process is ending: this wait is short.
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("waiting for `node {}`: {e}", self.script));
        let stderr = self.take_stderr();
        NodeExit {
            status,
            stdout,
            stderr,
        }
    }

    fn take_stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Kills the child and panics with `why` and its stderr.
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.take_stderr();
        panic!("`node {}` {why}\n--- stderr\n{stderr}", self.script);
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A listener on `127.0.0.1` with a port chosen by the system.
pub fn listen_local() -> TcpListener {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0")
}

/// Accepts one connection, failing the test if none arrives within [`DEADLINE`].
///
/// The blocking `accept` runs on a helper thread; if it times out, that thread
/// stays blocked until the test process ends.
pub fn accept_within_deadline(listener: &TcpListener) -> TcpStream {
    let l = listener.try_clone().expect("clone listener");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(l.accept());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(Ok((s, _))) => s,
        Ok(Err(e)) => panic!("accept failed: {e}"),
        Err(_) => panic!("no connection within {DEADLINE:?}"),
    }
}

/// An empty object, e.g. for a side that exports nothing.
pub fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Runs one [`Session`] over a blocking [`TcpStream`], for tests.
///
/// Everything the session wants to send is written at once; reads block with a
/// timeout that only serves as a failure deadline. Every line sent and received
/// is kept (without its newline) for byte-level assertions.
///
/// If our exports have a `ping` function, calls to it are answered at once
/// (`cb()`) and not reported.
pub struct Driver {
    stream: TcpStream,
    session: Session,
    events: VecDeque<SessionEvent>,
    partial: Vec<u8>,
    received: Vec<Vec<u8>>,
    sent: Vec<Vec<u8>>,
    ping: Option<LocalFn>,
    closed: bool,
}

impl Driver {
    /// Connects to `127.0.0.1:port` and starts a session exporting `exports`
    /// (our `methods` goes out at once).
    pub fn connect(port: u16, exports: Value) -> Driver {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, DEADLINE)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        Driver::new(stream, exports)
    }

    /// Starts a session exporting `exports` over an open stream (our `methods`
    /// goes out at once).
    pub fn new(stream: TcpStream, exports: Value) -> Driver {
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        let ping = match exports.get("ping") {
            Some(Value::Function(Function::Local(f))) => Some(*f),
            _ => None,
        };
        let session = Session::new(exports, SessionConfig::default()).expect("valid exports");
        let mut d = Driver {
            stream,
            session,
            events: VecDeque::new(),
            partial: Vec::new(),
            received: Vec::new(),
            sent: Vec::new(),
            ping,
            closed: false,
        };
        d.flush();
        d
    }

    /// The session, e.g. to read [`Session::remote`].
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, for anything the driver does not wrap.
    /// Call [`Driver::flush`] afterwards if it may have queued output.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Every complete line received from the peer so far, in order, without `\n`.
    pub fn received(&self) -> &[Vec<u8>] {
        &self.received
    }

    /// Every line we sent so far, in order, without `\n`.
    pub fn sent(&self) -> &[Vec<u8>] {
        &self.sent
    }

    /// Whether the peer closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Calls the peer and writes the message.
    ///
    /// # Panics
    /// If the session refuses the call.
    pub fn call(&mut self, target: impl Into<Target>, args: Vec<Value>) {
        let target = target.into();
        if let Err(e) = self.session.call(target.clone(), args) {
            panic!("session refused call to {target:?}: {e}");
        }
        self.flush();
    }

    /// Gives back every peer callback inside `v` (the session may send `cull`).
    pub fn release_value(&mut self, v: &Value) {
        self.session.release_value(v);
        self.flush();
    }

    /// Gives back one peer callback.
    pub fn release(&mut self, f: RemoteFn) {
        self.session.release(f);
        self.flush();
    }

    /// Writes everything the session has queued. A peer that already closed the
    /// connection is not an error here; it shows up as the end of the events.
    pub fn flush(&mut self) {
        while let Some(chunk) = self.session.poll_transmit() {
            for line in chunk.split_inclusive(|&b| b == b'\n') {
                assert!(
                    line.ends_with(b"\n"),
                    "session transmitted a partial line: {:?}",
                    String::from_utf8_lossy(line)
                );
                self.sent.push(line[..line.len() - 1].to_vec());
            }
            if self.closed {
                continue;
            }
            match self.stream.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if peer_gone(&e) => self.closed = true,
                Err(e) => panic!("write to peer failed: {e}"),
            }
        }
    }

    /// The next event from the peer, reading as needed; `None` once the peer has
    /// closed the connection and every event was taken.
    ///
    /// # Panics
    /// If nothing arrives within [`DEADLINE`], if reading fails, or if the session
    /// reports a fatal protocol error.
    pub fn next_event(&mut self) -> Option<SessionEvent> {
        let give_up = Instant::now() + DEADLINE;
        loop {
            while let Some(ev) = self.session.poll_event() {
                self.events.push_back(ev);
            }
            if let Some(ev) = self.events.pop_front() {
                if let SessionEvent::Call { function, args } = &ev {
                    if Some(*function) == self.ping {
                        self.answer_ping(args.clone());
                        continue;
                    }
                }
                return Some(ev);
            }
            if self.closed {
                return None;
            }
            self.read_some(give_up);
        }
    }

    fn answer_ping(&mut self, args: Vec<Value>) {
        if let Some(Value::Function(Function::Remote(cb))) = args.first() {
            if let Err(e) = self.session.call(*cb, vec![]) {
                panic!("answering ping: {e}");
            }
        }
        for a in &args {
            self.session.release_value(a);
        }
        self.flush();
    }

    fn read_some(&mut self, give_up: Instant) {
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.timeout();
        }
        self.stream
            .set_read_timeout(Some(left))
            .expect("set read timeout");
        let mut buf = [0u8; 64 * 1024];
        let n = match self.stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.timeout()
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => return,
            Err(e) if peer_gone(&e) => 0,
            Err(e) => panic!("read from peer failed: {e}"),
        };
        if n == 0 {
            self.closed = true;
            return;
        }
        let data = &buf[..n];
        self.partial.extend_from_slice(data);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.partial.drain(..=i).collect();
            line.pop();
            self.received.push(line);
        }
        if let Err(e) = self.session.handle_input(data) {
            panic!(
                "fatal protocol error from the peer: {e}\nlines received:\n{}",
                self.transcript()
            );
        }
        self.flush();
    }

    fn timeout(&self) -> ! {
        panic!(
            "nothing from the peer within {DEADLINE:?}\nlines received:\n{}",
            self.transcript()
        );
    }

    /// The lines received so far as text, one per line, for failure messages.
    pub fn transcript(&self) -> String {
        let mut s = String::new();
        for l in &self.received {
            s.push_str(&String::from_utf8_lossy(l));
            s.push('\n');
        }
        s
    }

    /// Waits for the peer's interface and returns a copy of it.
    ///
    /// # Panics
    /// On an error event, a call, or the connection closing first.
    pub fn wait_remote(&mut self) -> Value {
        loop {
            match self.next_event() {
                Some(SessionEvent::Remote) => {
                    return self.session.remote().cloned().expect("remote after event")
                }
                Some(SessionEvent::Released { .. }) => {}
                other => panic!(
                    "expected the peer's methods, got {other:?}\nlines received:\n{}",
                    self.transcript()
                ),
            }
        }
    }

    /// Waits for the peer to call one of our functions; skips `Released` events.
    ///
    /// # Panics
    /// On an error event, another `methods`, or the connection closing first.
    pub fn wait_call(&mut self) -> (LocalFn, Vec<Value>) {
        loop {
            match self.next_event() {
                Some(SessionEvent::Call { function, args }) => return (function, args),
                Some(SessionEvent::Released { .. }) => {}
                other => panic!(
                    "expected a call from the peer, got {other:?}\nlines received:\n{}",
                    self.transcript()
                ),
            }
        }
    }

    /// Waits for a call of `expected` and returns its arguments.
    ///
    /// # Panics
    /// If another function is called first, or as [`Driver::wait_call`].
    pub fn wait_call_of(&mut self, expected: LocalFn) -> Vec<Value> {
        let (f, args) = self.wait_call();
        assert_eq!(
            f,
            expected,
            "peer called another function (args {args:?})\nlines received:\n{}",
            self.transcript()
        );
        args
    }
}

fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

/// Reads one line as Node wrote it (with or without its trailing `\n`) and
/// writes it again with our writer, mapping each of the peer's callbacks back to
/// its own id. The result ends with `\n`.
///
/// `cull` lines are written with [`write_cull`] (two fields, as Node writes them);
/// every other line goes through [`parse_message`], [`unscrub`] and
/// [`write_message`].
///
/// # Panics
/// If the line is not a message.
pub fn reencode(line: &[u8]) -> Vec<u8> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut msg = parse_message(line).unwrap_or_else(|e| {
        panic!(
            "not a dnode message: {e}: {:?}",
            String::from_utf8_lossy(line)
        )
    });
    let mut out = Vec::with_capacity(line.len() + 1);
    if msg.method == Method::Name("cull".to_owned()) {
        let ids: Vec<u64> = msg
            .arguments
            .iter()
            .map(|a| match a.as_f64() {
                Some(n) if n >= 0.0 && n.fract() == 0.0 => n as u64,
                _ => panic!("cull argument is not an id: {a:?}"),
            })
            .collect();
        write_cull(&mut out, &ids);
        return out;
    }
    unscrub(&mut msg);
    write_message(&mut out, &msg.method, &msg.arguments, false, |f| match f {
        Function::Remote(RemoteFn(id)) => Ok(id),
        Function::Local(l) => panic!("a received message cannot hold our function {l:?}"),
    })
    .unwrap_or_else(|e| panic!("our writer refused a message Node wrote: {e}"));
    out
}

/// Asserts that every line re-encodes to exactly the same bytes (see [`reencode`]).
///
/// # Panics
/// On the first line that differs, showing both forms.
pub fn assert_reencodes_identically(lines: &[Vec<u8>]) {
    assert!(!lines.is_empty(), "no lines to check");
    for (i, line) in lines.iter().enumerate() {
        let mut expected = line.clone();
        expected.push(b'\n');
        let ours = reencode(line);
        assert!(
            ours == expected,
            "line {i} re-encodes differently\nnode: {}ours: {}",
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(&ours)
        );
    }
}

/// A line as text, for comparisons in assertions.
pub fn text(line: &[u8]) -> &str {
    std::str::from_utf8(line).expect("line is UTF-8")
}

/// The README's code (every runtime's section), compiled as a doc test so it stays true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
