//! Fault injection: the fault proxy of the test support (`support::fault_proxy`) checked on its
//! own, against a tiny upstream written here, and through the local Convex server.
//!
//! ```sh
//! cargo test --test faults -- --nocapture   # prints the figures
//! ```

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use durable_execution_storage_convex::runtime::{ConvexError, ConvexHttpClient};
use durable_execution_storage_convex::task_executions::{
    ByExecutionIdRequest, GetManyByIdArgs, InsertManyArgs,
};
use support::fault_proxy::{
    function_path_of, Blackout, Fault, FaultKind, FaultProxy, ProxyOptions, RandomFaults, Rule,
};
use support::{new_doc, TestDeployment};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// A tiny upstream: answers every POST with `{"status":"success","value":<n>}` (n = how many
// requests it has received so far, this one included), counting them.
// ---------------------------------------------------------------------------------------------

struct Upstream {
    url: String,
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// `chunked`: answer with `Transfer-Encoding: chunked` instead of `Content-Length`.
    async fn start(chunked: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let task = tokio::spawn(async move {
            for _ in 0..100_000 {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        answer(stream, &counter, chunked),
                    )
                    .await;
                });
            }
        });
        Self {
            url,
            received,
            task,
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

async fn answer(mut stream: TcpStream, counter: &AtomicU64, chunked: bool) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + 4 + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    let body = format!("{{\"status\":\"success\",\"value\":{n}}}");
    let response = if chunked {
        let (a, b) = body.split_at(body.len() / 2);
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn body_for(path: &str) -> String {
    format!("{{\"path\":\"{path}\",\"args\":{{}},\"format\":\"json\"}}")
}

async fn post(
    http: &reqwest::Client,
    proxy: &FaultProxy,
    path: &str,
) -> Result<(u16, reqwest::header::HeaderMap, String), reqwest::Error> {
    let response = http
        .post(format!("http://{}/api/query", proxy.addr()))
        .header("content-type", "application/json")
        .body(body_for(path))
        .send()
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    Ok((status, headers, text))
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a reqwest client")
}

// ---------------------------------------------------------------------------------------------
// The proxy on its own.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn proxy_forwards_and_counts() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    let http = http_client();
    for expected in 1..=3 {
        let (status, headers, text) = post(&http, &proxy, "m:f").await.expect("forwarded");
        assert_eq!(status, 200);
        assert_eq!(
            text,
            format!("{{\"status\":\"success\",\"value\":{expected}}}")
        );
        // Default: one request per connection.
        assert_eq!(headers["connection"], "close");
    }
    assert_eq!(upstream.received(), 3);
    let stats = proxy.stats();
    assert_eq!(
        (stats.requests, stats.forwarded, stats.connections),
        (3, 3, 3)
    );
    assert_eq!(stats.faults_total(), 0);
    let events = proxy.events_for("m:f");
    assert_eq!(events.len(), 3);
    assert!(events
        .iter()
        .all(|e| e.forwarded && e.fault.is_none() && e.upstream_status == Some(200)));
    assert_eq!(
        proxy.events_for("f").len(),
        3,
        "a bare name matches any module"
    );
    assert!(proxy.events_for("m:g").is_empty());
}

#[tokio::test]
async fn proxy_keep_alive_serves_many_requests_per_connection() {
    let upstream = Upstream::start(false).await;
    let options = ProxyOptions {
        keep_alive: true,
        ..ProxyOptions::default()
    };
    let proxy = FaultProxy::start_with(&upstream.url, options)
        .await
        .expect("proxy");
    let http = http_client();
    for _ in 0..5 {
        let (status, headers, _) = post(&http, &proxy, "m:f").await.expect("forwarded");
        assert_eq!(status, 200);
        assert_eq!(headers["connection"], "keep-alive");
    }
    let stats = proxy.stats();
    assert_eq!((stats.requests, stats.forwarded), (5, 5));
    assert_eq!(
        stats.connections, 1,
        "reqwest reused its connection: {stats}"
    );
}

#[tokio::test]
async fn proxy_decodes_a_chunked_upstream_answer() {
    let upstream = Upstream::start(true).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    let (status, headers, text) = post(&http_client(), &proxy, "m:f").await.expect("ok");
    assert_eq!(status, 200);
    assert_eq!(text, "{\"status\":\"success\",\"value\":1}");
    assert_eq!(headers["content-length"], text.len().to_string().as_str());
    assert!(headers.get("transfer-encoding").is_none());
}

#[tokio::test]
async fn proxy_drops_the_response_after_the_upstream_answered() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    let rule = proxy.add_rule(Rule::path("m:f", Fault::DropResponse));
    let http = http_client();
    // Another function passes.
    assert_eq!(post(&http, &proxy, "m:g").await.expect("g").0, 200);
    let error = post(&http, &proxy, "m:f")
        .await
        .expect_err("response dropped");
    assert!(!error.is_connect(), "the request was sent: {error:?}");
    // The upstream did receive (and answer) it.
    assert_eq!(upstream.received(), 2);
    assert_eq!(proxy.rule_hits(rule), 1);
    // Once only: the next one passes, and is the upstream's third request.
    let (status, _, text) = post(&http, &proxy, "m:f").await.expect("passes");
    assert_eq!(
        (status, text.as_str()),
        (200, "{\"status\":\"success\",\"value\":3}")
    );
    let stats = proxy.stats();
    assert_eq!(stats.fault(FaultKind::DropResponse), 1);
    assert_eq!((stats.requests, stats.forwarded), (3, 3));
    let events = proxy.events_for("m:f");
    assert_eq!(events[0].fault, Some(FaultKind::DropResponse));
    assert!(events[0].forwarded);
    assert_eq!(events[0].upstream_status, Some(200));
}

