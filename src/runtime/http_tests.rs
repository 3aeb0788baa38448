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

use super::{AuthSecret, ConvexError, ConvexHttpClient, Doc, FunctionKind, Id};

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
    /// A full response with this status and body.
    With {
        status: u16,
        content_type: &'static str,
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
        body: body.to_string(),
    }
}

fn text_reply(status: u16, body: &str) -> Reply {
    Reply::With {
        status,
        content_type: "text/html",
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

/// Starts a server that accepts one connection and answers it with `reply`; the handle yields
/// what it received.
async fn serve(reply: Reply) -> (String, JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let received = read_request(&mut stream).await;
        match reply {
            Reply::With {
                status,
                content_type,
                body,
            } => {
                let response = format!(
                    "HTTP/1.1 {status} Whatever\r\nContent-Type: {content_type}\r\n\
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
    });
    (url, handle)
}

fn client(url: &str) -> ConvexHttpClient {
    ConvexHttpClient::new(url)
        .expect("valid url")
        .with_timeout(Duration::from_secs(10))
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
            matches!(err, ConvexError::Http { status: s, .. } if s == status),
            "{err:?}"
        );
        assert!(err.is_retry_safe(), "{status}");
    }
    // 503 from a proxy, with an HTML body.
    let err = plain_call::<Value>(
        FunctionKind::Action,
        text_reply(503, "<html><body>Service Unavailable</body></html>"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ConvexError::Http { status: 503, code: None, message, .. }
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
    let err = plain_call::<Value>(FunctionKind::Mutation, text_reply(502, "Bad Gateway"))
        .await
        .unwrap_err();
    assert!(!err.is_retry_safe(), "{err:?}");
    let err = plain_call::<Value>(FunctionKind::Query, text_reply(504, "Gateway Timeout"))
        .await
        .unwrap_err();
    assert!(err.is_retry_safe(), "{err:?}");
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
        match &err {
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
            err,
            ConvexError::Transport {
                request_sent: true,
                kind: FunctionKind::Mutation,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retry_safe());
    assert_no_secret(&err);

    let err = plain_call::<Value>(FunctionKind::Query, Reply::Close)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
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
            .with_timeout(Duration::from_millis(300))
            .call::<_, Value>(kind, "lib:slow", &json!({}))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        match &err {
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
