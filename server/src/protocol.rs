//! Protocol errors answered as the JSON envelope.
//!
//! When a request cannot even be parsed (a bad request line, a header without a colon or with a
//! control byte, a request target or header block over the limit), hyper answers by itself,
//! before any handler runs, with a bare status and an empty body, and closes the connection.
//! hyper offers no hook for that answer, so the connection's socket is wrapped in
//! [`EnvelopeIo`], which recognises that automatic answer as it is written (its exact head:
//! status 400, 414 or 431, `connection: close`, `content-length: 0`, which no handler of this
//! server ever writes: every error a handler writes carries the envelope) and writes the same
//! answer with the contract's envelope as its body instead.

use alga_storage_core::{ErrorCode, StorageError};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most a request head (request line and headers) may take; past it, 431. A request target
/// over 65,534 bytes is 414 (hyper's limit; the head limit is above it so that the status says
/// which part was too long).
pub const MAX_HEAD_BYTES: usize = 96 * 1024;

/// A connection's socket whose hyper-made protocol error answers carry the JSON envelope.
#[derive(Debug)]
pub struct EnvelopeIo<T> {
    inner: T,
    /// The replacement being written: its bytes, how many are written, and the length of the
    /// automatic answer it stands for (reported to hyper as written once all are out).
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<T> EnvelopeIo<T> {
    /// Wraps a socket.
    pub fn new(inner: T) -> Self {
        EnvelopeIo {
            inner,
            replacing: None,
        }
    }
}

/// The envelope error for hyper's automatic status, if `head` is hyper's automatic answer.
fn automatic_answer(head: &[u8]) -> Option<StorageError> {
    const TAIL: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\n";
    let error = if head.starts_with(b"HTTP/1.1 400 Bad Request") {
        StorageError::new(
            ErrorCode::ValidationFailed,
            "the request is not valid HTTP/1.1 (request line or headers malformed)",
        )
    } else if head.starts_with(b"HTTP/1.1 414 URI Too Long") {
        StorageError::new(ErrorCode::PayloadTooLarge, "the request target is too long")
            .with_details(serde_json::json!({ "part": "requestTarget" }))
    } else if head.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large") {
        StorageError::new(
            ErrorCode::PayloadTooLarge,
            "the request headers are too large",
        )
        .with_details(serde_json::json!({ "part": "headers", "limitBytes": MAX_HEAD_BYTES }))
    } else {
        return None;
    };
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    head[line_end..]
        .starts_with(TAIL)
        .then_some(())
        .filter(|()| head.ends_with(b"\r\n\r\n"))
        .map(|()| error)
}

/// hyper's automatic answer `head` with the envelope of `error` as its body.
fn with_envelope(head: &[u8], error: &StorageError) -> Vec<u8> {
    let body = serde_json::to_vec(error).unwrap_or_default();
    let marker: &[u8] = b"content-length: 0\r\n";
    let at = head
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap_or(0);
    let mut out = Vec::with_capacity(head.len() + body.len() + 64);
    out.extend_from_slice(&head[..at]);
    out.extend_from_slice(b"content-type: application/json\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&head[at + marker.len()..]);
    out.extend_from_slice(&body);
    out
}

impl<T: AsyncRead + Unpin> AsyncRead for EnvelopeIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EnvelopeIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            match automatic_answer(buf) {
                Some(error) => this.replacing = Some((with_envelope(buf, &error), 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let Some((bytes, written, stands_for)) = this.replacing.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let stands_for = *stands_for;
        this.replacing = None;
        Poll::Ready(Ok(stands_for))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes each head as one buffer, which `poll_write` can recognise.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTO: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 18:48:43 GMT\r\n\r\n";

    #[test]
    fn the_automatic_answer_gets_the_envelope() {
        let error = automatic_answer(AUTO).expect("recognised");
        let out = String::from_utf8(with_envelope(AUTO, &error)).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n"));
        assert!(head.contains("content-type: application/json\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("date: Sun, 29 Nov 2026"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "VALIDATION_FAILED");
    }

    #[test]
    fn handler_answers_are_left_alone() {
        let handler = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(automatic_answer(handler).is_none());
        let ok = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert!(automatic_answer(ok).is_none());
        // A head split across writes is not taken for the automatic answer.
        assert!(automatic_answer(&AUTO[..30]).is_none());
    }
}
