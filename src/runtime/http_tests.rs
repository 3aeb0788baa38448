//! [`ConvexHttpClient`] against a real local HTTP server.
//!
//! Each test starts a one-connection HTTP/1.1 server on `127.0.0.1:0` that records the request it
//! received and answers with a canned raw response (or misbehaves on purpose), so that the whole
//! stack — reqwest, headers, body, status handling — is exercised, not a mock of it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{
    AuthSecret, ConvexError, ConvexHttpClient, Doc, FunctionKind, Id, RetryPolicy, StopReason,
};

const SECRET: &str = "s3cr3t-auth-Secret";
const ADMIN_KEY: &str = "dev:happy-otter|adm1nK3y";

/// What the test server received.
#[derive(Debug)]
struct Received {
    method: String,
    target: String,
    /// Header names lowercased, in arrival order.
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the client sent JSON")
    }
}

/// How the test server answers.
enum Reply {
    /// A full response with this status, extra headers and body.
    With {
        status: u16,
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Read the request, then close the connection without answering.
    Close,
    /// Read the request, then say nothing for a long time.
    Hang,
}

fn json_reply(status: u16, body: Value) -> Reply {
    Reply::With {
        status,
        content_type: "application/json",
        headers: Vec::new(),
        body: body.to_string(),
    }
}

fn text_reply(status: u16, body: &str) -> Reply {
    Reply::With {
        status,
        content_type: "text/html",
        headers: Vec::new(),
        body: body.to_owned(),
    }
}

async fn read_request(stream: &mut TcpStream) -> Received {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = stream.read(&mut chunk).await.expect("read request");
        assert!(n > 0, "connection closed before the request head ended");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let request_line = lines.next().expect("request line");
    let mut parts = request_line.split(' ');
    let method = parts.next().expect("method").to_owned();
    let target = parts.next().expect("target").to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().expect("content-length"))
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "connection closed before the body ended");
        body.extend_from_slice(&chunk[..n]);
    }
    Received {
        method,
        target,
        headers,
        body: String::from_utf8(body).expect("UTF-8 body"),
    }
}

/// Answers one accepted connection with `reply`; returns what it received.
async fn answer(mut stream: TcpStream, reply: Reply) -> Received {
    let received = read_request(&mut stream).await;
    match reply {
        Reply::With {
            status,
            content_type,
            headers,
            body,
        } => {
            let extra: String = headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}\r\n"))
                .collect();
            let response = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Type: {content_type}\r\n{extra}\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream
                .write_all(response.as_bytes())
                .await
                .expect("write response");
            let _ = stream.shutdown().await;
        }
        Reply::Close => drop(stream),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        }
    }
    received
}

/// Starts a server that accepts one connection and answers it with `reply`; the handle yields
/// what it received.
async fn serve(reply: Reply) -> (String, JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        answer(stream, reply).await
    });
    (url, handle)
}

/// Starts a server that answers one connection per reply, in order, then stops listening
/// (later connections are refused); the handle yields what each received and when (since the
/// server started).
async fn serve_script(replies: Vec<Reply>) -> (String, JoinHandle<Vec<(Duration, Received)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut received = Vec::new();
        for reply in replies {
            let (stream, _) = listener.accept().await.expect("accept");
            let at = started.elapsed();
            received.push((at, answer(stream, reply).await));
        }
        received
    });
    (url, handle)
}

/// A client without retries: each test below sees exactly one attempt.
fn client(url: &str) -> ConvexHttpClient {
    ConvexHttpClient::new(url)
        .expect("valid url")
        .with_timeout(Duration::from_secs(10))
        .with_retry_policy(RetryPolicy::none())
}

/// One mutation through the public API envelope, answered with `reply`.
async fn authenticated_mutation<R: serde::de::DeserializeOwned>(
    reply: Reply,
) -> (Result<R, ConvexError>, Received) {
    let (url, server) = serve(reply).await;
    let result = client(&url)
        .with_admin_key(ADMIN_KEY)
        .call_authenticated::<_, R>(
            FunctionKind::Mutation,
            "taskExecutionsStorage:insertMany",
            &AuthSecret::new(SECRET),
            &json!({"executions": []}),
        )
        .await;
    (result, server.await.expect("server task"))
}

/// One plain call of `kind`, answered with `reply`.
async fn plain_call<R: serde::de::DeserializeOwned>(
    kind: FunctionKind,
    reply: Reply,
) -> Result<R, ConvexError> {
    let (url, server) = serve(reply).await;
    let result = client(&url).call(kind, "lib:f", &json!({})).await;
    server.await.expect("server task");
    result
}

