//! Helpers shared by the examples: the port argument, logging to stderr, JavaScript's
//! `Date#toString` format, and TLS material.
#![deny(missing_docs)]

use futures::future::BoxFuture;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use upnode_tokio::rustls;

/// The port: the first command-line argument, 7000 by default (as the original examples).
pub fn port_arg() -> u16 {
    match std::env::args().nth(1) {
        Some(a) => a.parse().unwrap_or_else(|_| {
            eprintln!("usage: <example> [port]  (port must be a number, got {a:?})");
            std::process::exit(2)
        }),
        None => 7000,
    }
}

/// Logs go to stderr, so stdout carries only the example's own lines. `RUST_LOG` filters
/// them (default: info).
pub fn init_logging() {
    init_logging_at("info");
}

/// Like [`init_logging`], with another default level.
pub fn init_logging_at(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The original clients' loop: every second, a transaction calls `method` with no
/// arguments and prints its answer through `line` (`time = …`, `boop at …`). Requests made
/// while the link is down wait for it. Runs until Ctrl-C, then closes the client.
pub async fn call_every_second(
    up: upnode_tokio::Client,
    method: &'static str,
    line: fn(&str) -> String,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        tokio::spawn(ask(up.clone(), method, line));
    }
    up.close().await;
}

/// [`call_every_second`] on any runtime: `spawn` runs a task, `tick` waits a second. Runs
/// until the process ends.
pub async fn call_every_second_on<T: Future<Output = ()>>(
    up: upnode_tokio::Client,
    method: &'static str,
    line: fn(&str) -> String,
    spawn: impl Fn(BoxFuture<'static, ()>),
    tick: impl Fn() -> T,
) {
    loop {
        tick().await;
        spawn(Box::pin(ask(up.clone(), method, line)));
    }
}

/// One transaction of the loop: waits for the link, calls `method`, prints the answer.
async fn ask(up: upnode_tokio::Client, method: &'static str, line: fn(&str) -> String) {
    let Ok(remote) = up.up().await else { return };
    match remote.call::<_, (String,)>(method, &()).await {
        Ok((s,)) => println!("{}", line(&s)),
        Err(e) => eprintln!("{method} failed: {e}"),
    }
}

/// The simple server's interface: `time` answers with the date, as the original's.
pub fn time_interface(_conn: upnode_tokio::ConnHandle) -> upnode_tokio::Interface {
    upnode_tokio::Interface::new().method("time", |call| async move {
        call.reply(&(now_string(),))?;
        Ok(())
    })
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Year, month (1–12) and day of a count of days since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `t` as JavaScript's `new Date(t).toString()` prints it in UTC, e.g.
/// `Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)`.
pub fn js_date_string(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = DAYS[(days + 4).rem_euclid(7) as usize];
    format!(
        "{weekday} {} {d:02} {y} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Now, as [`js_date_string`].
pub fn now_string() -> String {
    js_date_string(SystemTime::now())
}

/// Where the TLS examples keep a generated certificate and key when none are given.
pub fn default_tls_dir() -> PathBuf {
    std::env::temp_dir().join("upnode-example-tls")
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as `cert.pem` and
/// `key.pem` into `dir`.
pub fn generate_cert(dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem())?;
    std::fs::write(&key_path, cert.key_pair.serialize_pem())?;
    Ok((cert_path, key_path))
}

/// A rustls server configuration from PEM files.
pub fn tls_server_config(cert: &Path, key: &Path) -> std::io::Result<Arc<rustls::ServerConfig>> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(cert)?))
        .collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(std::fs::File::open(key)?))?
        .ok_or_else(|| std::io::Error::other("no private key in the key file"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(std::io::Error::other)?;
    Ok(Arc::new(config))
}

/// A rustls client configuration that trusts the certificates in `ca` (verification on).
pub fn tls_client_config(ca: &Path) -> std::io::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(ca)?)) {
        roots.add(c?).map_err(std::io::Error::other)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn js_date_string_matches_node_output() {
        // Values printed by Node 20 for `new Date(ms).toString()` with TZ=UTC.
        let at = |secs: u64| js_date_string(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(
            at(0),
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            at(1_795_609_040),
            "Wed Nov 25 2026 12:17:20 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            at(951_782_400),
            "Tue Feb 29 2000 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
    }
}