#[tokio::test]
async fn proxy_answers_statuses_without_forwarding() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    let http = http_client();
    proxy.add_rule(Rule::any(Fault::too_many_requests(2)));
    let (status, headers, text) = post(&http, &proxy, "m:f").await.expect("an answer");
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "2");
    assert!(text.contains("\"code\":\"FaultProxy\""), "{text}");
    for code in [502, 503, 504] {
        proxy.add_rule(Rule::path("m:f", Fault::status(code)));
        let (status, headers, _) = post(&http, &proxy, "m:f").await.expect("an answer");
        assert_eq!(status, code);
        assert!(headers.get("retry-after").is_none());
    }
    assert_eq!(upstream.received(), 0, "none of them was forwarded");
    let stats = proxy.stats();
    for kind in [
        FaultKind::Status429,
        FaultKind::Status502,
        FaultKind::Status503,
        FaultKind::Status504,
    ] {
        assert_eq!(stats.fault(kind), 1, "{kind}: {stats}");
    }
    assert_eq!((stats.requests, stats.forwarded), (4, 0));
}

#[tokio::test]
async fn proxy_status_after_forward_runs_the_call() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    proxy.add_rule(Rule::any(Fault::StatusAfterForward { status: 504 }));
    let (status, _, _) = post(&http_client(), &proxy, "m:f")
        .await
        .expect("an answer");
    assert_eq!(status, 504);
    assert_eq!(upstream.received(), 1);
    assert_eq!(proxy.stats().fault(FaultKind::StatusAfterForward), 1);
}

