//! What one client run measured, and how runs are summarised.

use serde::Deserialize;

/// One client run, as the Rust clients measure it and as `echo_client.js` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub sequential: Sequential,
    pub pipelined: Pipelined,
}

/// `calls` round trips one at a time.
#[derive(Debug, Clone, Deserialize)]
pub struct Sequential {
    pub calls: usize,
    /// Wall clock around the whole loop.
    pub secs: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// `calls` round trips with up to `window` unanswered.
#[derive(Debug, Clone, Deserialize)]
pub struct Pipelined {
    pub calls: usize,
    pub window: usize,
    /// Wall clock around the whole loop.
    pub secs: f64,
}

impl Run {
    pub fn seq_rate(&self) -> f64 {
        self.sequential.calls as f64 / self.sequential.secs
    }

    pub fn pipe_rate(&self) -> f64 {
        self.pipelined.calls as f64 / self.pipelined.secs
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

    /// `median (min–max)`, or just the value for a single run.
    pub fn show(&self) -> String {
        if self.min == self.max {
            group(self.median)
        } else {
            format!(
                "{} ({}–{})",
                group(self.median),
                group(self.min),
                group(self.max)
            )
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
