//! Each runtime adapter against real Node.js upnode 0.6.0 / dnode 1.2.2 peers, in both
//! directions, each surviving the other side going away and coming back on the same port:
//!
//! - a Node upnode client (the README's `client.js`, and its authenticated variant)
//!   against our server, which is shut down and started again;
//! - our client against a Node upnode server (`time_server.js`, `auth_server.js`), which
//!   is killed and started again.
//!
//! Node peers are child processes read line by line (blocking, with a deadline): the test's
//! own future runs on the test thread, while the runtime's other threads drive our side.

use crate::common::{
    beep_once, is_down, is_up, listen_on, log_in, port_of, spawned, stop, within, Events,
};
use crate::rt::{Connect, Rt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use upnode_async::upnode_core::config::ReconnectPolicy;
use upnode_async::upnode_core::Value;
use upnode_async::{Client, Interface, Server};
use upnode_tests::NodePeer;

/// The next line the Node peer prints.
fn line(node: &mut NodePeer) -> String {
    node.next_line().expect("the Node peer exited")
}

/// Reads the Node peer's lines until one satisfies `pred`; returns every line read.
fn lines_until(node: &mut NodePeer, mut pred: impl FnMut(&str) -> bool) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let l = line(node);
        let done = pred(&l);
        seen.push(l);
        if done {
            return seen;
        }
    }
}

fn time_server<R: Rt>(generation: u32, calls: Arc<AtomicUsize>) -> Server {
    R::server(move |_conn| {
        let calls = calls.clone();
        Interface::new().method("time", move |call| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                call.reply(&(format!("server {generation} call {n}"),))?;
                Ok(())
            }
        })
    })
}

/// Our README authenticated server: `auth("moo", "hax", cb)` answers `cb(null, {beep})`,
/// anything else `cb("ACCESS DENIED")`; `beep(cb)` answers `"boop at … from server G"`.
/// Counts logins.
fn auth_server<R: Rt>(generation: u32, logins: Arc<AtomicUsize>) -> Server {
    R::server(move |_conn| {
        let logins = logins.clone();
        Interface::new().method("auth", move |call| {
            let logins = logins.clone();
            async move {
                let (user, pass): (String, String) = call.decode()?;
                if user != "moo" || pass != "hax" {
                    call.reply(&("ACCESS DENIED",))?;
                    return Ok(());
                }
                logins.fetch_add(1, Ordering::SeqCst);
                let beep = call.method(move |c| async move {
                    let secs = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_secs();
                    c.reply(&(format!("boop at {secs} from server {generation}"),))?;
                    Ok(())
                })?;
                call.reply_values(vec![Value::Null, Value::object([("beep", beep)])])?;
                Ok(())
            }
        })
    })
}

/// Reads a Node client's lines from its `down` until it has failed to reconnect twice
/// (so that some transactions are queued meanwhile); returns how many it queued.
fn outage(node: &mut NodePeer) -> usize {
    lines_until(node, |l| l == "down");
    let mut queued = 0;
    let mut reconnects = 0;
    while reconnects < 2 {
        match line(node).as_str() {
            "queued" => queued += 1,
            "reconnect" => reconnects += 1,
            _ => {}
        }
    }
    queued
}

/// After the server is back: reads a Node client's lines until it is `up` (adding the
/// transactions it queued until then to `queued`), then until `is_answer` has matched
/// `queued + extra` lines. Returns the total queued and the lines after `up`.
fn recovery(
    node: &mut NodePeer,
    mut queued: usize,
    is_answer: impl Fn(&str) -> bool,
    extra: usize,
) -> (usize, Vec<String>) {
    queued += lines_until(node, |l| l == "up")
        .iter()
        .filter(|l| *l == "queued")
        .count();
    let mut after = Vec::new();
    let mut answers = 0;
    while answers < queued + extra {
        let l = line(node);
        if is_answer(&l) {
            answers += 1;
        }
        after.push(l);
    }
    (queued, after)
}

pub async fn node_client_calls_our_server_across_its_restart<R: Rt>() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = time_server::<R>(1, calls.clone());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let port = port_of(&listener);
    let mut node = NodePeer::spawn("time_client.js", &[&port.to_string(), "40"]);

    let before = lines_until(&mut node, |l| l == "time = server 1 call 2");
    assert!(before.iter().any(|l| l == "up"), "{before:?}");
    for l in before.iter().filter(|l| l.starts_with("time = ")) {
        assert!(l.starts_with("time = server 1 call "), "{l:?}");
    }

    stop::<R>(listener, &server).await;
    let queued = outage(&mut node);
    let calls = Arc::new(AtomicUsize::new(0));
    let server = time_server::<R>(2, calls.clone());
    let listener = listen_on::<R>(&server, port).await;
    let (queued, after) = recovery(
        &mut node,
        queued,
        |l| l.starts_with("time = server 2 call "),
        3,
    );

    assert!(queued >= 1, "nothing was queued during the outage");
    let answers: Vec<&String> = after.iter().filter(|l| l.starts_with("time = ")).collect();
    // Only the new server answers; the queued transactions first, in order (its calls
    // 0, 1, ...), then the new ones.
    for (i, l) in answers.iter().enumerate() {
        assert_eq!(**l, format!("time = server 2 call {i}"), "{after:?}");
    }
    assert!(calls.load(Ordering::SeqCst) >= queued + 3);

    drop(node);
    stop::<R>(listener, &server).await;
}

