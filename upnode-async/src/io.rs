//! Moving bytes between a transport and a state machine, without blocking either direction.

use crate::runtime::BoxStream;
use bytes::{Buf, BytesMut};
use futures::io::{AsyncRead, AsyncWrite};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

const READ_CHUNK: usize = 16 * 1024;

/// An open transport with its pending output.
pub(crate) struct Io {
    stream: BoxStream,
    out: BytesMut,
    need_flush: bool,
    buf: Vec<u8>,
    read_closed: bool,
}

/// What happened on the transport.
pub(crate) enum IoEvent {
    /// Bytes arrived (valid in `Io::received`).
    Data(usize),
    /// The peer ended the stream.
    Eof,
    /// Reading or writing failed.
    Error(io::Error),
}

impl Io {
    pub fn new(stream: BoxStream) -> Io {
        Io {
            stream,
            out: BytesMut::new(),
            need_flush: false,
            buf: vec![0; READ_CHUNK],
            read_closed: false,
        }
    }

    /// Queues bytes to write.
    pub fn send(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// The bytes of the last [`IoEvent::Data`].
    pub fn received(&self, n: usize) -> &[u8] {
        &self.buf[..n]
    }

    /// Writes what it can, then reads. Pending when there is nothing to report.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<IoEvent> {
        while !self.out.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(IoEvent::Error(io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    self.out.advance(n);
                    self.need_flush = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(IoEvent::Error(e)),
                Poll::Pending => break,
            }
        }
        if self.out.is_empty() && self.need_flush {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.need_flush = false,
                Poll::Ready(Err(e)) => return Poll::Ready(IoEvent::Error(e)),
                Poll::Pending => {}
            }
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

    /// Flushes what is pending and closes the write side, best effort.
    pub async fn shutdown(mut self) {
        use futures::AsyncWriteExt;
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            let _ = self.stream.write_all(&out).await;
        }
        let _ = self.stream.close().await;
    }
}
