//! Child processes: the servers and the Node clients of a run.
//!
//! Each child gets a stdin pipe that only we hold; every peer (Node scripts and our own
//! `serve-*` modes) exits when it closes, so nothing outlives the harness. Dropping a
//! [`Proc`] also kills and reaps it.

use std::process::{Child, ChildStdin, Command, ExitStatus};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Proc {
    /// Starts `cmd` with piped stdio; `name` is for messages.
    pub fn spawn(name: &str, cmd: Command) -> Proc {
        let upnode_tests::Piped {
            child,
            stdin,
            stdout: rx,
            stderr,
        } = upnode_tests::spawn_piped(cmd).unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_owned(),
            child,
            stdin,
            stdout: rx,
            stderr: Some(stderr),
        }
    }

    /// Starts a server that prints its port as its first stdout line, and reads that port.
    pub fn server(name: &str, cmd: Command, deadline: Duration) -> (Proc, u16) {
        let mut p = Proc::spawn(name, cmd);
        let line = p.line(deadline);
        let port = line
            .trim()
            .parse::<u16>()
            .unwrap_or_else(|_| p.fail(&format!("printed {line:?} instead of a port")));
        (p, port)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line.
    ///
    /// # Panics
    /// If none comes within `deadline` or stdout closes first.
    pub fn line(&mut self, deadline: Duration) -> String {
        match self.stdout.recv_timeout(deadline) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                self.fail(&format!("printed nothing in {deadline:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => self.fail("closed stdout early"),
        }
    }

    /// Waits for the process to end by itself; returns its status and the stdout lines not
    /// yet read.
    ///
    /// # Panics
    /// If it is still running after `deadline`.
    pub fn finish(mut self, deadline: Duration) -> (ExitStatus, Vec<String>, String) {
        let give_up = Instant::now() + deadline;
        let mut lines = Vec::new();
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail(&format!(
                    "still running after {deadline:?}; stdout {lines:?}"
                )),
            }
        }
        // Stdout is closed, so the process is ending: this wait is short.
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.name));
        let stderr = self.take_stderr();
        (status, lines, stderr)
    }

    fn take_stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    /// Kills the process and panics with `why` and what it wrote to stderr.
    pub fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.take_stderr();
        panic!("{} {why}\n--- its stderr:\n{stderr}", self.name);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
