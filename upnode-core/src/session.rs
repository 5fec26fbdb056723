//! One dnode conversation over one connection, role-neutral.

use crate::config::{CullPolicy, SessionConfig};
use crate::error::{LocalError, RemoteError};
use crate::hash::HashMap;
use crate::id_set::IdSet;
use crate::protocol::{
    parse_message, unscrub_into, write_cull, write_message_with, CallArgs, Function, LineDecoder,
    LocalFn, Map, Method, RawMessage, RemoteFn, Value, WriteScratch,
};
use crate::seq_map::SeqMap;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// Whom a call goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A method of the peer's interface (its `methods`), called by its callback id as Node
    /// does. Fails locally if the interface has not arrived or lacks the name.
    Method(String),
    /// A method called by name, as written, without looking at the peer's interface.
    Name(String),
    /// A callback of the peer's that we hold.
    Callback(RemoteFn),
}

impl From<RemoteFn> for Target {
    fn from(f: RemoteFn) -> Self {
        Target::Callback(f)
    }
}

impl From<&str> for Target {
    fn from(name: &str) -> Self {
        Target::Method(name.to_owned())
    }
}

/// What a session reports to its driver.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The peer's `methods` arrived (or arrived again and replaced the old interface); read it
    /// with [`Session::remote`].
    Remote,
    /// The peer called one of our functions. Every [`RemoteFn`] inside `args` holds one
    /// reference; give each back with [`Session::release`] when done with it.
    Call {
        /// Which of our functions.
        function: LocalFn,
        /// The arguments, with the peer's callbacks in place.
        args: Vec<Value>,
    },
    /// The peer holds no callback id for this function of ours any more (it sent `cull`).
    Released {
        /// The function.
        function: LocalFn,
    },
    /// The peer sent something wrong that does not end the connection (see
    /// [`RemoteError::is_fatal`]).
    Error(RemoteError),
    /// The peer called one of its own callbacks that we had passed back to it, and we could
    /// not forward the call (a limit of ours, or the session ended): our failure, not the
    /// peer's. The call is dropped; the connection lives on.
    ForwardFailed {
        /// The peer's callback the call was for.
        to: RemoteFn,
        /// Why it could not be sent.
        error: LocalError,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Open,
    Failed(RemoteError),
    Closed,
}

/// Output is handed to the transport in buffers of about this size.
const OUTPUT_CHUNK: usize = 64 * 1024;
/// A buffer this close to [`OUTPUT_CHUNK`] is set aside before the next message.
const OUTPUT_SLACK: usize = 4 * 1024;
/// A transmit needing at most this much room gives larger spare buffers back.
const QUIET_OUTPUT_ROOM: usize = 512;
/// Buffers [`Session::reuse_output`] keeps for later output at most.
const SPARE_OUTPUT_BUFFERS: usize = 2;
/// The least room an output buffer starts with.
const MIN_OUTPUT_ROOM: usize = 256;
/// Callback ids placed by one message whose room is kept for the next at most.
const KEEP_PLACED: usize = 16;

/// One dnode conversation: our exported interface, the callback tables in both directions,
/// the `methods` handshake, calls by name or id, and `cull`.
///
/// # Driving contract
/// 1. Create it when the transport is open: [`Session::new`] queues our `methods` message at
///    once (both sides send theirs without waiting).
/// 2. Whenever bytes arrive, pass them to [`handle_input`](Self::handle_input). An `Err` is
///    fatal: end the transport and drop the session.
/// 3. After `new`, `handle_input`, [`call`](Self::call), [`release`](Self::release) or
///    [`set_exports`](Self::set_exports), drain [`poll_transmit`](Self::poll_transmit) into the
///    transport (each chunk holds whole lines) and [`poll_event`](Self::poll_event) until
///    `None`.
/// 4. When the transport ends, drop the session (or [`close`](Self::close) it): callback ids
///    live for one connection only.
///
/// ```
/// use upnode_core::{RemoteFn, Session, SessionConfig, SessionEvent, Target, Value};
/// let mut client = Session::new(Value::object([] as [(&str, Value); 0]), SessionConfig::default()).unwrap();
/// client.poll_transmit();
/// client.handle_input(b"{\"method\":\"methods\",\"arguments\":[{\"time\":\"[Function]\"}],\"callbacks\":{\"0\":[\"0\",\"time\"]},\"links\":[]}\n").unwrap();
/// assert_eq!(client.poll_event(), Some(SessionEvent::Remote));
/// client.call(Target::Method("time".into()), vec![]).unwrap();
/// assert_eq!(&client.poll_transmit().unwrap()[..], &b"{\"method\":0,\"arguments\":[],\"callbacks\":{},\"links\":[]}\n"[..]);
/// ```
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    decoder: LineDecoder,
    /// Output being written.
    out: Vec<u8>,
    /// The room `out` gets when the next message is written into it after a transmit.
    out_room: usize,
    /// Buffers handed back by [`reuse_output`](Self::reuse_output) for the next output, at
    /// most [`SPARE_OUTPUT_BUFFERS`].
    spare: Vec<Vec<u8>>,
    /// Output buffers filled to about [`OUTPUT_CHUNK`], before `out`.
    full: VecDeque<Bytes>,
    events: VecDeque<SessionEvent>,
    state: State,
    exports: Value,
    /// Our side: the wire ids the peer may call.
    ours: OurIds,
    /// The peer's side: its callback id → what we hold of it.
    theirs: HashMap<u64, Held>,
    remote: Option<Value>,
    remote_refs: Vec<u64>,
    pending_cull: Vec<u64>,
    /// Buffers of `send`, kept from one message to the next.
    scratch: SendScratch,
    /// The peer's callback ids placed in the message being read, and those of them not held
    /// before it (both empty between messages).
    placed: Vec<u64>,
    fresh_placed: IdSet<u64>,
}

