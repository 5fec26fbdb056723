//! Moving bytes between a transport and a state machine, without blocking either direction.

use crate::runtime::{BoxStream, Runtime};
use bytes::{Buf, Bytes};
use futures::io::{AsyncRead, AsyncWrite};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

const READ_CHUNK: usize = 16 * 1024;

/// Written buffers kept for the state machine's next output (a burst's full piece and the
/// rest after it).
const KEEP_WRITTEN: usize = 2;

/// An open transport with its pending output.
pub(crate) struct Io {
    stream: BoxStream,
    /// Output not yet taken by the transport: the state machine's buffers themselves, in
    /// order (never copied: a burst of calls is held once).
    out: VecDeque<Bytes>,
    /// Bytes in `out`.
    unsent: usize,
    need_flush: bool,
    buf: Vec<u8>,
    read_closed: bool,
    /// Reading is paused (the peer does not read our output): report every write instead.
    paused: bool,
    /// A write from a caller's side failed: the driver's next poll reports it.
    failed: Option<io::Error>,
    /// Buffers the transport has taken all of, for the driver to hand back to its state
    /// machine ([`KEEP_WRITTEN`] at most: later ones are dropped).
    written: Vec<Bytes>,
}

/// What happened on the transport.
pub(crate) enum IoEvent {
    /// Bytes arrived (valid in `Io::received`).
    Data(usize),
    /// The peer ended the stream.
    Eof,
    /// Reading or writing failed.
    Error(io::Error),
    /// Reading is paused and some output was written: the unsent count went down.
    Sent,
}

impl Io {
    pub fn new(stream: BoxStream) -> Io {
        Io {
            stream,
            out: VecDeque::new(),
            unsent: 0,
            need_flush: false,
            buf: vec![0; READ_CHUNK],
            read_closed: false,
            paused: false,
            failed: None,
            written: Vec::new(),
        }
    }

    /// Bytes queued and not yet taken by the transport.
    pub fn unsent(&self) -> usize {
        self.unsent
    }

    /// Stops (or resumes) reading: back-pressure on a peer that does not read our output.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Queues bytes to write.
    pub fn send(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.unsent += bytes.len();
            self.out.push_back(bytes);
        }
    }

    /// A buffer the transport has taken all of, if one was kept.
    pub fn take_written(&mut self) -> Option<Bytes> {
        self.written.pop()
    }

    /// The bytes of the last [`IoEvent::Data`].
    pub fn received(&self, n: usize) -> &[u8] {
        &self.buf[..n]
    }

    /// Writes what the transport takes now, from a caller's thread rather than the driver's
    /// task: nobody is woken when the transport has room again, so the caller wakes the
    /// driver afterwards, whose next poll registers its own waker (the last registered is
    /// the one kept). A failure is kept for the driver to report.
    pub fn write_through(&mut self) {
        if self.failed.is_none() {
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            if let Some(IoEvent::Error(e)) = self.write_out(&mut cx) {
                self.failed = Some(e);
            }
        }
    }

    /// Writes what the transport takes now, without reading: an error if writing failed.
    pub fn write_out(&mut self, cx: &mut Context<'_>) -> Option<IoEvent> {
        if let Some(e) = self.failed.take() {
            return Some(IoEvent::Error(e));
        }
        while let Some(chunk) = self.out.front_mut() {
            match Pin::new(&mut self.stream).poll_write(cx, chunk) {
                Poll::Ready(Ok(0)) => return Some(IoEvent::Error(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    chunk.advance(n);
                    if chunk.is_empty() {
                        let done = self.out.pop_front();
                        if self.written.len() < KEEP_WRITTEN {
                            self.written.extend(done);
                        }
                    }
                    self.unsent -= n;
                    self.need_flush = true;
                }
                Poll::Ready(Err(e)) => return Some(IoEvent::Error(e)),
                Poll::Pending => break,
            }
        }
        if self.out.is_empty() && self.need_flush {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.need_flush = false,
                Poll::Ready(Err(e)) => return Some(IoEvent::Error(e)),
                Poll::Pending => {}
            }
        }
        None
    }

    /// Writes what it can, then reads. Pending when there is nothing to report.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<IoEvent> {
        let before = self.unsent;
        if let Some(ev) = self.write_out(cx) {
            return Poll::Ready(ev);
        }
        if self.paused {
            return if self.unsent < before {
                Poll::Ready(IoEvent::Sent)
            } else {
                Poll::Pending
            };
        }
        if self.read_closed {
            return Poll::Pending;
        }
        match Pin::new(&mut self.stream).poll_read(cx, &mut self.buf) {
            Poll::Ready(Ok(0)) => {
                self.read_closed = true;
                Poll::Ready(IoEvent::Eof)
            }
            Poll::Ready(Ok(n)) => Poll::Ready(IoEvent::Data(n)),
            Poll::Ready(Err(e)) => Poll::Ready(IoEvent::Error(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Flushes what is pending and closes the write side, best effort, for at most
    /// `bound`: then the stream is dropped whatever the peer does (a peer that does not read
    /// cannot hold a closing connection, its memory or its slot).
    pub async fn shutdown(mut self, rt: &dyn Runtime, bound: Duration) {
        use futures::AsyncWriteExt;
        let out = std::mem::take(&mut self.out);
        let mut stream = self.stream;
        let flush = async move {
            for chunk in out {
                if stream.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = stream.close().await;
        };
        let deadline = rt.sleep_for(bound);
        let _ = futures::future::select(Box::pin(flush), deadline).await;
    }
}
