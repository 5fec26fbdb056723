//! The sans-IO core of upnode: the dnode wire protocol and the per-connection session.
//!
//! Nothing here reads a clock, sleeps, spawns or opens a socket. A driver feeds received
//! bytes in and writes out what the core hands back; see [`Session`] for the driving contract.
//!
//! ```
//! use upnode_core::{LocalFn, Session, SessionConfig, SessionEvent, Value};
//!
//! // Our side exports `time`; the peer is a Node upnode client.
//! let exports = Value::object([("time", Value::from(LocalFn(0)))]);
//! let mut s = Session::new(exports, SessionConfig::default()).unwrap();
//! let hello = s.poll_transmit().unwrap();
//! assert_eq!(&hello[..], &br#"{"method":"methods","arguments":[{"time":"[Function]"}],"callbacks":{"0":["0","time"]},"links":[]}
//! "#[..]);
//!
//! s.handle_input(br#"{"method":0,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}
//! "#).unwrap();
//! let Some(SessionEvent::Call { function, args }) = s.poll_event() else { panic!() };
//! assert_eq!(function, LocalFn(0));
//! let upnode_core::Function::Remote(reply_to) = args[0].as_function().unwrap() else { panic!() };
//! s.call(reply_to, vec![Value::from("Wed Nov 25 2026")]).unwrap();
//! assert_eq!(&s.poll_transmit().unwrap()[..],
//!     &b"{\"method\":1,\"arguments\":[\"Wed Nov 25 2026\"],\"callbacks\":{},\"links\":[]}\n"[..]);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod link;
pub mod protocol;
pub mod session;

pub use config::SessionConfig;
pub use error::{Error, LocalError, RemoteError};
pub use protocol::{
    from_args, from_value, to_args, to_value, Function, LocalFn, Map, Method, RemoteFn, TypedError,
    Value,
};
pub use session::{Session, SessionEvent, Target};
