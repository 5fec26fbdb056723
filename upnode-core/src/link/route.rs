//! What the link does with each session event, the same way on both sides.

use super::calls::Calls;
use super::error::{CallFailure, LinkError};
use super::event::LinkEvent;
use super::heartbeat::{answer_ping, Heartbeat, PING_EXPORT, PONG_CALLBACK, RESERVED_FN_BASE};
use super::ids::ConnId;
use super::timers::TimerTable;
use crate::session::{Session, SessionEvent};
use std::collections::VecDeque;
use std::time::Instant;

/// What one connection's session events act on.
pub(crate) struct Route<'a> {
    /// The connection the events came on.
    pub conn: ConnId,
    /// When they came.
    pub now: Instant,
    /// The connection's session.
    pub session: &'a mut Session,
    /// The connection's heartbeat, and the timer table it keeps its deadlines in.
    pub heartbeat: &'a mut Heartbeat,
    /// The link's timers.
    pub timers: &'a mut TimerTable,
    /// Our calls waiting for an answer.
    pub calls: &'a mut Calls,
    /// Where link events go.
    pub events: &'a mut VecDeque<LinkEvent>,
}

/// What [`Route::route`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routed {
    /// Handled here.
    Done,
    /// The peer's interface arrived: each side handles that itself.
    Remote,
}

impl Route<'_> {
    /// Routes one session event into link events: answers the peer's ping, completes our
    /// own, reports calls to our functions (with the tracked call each answers) and releases
    /// (failing a call whose every callback the peer freed unanswered).
    pub fn route(&mut self, ev: SessionEvent) -> Routed {
        match ev {
            SessionEvent::Remote => return Routed::Remote,
            SessionEvent::Call { function, args } if function == PING_EXPORT => {
                answer_ping(self.session, &args);
            }
            SessionEvent::Call { function, args } if function == PONG_CALLBACK => {
                for a in &args {
                    self.session.release_value(a);
                }
                // Each ping gets a fresh callback id: a Node peer with `weak` culls the id of
                // an earlier ping whenever its garbage collector frees it, and a reused id
                // would then be gone when the next ping's answer comes.
                self.session.forget(PONG_CALLBACK);
                if let Some(rtt) = self.heartbeat.answered(self.timers, self.now) {
                    self.events.push_back(LinkEvent::Ping { rtt });
                }
            }
            SessionEvent::Call { function, args } => {
                let answers = self.calls.answered_by(self.session, function);
                self.events.push_back(LinkEvent::Call {
                    conn: self.conn,
                    function,
                    args,
                    answers,
                });
            }
            SessionEvent::Released { function } => {
                if let Some(ended) = self.calls.released(function) {
                    self.events.push_back(ended.failed(CallFailure::Dropped));
                }
                if function.0 < RESERVED_FN_BASE {
                    self.events.push_back(LinkEvent::Released {
                        conn: self.conn,
                        function,
                    });
                }
            }
            SessionEvent::Error(e) => self.events.push_back(LinkEvent::Error(e.into())),
            SessionEvent::ForwardFailed { error, .. } => {
                self.events
                    .push_back(LinkEvent::Error(LinkError::Local(error)));
            }
        }
        Routed::Done
    }
}