#[tokio::test]
async fn proxy_refuses_resets_and_truncates() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    let http = http_client();
    proxy.add_rule(Rule::any(Fault::Refuse));
    proxy.add_rule(Rule::any(Fault::Reset));
    proxy.add_rule(Rule::any(Fault::TruncateResponse));
    for _ in 0..3 {
        let error = post(&http, &proxy, "m:f").await.expect_err("a fault");
        assert!(!error.is_connect(), "{error:?}");
    }
    // Refuse and reset did not forward; truncate did.
    assert_eq!(upstream.received(), 1);
    // Refusing the next connections right after accept.
    proxy.refuse_next_connections(2);
    for _ in 0..2 {
        post(&http, &proxy, "m:f").await.expect_err("refused");
    }
    assert_eq!(post(&http, &proxy, "m:f").await.expect("passes").0, 200);
    let stats = proxy.stats();
    for (kind, n) in [
        (FaultKind::Refuse, 1),
        (FaultKind::Reset, 1),
        (FaultKind::TruncateResponse, 1),
        (FaultKind::RefusedConnection, 2),
    ] {
        assert_eq!(stats.fault(kind), n, "{kind}: {stats}");
    }
    assert_eq!(
        stats.requests, 4,
        "refused connections carry no request: {stats}"
    );
}

#[tokio::test]
async fn proxy_rules_skip_and_times() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    let rule = proxy.add_rule(Rule::path("f", Fault::status(503)).skip(2).times(2));
    let http = http_client();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(post(&http, &proxy, "m:f").await.expect("an answer").0);
    }
    assert_eq!(statuses, [200, 200, 503, 503, 200, 200]);
    assert_eq!(proxy.rule_hits(rule), 2);
    let always = proxy.add_rule(Rule::path("m:g", Fault::status(502)).always());
    for _ in 0..3 {
        assert_eq!(post(&http, &proxy, "m:g").await.expect("an answer").0, 502);
    }
    assert_eq!(proxy.rule_hits(always), 3);
    proxy.clear();
    assert_eq!(post(&http, &proxy, "m:g").await.expect("an answer").0, 200);
}