/// What [`Session::send`] reuses from one message to the next.
#[derive(Debug, Default)]
struct SendScratch {
    write: WriteScratch,
    /// Ids used in the message being written.
    used: IdSet<u64>,
    /// Ids handed out for it (taken back if it fails).
    fresh: Vec<u64>,
    /// Ids given to the message's reply, in order: the last is the reply's.
    replies: Vec<u64>,
}

impl SendScratch {
    /// Ids kept between messages at most.
    const KEEP: usize = 256;

    fn clear(&mut self) {
        self.used.clear(Self::KEEP);
        self.fresh.clear();
        self.replies.clear();
        self.replies.shrink_to(Self::KEEP);
        self.fresh.shrink_to(Self::KEEP);
    }
}

impl Session {
    /// Starts a session that exports `exports` (an object whose functions the peer may call by
    /// name or id; data members travel as data) and queues our `methods` message.
    ///
    /// Fails only if `exports` breaks a limit (too many functions, too deep).
    pub fn new(exports: Value, config: SessionConfig) -> Result<Session, LocalError> {
        let mut s = Session {
            decoder: LineDecoder::new(config.max_line_len),
            config,
            out: Vec::with_capacity(MIN_OUTPUT_ROOM),
            out_room: MIN_OUTPUT_ROOM,
            spare: Vec::new(),
            full: VecDeque::new(),
            events: VecDeque::new(),
            state: State::Open,
            exports: Value::Null,
            ours: OurIds::default(),
            theirs: HashMap::default(),
            remote: None,
            remote_refs: Vec::new(),
            pending_cull: Vec::new(),
            scratch: SendScratch::default(),
            placed: Vec::new(),
            fresh_placed: IdSet::default(),
        };
        s.set_exports(exports)?;
        Ok(s)
    }

    /// Replaces our exported interface and sends `methods` again; the peer rebuilds its view
    /// of us. Functions already given ids keep them.
    pub fn set_exports(&mut self, exports: Value) -> Result<(), LocalError> {
        self.check_open()?;
        let arg = match exports {
            Value::Object(_) => exports,
            _ => Value::Object(Map::new()),
        };
        self.send(
            &Method::Name("methods".into()),
            std::slice::from_ref(&arg),
            None,
        )?;
        self.exports = arg;
        Ok(())
    }

    /// Our exported interface.
    pub fn exports(&self) -> &Value {
        &self.exports
    }

    /// The peer's interface, once its `methods` arrived: an object whose functions are
    /// [`RemoteFn`]s held by the session for as long as this interface is current.
    pub fn remote(&self) -> Option<&Value> {
        self.remote.as_ref()
    }

