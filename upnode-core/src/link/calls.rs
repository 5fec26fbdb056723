//! Our calls that wait for an answer on one connection: the in-flight table, its limit, the
//! calls waiting for a slot, and their deadlines.

use super::deadlines::Deadlines;
use super::error::{CallFailure, SendError};
use super::event::LinkEvent;
use super::ids::CallId;
use super::timers::after;
use crate::config::{CallLimits, WhenFull};
use crate::error::LocalError;
use crate::id_set::IdSet;
use crate::protocol::{CallArgs, Function, LocalFn, Value};
use crate::seq_map::SeqMap;
use crate::session::{Session, Target};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The functions of ours whose first call answers a call: most calls carry one.
#[derive(Debug)]
enum Fns {
    /// A reply callback, forgotten once the call resolves, with the wire id the session
    /// gave it ([`NOT_SENT`] while the call waits for a slot).
    Reply(LocalFn, u64),
    One(LocalFn),
    Many(Box<[LocalFn]>),
}

/// The wire id of a reply not sent yet.
const NOT_SENT: u64 = u64::MAX;

impl Fns {
    fn as_slice(&self) -> &[LocalFn] {
        match self {
            Fns::Reply(f, _) | Fns::One(f) => std::slice::from_ref(f),
            Fns::Many(v) => v,
        }
    }
}

/// One tracked call: the functions of ours whose first call answers it. Kept small (24
/// bytes: a hundred thousand calls in flight hold one each); its deadline, if any, is in
/// the deadline table.
#[derive(Debug)]
struct Tracked {
    fns: Fns,
}

impl Tracked {
    /// The reply callback, for a call made with one.
    fn reply_fn(&self) -> Option<LocalFn> {
        match self.fns {
            Fns::Reply(f, _) => Some(f),
            _ => None,
        }
    }

    /// Sends the call through `session`; a reply's wire id is kept.
    fn send(
        &mut self,
        session: &mut Session,
        target: Target,
        args: CallArgs,
    ) -> Result<(), LocalError> {
        match &mut self.fns {
            Fns::Reply(f, wire) => *wire = session.call_with_reply(target, args, *f)?,
            _ => session.call(target, args)?,
        }
        Ok(())
    }
}

/// A tracked call that ended without an answer, with its reply callback if it was made with
/// one: what the link reports as [`LinkEvent::CallFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    pub call: CallId,
    pub reply: Option<LocalFn>,
}

impl Ended {
    fn of(call: CallId, t: &Tracked) -> Ended {
        Ended {
            call,
            reply: t.reply_fn(),
        }
    }

    /// The event that reports it.
    pub fn failed(self, reason: CallFailure) -> LinkEvent {
        LinkEvent::CallFailed {
            call: self.call,
            reply: self.reply,
            reason,
        }
    }
}

/// A call to make: to whom, with what, and how long its answer may take.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub target: Target,
    pub args: CallArgs,
    pub timeout: Option<Duration>,
}

/// A call that waits for a slot, not sent yet.
#[derive(Debug)]
struct Queued {
    target: Target,
    args: CallArgs,
    tracked: Tracked,
}

/// Calls that wait for an answer: resolved by the first call of any callback they carried
/// (for a call with a reply callback, by that callback only), a deadline, the peer culling
/// all their callbacks, or the connection ending. At most `limit.max_in_flight` are sent at
/// once; the rest wait in the order they were made.
#[derive(Debug)]
pub(crate) struct Calls {
    limit: CallLimits,
    /// The connection's output is over its cap: tracked calls wait (or fail) as if no slot
    /// were free.
    held: bool,
    next: u64,
    /// Calls sent, by call id (handed out in sequence).
    sent: SeqMap<Tracked>,
    /// The call each function of ours answers, by function (our keys, handed out in
    /// sequence by the async layer; any others work too, through the map's stragglers).
    by_fn: SeqMap<CallId>,
    queued: BTreeMap<CallId, Queued>,
    deadlines: Deadlines,
}

impl Calls {
    pub fn new(limit: CallLimits) -> Calls {
        Calls {
            limit,
            held: false,
            next: 0,
            sent: SeqMap::default(),
            by_fn: SeqMap::default(),
            queued: BTreeMap::new(),
            deadlines: Deadlines::default(),
        }
    }

