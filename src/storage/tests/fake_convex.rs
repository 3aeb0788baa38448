//! A stand-in Convex deployment on `127.0.0.1:0`: it records every call (function name and
//! the `args` inside the auth envelope) and answers through a handler, so that tests observe
//! exactly what the storage sends without a real backend. Every answer carries a `Date`
//! header from the system clock, as a deployment's does.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One call the fake received.
#[derive(Clone, Debug)]
pub struct Call {
    /// The function name, without the module (`insertMany`).
    pub function: String,
    /// The operation's arguments (inside `{authSecret, args}`).
    pub args: Value,
}

/// What the fake answers to one call.
pub enum Answer {
    Value(Value),
    /// A function error with `errorData.code`.
    Error {
        code: &'static str,
        message: String,
    },
    /// A function error with this `errorData` (`None`: a plain error, as the original
    /// component throws them).
    ErrorData {
        message: String,
        data: Option<Value>,
    },
    /// An HTTP status without a function result (e.g. 503).
    Status(u16),
    /// The call is received (and whatever the handler did is done) but the connection drops
    /// before any answer: a response lost after the commit.
    Lost,
}

type Handler = dyn Fn(&Call) -> Answer + Send + Sync;

pub struct FakeConvex {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    server: JoinHandle<()>,
}

impl FakeConvex {
    pub async fn start(handler: impl Fn(&Call) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = Arc::clone(&calls);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = Arc::clone(&handler);
                let recorded = Arc::clone(&recorded);
                tokio::spawn(serve_connection(stream, handler, recorded));
            }
        });
        Self { url, calls, server }
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls lock").clone()
    }
}

impl Drop for FakeConvex {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    handler: Arc<Handler>,
    recorded: Arc<Mutex<Vec<Call>>>,
) {
    let Some(body) = read_body(&mut stream).await else {
        return;
    };
    let request: Value = serde_json::from_slice(&body).expect("the client sent JSON");
    let path = request["path"].as_str().expect("a function path");
    let function = path.split_once(':').map_or(path, |(_, f)| f).to_owned();
    let call = Call {
        function,
        args: request["args"]["args"].clone(),
    };
    recorded.lock().expect("calls lock").push(call.clone());
    let (status, answer) = match handler(&call) {
        Answer::Value(value) => (
            200,
            json!({"status": "success", "value": value, "logLines": []}),
        ),
        Answer::Error { code, message } => (
            200,
            json!({
                "status": "error",
                "errorMessage": message,
                "errorData": {"code": code},
                "logLines": []
            }),
        ),
        Answer::ErrorData { message, data } => {
            let mut body = json!({"status": "error", "errorMessage": message, "logLines": []});
            if let Some(data) = data {
                body["errorData"] = data;
            }
            (200, body)
        }
        Answer::Status(status) => (
            status,
            json!({"code": "Overloaded", "message": "the fake is busy"}),
        ),
        Answer::Lost => return,
    };
    let body = answer.to_string();
    let date = crate::runtime::http_date::format_http_date(crate::storage::now_millis());
    let response = format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nDate: {date}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The body of one HTTP/1.1 request with a `Content-Length`.
async fn read_body(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(body)
}