#[tokio::test]
async fn proxy_delays() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    proxy.add_rule(Rule::any(Fault::Delay(Duration::from_millis(300))));
    let http = http_client();
    let started = Instant::now();
    assert_eq!(post(&http, &proxy, "m:f").await.expect("late").0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A client that gives up before the delay ends: the request still reaches the upstream.
    proxy.add_rule(Rule::any(Fault::Delay(Duration::from_millis(400))));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .expect("client");
    let error = post(&impatient, &proxy, "m:f")
        .await
        .expect_err("timed out");
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(upstream.received(), 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(upstream.received(), 2, "the late request ran after all");

    // Delayed answer: forwarded at once.
    proxy.add_rule(Rule::any(Fault::DelayResponse(Duration::from_millis(300))));
    let started = Instant::now();
    let waiting = tokio::spawn({
        let http = http.clone();
        let url = format!("http://{}/api/query", proxy.addr());
        async move {
            http.post(url)
                .header("content-type", "application/json")
                .body(body_for("m:f"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(upstream.received(), 3, "forwarded before the answer");
    assert_eq!(waiting.await.expect("task").expect("answered"), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let stats = proxy.stats();
    assert_eq!(stats.fault(FaultKind::Delay), 2);
    assert_eq!(stats.fault(FaultKind::DelayResponse), 1);
}

#[tokio::test]
async fn proxy_blackout_refusing_connections_then_recovering() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    let http = http_client();
    assert_eq!(post(&http, &proxy, "m:f").await.expect("up").0, 200);
    proxy.blackout(Duration::from_millis(500), Blackout::RefuseConnections);
    // The accept loop closes the listener as soon as it wakes up.
    let mut waited = 0;
    while !proxy.is_listener_down() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += 1;
    }
    assert!(proxy.is_listener_down());
    let error = post(&http, &proxy, "m:f").await.expect_err("refused");
    assert!(error.is_connect(), "ECONNREFUSED, nothing sent: {error:?}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!proxy.in_blackout());
    assert_eq!(post(&http, &proxy, "m:f").await.expect("up again").0, 200);
    assert_eq!(upstream.received(), 2);
    assert_eq!(proxy.stats().fault(FaultKind::ListenerDown), 1);
}

#[tokio::test]
async fn proxy_blackout_with_a_fault() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    let http = http_client();
    proxy.blackout(
        Duration::from_millis(300),
        Blackout::Fault(Fault::status(503)),
    );
    let started = Instant::now();
    let mut unavailable = 0;
    while started.elapsed() < Duration::from_millis(250) {
        assert_eq!(post(&http, &proxy, "m:f").await.expect("answer").0, 503);
        unavailable += 1;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(post(&http, &proxy, "m:f").await.expect("answer").0, 200);
    assert_eq!(proxy.stats().fault(FaultKind::Status503), unavailable);
    assert_eq!(upstream.received(), 1);
}

#[tokio::test]
async fn proxy_random_faults_are_seeded() {
    let upstream = Upstream::start(false).await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
        proxy.set_random(Some(RandomFaults {
            seed: 42,
            rate: 0.3,
            mix: vec![(Fault::status(503), 1), (Fault::status(429), 1)],
        }));
        let http = http_client();
        let mut statuses = Vec::new();
        for _ in 0..200 {
            statuses.push(post(&http, &proxy, "m:f").await.expect("answer").0);
        }
        let faulted = statuses.iter().filter(|&&s| s != 200).count();
        assert!((35..=85).contains(&faulted), "about 30% of 200: {faulted}");
        assert!(statuses.contains(&503) && statuses.contains(&429));
        assert_eq!(proxy.stats().faults_total(), faulted as u64);
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1], "same seed, same sequence");
}

#[tokio::test]
async fn proxy_stops_when_dropped() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    let addr = proxy.addr();
    drop(proxy);
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "nothing listens on {addr} after the drop");
}

#[tokio::test]
async fn proxy_forwards_to_loopback_only() {
    for bad in [
        "http://10.0.0.1:80",
        "https://127.0.0.1:443",
        "http://example.com:80",
        "http://127.0.0.1",
    ] {
        assert!(FaultProxy::start(bad).await.is_err(), "{bad}");
    }
    assert_eq!(
        function_path_of(br#"{"path":"a:b","args":{}}"#).as_deref(),
        Some("a:b")
    );
    assert_eq!(function_path_of(br#"{"path":3}"#), None);
    assert_eq!(function_path_of(b"not json"), None);
}

// ---------------------------------------------------------------------------------------------
// The proxy in front of the local Convex server.
// ---------------------------------------------------------------------------------------------

/// A response lost after the commit: the client sees an unknown outcome, and the write is
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_lost_response_after_a_committed_insert() {
    let deployment = TestDeployment::local_only("proxy_lost_response", true);
    let proxy = FaultProxy::start(deployment.url()).await.expect("proxy");
    proxy.add_rule(Rule::path(
        "taskExecutionsStorage:insertMany",
        Fault::DropResponse,
    ));
    let http = ConvexHttpClient::new(&proxy.url_for(deployment.url())).expect("url");
    let client = deployment.client_over(http);
    let error = client
        .insert_many(&InsertManyArgs {
            executions: vec![new_doc("lost-1", 0)],
        })
        .await
        .expect_err("the response was dropped");
    assert!(
        matches!(
            error,
            ConvexError::Transport {
                request_sent: true,
                ..
            }
        ),
        "{error:?}"
    );
    // Read directly from the server: the insert committed.
    let found = deployment
        .client()
        .get_many_by_id(&GetManyByIdArgs {
            requests: vec![ByExecutionIdRequest {
                execution_id: "lost-1".to_owned(),
                filters: None,
            }],
        })
        .await
        .expect("read");
    assert_eq!(found.len(), 1);
    assert!(found[0].is_some(), "the insert committed");
    assert_eq!(deployment.calls("insertMany").await, Some(1));
    let stats = proxy.stats();
    assert_eq!(stats.fault(FaultKind::DropResponse), 1);
    assert_eq!(stats.forwarded, 1);
}