pub async fn node_auth_client_logs_in_again_after_our_server_restarts<R: Rt>() {
    let logins = Arc::new(AtomicUsize::new(0));
    let server = auth_server::<R>(1, logins.clone());
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let port = port_of(&listener);
    let mut node = NodePeer::spawn("auth_client.js", &[&port.to_string(), "40"]);

    let is_beep = |g: u32| {
        move |l: &str| l.starts_with("boop at ") && l.ends_with(&format!(" from server {g}"))
    };
    let mut beeps = 0;
    let before = lines_until(&mut node, |l| {
        if is_beep(1)(l) {
            beeps += 1;
        }
        beeps == 3
    });
    assert_eq!(
        before.iter().filter(|l| *l == "authenticated").count(),
        1,
        "{before:?}"
    );

    stop::<R>(listener, &server).await;
    let queued = outage(&mut node);
    let server = auth_server::<R>(2, logins.clone());
    let listener = listen_on::<R>(&server, port).await;
    let (queued, after) = recovery(&mut node, queued, is_beep(2), 3);

    assert!(queued >= 1, "nothing was queued during the outage");
    let beeps: Vec<&String> = after.iter().filter(|l| l.starts_with("boop at ")).collect();
    assert!(beeps.iter().all(|l| is_beep(2)(l)), "{after:?}");
    assert!(beeps.len() >= queued + 3);
    // The connect callback ran again: one login per server.
    assert_eq!(logins.load(Ordering::SeqCst), 2);

    drop(node);
    stop::<R>(listener, &server).await;
}

/// Starts a Node server script on a fixed port (after a kill, the same one again).
fn node_server_on(script: &str, port: u16) -> NodePeer {
    let mut node = NodePeer::spawn(script, &[&port.to_string()]);
    assert_eq!(
        line(&mut node),
        port.to_string(),
        "{script} listens elsewhere"
    );
    node
}

/// `Date#toString()` as Node prints it ends with the zone's name in parentheses.
fn looks_like_a_js_date(s: &str) -> bool {
    s.contains(" GMT") && s.ends_with(')')
}

fn fast_client() -> upnode_async::ClientBuilder {
    Client::builder()
        .reconnect(ReconnectPolicy::fixed(Duration::from_millis(50)))
        .ping(Some(Duration::from_millis(200)))
        .ping_timeout(Duration::from_secs(2))
}

/// One transaction: wait for the link, call `time`.
async fn time_once(client: Client) -> String {
    let remote = client.up().await.expect("open");
    let (t,): (String,) = remote.call("time", &()).await.expect("time answers");
    t
}

pub async fn our_client_survives_a_node_server_kill_and_restart<R: Rt>() {
    let node = NodePeer::server("time_server.js");
    let port = node.port();
    let client = fast_client()
        .connect_tcp::<R>(format!("127.0.0.1:{port}"))
        .unwrap();
    let mut events = Events::<R, _>::new(client.events());
    let t = within::<R, _>("time from Node", time_once(client.clone())).await;
    assert!(looks_like_a_js_date(&t), "{t:?}");

    drop(node); // SIGKILL
    events.wait_for("down", is_down).await;
    let queued: Vec<_> = (0..5)
        .map(|_| spawned::<R, _>(time_once(client.clone())))
        .collect();
    let node = node_server_on("time_server.js", port);
    for q in queued {
        let t = within::<R, _>("a queued call", q).await.unwrap();
        assert!(looks_like_a_js_date(&t), "{t:?}");
    }
    events.wait_for("up again", is_up).await;
    assert_eq!(events.count(is_down), 1, "{:?}", events.seen);
    // Subscribed right after connecting: with worker threads the first up may or may
    // not have been delivered to us, the second must have been.
    assert!((1..=2).contains(&events.count(is_up)), "{:?}", events.seen);

    client.close().await;
    drop(node);
}