    /// Sends `call` through `session`, refusing the link's reserved keys. Any function of
    /// ours in its arguments answers it; a call without one is sent untracked (`None`). A
    /// tracked call past the in-flight limit waits for a slot or fails, as
    /// [`CallLimits::when_full`] says.
    pub fn make(
        &mut self,
        session: &mut Session,
        now: Instant,
        call: Outgoing,
    ) -> Result<Option<CallId>, SendError> {
        let fns = match local_fns(call.args.values())? {
            mut one if one.len() == 1 => Fns::One(one.remove(0)),
            many => Fns::Many(many.into_boxed_slice()),
        };
        if fns.as_slice().is_empty() {
            session
                .call(call.target, call.args)
                .map_err(SendError::Local)?;
            return Ok(None);
        }
        self.send_or_queue(session, now, call, fns).map(Some)
    }

    /// As [`make`](Self::make), with `reply` appended as the last argument: only its first
    /// call answers the call, and it is forgotten when the call resolves.
    pub fn make_with_reply(
        &mut self,
        session: &mut Session,
        now: Instant,
        call: Outgoing,
        reply: LocalFn,
    ) -> Result<CallId, SendError> {
        if reply.0 >= super::RESERVED_FN_BASE || uses_reserved_key(call.args.values()) {
            return Err(SendError::ReservedKey);
        }
        self.send_or_queue(session, now, call, Fns::Reply(reply, NOT_SENT))
    }

    /// Sends a tracked call now, or queues it for a slot, or refuses it when full.
    fn send_or_queue(
        &mut self,
        session: &mut Session,
        now: Instant,
        call: Outgoing,
        fns: Fns,
    ) -> Result<CallId, SendError> {
        let Outgoing {
            target,
            mut args,
            timeout,
        } = call;
        let deadline = timeout.and_then(|t| after(now, t));
        let mut tracked = Tracked { fns };
        let has_slot = self.sent.len() < self.limit.max_in_flight.max(1);
        if !has_slot || self.held || !self.queued.is_empty() {
            if self.limit.when_full == WhenFull::Fail {
                return Err(if self.held {
                    SendError::OutputFull
                } else {
                    SendError::TooManyInFlight {
                        limit: self.limit.max_in_flight,
                    }
                });
            }
            if self.queued.len() >= self.limit.max_waiting {
                return Err(SendError::TooManyWaiting {
                    limit: self.limit.max_waiting,
                });
            }
            let id = self.next_id();
            if let Some(d) = deadline {
                self.deadlines.push(d, id);
            }
            // It may wait long, among many: it keeps no spare room.
            args.shrink_to_fit();
            self.queued.insert(
                id,
                Queued {
                    target,
                    args,
                    tracked,
                },
            );
            return Ok(id);
        }
        tracked
            .send(session, target, args)
            .map_err(SendError::Local)?;
        let id = self.next_id();
        if let Some(d) = deadline {
            self.deadlines.push(d, id);
        }
        self.mark_sent(id, tracked);
        Ok(id)
    }

    fn next_id(&mut self) -> CallId {
        let id = CallId(self.next);
        self.next += 1;
        id
    }

    /// Moves a call into the in-flight table (its deadline entry, if any, is already in).
    fn mark_sent(&mut self, id: CallId, t: Tracked) {
        for f in t.fns.as_slice() {
            self.by_fn.insert(f.0, id);
        }
        self.sent.insert(id.0, t);
    }

    /// Sends waiting calls while slots are free. A call the session refuses now (a handle
    /// in its arguments was released meanwhile, a limit) fails with
    /// [`CallFailure::Refused`]; the failures are returned in call order.
    pub fn refill(&mut self, session: &mut Session) -> Vec<(Ended, CallFailure)> {
        let mut failed = Vec::new();
        while !self.held && self.sent.len() < self.limit.max_in_flight.max(1) {
            let Some((id, mut q)) = self.queued.pop_first() else {
                break;
            };
            match q.tracked.send(session, q.target, q.args) {
                Ok(()) => self.mark_sent(id, q.tracked),
                Err(e) => failed.push((Ended::of(id, &q.tracked), CallFailure::Refused(e))),
            }
        }
        if !failed.is_empty() {
            self.settle();
        }
        failed
    }

    /// Holds tracked calls back while the connection's output is over its cap (they go out
    /// with [`refill`](Self::refill) once it is not).
    pub fn hold(&mut self, held: bool) {
        self.held = held;
    }

