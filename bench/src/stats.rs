//! What one client run measured, and how runs are summarised.

use serde::{Deserialize, Serialize};

/// One client run, as the Rust clients measure it and as `echo_client.js` prints it (one
/// JSON line). A phase left out is `null` or absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Run {
    #[serde(default)]
    pub sequential: Option<Sequential>,
    #[serde(default)]
    pub pipelined: Option<Pipelined>,
    #[serde(default)]
    pub outstanding: Option<Pipelined>,
    #[serde(default)]
    pub long: Option<Long>,
    /// The client process's peak resident set (`VmHWM`), in KiB.
    #[serde(default)]
    pub rss_kb: Option<u64>,
    /// The CPU time (user and system) the client process used over its whole run, in µs.
    #[serde(default)]
    pub cpu_us: Option<u64>,
}

/// `calls` round trips with up to `window` unanswered, timed by tenths.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Long {
    pub calls: usize,
    pub window: usize,
    /// Calls in a tenth.
    pub tenth: usize,
    /// From the start until `tenth` answers had come.
    pub first_tenth_secs: f64,
    /// From `calls - tenth` answers until the last.
    pub last_tenth_secs: f64,
    pub secs: f64,
}

impl Long {
    /// Rate over the last tenth divided by the rate over the first: below 1 when the
    /// connection slows down as it ages.
    pub fn ratio(&self) -> f64 {
        self.first_tenth_secs / self.last_tenth_secs
    }
}

/// The peak resident set (`VmHWM`, KiB) of process `pid` (or `self`), from
/// `/proc/<pid>/status`; `None` where there is no such file (not Linux).
pub fn peak_rss_kb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The CPU time, user and system, that process `pid` (or `self`) has used, in µs, from
/// `/proc/<pid>/stat` (in clock ticks of 10 ms: Linux gives these files in `USER_HZ`, 100
/// per second); `None` where there is no such file (not Linux).
pub fn cpu_us(pid: &str) -> Option<u64> {
    cpu_us_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// [`cpu_us`] out of the text of a `/proc/<pid>/stat` file.
fn cpu_us_of(stat: &str) -> Option<u64> {
    // The command name, in parentheses, may hold spaces and parentheses: count fields after
    // its last `)`. `utime` and `stime` are fields 14 and 15; the first after the name is 3.
    let mut rest = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .skip(11);
    let utime: u64 = rest.next()?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some((utime + stime) * 10_000)
}

/// This process's peak resident set, KiB.
pub fn own_peak_rss_kb() -> Option<u64> {
    peak_rss_kb("self")
}

/// `calls` round trips one at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sequential {
    pub calls: usize,
    /// Wall clock around the whole loop.
    pub secs: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// `calls` round trips with up to `window` unanswered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pipelined {
    pub calls: usize,
    pub window: usize,
    /// Wall clock around the whole loop.
    pub secs: f64,
}

impl Pipelined {
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.secs
    }
}

impl Sequential {
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.secs
    }
}

/// The nearest-rank percentile of an ascending slice: the smallest value with at least
/// `p`% of the values at or below it (`echo_client.js` computes it the same way).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no values");
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.max(1) - 1]
}

/// The median and the range of a figure over several runs.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().collect();
        assert!(!v.is_empty(), "spread of no values");
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    /// `median (min–max)`, or just the value for a single run; whole numbers with groups
    /// of thousands.
    pub fn show(&self) -> String {
        self.show_with(group)
    }

    /// As [`show`](Self::show), with `digits` after the point instead.
    pub fn show_fixed(&self, digits: usize) -> String {
        self.show_with(|x| format!("{x:.digits$}"))
    }

    fn show_with(&self, f: impl Fn(f64) -> String) -> String {
        if self.min == self.max {
            f(self.median)
        } else {
            format!("{} ({}–{})", f(self.median), f(self.min), f(self.max))
        }
    }
}

/// A figure rounded to an integer with groups of thousands: `12,345`.
fn group(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