pub async fn our_auth_client_logs_in_again_after_a_node_server_restart<R: Rt>() {
    let node = NodePeer::server("auth_server.js");
    let port = node.port();
    let logins = Arc::new(AtomicUsize::new(0));
    let counted = logins.clone();
    let client = fast_client()
        .on_connect(move |remote| {
            counted.fetch_add(1, Ordering::SeqCst);
            log_in(remote)
        })
        .connect_tcp::<R>(format!("127.0.0.1:{port}"))
        .unwrap();
    let expected = "boop at 1970-01-01T00:00:00.000Z";
    for _ in 0..3 {
        assert_eq!(
            within::<R, _>("a beep", beep_once(client.clone())).await,
            expected
        );
    }
    let mut events = Events::<R, _>::new(client.events());

    drop(node);
    events.wait_for("down", is_down).await;
    let queued: Vec<_> = (0..5)
        .map(|_| spawned::<R, _>(beep_once(client.clone())))
        .collect();
    let node = node_server_on("auth_server.js", port);
    for q in queued {
        assert_eq!(within::<R, _>("a queued beep", q).await.unwrap(), expected);
    }
    events.wait_for("up again", is_up).await;
    assert_eq!(logins.load(Ordering::SeqCst), 2, "one login per connection");

    client.close().await;
    drop(node);
}

pub async fn our_typed_client_tells_a_node_servers_errors_from_its_results<R: Rt>() {
    use crate::api::{NotFound, User};
    use upnode_async::RpcError;
    let node = NodePeer::server("errfirst_server.js");
    let client = fast_client()
        .connect_tcp::<R>(format!("127.0.0.1:{}", node.port()))
        .unwrap();
    let remote = within::<R, _>("up", client.up()).await.unwrap();
    let q = within::<R, _>("div", remote.rpc::<_, f64, String>("div", &(6, 3))).await;
    assert_eq!(q, Ok(2.0));
    let q = within::<R, _>("div", remote.rpc::<_, f64, String>("div", &(1, 4))).await;
    assert_eq!(q, Ok(0.25));
    let e = within::<R, _>("div", remote.rpc::<_, f64, String>("div", &(1, 0))).await;
    assert_eq!(e, Err(RpcError::Remote("division by zero".to_owned())));
    let u = within::<R, _>("user", remote.rpc::<_, User, NotFound>("user", &(1,))).await;
    assert_eq!(
        u,
        Ok(User {
            id: 1,
            name: "moo".into()
        })
    );
    let e = within::<R, _>("user", remote.rpc::<_, User, NotFound>("user", &(7,))).await;
    assert_eq!(
        e,
        Err(RpcError::Remote(NotFound {
            code: 404,
            message: "no user 7".into()
        }))
    );
    let e = within::<R, _>(
        "hang",
        remote
            .with_timeout(Some(Duration::from_millis(100)))
            .rpc::<_, (), String>("hang", &()),
    )
    .await;
    assert_eq!(e, Err(RpcError::TimedOut(Duration::from_millis(100))));
    // Killed with a call in flight: a link failure, not an error of the peer.
    let pending = remote.rpc::<_, (), String>("hang", &());
    drop(node);
    let e = within::<R, _>("hang", pending).await.unwrap_err();
    assert!(e.is_link_failure(), "{e:?}");
    client.close().await;
}

pub async fn a_node_client_gets_error_first_answers_from_our_typed_server<R: Rt>() {
    let (gates, _parked) = futures::channel::mpsc::unbounded();
    let server = crate::api::typed_server::<R>(Server::builder(), gates);
    let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
    let port = port_of(&listener);
    let node = NodePeer::spawn("errfirst_client.js", &[&port.to_string()]);
    let exit = node.wait_exit();
    assert!(exit.status.success(), "{exit:?}");
    let answers: Vec<serde_json::Value> = exit
        .stdout
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let answer = |call: &str| {
        answers
            .iter()
            .find(|a| a["call"] == call)
            .unwrap_or_else(|| panic!("no answer to {call} in {answers:?}"))
            .clone()
    };
    use serde_json::json;
    assert_eq!(
        answer("div(6, 3)"),
        json!({"call": "div(6, 3)", "err": null, "result": 2})
    );
    assert_eq!(
        answer("div(1, 0)"),
        json!({"call": "div(1, 0)", "err": "division by zero", "result": null})
    );
    let bad = answer("div(six, 3)");
    assert!(
        bad["err"]
            .as_str()
            .is_some_and(|e| e.starts_with("invalid arguments to div")),
        "{bad}"
    );
    assert_eq!(
        answer("user(1)"),
        json!({"call": "user(1)", "err": null, "result": {"id": 1, "name": "moo"}})
    );
    assert_eq!(
        answer("user(2)"),
        json!({"call": "user(2)", "err": {"code": 404, "message": "no user 2"}, "result": null})
    );
    assert_eq!(answers.last(), Some(&json!({"done": true})));
    stop::<R>(listener, &server).await;
}