    /// A callback of ours was called: the call it belongs to (if still waiting) is answered.
    pub fn answered_by(&mut self, session: &mut Session, f: LocalFn) -> Option<CallId> {
        let id = *self.by_fn.get(f.0)?;
        self.remove(Some(session), id);
        Some(id)
    }

    /// The peer freed `f` without calling it: the call it belongs to fails once none of its
    /// callbacks is left.
    pub fn released(&mut self, f: LocalFn) -> Option<Ended> {
        let id = self.by_fn.remove(f.0)?;
        let left = match self.sent.get(id.0) {
            Some(t) => t
                .fns
                .as_slice()
                .iter()
                .any(|x| *x != f && self.by_fn.get(x.0) == Some(&id)),
            None => return None,
        };
        if left {
            return None;
        }
        self.remove(None, id).map(|t| Ended::of(id, &t))
    }

    /// Forgets call `id`; a sent call's reply callback is forgotten by `session` too.
    fn remove(&mut self, session: Option<&mut Session>, id: CallId) -> Option<Tracked> {
        let t = match self.sent.remove(id.0) {
            Some(t) => {
                for f in t.fns.as_slice() {
                    if self.by_fn.get(f.0) == Some(&id) {
                        self.by_fn.remove(f.0);
                    }
                }
                if let (Fns::Reply(_, wire), Some(s)) = (&t.fns, session) {
                    s.forget_reply(*wire);
                }
                t
            }
            None => self.queued.remove(&id)?.tracked,
        };
        // (Cheap when the deadline table's first entries are live, or it is empty.)
        self.settle();
        Some(t)
    }

    /// Keeps the deadline table's top live and its stale entries bounded.
    fn settle(&mut self) {
        let (sent, queued) = (&self.sent, &self.queued);
        self.deadlines.settle(sent.len() + queued.len(), |c| {
            sent.contains_key(c.0) || queued.contains_key(&c)
        });
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    /// Calls (sent or waiting) whose deadline is at or before `now`, in deadline order.
    /// `session` forgets their reply callbacks, so a late answer is reported as a call of an
    /// unknown callback.
    pub fn expire(&mut self, mut session: Option<&mut Session>, now: Instant) -> Vec<Ended> {
        let mut out = Vec::new();
        while let Some(id) = self.deadlines.pop_due(now) {
            if let Some(t) = self.remove(session.as_deref_mut(), id) {
                out.push(Ended::of(id, &t));
            }
        }
        self.settle();
        out
    }

    /// Every call, sent or waiting, in the order they were made; the tables are left empty
    /// (the connection is gone, and its wire ids with it).
    pub fn drain(&mut self) -> Vec<Ended> {
        let mut ended: Vec<Ended> = (self.sent.take_all().into_iter())
            .map(|(id, t)| Ended::of(CallId(id), &t))
            .collect();
        ended.extend(
            std::mem::take(&mut self.queued)
                .into_iter()
                .map(|(id, q)| Ended::of(id, &q.tracked)),
        );
        self.by_fn.clear();
        self.deadlines.clear();
        self.held = false;
        ended
    }

    /// Calls sent and waiting for an answer.
    pub fn in_flight(&self) -> usize {
        self.sent.len()
    }

    /// Calls waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.queued.len()
    }
}

/// Calls `each` for every function of ours in `args` (one walk over them), or fails with
/// [`SendError::ReservedKey`] if one is from the link's reserved range.
fn scan_local_fns(args: &[Value], mut each: impl FnMut(LocalFn)) -> Result<(), SendError> {
    let mut reserved = false;
    for a in args {
        a.for_each_function(&mut |f| {
            if let Function::Local(l) = f {
                reserved |= l.0 >= super::RESERVED_FN_BASE;
                each(l);
            }
        });
    }
    if reserved {
        return Err(SendError::ReservedKey);
    }
    Ok(())
}

/// Whether `args` hold a function key from the reserved range.
fn uses_reserved_key(args: &[Value]) -> bool {
    scan_local_fns(args, |_| {}).is_err()
}

/// The local functions in `args`, each once, for in-flight tracking; or
/// [`SendError::ReservedKey`].
fn local_fns(args: &[Value]) -> Result<Vec<LocalFn>, SendError> {
    let mut out = IdSet::default();
    scan_local_fns(args, |l| {
        out.insert(l);
    })?;
    Ok(out.into_vec())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tracked_call_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<super::Tracked>(), 24);
    }
}
