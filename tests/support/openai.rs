//! A local server speaking the OpenAI chat-completions wire format, one request per
//! connection, answering each with the next of a list of replies and keeping every
//! request's head and body.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server answers to one request.
pub enum Reply {
    Status(u16, &'static str),
    Stream(Vec<Value>),
    /// A 200 whose body is written in these pieces, each flushed on its own.
    Pieces(Vec<Vec<u8>>),
    /// An error status whose body never ends.
    EndlessError,
    /// A 200 event stream of text deltas that never ends.
    EndlessStream,
    Hang,
}

/// A one-request-per-connection HTTP server; records each request's head and body.
pub struct Server {
    pub base_url: String,
    pub requests: Arc<Mutex<Vec<(String, Value)>>>,
}

pub async fn serve(replies: Vec<Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    tokio::spawn(async move {
        for reply in replies {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body) = loop {
                let n = socket.read(&mut buf).await.unwrap();
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let head = text[..end].to_owned();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + length {
                        let body = serde_json::from_slice(&raw[end + 4..end + 4 + length])
                            .unwrap_or(Value::Null);
                        break (head, body);
                    }
                }
            };
            log.lock().unwrap().push((head, body));
            let response = match reply {
                Reply::Status(code, headers) => format!(
                    "HTTP/1.1 {code} Status\r\n{headers}Content-Length: 17\r\nConnection: close\r\n\r\n{{\"error\": \"busy\"}}"
                ),
                Reply::Stream(chunks) => {
                    let mut text = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n".to_owned();
                    for chunk in chunks {
                        text.push_str(&format!("data: {chunk}\n\n"));
                    }
                    text.push_str("data: [DONE]\n\n");
                    text
                }
                Reply::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    continue;
                }
                Reply::Pieces(pieces) => {
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
                    let _ = socket.write_all(head.as_bytes()).await;
                    for piece in pieces {
                        let _ = socket.write_all(&piece).await;
                        let _ = socket.flush().await;
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                    let _ = socket.shutdown().await;
                    continue;
                }
                Reply::EndlessError | Reply::EndlessStream => {
                    let (head, line) = if matches!(reply, Reply::EndlessError) {
                        (
                            "HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\n",
                            "x".repeat(8192),
                        )
                    } else {
                        (
                            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
                            format!(
                                "data: {}\n\n",
                                json!({"choices": [{"delta": {"content": "y".repeat(8000)}}]})
                            ),
                        )
                    };
                    let _ = socket.write_all(head.as_bytes()).await;
                    while socket.write_all(line.as_bytes()).await.is_ok() {}
                    continue;
                }
            };
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    Server { base_url, requests }
}
