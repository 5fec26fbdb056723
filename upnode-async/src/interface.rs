//! What one side exports: methods and data values, installed on each session.

use crate::error::{CallError, HandlerError};
use crate::handlers::Handlers;
use crate::peer::{Call, Handler, Method, MethodFn};
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use upnode_core::link::ConnId;
use upnode_core::{to_value, Value};

/// What one side exports: methods (async handlers) and data values, in order.
///
/// ```
/// use upnode_async::Interface;
/// let iface = Interface::new()
///     .method("time", |call| async move { call.reply(&("now",))?; Ok(()) })
///     .value("beep", &5)
///     .unwrap();
/// assert_eq!(iface.names(), vec!["time", "beep"]);
/// ```
#[derive(Clone, Default)]
pub struct Interface {
    entries: Vec<(String, Export)>,
}

#[derive(Clone)]
enum Export {
    Method(Arc<Method>),
    Value(Value),
}

impl fmt::Debug for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Interface {
    /// Exports nothing (the link still adds `ping`).
    pub fn new() -> Interface {
        Interface::default()
    }

    /// **The usual way to export a function**: typed arguments in, Node's error-first answer
    /// out.
    ///
    /// `f` receives the call's arguments before the answer callback, decoded as `A` (a
    /// tuple, `()` for none; missing trailing arguments read as null, extra ones are
    /// ignored), and its result answers the caller as Node code expects: `Ok(v)` calls
    /// `cb(null, v)`, `Err(e)` calls `cb(e)`. Arguments that do not decode are answered
    /// `cb("invalid arguments to NAME: …")` (a string) without running `f`, so the caller
    /// always hears back. A panic in `f` is reported as a handler event and answered
    /// `cb("internal error in NAME")`. Ordering is as for [`method`](Self::method).
    ///
    /// ```
    /// use upnode_async::Interface;
    /// let iface = Interface::new().rpc("div", |(a, b): (f64, f64)| async move {
    ///     if b == 0.0 {
    ///         return Err("division by zero".to_owned());
    ///     }
    ///     Ok(a / b)
    /// });
    /// assert_eq!(iface.names(), vec!["div"]);
    /// ```
    ///
    /// [`method`](Self::method) is the lower-level form: the raw [`Call`], answered by hand.
    pub fn rpc<A, T, E, F, Fut>(self, name: impl Into<String>, f: F) -> Interface
    where
        A: DeserializeOwned + Send + 'static,
        T: Serialize + 'static,
        E: Serialize + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let name: Arc<str> = name.into().into();
        let label = name.clone();
        self.method(name.to_string(), move |call: Call| {
            let name = label.clone();
            let started = call
                .params::<A>()
                .map(|a| AssertUnwindSafe(f(a)).catch_unwind());
            async move {
                let fut = match started {
                    Ok(fut) => fut,
                    Err(e) => {
                        tracing::debug!(method = %name, error = %e, "invalid arguments");
                        call.reply(&(format!("invalid arguments to {name}: {e}"),))?;
                        return Ok(());
                    }
                };
                let answer = match fut.await {
                    Ok(Ok(v)) => to_value(&v).map(|v| vec![Value::Null, v]),
                    Ok(Err(e)) => to_value(&e).map(|e| vec![e]),
                    Err(_) => {
                        call.reply(&(format!("internal error in {name}"),))?;
                        return Err(format!("the handler of {name} panicked").into());
                    }
                };
                match answer {
                    Ok(values) => call.reply_values(values)?,
                    Err(e) => {
                        call.reply(&(format!("internal error in {name}"),))?;
                        return Err(format!("the answer of {name} does not encode: {e}").into());
                    }
                }
                Ok(())
            }
        })
    }

    /// Lower level than [`rpc`](Self::rpc): exports an async method that receives the raw
    /// [`Call`] and answers it by hand ([`Call::reply`]), for calls outside the error-first
    /// convention, callbacks called many times, or functions in the answer. A handler that
    /// returns an error or panics is reported as an error event; the connection lives on.
    ///
    /// Handlers of one connection start in the order the calls arrived: the part of each
    /// before its first `.await` runs on the connection's task, one call after the other, as
    /// Node runs them (so answers given there leave in call order). What follows an
    /// `.await` runs as a task of its own, concurrently with later calls. Keep the part
    /// before the first `.await` short and never block in it.
    pub fn method<F, Fut>(mut self, name: impl Into<String>, f: F) -> Interface
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let name = name.into();
        let run: MethodFn = Arc::new(move |c| Box::pin(f(c)));
        let m = Arc::new(Method {
            run,
            name: Some(name.as_str().into()),
        });
        self.set(name, Export::Method(m));
        self
    }

    /// Exports a data value (travels as data, like upnode's `beep = 5`).
    pub fn value<T: Serialize + ?Sized>(
        mut self,
        name: impl Into<String>,
        v: &T,
    ) -> Result<Interface, CallError> {
        self.set(name.into(), Export::Value(to_value(v)?));
        Ok(self)
    }

    fn set(&mut self, name: String, e: Export) {
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = e,
            None => self.entries.push((name, e)),
        }
    }

    /// Exported names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// Registers the methods and returns the exports value for a session.
    pub(crate) fn install(&self, handlers: &mut Handlers, conn: Option<ConnId>) -> Value {
        Value::object(self.entries.iter().map(|(k, e)| {
            let v = match e {
                Export::Method(m) => Value::from(handlers.insert(Handler::Method(m.clone()), conn)),
                Export::Value(v) => v.clone(),
            };
            (k.clone(), v)
        }))
    }
}
