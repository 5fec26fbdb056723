//! The listening socket every adapter takes over lets a crowd wait to be accepted.

use std::net::TcpStream;
use std::time::Duration;
use upnode_async::net::tcp_listener;
use upnode_async::upnode_core::config::DEFAULT_LISTEN_BACKLOG;

/// Opens `n` connections to `port` one after the other, each given `limit` to complete;
/// returns how many completed (a connection completes once the kernel queued it for
/// accepting, so nobody has to accept).
fn connects_completed(port: u16, n: usize, limit: Duration) -> (usize, Vec<TcpStream>) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut open = Vec::new();
    for _ in 0..n {
        match TcpStream::connect_timeout(&addr, limit) {
            Ok(s) => open.push(s),
            Err(_) => break,
        }
    }
    (open.len(), open)
}

#[test]
fn a_thousand_connects_at_once_wait_in_the_default_backlog_without_an_accept() {
    let l = tcp_listener("127.0.0.1:0", DEFAULT_LISTEN_BACKLOG).unwrap();
    let port = l.local_addr().unwrap().port();
    let (done, _open) = connects_completed(port, 1000, Duration::from_secs(5));
    assert_eq!(done, 1000, "every connect completed with nobody accepting");
}

#[test]
fn a_small_backlog_turns_the_crowd_away_so_the_setting_is_what_takes_effect() {
    let l = tcp_listener("127.0.0.1:0", 8).unwrap();
    let port = l.local_addr().unwrap().port();
    // Linux queues backlog + 1; the next connect's SYN is dropped and it does not complete.
    let (done, _open) = connects_completed(port, 20, Duration::from_millis(300));
    assert!((8..20).contains(&done), "{done} connects completed");
}

#[test]
fn a_host_name_is_resolved() {
    assert!(tcp_listener("localhost:0", 16).is_ok());
}
