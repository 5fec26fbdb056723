//! The dnode wire protocol: framing, values with functions, messages, and JSON as Node writes
//! it. Everything here is pure data transformation; the [`session`](crate::session) module
//! holds the per-connection state.
//!
//! The modules, and which uses which (every edge points one way):
//!
//! - `framing`: lines out of a byte stream; uses nothing here.
//! - `value`: [`Value`] and the function handles, with their serde impls
//!   (`value::serde_impls`) and the private channel that carries handles through serde
//!   (`value::handle`); uses nothing here.
//! - `json`: JSON as Node writes and reads it, [`Value::to_json_string`] included; uses `value`.
//! - `message`: dnode messages on the wire; uses `json` and `value` (and `crate::config`,
//!   `crate::error`).
//! - `typed`: typed Rust data in and out of [`Value`] ([`to_value`], [`from_value`],
//!   [`to_args`], [`from_args`]); uses `value` only.
//! - `call_args`: [`CallArgs`], a call's arguments with typed data written as JSON at once
//!   where that gives the bytes the [`Value`] path gives; uses `json`, `typed` and `value`.

mod call_args;
mod framing;
mod json;
mod message;
mod typed;
mod value;

pub use call_args::CallArgs;
pub use framing::{FramingError, Line, LineDecoder, Lines};
pub use json::{parse_json, write_js_number, write_js_string, JsonError};
pub use message::{parse_message, unscrub, write_cull, write_message, Method, RawMessage};
pub(crate) use message::{unscrub_into, write_message_with, WriteScratch};
pub use typed::{from_args, from_value, to_args, to_value, TypedError};
pub use value::{Function, LocalFn, Map, Path, RemoteFn, Value};
