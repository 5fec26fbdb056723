//! What `tracing` sees: a span per connection (its number and the peer's address) and, inside
//! it, a span per call to one of our functions (the method's name). One test in its own
//! process, since the subscriber is global.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};
use upnode_tokio::{ClientBuilderExt, Interface};

/// A span as recorded: its name, its fields as `name=value`, and its parent's name.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    fields: String,
    parent: Option<String>,
}

#[derive(Clone, Default)]
struct Record(Arc<Mutex<Vec<Seen>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!("{}={} ", field.name(), value));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Record {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(String::new());
        attrs.record(&mut fields);
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.name().to_owned());
        self.0.lock().unwrap().push(Seen {
            name: attrs.metadata().name().to_owned(),
            fields: fields.0,
            parent,
        });
    }
}

#[test]
fn each_connection_and_each_call_has_its_own_span() {
    let record = Record::default();
    let subscriber = Registry::default().with(record.clone());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let server = upnode_tokio::server(|_conn| {
                Interface::new().rpc("traced_add", |(a, b): (i64, i64)| async move {
                    Ok::<_, String>(a + b)
                })
            });
            let listener = upnode_tokio::listen(&server, "127.0.0.1:0").await.unwrap();
            let client = upnode_tokio::Client::builder()
                .connect_tcp(listener.local_addr())
                .unwrap();
            let remote = client.up().await.unwrap();
            let sum = remote.rpc::<_, i64, String>("traced_add", &(2, 3)).await;
            assert_eq!(sum, Ok(5));
            client.close().await;
            server.shutdown(Duration::from_secs(1)).await;
        });
    let seen = record.0.lock().unwrap().clone();
    let conn = seen
        .iter()
        .find(|s| s.name == "upnode.conn")
        .unwrap_or_else(|| panic!("no connection span in {seen:?}"));
    assert!(conn.fields.contains("conn=0"), "{conn:?}");
    assert!(conn.fields.contains("peer=127.0.0.1:"), "{conn:?}");
    let client = seen
        .iter()
        .find(|s| s.name == "upnode.client")
        .unwrap_or_else(|| panic!("no client span in {seen:?}"));
    assert!(client.fields.contains("peer=127.0.0.1:"), "{client:?}");
    let call = seen
        .iter()
        .find(|s| s.name == "upnode.call" && s.fields.contains("method=traced_add"))
        .unwrap_or_else(|| panic!("no call span in {seen:?}"));
    assert_eq!(call.parent.as_deref(), Some("upnode.conn"), "{call:?}");
}