/// Asserts that none of the credentials shows up in the error's Display or Debug.
fn assert_no_secret(err: &ConvexError) {
    let text = format!("{err} | {err:?}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains(ADMIN_KEY), "{text}");
    assert!(!text.contains("adm1nK3y"), "{text}");
}

#[tokio::test]
async fn success_value_and_the_exact_request_sent() {
    let (result, received) = authenticated_mutation::<Vec<String>>(json_reply(
        200,
        json!({"status": "success", "value": ["a", "b"], "logLines": ["[LOG] hi"]}),
    ))
    .await;
    assert_eq!(result.expect("success"), ["a", "b"]);

    assert_eq!(received.method, "POST");
    assert_eq!(received.target, "/api/mutation");
    assert_eq!(received.header("content-type"), Some("application/json"));
    assert_eq!(
        received.header("convex-client"),
        Some(concat!("rust-", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(
        received.header("authorization"),
        Some(format!("Convex {ADMIN_KEY}").as_str())
    );
    assert_eq!(
        received.body,
        format!(
            r#"{{"path":"taskExecutionsStorage:insertMany","args":{{"authSecret":"{SECRET}","args":{{"executions":[]}}}},"format":"json"}}"#
        )
    );
}

#[tokio::test]
async fn plain_calls_use_the_kind_endpoint_and_no_envelope() {
    for (kind, endpoint) in [
        (FunctionKind::Query, "/api/query"),
        (FunctionKind::Mutation, "/api/mutation"),
        (FunctionKind::Action, "/api/action"),
    ] {
        let (url, server) = serve(json_reply(200, json!({"status": "success", "value": 7}))).await;
        let value: u32 = client(&url)
            .call(kind, "lib:count", &json!({"shard": 3}))
            .await
            .expect("success");
        assert_eq!(value, 7);
        let received = server.await.expect("server task");
        assert_eq!(received.target, endpoint);
        assert_eq!(received.header("authorization"), None);
        assert_eq!(
            received.json(),
            json!({"path": "lib:count", "args": {"shard": 3}, "format": "json"})
        );
    }
}

#[tokio::test]
async fn bearer_token_header() {
    let (url, server) = serve(json_reply(200, json!({"status": "success", "value": null}))).await;
    client(&url)
        .with_auth_token("jwt.t0ken")
        .call::<_, ()>(FunctionKind::Query, "lib:me", &json!({}))
        .await
        .expect("unit value from null");
    let received = server.await.expect("server task");
    assert_eq!(received.header("authorization"), Some("Bearer jwt.t0ken"));
}

/// Typed arguments and results, as the generated client uses them: integers through `wire`, a
/// `Doc<T>` back, a float-rendered integer accepted.
#[tokio::test]
async fn typed_arguments_and_documents() {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Args {
        #[serde(with = "crate::runtime::wire::integer")]
        shard: u32,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::runtime::wire::optional_integer"
        )]
        expires_at: Option<u64>,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Row {
        #[serde(with = "crate::runtime::wire::integer")]
        shard: u32,
        #[serde(default, with = "crate::runtime::wire::optional_integer")]
        expires_at: Option<u64>,
    }
    let (url, server) = serve(json_reply(
        200,
        json!({"status": "success", "value": [
            {"_id": "k1", "_creationTime": 1_700_000_000_000.5, "shard": 3.0, "expiresAt": 12}
        ]}),
    ))
    .await;
    let docs: Vec<Doc<Row>> = client(&url)
        .call(
            FunctionKind::Query,
            "lib:list",
            &Args {
                shard: 3,
                expires_at: None,
            },
        )
        .await
        .expect("success");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].id, Id::new("k1"));
    assert_eq!(docs[0].shard, 3);
    assert_eq!(docs[0].expires_at, Some(12));
    let received = server.await.expect("server task");
    assert_eq!(
        received.body,
        r#"{"path":"lib:list","args":{"shard":3},"format":"json"}"#
    );
}

#[tokio::test]
async fn function_error_without_error_data() {
    let (result, _) = authenticated_mutation::<Value>(json_reply(
        200,
        json!({"status": "error", "errorMessage": "Server Error", "logLines": []}),
    ))
    .await;
    let err = result.unwrap_err();
    match &err {
        ConvexError::Function {
            path,
            message,
            code,
            data,
        } => {
            assert_eq!(path, "taskExecutionsStorage:insertMany");
            assert_eq!(message, "Server Error");
            assert_eq!(code, &None);
            assert_eq!(data, &None);
        }
        other => panic!("expected Function, got {other:?}"),
    }
    assert!(!err.is_retry_safe());
    assert!(!err.is_unauthorized());
    assert_eq!(err.code(), None);
}

#[tokio::test]
async fn function_error_with_error_data() {
    let (result, _) = authenticated_mutation::<Value>(json_reply(
        200,
        json!({"status": "error", "errorMessage": "not found",
               "errorData": {"code": "NOT_FOUND", "executionId": "e1"}}),
    ))
    .await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, ConvexError::Function { code: Some(c), data: Some(d), .. }
            if c == "NOT_FOUND" && d["executionId"] == "e1"),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("NOT_FOUND"));
    assert!(!err.is_retry_safe());

    // errorData that is not an object with a string code: kept as data, no code.
    let err = plain_call::<Value>(
        FunctionKind::Action,
        json_reply(
            200,
            json!({"status": "error", "errorMessage": "m", "errorData": "just a string"}),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ConvexError::Function { code: None, data: Some(Value::String(s)), .. }
            if s == "just a string"),
        "{err:?}"
    );
}

#[tokio::test]
async fn status_560_carries_a_function_error() {
    let err = plain_call::<Value>(
        FunctionKind::Mutation,
        json_reply(
            560,
            json!({"status": "error", "errorMessage": "Uncaught Error: boom"}),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ConvexError::Function { message, .. } if message == "Uncaught Error: boom"),
        "{err:?}"
    );
    assert!(!err.is_retry_safe());
}