    /// Feeds bytes received from the peer. Complete lines are dispatched at once; events are
    /// queued for [`poll_event`](Self::poll_event) and replies for
    /// [`poll_transmit`](Self::poll_transmit).
    ///
    /// Returns a fatal error when the peer broke the protocol (a line over the limit, a line
    /// that is not JSON, too many callbacks held). The session is then finished: end the
    /// transport. Non-fatal problems arrive as [`SessionEvent::Error`].
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), RemoteError> {
        match &self.state {
            State::Open => {}
            State::Failed(e) => return Err(e.clone()),
            State::Closed => return Ok(()),
        }
        let mut decoder = std::mem::replace(&mut self.decoder, LineDecoder::new(0));
        let mut result = Ok(());
        for line in decoder.decode(data) {
            let r = match line {
                Ok(line) => self.handle_line(&line),
                Err(e) => Err(match e {
                    crate::protocol::FramingError::LineTooLong { limit } => {
                        RemoteError::LineTooLong { limit }
                    }
                }),
            };
            if let Err(e) = r {
                self.fail(e.clone());
                result = Err(e);
                break;
            }
        }
        self.decoder = decoder;
        result
    }

    fn handle_line(&mut self, line: &[u8]) -> Result<(), RemoteError> {
        let mut msg = match parse_message(line) {
            Ok(m) => m,
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                self.events.push_back(SessionEvent::Error(e));
                return Ok(());
            }
        };
        match &msg.method {
            Method::Name(n) if n == "methods" => self.handle_methods(msg),
            Method::Name(n) if n == "cull" => {
                self.handle_cull(&msg.arguments);
                Ok(())
            }
            Method::Name(n) => {
                let f = match self.exports.get(n) {
                    Some(Value::Function(f)) => *f,
                    Some(_) => {
                        let name = std::mem::take(n_mut(&mut msg));
                        self.events
                            .push_back(SessionEvent::Error(RemoteError::NotAFunction { name }));
                        return Ok(());
                    }
                    None => {
                        let name = std::mem::take(n_mut(&mut msg));
                        self.events
                            .push_back(SessionEvent::Error(RemoteError::NoSuchMethod { name }));
                        return Ok(());
                    }
                };
                self.dispatch(f, msg)
            }
            Method::Id(id) => match self.ours.by_id.get(*id) {
                Some(owner) => {
                    let f = owner.function();
                    self.dispatch(f, msg)
                }
                None => {
                    self.events
                        .push_back(SessionEvent::Error(RemoteError::NoSuchCallback { id: *id }));
                    Ok(())
                }
            },
        }
    }

    /// Places the peer's callbacks into the message and takes one reference per placement.
    fn take_callbacks(&mut self, msg: &mut RawMessage) -> Result<(), RemoteError> {
        if msg.callbacks.is_empty() && msg.links.is_empty() {
            // Nothing to place (an answer with data only, the usual case): the arguments
            // stay as read and no callback is taken.
            return Ok(());
        }
        let mut placed = std::mem::take(&mut self.placed);
        unscrub_into(msg, &mut placed);
        // The ids not held yet, each counted once.
        let mut fresh = std::mem::take(&mut self.fresh_placed);
        for &id in &placed {
            if !self.theirs.contains_key(&id) {
                fresh.insert(id);
            }
        }
        let result = if self.theirs.len() + fresh.len() > self.config.max_callbacks {
            Err(RemoteError::TooManyCallbacks {
                limit: self.config.max_callbacks,
            })
        } else {
            for &id in &placed {
                self.theirs.entry(id).or_default().refs += 1;
            }
            Ok(())
        };
        placed.clear();
        placed.shrink_to(KEEP_PLACED);
        self.placed = placed;
        fresh.clear(KEEP_PLACED);
        self.fresh_placed = fresh;
        result
    }

    fn handle_methods(&mut self, mut msg: RawMessage) -> Result<(), RemoteError> {
        self.take_callbacks(&mut msg)?;
        let mut args = std::mem::take(&mut msg.arguments).into_iter();
        let iface = match args.next() {
            Some(v @ Value::Object(_)) => v,
            Some(other) => {
                self.release_value(&other);
                Value::Object(Map::new())
            }
            None => Value::Object(Map::new()),
        };
        for rest in args {
            self.release_value(&rest);
        }
        let mut refs = Vec::new();
        iface.for_each_function(&mut |f| {
            if let Function::Remote(r) = f {
                refs.push(r.0);
            }
        });
        let old = std::mem::replace(&mut self.remote_refs, refs);
        for id in old {
            self.release(RemoteFn(id));
        }
        self.remote = Some(iface);
        self.events.push_back(SessionEvent::Remote);
        Ok(())
    }

    fn handle_cull(&mut self, args: &[Value]) {
        for a in args {
            let Some(n) = a.as_f64() else { continue };
            if n < 0.0 || n.fract() != 0.0 {
                continue;
            }
            let id = n as u64;
            let Some((f, gone)) = self.ours.remove(id) else {
                continue;
            };
            match f {
                Function::Local(k) if gone => self
                    .events
                    .push_back(SessionEvent::Released { function: k }),
                Function::Local(_) => {}
                Function::Remote(r) => self.release(r),
            }
        }
    }

    fn dispatch(&mut self, f: Function, mut msg: RawMessage) -> Result<(), RemoteError> {
        self.take_callbacks(&mut msg)?;
        match f {
            Function::Local(function) => {
                // The dnode convention: a function in last place is where the answer goes.
                if let Some(Value::Function(Function::Remote(cb))) = msg.arguments.last() {
                    if let Some(h) = self.theirs.get_mut(&cb.0) {
                        h.reply = true;
                    }
                }
                self.events.push_back(SessionEvent::Call {
                    function,
                    args: msg.arguments,
                });
            }
            Function::Remote(r) => {
                // A callback of the peer's that we passed back: forward the call.
                if let Err(error) = self.send(&Method::Id(r.0), &msg.arguments, None) {
                    self.events
                        .push_back(SessionEvent::ForwardFailed { to: r, error });
                }
                for a in &msg.arguments {
                    self.release_value(a);
                }
            }
        }
        Ok(())
    }

    /// Calls the peer. Functions anywhere in `args` become callbacks the peer can call (any
    /// number of times) until it culls them or the connection ends; for each
    /// [`RemoteFn`] passed, the session takes its own reference (yours is untouched).
    /// `args` is a `Vec<Value>`, or [`CallArgs`] made from typed data
    /// ([`CallArgs::from_typed`], which writes what it can as JSON at once).
    ///
    /// Nothing is sent when this fails.
    pub fn call(
        &mut self,
        target: impl Into<Target>,
        args: impl Into<CallArgs>,
    ) -> Result<(), LocalError> {
        self.call_as(target.into(), &args.into(), None).map(|_| ())
    }

    /// Calls the peer with `args` and then `reply`, a function of ours that answers this
    /// call only, as its last argument (what the link does for every call made with
    /// [`ClientLink::call_with_reply`](crate::link::ClientLink::call_with_reply)). Returns
    /// the wire id `reply` was sent under: hand it to
    /// [`forget_reply`](Self::forget_reply) once the answer has come.
    ///
    /// The reply's id is kept apart from the ids of other functions: it is never reused
    /// for a later message that carries `reply` again (each call's reply is a function of
    /// its own), so nothing but the id itself is stored for it, and
    /// [`forget`](Self::forget) does not find it. Should `reply` also appear inside `args`,
    /// those places get ordinary ids.
    ///
    /// Nothing is sent when this fails.
    pub fn call_with_reply(
        &mut self,
        target: impl Into<Target>,
        args: impl Into<CallArgs>,
        reply: LocalFn,
    ) -> Result<u64, LocalError> {
        let mut args = args.into();
        args.push(Value::from(reply));
        // The reply, the last argument, is the last function the walk meets: it always
        // gets an id (`u64::MAX`, an id never handed out, is unreachable here).
        self.call_as(target.into(), &args, Some(reply))
            .map(|id| id.unwrap_or(u64::MAX))
    }

    /// Sends a call; with `reply`, the wire id of its last argument.
    fn call_as(
        &mut self,
        target: Target,
        args: &CallArgs,
        reply: Option<LocalFn>,
    ) -> Result<Option<u64>, LocalError> {
        self.check_open()?;
        let method = match target {
            Target::Name(n) => Method::Name(n),
            Target::Callback(r) => {
                if !self.theirs.contains_key(&r.0) {
                    return Err(LocalError::UnknownRemoteFunction { id: r.0 });
                }
                let method = Method::Id(r.0);
                let id = self.send_after(&method, args.written(), args.values(), reply)?;
                if let Some(h) = self.theirs.get_mut(&r.0) {
                    h.calls = h.calls.saturating_add(1);
                }
                return Ok(id);
            }
            Target::Method(name) => match self.remote.as_ref() {
                None => return Err(LocalError::RemoteNotReady),
                Some(iface) => match iface.get(&name) {
                    Some(Value::Function(Function::Remote(r))) => Method::Id(r.0),
                    Some(_) => return Err(LocalError::RemoteNotAFunction { name }),
                    None => return Err(LocalError::NoSuchRemoteMethod { name }),
                },
            },
        };
        self.send_after(&method, args.written(), args.values(), reply)
    }

    /// Gives back one reference on a peer's callback. When the last reference goes, we
    /// forget it, and `cull` is sent with the next transmit (several ids share one message)
    /// when [`SessionConfig::cull`] says so. Unknown ids are ignored.
    pub fn release(&mut self, f: RemoteFn) {
        let Some(h) = self.theirs.get_mut(&f.0) else {
            return;
        };
        h.refs -= 1;
        if h.refs > 0 {
            return;
        }
        let answered = h.reply && h.calls == 1;
        self.theirs.remove(&f.0);
        let cull = match self.config.cull {
            CullPolicy::Always => true,
            CullPolicy::ExceptAnswers => !answered,
            CullPolicy::Never => false,
        };
        if cull && self.state == State::Open {
            self.pending_cull.push(f.0);
        }
    }

    /// Takes one more reference on a peer's callback we hold (for a driver that hands out
    /// copies). Fails if it is not held.
    pub fn retain(&mut self, f: RemoteFn) -> Result<(), LocalError> {
        match self.theirs.get_mut(&f.0) {
            Some(h) => {
                h.refs += 1;
                Ok(())
            }
            None => Err(LocalError::UnknownRemoteFunction { id: f.0 }),
        }
    }

    /// Forgets the wire id our function `f` was given, without waiting for the peer to
    /// `cull` it: for a reply callback whose answer came (or will never be waited for). A
    /// later call of that id by the peer is reported as
    /// [`RemoteError::NoSuchCallback`], a non-fatal error. Does nothing for a function the
    /// peer holds no id of.
    ///
    /// A function sent several times within one message holds one id per place; only the
    /// first is forgotten here, the others live until the peer culls them. A reply sent
    /// with [`call_with_reply`](Self::call_with_reply) is forgotten with
    /// [`forget_reply`](Self::forget_reply).
    pub fn forget(&mut self, f: LocalFn) {
        if let Some(id) = self.ours.first_id(Function::Local(f)) {
            self.ours.remove(id);
        }
    }

    /// Forgets wire id `id`, given to a reply by [`call_with_reply`](Self::call_with_reply),
    /// as [`forget`](Self::forget) does for other functions. Does nothing for an id that is
    /// not a live reply's.
    pub fn forget_reply(&mut self, id: u64) {
        self.ours.remove_reply(id);
    }

    /// Releases every [`RemoteFn`] occurrence inside `v`.
    pub fn release_value(&mut self, v: &Value) {
        let mut found = Vec::new();
        v.for_each_function(&mut |f| {
            if let Function::Remote(r) = f {
                found.push(r);
            }
        });
        for r in found {
            self.release(r);
        }
    }

    /// Bytes to write to the transport: whole lines, in order. `None` when there is nothing.
    /// A burst of output comes in several pieces of about 64 KiB each: call until `None`.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.full.pop_front() {
            return Some(chunk);
        }
        self.flush_cull();
        if self.out.is_empty() {
            return None;
        }
        // The next buffer gets the room this one ended up needing, when the next message is
        // written: steady traffic allocates one buffer per transmit instead of growing each
        // from small by doubling, and an idle session holds no buffer.
        self.out_room = self
            .out
            .len()
            .next_power_of_two()
            .clamp(MIN_OUTPUT_ROOM, OUTPUT_CHUNK);
        // Output went quiet (a ping, say): spares kept from busier times are given back.
        // (Not at every smaller transmit: under steady traffic the size of each transmit
        // varies, and buffers given back would have to be allocated again.)
        let room = self.out_room;
        if room <= QUIET_OUTPUT_ROOM {
            self.spare.retain(|b| b.capacity() <= 2 * room);
        }
        Some(Bytes::from(std::mem::take(&mut self.out)))
    }

    /// A piece of output already set aside full (about 64 KiB), if any; what is still being
    /// filled stays for [`poll_transmit`](Self::poll_transmit). A driver calls this right
    /// after a call, from the caller's side, to write a burst while it is being made instead
    /// of holding all of it until its own turn; the order of the bytes is kept.
    pub fn poll_transmit_full(&mut self) -> Option<Bytes> {
        self.full.pop_front()
    }

    /// Hands back a piece of output the transport has taken all of (one that
    /// [`poll_transmit`](Self::poll_transmit) or
    /// [`poll_transmit_full`](Self::poll_transmit_full) returned, with no other copy of it
    /// left): its room serves later output, so a steady flow of messages allocates no output
    /// buffers. Optional. Two buffers are kept at most, each of at most 128 KiB, and a
    /// transmit of at most 512 bytes (a quiet connection's ping) gives back those larger
    /// than twice what it needed; anything else is dropped.
    ///
    /// ```
    /// use upnode_core::{Session, SessionConfig, Target, Value};
    /// let mut s = Session::new(Value::Null, SessionConfig::default()).unwrap();
    /// let methods = s.poll_transmit().unwrap();
    /// // ... once the transport has taken all of `methods`:
    /// s.reuse_output(methods);
    /// s.call(Target::Name("x".into()), vec![]).unwrap();
    /// assert!(s.poll_transmit().is_some());
    /// ```
    pub fn reuse_output(&mut self, done: Bytes) {
        if self.spare.len() >= SPARE_OUTPUT_BUFFERS || self.is_closed() {
            return;
        }
        let Ok(done) = done.try_into_mut() else {
            return;
        };
        let mut buf = Vec::from(done);
        if (MIN_OUTPUT_ROOM..=2 * OUTPUT_CHUNK).contains(&buf.capacity()) {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// An empty buffer for output with at least `room`: a spare if one is large enough.
    fn output_buffer(&mut self, room: usize) -> Vec<u8> {
        match self.spare.iter().position(|b| b.capacity() >= room) {
            Some(i) => self.spare.swap_remove(i),
            None => Vec::with_capacity(room),
        }
    }

    /// Like [`poll_transmit`](Self::poll_transmit), appending to a buffer the driver owns.
    pub fn transmit_into(&mut self, buf: &mut BytesMut) {
        for chunk in self.full.drain(..) {
            buf.extend_from_slice(&chunk);
        }
        self.flush_cull();
        buf.extend_from_slice(&self.out);
        self.out.clear();
    }

    /// Sets a nearly full output buffer aside, so that a burst of messages is held in
    /// buffers filled to at least [`OUTPUT_CHUNK`] less [`OUTPUT_SLACK`], not in one vector
    /// that doubles past what it holds.
    fn rotate_output(&mut self) {
        if self.out.capacity() == 0 {
            self.out = self.output_buffer(self.out_room);
        } else if self.out.len() + OUTPUT_SLACK > OUTPUT_CHUNK {
            let next = self.output_buffer(OUTPUT_CHUNK);
            let full = std::mem::replace(&mut self.out, next);
            self.full.push_back(Bytes::from(full));
        }
    }

    /// Writes one `cull` for the ids released since the last transmit, keeping the list's
    /// buffer for the next ones.
    fn flush_cull(&mut self) {
        if !self.pending_cull.is_empty() {
            write_cull(&mut self.out, &self.pending_cull);
            self.pending_cull.clear();
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Ends the session: tables are emptied, pending output dropped; later calls fail with
    /// [`LocalError::Closed`].
    pub fn close(&mut self) {
        if self.state == State::Open {
            self.state = State::Closed;
        }
        self.ours = OurIds::default();
        self.theirs.clear();
        self.remote_refs.clear();
        self.pending_cull.clear();
        self.out.clear();
        self.full.clear();
        self.spare = Vec::new();
    }

    /// Whether the session has ended (closed, or a fatal error from the peer).
    pub fn is_closed(&self) -> bool {
        self.state != State::Open
    }

    /// Number of our callbacks (wire ids) the peer may call, our exported methods included.
    pub fn exported_callbacks(&self) -> usize {
        self.ours.by_id.len()
    }

    /// Number of distinct peer callbacks we hold.
    pub fn held_callbacks(&self) -> usize {
        self.theirs.len()
    }

    /// Bytes buffered for an unfinished incoming line.
    pub fn buffered_input(&self) -> usize {
        self.decoder.buffered()
    }

    /// Memory held for incoming lines (the buffer's capacity, at least
    /// [`buffered_input`](Self::buffered_input)).
    pub fn held_input(&self) -> usize {
        self.decoder.held()
    }

    fn fail(&mut self, e: RemoteError) {
        self.close();
        self.state = State::Failed(e);
    }

    fn check_open(&self) -> Result<(), LocalError> {
        match self.state {
            State::Open => Ok(()),
            _ => Err(LocalError::Closed),
        }
    }

    /// Writes one message, scrubbing functions; all-or-nothing. With `reply`, the last
    /// argument is that reply: its id (returned) is one of its own (see
    /// [`call_with_reply`](Self::call_with_reply)).
    fn send(
        &mut self,
        method: &Method,
        args: &[Value],
        reply: Option<LocalFn>,
    ) -> Result<Option<u64>, LocalError> {
        self.send_after(method, (&[], 0), args, reply)
    }

    /// [`send`](Self::send), with `written` arguments (JSON joined by commas, and how many)
    /// before `args`.
    fn send_after(
        &mut self,
        method: &Method,
        written: (&[u8], usize),
        args: &[Value],
        reply: Option<LocalFn>,
    ) -> Result<Option<u64>, LocalError> {
        self.rotate_output();
        let Session {
            config,
            out,
            ours,
            theirs,
            scratch,
            ..
        } = self;
        scratch.clear();
        let SendScratch {
            write,
            used,
            fresh,
            replies,
        } = scratch;
        let limit = config.max_local_callbacks;
        let r = write_message_with(
            write,
            out,
            method,
            written,
            args,
            config.escape_non_ascii,
            |f| {
                match f {
                    Function::Local(l) if Some(l) == reply => {
                        if ours.by_id.len() >= limit {
                            return Err(LocalError::TooManyCallbacks { limit });
                        }
                        let id = ours.insert_reply(l);
                        fresh.push(id);
                        replies.push(id);
                        return Ok(id);
                    }
                    _ => {}
                }
                if let Some(id) = ours.first_id(f) {
                    if used.insert(id) {
                        return Ok(id);
                    }
                }
                if ours.by_id.len() >= limit {
                    return Err(LocalError::TooManyCallbacks { limit });
                }
                if let Function::Remote(r) = f {
                    match theirs.get_mut(&r.0) {
                        Some(h) => h.refs += 1,
                        None => return Err(LocalError::UnknownRemoteFunction { id: r.0 }),
                    }
                }
                let id = ours.insert(f);
                used.insert(id);
                fresh.push(id);
                Ok(id)
            },
        );
        if let Err(e) = r {
            // Roll back the ids handed out for this message; none was sent.
            for &id in fresh.iter() {
                if let Some((Function::Remote(r), _)) = ours.remove(id) {
                    if let Some(h) = theirs.get_mut(&r.0) {
                        h.refs -= 1;
                    }
                }
            }
            return Err(e);
        }
        // The reply is the last argument: its id is the last one it got. Any other place
        // it appeared in gets an ordinary id.
        let last = replies.pop();
        for &id in replies.iter() {
            ours.adopt(id);
        }
        Ok(last)
    }
}

/// What we hold of one of the peer's callbacks.
#[derive(Debug, Default)]
struct Held {
    /// References handed out (each place it arrived in, each retain).
    refs: u32,
    /// Times we called it.
    calls: u32,
    /// It came as the last argument of a call to one of our functions (an answer callback).
    reply: bool,
}

/// Who a wire id of ours stands for.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// A function, found again by [`OurIds::first_id`] when it is sent again.
    Fn(Function),
    /// A call's reply ([`Session::call_with_reply`]): the id is its own, not reused.
    Reply(LocalFn),
}

impl Owner {
    fn function(self) -> Function {
        match self {
            Owner::Fn(f) => f,
            Owner::Reply(f) => Function::Local(f),
        }
    }
}

/// Our functions the peer may call, by wire id. Ids count up from 0 and are never reused on
/// a connection; a function sent again reuses its first live id (a reply excepted: one
/// call's reply is never sent again, so its id is not looked up by function and is kept in
/// `by_id` only).
#[derive(Debug, Default)]
struct OurIds {
    by_id: SeqMap<Owner>,
    next_id: u64,
    /// Per function: its first live wire id (if that one is still live) and how many of its
    /// ids are live.
    fns: HashMap<Function, (Option<u64>, u32)>,
}

impl OurIds {
    /// The first live wire id of `f`, if it has one.
    fn first_id(&self, f: Function) -> Option<u64> {
        self.fns.get(&f).and_then(|(first, _)| *first)
    }

    /// Gives `f` a new wire id.
    fn insert(&mut self, f: Function) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.by_id.insert(id, Owner::Fn(f));
        self.count(f, id);
        id
    }

    /// One more live id for `f`.
    fn count(&mut self, f: Function, id: u64) {
        let entry = self.fns.entry(f).or_insert((None, 0));
        entry.0.get_or_insert(id);
        entry.1 += 1;
    }

    /// Gives reply `f` a new wire id of its own.
    fn insert_reply(&mut self, f: LocalFn) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.by_id.insert(id, Owner::Reply(f));
        id
    }

    /// Makes reply id `id` an ordinary one of its function.
    fn adopt(&mut self, id: u64) {
        if let Some(owner) = self.by_id.get_mut(id) {
            if let Owner::Reply(l) = *owner {
                *owner = Owner::Fn(Function::Local(l));
                self.count(Function::Local(l), id);
            }
        }
    }

    /// Forgets wire id `id` if it is a reply's.
    fn remove_reply(&mut self, id: u64) {
        if let Some(Owner::Reply(_)) = self.by_id.get(id) {
            self.by_id.remove(id);
        }
    }

    /// Forgets wire id `id`: its function, and whether that was the function's last id.
    fn remove(&mut self, id: u64) -> Option<(Function, bool)> {
        let f = match self.by_id.remove(id)? {
            Owner::Fn(f) => f,
            Owner::Reply(l) => {
                let f = Function::Local(l);
                return Some((f, !self.fns.contains_key(&f)));
            }
        };
        let last = match self.fns.get_mut(&f) {
            Some((first, live)) if *live > 1 => {
                if *first == Some(id) {
                    *first = None;
                }
                *live -= 1;
                false
            }
            _ => {
                self.fns.remove(&f);
                true
            }
        };
        Some((f, last))
    }
}

