//! A listener that holds at most [`MAX_CONNECTIONS`] connections open at once: past
//! that, new ones wait in the kernel's backlog until one closes. Each browser tab keeps
//! a connection or two; a client opening thousands gets no more of the server's sockets
//! and tasks than this.
//!
//! And a connection cannot hold its slot for nothing: one on which the server has
//! written nothing for the idle timeout while it waits to read is closed. Why "written"
//! and not "read": a client that sends a request a byte at a time (or opens a connection
//! and says nothing) is making the server wait without ever getting an answer, and the
//! bytes it trickles must not keep the connection alive; a live stream, on the other
//! hand, is written to at least every keep-alive interval (half the idle timeout at
//! most), and a request being answered is written to when its answer is ready. axum's
//! `serve` sets no header-read timeout of hyper's, so this is where it is kept.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use super::MAX_CONNECTIONS;

/// A TCP listener with a bound on open connections and on how long one may go unanswered.
pub(super) struct Bounded {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl Bounded {
    /// `idle`: how long a connection may wait to read with nothing written to it.
    pub(super) fn new(listener: TcpListener, idle: Duration) -> Self {
        Self {
            listener,
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            idle,
        }
    }
}

impl axum::serve::Listener for Bounded {
    type Io = Counted;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed.
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        (
            Counted {
                stream,
                _slot: slot,
                idle: self.idle,
                deadline: Box::pin(tokio::time::sleep(self.idle)),
            },
            addr,
        )
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A connection holding its slot until it is closed, or until it has waited to read for
/// the idle timeout since the server last wrote to it.
pub(super) struct Counted {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    /// The idle timeout from the last write (or the accept).
    deadline: Pin<Box<Sleep>>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Pending if self.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "nothing answered on this connection for {}",
                        humantime::format_duration(self.idle)
                    ),
                )))
            }
            read => read,
        }
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            let next = Instant::now() + self.idle;
            self.deadline.as_mut().reset(next);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