#[tokio::test]
async fn unauthorized_error_data_and_secret_never_leaks() {
    // The server even echoes the secret back: it must be scrubbed.
    let (result, _) = authenticated_mutation::<Value>(json_reply(
        200,
        json!({"status": "error",
               "errorMessage": format!("Unauthorized: bad secret {SECRET}"),
               "errorData": {"code": "UNAUTHORIZED"}}),
    ))
    .await;
    let err = result.unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    assert!(matches!(err, ConvexError::Unauthorized { .. }));
    assert_eq!(err.code(), Some("UNAUTHORIZED"));
    assert!(!err.is_retry_safe());
    assert!(err.to_string().contains("<redacted>"), "{err}");
    assert_no_secret(&err);

    // Echoed in errorData, a Decode message or an HTTP body too.
    let (result, _) = authenticated_mutation::<Value>(json_reply(
        200,
        json!({"status": "error", "errorMessage": "x",
               "errorData": {"code": "BAD", "got": SECRET, "key": ADMIN_KEY}}),
    ))
    .await;
    assert_no_secret(&result.unwrap_err());
    let (result, _) = authenticated_mutation::<u32>(json_reply(
        200,
        json!({"status": "success", "value": SECRET}),
    ))
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, ConvexError::Decode { .. }), "{err:?}");
    assert_no_secret(&err);
    let (result, _) = authenticated_mutation::<Value>(text_reply(502, SECRET)).await;
    assert_no_secret(&result.unwrap_err());
}

#[tokio::test]
async fn http_errors_with_code_and_message() {
    for status in [400u16, 401, 403, 404] {
        let (result, _) = authenticated_mutation::<Value>(json_reply(
            status,
            json!({"code": "BadJsonBody", "message": "Failed to parse"}),
        ))
        .await;
        let err = result.unwrap_err();
        match &err {
            ConvexError::Http {
                path,
                kind,
                status: s,
                code,
                message,
            } => {
                assert_eq!(path, "taskExecutionsStorage:insertMany");
                assert_eq!(*kind, FunctionKind::Mutation);
                assert_eq!(*s, status);
                assert_eq!(code.as_deref(), Some("BadJsonBody"));
                assert_eq!(message, "Failed to parse");
            }
            other => panic!("expected Http, got {other:?}"),
        }
        assert_eq!(err.code(), Some("BadJsonBody"));
        assert!(!err.is_retry_safe(), "{status}");
        assert!(!err.is_unauthorized(), "{status}");
        assert!(err.to_string().contains(&status.to_string()), "{err}");
    }
    // A query's 4xx is not retry-safe either: it will fail the same way.
    let err = plain_call::<Value>(FunctionKind::Query, text_reply(404, ""))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConvexError::Http { status: 404, code: None, message, .. }
            if message == "Not Found (empty body)"),
        "{err:?}"
    );
    assert!(!err.is_retry_safe());
}

