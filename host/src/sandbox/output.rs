//! [`GuestOutput`]: where a guest's stdout and stderr go.
//!
//! Never inherited: each complete line becomes a `WORKER_LOG` event (`stream` = `stdout`
//! or `stderr`) until the worker's `max_output_log_bytes` budget is spent, after which
//! output is discarded (one last event says so). The tail of stderr is also kept to
//! explain a crash (a Rust panic writes its message there).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept in one event; longer lines are split.
const MAX_LINE: usize = 4096;

/// Where a guest's output lines go (the worker publishes them as `WORKER_LOG` events).
pub(crate) trait OutputSink: Send + Sync {
    /// One line of `stream` (`stdout` or `stderr`), at `level`.
    fn line(&self, stream: &'static str, level: &'static str, message: String);
}

/// Output budget shared by a worker's stdout and stderr.
pub(crate) struct OutputBudget {
    remaining: usize,
    exhausted: bool,
    stderr_tail: VecDeque<u8>,
    tail_capacity: usize,
}

impl OutputBudget {
    pub(crate) fn new(budget: usize, tail_capacity: usize) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            remaining: budget,
            exhausted: false,
            stderr_tail: VecDeque::new(),
            tail_capacity,
        }))
    }

    /// The last bytes the guest wrote to stderr, as text.
    pub(crate) fn stderr_tail(budget: &Mutex<Self>) -> String {
        let budget = budget.lock().unwrap_or_else(|e| e.into_inner());
        let bytes: Vec<u8> = budget.stderr_tail.iter().copied().collect();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }
}

/// One of a guest's output streams.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    inner: Arc<Mutex<Line>>,
}

struct Line {
    stream: &'static str,
    pending: Vec<u8>,
    budget: Arc<Mutex<OutputBudget>>,
    /// Weak: the store (which owns this stream) must not keep the worker alive.
    sink: Weak<dyn OutputSink>,
}

impl GuestOutput {
    pub(crate) fn new(
        stream: &'static str,
        budget: Arc<Mutex<OutputBudget>>,
        sink: Weak<dyn OutputSink>,
    ) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Line {
                stream,
                pending: Vec::new(),
                budget,
                sink,
            })),
        }
    }

    fn accept(&self, bytes: &[u8]) {
        let mut line = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        line.accept(bytes);
    }
}

impl Line {
    fn accept(&mut self, bytes: &[u8]) {
        if self.stream == "stderr" {
            let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
            let cap = budget.tail_capacity;
            budget.stderr_tail.extend(bytes.iter().copied());
            let excess = budget.stderr_tail.len().saturating_sub(cap);
            budget.stderr_tail.drain(..excess);
        }
        for &b in bytes {
            if b == b'\n' || self.pending.len() >= MAX_LINE {
                self.flush_line();
                if b == b'\n' {
                    continue;
                }
            }
            self.pending.push(b);
        }
    }

    fn flush_line(&mut self) {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        let size = self.pending.len() + 1;
        self.pending.clear();
        let Some(sink) = self.sink.upgrade() else {
            return;
        };
        let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        if budget.exhausted {
            return;
        }
        let level = if self.stream == "stderr" {
            "warn"
        } else {
            "info"
        };
        let message = if size > budget.remaining {
            budget.exhausted = true;
            "(output limit reached: further stdout/stderr is discarded)".to_owned()
        } else {
            budget.remaining -= size;
            text
        };
        drop(budget);
        sink.line(self.stream, level, message);
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.flush_line();
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