fn n_mut(msg: &mut RawMessage) -> &mut String {
    match &mut msg.method {
        Method::Name(n) => n,
        Method::Id(_) => unreachable!("called for named methods only"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_session_holds_no_output_buffer_and_the_next_gets_the_room_the_last_needed() {
        let mut s = Session::new(
            Value::object([("f", Value::from(LocalFn(1)))]),
            SessionConfig::default(),
        )
        .unwrap();
        s.poll_transmit().unwrap();
        assert_eq!(
            s.out.capacity(),
            0,
            "nothing held after the methods message left"
        );
        let burst = |s: &mut Session, n: usize| {
            for i in 0..n {
                s.call(Target::Name("x".into()), vec![Value::from(i as f64)])
                    .unwrap();
            }
            s.poll_transmit().unwrap().len()
        };
        let len = burst(&mut s, 100);
        assert!((4096..8192).contains(&len), "{len} bytes");
        assert_eq!(s.out.capacity(), 0);
        // The next message starts a buffer with room for as much again, not 256 bytes.
        s.call(Target::Name("x".into()), vec![]).unwrap();
        assert!(s.out.capacity() >= 8192, "{}", s.out.capacity());
        s.poll_transmit().unwrap();
        // After a small transmit, the room is small again.
        s.call(Target::Name("x".into()), vec![]).unwrap();
        assert!(s.out.capacity() < 1024, "{}", s.out.capacity());
    }

    /// A session after its `methods` message, with `n` calls written and transmitted.
    fn transmitted(s: &mut Session, n: usize) -> Bytes {
        for i in 0..n {
            s.call(Target::Name("x".into()), vec![Value::from(i as f64)])
                .unwrap();
        }
        s.poll_transmit().unwrap()
    }

    #[test]
    fn output_handed_back_is_written_into_again_two_at_most_and_given_back_when_output_goes_quiet()
    {
        let mut s = Session::new(Value::Null, SessionConfig::default()).unwrap();
        s.poll_transmit().unwrap();
        let first = transmitted(&mut s, 100);
        assert!(first.len() > 4096, "{}", first.len());
        // Still shared with another handle: not taken.
        let other = first.clone();
        s.reuse_output(first);
        assert!(s.spare.is_empty());
        drop(other);
        // Handed back alone: kept, and the next output goes into it.
        let second = transmitted(&mut s, 100);
        let at2 = second.as_ptr();
        s.reuse_output(second);
        assert_eq!(s.spare.len(), 1);
        s.call(Target::Name("x".into()), vec![]).unwrap();
        assert!(s.spare.is_empty());
        assert_eq!(s.out.as_ptr(), at2);
        transmitted(&mut s, 99);
        // Two are kept at most.
        let three: Vec<Bytes> = (0..3).map(|_| transmitted(&mut s, 100)).collect();
        for b in three {
            s.reuse_output(b);
        }
        assert_eq!(s.spare.len(), 2);
        // A smaller transmit under steady traffic keeps them; a quiet one (a ping's worth)
        // gives back those larger than it needs.
        let medium = transmitted(&mut s, 40);
        assert!((512..4096).contains(&medium.len()), "{}", medium.len());
        assert_eq!(s.spare.len(), 1, "one was written into, the other kept");
        s.reuse_output(medium);
        assert_eq!(s.spare.len(), 2);
        transmitted(&mut s, 1);
        assert!(
            s.spare.is_empty(),
            "{:?}",
            s.spare.iter().map(Vec::capacity).collect::<Vec<_>>()
        );
        // A closed session keeps none.
        let last = transmitted(&mut s, 1);
        s.close();
        s.reuse_output(last);
        assert!(s.spare.is_empty());
    }

    #[test]
    fn a_wire_id_of_ours_takes_16_bytes_beside_its_key() {
        // One per callback in flight: a hundred thousand calls hold one each.
        assert_eq!(std::mem::size_of::<Owner>(), 16);
    }
}