#[tokio::test]
async fn rate_limited_and_unavailable_are_retry_safe_even_for_mutations() {
    for status in [429u16, 503] {
        let (result, _) = authenticated_mutation::<Value>(json_reply(
            status,
            json!({"code": "Overloaded", "message": "try later"}),
        ))
        .await;
        let err = result.unwrap_err();
        assert!(
            matches!(err.last_attempt(), ConvexError::Http { status: s, .. } if *s == status),
            "{err:?}"
        );
        assert!(err.is_retry_safe(), "{status}");
        assert!(err.is_transient(), "{status}");
        assert_eq!(err.code(), Some("Overloaded"));
        assert!(
            matches!(
                &err,
                ConvexError::Attempts {
                    attempts: 1,
                    stopped: StopReason::MaxAttempts(1),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("retries are disabled"), "{err}");
    }
    // 503 from a proxy, with an HTML body.
    let err = plain_call::<Value>(
        FunctionKind::Action,
        text_reply(503, "<html><body>Service Unavailable</body></html>"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err.last_attempt(), ConvexError::Http { status: 503, code: None, message, .. }
            if message == "<html><body>Service Unavailable</body></html>"),
        "{err:?}"
    );
    assert!(err.is_retry_safe());
}

#[tokio::test]
async fn server_errors_are_retry_safe_only_for_queries() {
    let json_500 = || {
        json_reply(
            500,
            json!({"code": "InternalServerError", "message": "Your request couldn't be completed"}),
        )
    };
    let err = plain_call::<Value>(FunctionKind::Mutation, json_500())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConvexError::Http { status: 500, code: Some(c), .. } if c == "InternalServerError"),
        "{err:?}"
    );
    assert!(!err.is_retry_safe());
    let err = plain_call::<Value>(FunctionKind::Query, json_500())
        .await
        .unwrap_err();
    assert!(err.is_retry_safe());

    // A non-JSON body, long: truncated to about 500 characters.
    let long = "x".repeat(5000);
    let err = plain_call::<Value>(FunctionKind::Action, text_reply(500, &long))
        .await
        .unwrap_err();
    match &err {
        ConvexError::Http {
            status: 500,
            code: None,
            message,
            ..
        } => {
            assert!(message.starts_with("xxxx"));
            assert!(message.chars().count() <= 501, "{}", message.len());
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert!(!err.is_retry_safe());
    assert!(!err.is_transient(), "a 500 is not transient");
    let err = plain_call::<Value>(FunctionKind::Mutation, text_reply(502, "Bad Gateway"))
        .await
        .unwrap_err();
    assert!(!err.is_retry_safe(), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    // A mutation with an unknown outcome is not re-sent by default (only_unsent).
    assert!(
        matches!(
            &err,
            ConvexError::Attempts {
                stopped: StopReason::OutcomeUnknown,
                ..
            }
        ),
        "{err:?}"
    );
    let err = plain_call::<Value>(FunctionKind::Query, text_reply(504, "Gateway Timeout"))
        .await
        .unwrap_err();
    assert!(err.is_retry_safe(), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn responses_that_do_not_match_are_decode_errors() {
    let err = plain_call::<u32>(
        FunctionKind::Query,
        json_reply(200, json!({"status": "success", "value": "not a number"})),
    )
    .await
    .unwrap_err();
    match &err {
        ConvexError::Decode { path, message } => {
            assert_eq!(path, "lib:f");
            assert!(message.contains("u32"), "{message}");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    assert!(!err.is_retry_safe());

    // A fractional number for an integer field of a document.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Row {
        #[serde(with = "crate::runtime::wire::integer")]
        shard: u32,
    }
    let err = plain_call::<Doc<Row>>(
        FunctionKind::Query,
        json_reply(
            200,
            json!({"status": "success", "value": {"_id": "k", "_creationTime": 1, "shard": 1.5}}),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ConvexError::Decode { message, .. }
            if message.contains("expected an integer of type u32, found 1.5")),
        "{err:?}"
    );

    for (reply, needle) in [
        (text_reply(200, "<html>hello</html>"), "not JSON"),
        (json_reply(200, json!([1, 2])), "expected a JSON object"),
        (json_reply(200, json!({"value": 1})), "`status`"),
        (
            json_reply(200, json!({"status": "success"})),
            "without `value`",
        ),
        (json_reply(560, json!({"status": "weird"})), "`status`"),
    ] {
        let err = plain_call::<Value>(FunctionKind::Mutation, reply)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ConvexError::Decode { message, .. } if message.contains(needle)),
            "{needle}: {err:?}"
        );
        assert!(!err.is_retry_safe());
    }
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_before_sending() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    for kind in [
        FunctionKind::Mutation,
        FunctionKind::Action,
        FunctionKind::Query,
    ] {
        let err = client(&url)
            .with_admin_key(ADMIN_KEY)
            .call_authenticated::<_, Value>(kind, "lib:f", &AuthSecret::new(SECRET), &json!({}))
            .await
            .unwrap_err();
        match err.last_attempt() {
            ConvexError::Transport {
                request_sent,
                kind: k,
                path,
                ..
            } => {
                assert!(!request_sent);
                assert_eq!(*k, kind);
                assert_eq!(path, "lib:f");
            }
            other => panic!("expected Transport, got {other:?}"),
        }
        assert!(err.is_retry_safe());
        assert!(err.is_transient());
        assert!(err.to_string().contains("nothing was sent"), "{err}");
        assert_no_secret(&err);
    }
}

#[tokio::test]
async fn connection_closed_after_sending_has_an_unknown_outcome() {
    let (result, received) = authenticated_mutation::<Value>(Reply::Close).await;
    assert_eq!(received.target, "/api/mutation");
    let err = result.unwrap_err();
    assert!(
        matches!(
            err.last_attempt(),
            ConvexError::Transport {
                request_sent: true,
                kind: FunctionKind::Mutation,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retry_safe());
    assert!(err.is_transient());
    assert_no_secret(&err);

    let err = plain_call::<Value>(FunctionKind::Query, Reply::Close)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.last_attempt(),
            ConvexError::Transport {
                request_sent: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retry_safe(), "a query can always be retried");
}

#[tokio::test]
async fn timeout_after_sending_has_an_unknown_outcome() {
    for (kind, retry_safe) in [(FunctionKind::Action, false), (FunctionKind::Query, true)] {
        let (url, server) = serve(Reply::Hang).await;
        let started = std::time::Instant::now();
        let err = ConvexHttpClient::new(&url)
            .expect("url")
            .with_timeouts(Duration::from_secs(1), Duration::from_millis(300))
            .with_retry_policy(RetryPolicy::none())
            .call::<_, Value>(kind, "lib:slow", &json!({}))
            .await
            .unwrap_err();
        // One attempt, bounded by the request timeout.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        match err.last_attempt() {
            ConvexError::Transport {
                request_sent,
                message,
                ..
            } => {
                assert!(request_sent);
                assert!(message.contains("timed out"), "{message}");
            }
            other => panic!("expected Transport, got {other:?}"),
        }
        assert_eq!(err.is_retry_safe(), retry_safe, "{kind}");
        server.abort();
    }
}

#[tokio::test]
async fn unencodable_arguments_fail_before_anything_is_sent() {
    #[derive(Serialize)]
    struct Args {
        #[serde(with = "crate::runtime::wire::integer")]
        start_at: u64,
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let err = client(&url)
        .call_authenticated::<_, Value>(
            FunctionKind::Mutation,
            "lib:insert",
            &AuthSecret::new(SECRET),
            &Args { start_at: 1 << 60 },
        )
        .await
        .unwrap_err();
    match &err {
        ConvexError::Encode { path, message } => {
            assert_eq!(path, "lib:insert");
            assert!(message.contains("1152921504606846976"), "{message}");
            assert!(message.contains("2^53-1"), "{message}");
        }
        other => panic!("expected Encode, got {other:?}"),
    }
    assert!(!err.is_retry_safe());
    assert_no_secret(&err);
    // Nobody connected.
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(
        accepted.is_err(),
        "the client connected although encoding failed"
    );
}

#[tokio::test]
async fn an_invalid_admin_key_is_refused_before_sending() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let err = client(&url)
        .with_admin_key("bad\nkey-w1th-newline")
        .call::<_, Value>(FunctionKind::Query, "lib:f", &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, ConvexError::Encode { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("w1th"), "{err:?}");
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err());
}

#[tokio::test]
async fn clients_are_cheap_clones_sharing_settings() {
    let (url, server) = serve(json_reply(200, json!({"status": "success", "value": 1}))).await;
    let original = client(&url).with_admin_key(ADMIN_KEY);
    let clone = original.clone();
    drop(original);
    let v: i64 = clone
        .call(FunctionKind::Query, "lib:f", &json!({}))
        .await
        .expect("success");
    assert_eq!(v, 1);
    let received = server.await.expect("server task");
    assert_eq!(
        received.header("authorization"),
        Some(format!("Convex {ADMIN_KEY}").as_str())
    );
    assert!(!format!("{clone:?}").contains("adm1nK3y"));
}

// ---------------------------------------------------------------------------------------------
// Retries, timeouts, Retry-After, stats, tracing.

use std::sync::{Arc, Mutex};

use super::response_clock::ResponseClock;
use super::{ConvexOperation, OperationLimits, RetrySafety};

/// A fast policy for tests: `attempts` attempts, 1-5 ms backoffs, 10 s budget.
fn fast(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(5))
        .with_max_elapsed(Duration::from_secs(10))
}

fn retrying_client(url: &str, policy: RetryPolicy) -> ConvexHttpClient {
    ConvexHttpClient::new(url)
        .expect("valid url")
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(5))
        .with_retry_policy(policy)
}

fn success(value: Value) -> Reply {
    json_reply(200, json!({"status": "success", "value": value}))
}

fn with_header(reply: Reply, name: &'static str, value: String) -> Reply {
    match reply {
        Reply::With {
            status,
            content_type,
            mut headers,
            body,
        } => {
            headers.push((name, value));
            Reply::With {
                status,
                content_type,
                headers,
                body,
            }
        }
        other => other,
    }
}

fn function_error(message: &str, data: Option<Value>) -> Reply {
    let mut body = json!({"status": "error", "errorMessage": message});
    if let Some(data) = data {
        body["errorData"] = data;
    }
    json_reply(200, body)
}

/// A mutation of our public API, declaring `SAFETY`.
#[derive(Serialize)]
struct TestMutation<const SAFETY: u8> {
    n: u32,
}

const IDEMPOTENT: u8 = 0;
const VERIFY_DUPLICATES: u8 = 1;
const ONLY_UNSENT: u8 = 2;

impl<const SAFETY: u8> ConvexOperation for TestMutation<SAFETY> {
    const NAME: &'static str = "testMutation";
    const KIND: FunctionKind = FunctionKind::Mutation;
    const RETRY_SAFETY: RetrySafety = match SAFETY {
        IDEMPOTENT => RetrySafety::Idempotent,
        VERIFY_DUPLICATES => RetrySafety::VerifyDuplicates,
        _ => RetrySafety::OnlyUnsent,
    };
    const TEST_ONLY: bool = false;
    const LIMITS: OperationLimits = OperationLimits {
        max_items: None,
        reads_per_item: 0,
        writes_per_item: 0,
        reads_per_child: 0,
        writes_per_child: 0,
        max_limit: None,
    };
    type Response = Value;
}

#[tokio::test]
async fn transient_failures_are_retried_until_an_attempt_succeeds() {
    let (url, server) = serve_script(vec![
        json_reply(503, json!({"code": "Overloaded", "message": "busy"})),
        with_header(
            json_reply(429, json!({"code": "RateLimited", "message": "slow down"})),
            "Retry-After",
            "0".to_owned(),
        ),
        json_reply(
            503,
            json!({"code": "OptimisticConcurrencyControlFailure", "message": "conflict"}),
        ),
        success(json!(42)),
    ])
    .await;
    let http = retrying_client(&url, fast(5));
    let clone = http.clone();
    // A mutation without a declared safety (only_unsent): every one of these failures proves
    // the call did not run, so all are retried.
    let value: u32 = http
        .call_authenticated(
            FunctionKind::Mutation,
            "m:insert",
            &AuthSecret::new(SECRET),
            &json!({"x": 1}),
        )
        .await
        .expect("the fourth attempt succeeds");
    assert_eq!(value, 42);
    let received = server.await.expect("server task");
    assert_eq!(received.len(), 4);
    for (_, request) in &received {
        assert_eq!(
            request.json()["args"]["args"],
            json!({"x": 1}),
            "same body each time"
        );
    }
    let stats = clone.stats();
    assert_eq!(stats.calls, 1);
    assert_eq!(stats.requests, 4);
    assert_eq!(stats.retries, 3);
    assert_eq!(stats.failed_calls, 0);
    assert_eq!(stats.failures.unavailable, 2);
    assert_eq!(stats.failures.rate_limited, 1);
    assert_eq!(stats.failures.total(), 3);
}

#[tokio::test]
async fn retries_are_bounded_by_attempts_and_the_error_tells_the_story() {
    let busy = || json_reply(503, json!({"code": "Overloaded", "message": "busy"}));
    let (url, server) = serve_script(vec![busy(), busy(), busy()]).await;
    let err = retrying_client(&url, fast(3))
        .call::<_, Value>(FunctionKind::Query, "m:list", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(server.await.expect("server").len(), 3);
    match &err {
        ConvexError::Attempts {
            path,
            attempts,
            stopped,
            earlier,
            earlier_may_have_applied,
            last,
            ..
        } => {
            assert_eq!(path, "m:list");
            assert_eq!(*attempts, 3);
            assert_eq!(*stopped, StopReason::MaxAttempts(3));
            assert_eq!(earlier.len(), 2);
            assert!(
                earlier[0].starts_with("attempt 1: Convex answered HTTP 503"),
                "{earlier:?}"
            );
            assert!(earlier[1].starts_with("attempt 2: "), "{earlier:?}");
            assert!(!earlier_may_have_applied);
            assert!(matches!(**last, ConvexError::Http { status: 503, .. }));
        }
        other => panic!("expected Attempts, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("`m:list`: attempt 3 failed (3 made in "),
        "{text}"
    );
    assert!(text.contains("gave up: at most 3 attempts"), "{text}");
    assert!(text.contains("earlier: attempt 1: "), "{text}");
    assert!(err.is_transient());
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.code(), Some("Overloaded"));
    assert_eq!(err.path(), Some("m:list"));
}

#[tokio::test]
async fn retries_are_bounded_by_the_time_budget() {
    let busy = || json_reply(503, json!({"code": "Overloaded", "message": "busy"}));
    let (url, server) = serve_script((0..20).map(|_| busy()).collect()).await;
    let policy = RetryPolicy::default()
        .with_max_attempts(20)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_millis(100))
        .with_max_elapsed(Duration::from_millis(250));
    let started = std::time::Instant::now();
    let err = retrying_client(&url, policy)
        .call::<_, Value>(FunctionKind::Query, "m:list", &json!({}))
        .await
        .unwrap_err();
    // No attempt starts after 250 ms: with delays of at most 100 ms that is at most 4 attempts
    // (and, the delays being random in [0, 100], usually fewer).
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, ConvexError::Attempts { stopped: StopReason::MaxElapsed(d), attempts, .. }
            if *d == Duration::from_millis(250) && *attempts >= 2),
        "{err:?}"
    );
    server.abort();
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured_over_a_shorter_backoff() {
    let (url, server) = serve_script(vec![
        with_header(
            json_reply(429, json!({"code": "RateLimited", "message": "slow down"})),
            "Retry-After",
            "1".to_owned(),
        ),
        success(json!("ok")),
    ])
    .await;
    let value: String = retrying_client(&url, fast(3))
        .call(FunctionKind::Mutation, "m:f", &json!({}))
        .await
        .expect("success after the asked delay");
    assert_eq!(value, "ok");
    let received = server.await.expect("server");
    let waited = received[1].0 - received[0].0;
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    // Two seconds from now, at one-second resolution: a delay of more than one second.
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs();
    let date = super::http_date::format_http_date(secs * 1_000);
    assert_eq!(
        super::http_date::parse_http_date(&date),
        Some(secs * 1_000),
        "{date}"
    );
    let (url, server) = serve_script(vec![
        with_header(
            json_reply(503, json!({"code": "Overloaded", "message": "busy"})),
            "Retry-After",
            date,
        ),
        success(json!(1)),
    ])
    .await;
    let value: u32 = retrying_client(&url, fast(3))
        .call(FunctionKind::Action, "m:f", &json!({}))
        .await
        .expect("success after the date");
    assert_eq!(value, 1);
    let received = server.await.expect("server");
    let waited = received[1].0 - received[0].0;
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[tokio::test]
async fn a_retry_after_beyond_the_time_budget_stops_at_once() {
    let (url, server) = serve_script(vec![with_header(
        json_reply(503, json!({"code": "Overloaded", "message": "busy"})),
        "Retry-After",
        "120".to_owned(),
    )])
    .await;
    let started = std::time::Instant::now();
    let err = retrying_client(&url, fast(5).with_max_elapsed(Duration::from_secs(1)))
        .call::<_, Value>(FunctionKind::Query, "m:f", &json!({}))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(
        matches!(
            &err,
            ConvexError::Attempts {
                attempts: 1,
                stopped: StopReason::MaxElapsed(_),
                ..
            }
        ),
        "{err:?}"
    );
    server.await.expect("server");
}

#[tokio::test]
async fn an_unknown_outcome_is_resent_only_where_the_operation_allows_it() {
    let secret = AuthSecret::new(SECRET);
    // Idempotent: the connection drops after sending, the call is sent again and succeeds.
    let (url, server) = serve_script(vec![Reply::Close, success(json!("done"))]).await;
    let value = retrying_client(&url, fast(3))
        .call_operation(
            "m:testMutation",
            &secret,
            &TestMutation::<IDEMPOTENT> { n: 1 },
        )
        .await
        .expect("the re-sent call succeeds");
    assert_eq!(value, json!("done"));
    assert_eq!(server.await.expect("server").len(), 2);

    // Only unsent: not re-sent; the error says the outcome is unknown.
    let (url, server) = serve_script(vec![Reply::Close, success(json!("done"))]).await;
    let err = retrying_client(&url, fast(3))
        .call_operation(
            "m:testMutation",
            &secret,
            &TestMutation::<ONLY_UNSENT> { n: 1 },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ConvexError::Attempts {
                attempts: 1,
                stopped: StopReason::OutcomeUnknown,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("may have taken effect"), "{err}");
    assert!(err.is_transient());
    assert!(!err.is_retry_safe());
    server.abort();

    // Verify duplicates: re-sent; the second attempt is refused as a duplicate of the first,
    // and the error says an earlier attempt may have applied (the caller then verifies).
    let (url, server) = serve_script(vec![
        Reply::Close,
        function_error(
            "[Request ID: x] Server Error\nUncaught ConvexError: execution e1 already exists",
            Some(json!({"code": "ALREADY_EXISTS"})),
        ),
    ])
    .await;
    let err = retrying_client(&url, fast(3))
        .call_operation(
            "m:testMutation",
            &secret,
            &TestMutation::<VERIFY_DUPLICATES> { n: 1 },
        )
        .await
        .unwrap_err();
    assert!(err.earlier_attempt_may_have_applied(), "{err:?}");
    assert_eq!(err.attempts(), 2);
    assert_eq!(err.code(), Some("ALREADY_EXISTS"));
    assert!(!err.is_transient());
    assert!(!err.is_retry_safe());
    assert!(
        matches!(
            &err,
            ConvexError::Attempts {
                stopped: StopReason::NotTransient,
                ..
            }
        ),
        "{err:?}"
    );
    assert_no_secret(&err);
    server.await.expect("server");

    // Non-transient failures are never retried, whatever the safety: one attempt, bare error.
    let (url, server) = serve_script(vec![function_error("boom", None)]).await;
    let err = retrying_client(&url, fast(3))
        .call_operation(
            "m:testMutation",
            &secret,
            &TestMutation::<IDEMPOTENT> { n: 1 },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConvexError::Function { .. }), "{err:?}");
    assert_eq!(server.await.expect("server").len(), 1);
}

#[tokio::test]
async fn a_write_conflict_in_a_mutation_is_resent_even_when_only_unsent() {
    let (url, server) = serve_script(vec![
        function_error(
            "Documents read from or written to the \"taskExecutions\" table changed while this \
             mutation was being run and on every subsequent retry. See https://docs.convex.dev/error#1",
            None,
        ),
        success(json!(null)),
    ])
    .await;
    let http = retrying_client(&url, fast(3));
    let () = http
        .call_operation(
            "m:testMutation",
            &AuthSecret::new(SECRET),
            &TestMutation::<ONLY_UNSENT> { n: 1 },
        )
        .await
        .map(|_| ())
        .expect("a mutation that conflicted did not commit: re-sent");
    assert_eq!(server.await.expect("server").len(), 2);
    assert_eq!(http.stats().failures.convex_transient, 1);
}

#[tokio::test]
async fn an_explicit_retry_safety_overrides_the_kind_default() {
    // An action defaults to only_unsent; declared idempotent, its lost answer is re-sent.
    let (url, server) = serve_script(vec![Reply::Close, success(json!(5))]).await;
    let http = retrying_client(&url, fast(3));
    let value: u32 = http
        .call_with_retry_safety(
            FunctionKind::Action,
            RetrySafety::Idempotent,
            "m:sweep",
            &json!({}),
        )
        .await
        .expect("idempotent: re-sent");
    assert_eq!(value, 5);
    assert_eq!(server.await.expect("server").len(), 2);
}

#[tokio::test]
async fn a_hung_server_never_blocks_a_call_past_its_timeouts() {
    // Every attempt hangs: three attempts of 200 ms each, then the error.
    let (url, server) = serve_script(vec![Reply::Hang, Reply::Hang, Reply::Hang]).await;
    let http = ConvexHttpClient::new(&url)
        .expect("url")
        .with_timeouts(Duration::from_millis(500), Duration::from_millis(200))
        .with_retry_policy(fast(3));
    assert_eq!(
        http.timeouts(),
        (Duration::from_millis(500), Some(Duration::from_millis(200)))
    );
    let started = std::time::Instant::now();
    let err = http
        .call::<_, Value>(FunctionKind::Query, "m:get", &json!({}))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1_500), "{elapsed:?}");
    assert!(
        matches!(
            &err,
            ConvexError::Attempts {
                attempts: 3,
                stopped: StopReason::MaxAttempts(3),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(http.stats().failures.timeout, 3);
    server.abort();

    // The defaults are documented: 10 s to connect, 60 s per attempt.
    let defaults = ConvexHttpClient::new("http://127.0.0.1:9").expect("url");
    assert_eq!(
        defaults.timeouts(),
        (Duration::from_secs(10), Some(Duration::from_secs(60)))
    );
    assert_eq!(defaults.retry_policy(), &RetryPolicy::default());
}

/// A [`ResponseClock`] that records what it is told.
#[derive(Default)]
struct RecordingClock {
    seen: Mutex<Vec<(u64, u64, u64)>>,
}

impl ResponseClock for RecordingClock {
    fn local_now(&self) -> u64 {
        1_000
    }

    fn observe(&self, sent: u64, received: u64, server_date: u64) {
        self.seen
            .lock()
            .expect("lock")
            .push((sent, received, server_date));
    }
}

#[tokio::test]
async fn every_response_date_reaches_the_installed_clock() {
    let (url, server) = serve_script(vec![
        with_header(
            json_reply(503, json!({"code": "Overloaded", "message": "busy"})),
            "Date",
            "Sun, 06 Nov 1994 08:49:37 GMT".to_owned(),
        ),
        with_header(
            success(json!(1)),
            "Date",
            "Sun, 06 Nov 1994 08:49:38 GMT".to_owned(),
        ),
    ])
    .await;
    let clock = Arc::new(RecordingClock::default());
    let http = retrying_client(&url, fast(3))
        .with_response_clock(Arc::clone(&clock) as Arc<dyn ResponseClock>);
    let value: u32 = http
        .call(FunctionKind::Query, "m:q", &json!({}))
        .await
        .expect("success");
    assert_eq!(value, 1);
    assert_eq!(
        *clock.seen.lock().expect("lock"),
        [
            (1_000, 1_000, 784_111_777_000),
            (1_000, 1_000, 784_111_778_000)
        ]
    );
    server.await.expect("server");
}

/// Records every span, field and event as text.
#[derive(Clone, Default)]
struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Fields(format!("span {}", span.metadata().name()));
        span.record(&mut fields);
        self.lines.lock().expect("lock").push(fields.0);
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::span::Id::from_u64(id + 1)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut fields = Fields("record".to_owned());
        values.record(&mut fields);
        self.lines.lock().expect("lock").push(fields.0);
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(format!("event {}", event.metadata().level()));
        event.record(&mut fields);
        self.lines.lock().expect("lock").push(fields.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn spans_record_every_attempt_and_no_secret_reaches_errors_or_logs() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    // The server echoes the secret and the admin key in its error messages.
    let echo = json!({"code": "Overloaded", "message": format!("busy; you sent {SECRET} with {ADMIN_KEY}")});
    let (url, server) = serve_script(vec![
        json_reply(503, echo.clone()),
        json_reply(503, echo),
        function_error(
            &format!("Uncaught Error: bad secret {SECRET}"),
            Some(json!({"code": "SOMETHING", "echo": SECRET})),
        ),
    ])
    .await;
    let err = retrying_client(&url, fast(5))
        .with_admin_key(ADMIN_KEY)
        .call_authenticated::<_, Value>(
            FunctionKind::Query,
            "m:q",
            &AuthSecret::new(SECRET),
            &json!({}),
        )
        .await
        .unwrap_err();
    server.await.expect("server");
    assert_no_secret(&err);
    assert!(
        matches!(&err, ConvexError::Attempts { attempts: 3, stopped: StopReason::NotTransient, earlier, .. }
            if earlier.len() == 2 && earlier.iter().all(|e| e.contains("<redacted>"))),
        "{err:?}"
    );
    let lines = capture.lines.lock().expect("lock").clone();
    let all = lines.join("\n");
    assert!(!all.contains(SECRET), "{all}");
    assert!(!all.contains("adm1nK3y"), "{all}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("span convex_call") && l.contains("function=\"m:q\"")),
        "{all}"
    );
    for attempt in 1..=3 {
        assert!(
            lines.iter().any(|l| l.starts_with("span convex_attempt")
                && l.contains(&format!("attempt={attempt}"))),
            "{all}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("outcome=\"unavailable\"")),
        "{all}"
    );
    assert!(
        lines.iter().any(|l| l.contains("outcome=\"function\"")),
        "{all}"
    );
    assert!(lines.iter().any(|l| l.contains("attempts=3")), "{all}");
    assert!(lines.iter().any(|l| l.contains("duration_ms=")), "{all}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("event WARN") && l.contains("retrying a failed Convex call"))
            .count(),
        2,
        "{all}"
    );
}

#[tokio::test]
async fn stats_are_shared_by_clones_and_count_failed_calls() {
    let (url, server) = serve_script(vec![function_error("boom", None), success(json!(1))]).await;
    let http = retrying_client(&url, fast(3));
    let clone = http.clone();
    assert!(http
        .call::<_, Value>(FunctionKind::Query, "m:q", &json!({}))
        .await
        .is_err());
    let _: u32 = clone
        .call(FunctionKind::Query, "m:q", &json!({}))
        .await
        .expect("success");
    server.await.expect("server");
    for stats in [http.stats(), clone.stats()] {
        assert_eq!(stats.calls, 2);
        assert_eq!(stats.requests, 2);
        assert_eq!(stats.retries, 0);
        assert_eq!(stats.failed_calls, 1);
        assert_eq!(stats.failures.function, 1);
    }
}
