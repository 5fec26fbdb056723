//! The dnode wire protocol: framing, values with functions, messages, and JSON as Node writes
//! it. Everything here is pure data transformation; the [`session`](crate::session) module
//! holds the per-connection state.

mod framing;
pub(crate) mod json;
mod message;
mod typed;
mod value;

pub use framing::{FramingError, Line, LineDecoder, Lines};
pub use json::{parse_json, write_js_number, write_js_string, JsonError};
pub use message::{parse_message, unscrub, write_cull, write_message, Method, RawMessage};
pub use typed::{from_args, from_value, to_args, to_value, TypedError};
pub use value::{Function, LocalFn, Map, Path, RemoteFn, Value};
