//! Fault injection, with the fault proxy of the test support (`support::fault_proxy`) between
//! the client and the local Convex server (these tests always use the local server: the proxy
//! speaks plain HTTP to loopback only).
//!
//! - `proxy_*`: the proxy itself, against a tiny upstream written here (what each fault does
//!   on the wire, rules, random faults, blackouts, keep-alive, chunked answers, shutdown), and
//!   one lost response after a committed insert on the local server.
//! - `lost_*` and `every_operation_declares_the_designed_retry_safety`: each of the 17
//!   operations with its response lost after the commit. Idempotent and verify-duplicates
//!   operations are re-sent and end as after one application; only-unsent ones are not re-sent,
//!   fail with an unknown outcome, and their executions stay claimed (or processing, or
//!   closing) until the lease expires and the sweep gives them back.
//! - `refused_connections_*`, `rate_limited_*`, `unknown_outcomes_*`, `delays_*`,
//!   `retries_stop_*`: the other faults, retried or not as documented.
//! - `workload_under_faults_closes_every_execution_once`: 2,000 executions
//!   (`FAULTS_WORKLOAD_EXECUTIONS` for another size) through insert → claim → complete → mark
//!   close-ready → close, 8 workers on 4 shards, ~10 % of the requests faulted (seeded) and one
//!   5 s blackout: every execution closed, none claimed twice within a lease. Prints a
//!   `FAULTS REPORT` line.
//!
//! The per-operation tests need the declared retry safety and the server's clock rules
//! (branches `client` and `server` together).
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
async fn proxy_resets_mid_body() {
    let upstream = Upstream::start(false).await;
    let proxy = FaultProxy::start(&upstream.url).await.expect("proxy");
    proxy.reset_next_requests_mid_body(1);
    let http = http_client();
    // 4 MiB: far more than the socket buffers, so the client is still sending.
    let big = format!(
        "{{\"path\":\"m:f\",\"args\":{{\"x\":\"{}\"}}}}",
        "y".repeat(4 << 20)
    );
    let error = http
        .post(format!("http://{}/api/query", proxy.addr()))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect_err("reset while sending");
    assert!(!error.is_connect(), "{error:?}");
    assert_eq!(upstream.received(), 0);
    let stats = proxy.stats();
    assert_eq!(stats.fault(FaultKind::ResetMidRequest), 1, "{stats}");
    assert_eq!(stats.requests, 0, "no request was read whole");
    // The next one passes.
    let status = http
        .post(format!("http://{}/api/query", proxy.addr()))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("forwarded")
        .status();
    assert_eq!(status, 200);
    assert_eq!(upstream.received(), 1);
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
    // No retries: the fault itself, as the client sees it.
    let http = ConvexHttpClient::new(&proxy.url_for(deployment.url()))
        .expect("url")
        .with_retry_policy(RetryPolicy::none());
    let client = deployment.client_over(http);
    let error = client
        .insert_many(&InsertManyArgs {
            executions: vec![new_doc("lost-1", 0)],
        })
        .await
        .expect_err("the response was dropped");
    assert!(
        matches!(
            error.last_attempt(),
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

// ---------------------------------------------------------------------------------------------
// The workload: executions through insert → claim → complete → mark close-ready → close, with
// 8 workers through the proxy while it faults ~10 % of the requests and blacks out once.
// ---------------------------------------------------------------------------------------------

mod workload {
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use durable_execution_storage_convex::runtime::ConvexHttpClient;
    use durable_execution_storage_convex::storage::{
        GetByIdRequest, StorageError, TaskExecutionStorageUpdate, TaskExecutionStorageValue,
        TaskExecutionsStorage, UpdateByCloseStatusRequest, UpdateByIdRequest,
        UpdateByStatusAndStartAtLessThanRequest,
    };
    use durable_execution_storage_convex::task_executions::{
        CloseStatus, TaskExecutionFilters, TaskExecutionStatus, TaskExecutionUnset,
    };
    use durable_execution_storage_convex::{ConvexStorageOptions, ConvexTaskExecutionsStorage};

    use durable_execution_storage_convex::runtime::RetrySafety;

    use crate::lost::{expire_claims_request, expire_closings_request};
    use crate::support::fault_proxy::{
        Blackout, Fault, FaultKind, FaultProxy, ProxyStats, RandomFaults,
    };
    use crate::support::{new_value, TestDeployment};

    /// The workload's size and pace.
    #[derive(Clone, Debug)]
    pub struct Plan {
        pub executions: usize,
        pub workers: usize,
        pub total_shards: u32,
        /// Each execution's `timeoutMs`: its claim's lease.
        pub lease_ms: u64,
        /// How long a closing batch stays `closing` before the sweep gives it back.
        pub close_lease_ms: u64,
        /// Executions claimed (and closed) per shard per call.
        pub batch_per_shard: u32,
        pub fault_rate: f64,
        pub seed: u64,
        pub blackout: Duration,
        /// The blackout starts once this fraction of the executions is closed.
        pub blackout_at: f64,
        /// The whole workload must end within this.
        pub deadline: Duration,
    }

    /// One observed claim of an execution (values as stored, on the server's clock).
    #[derive(Clone, Debug)]
    struct Claim {
        #[allow(dead_code)] // Shown (Debug) when a check fails.
        worker: usize,
        started_at: u64,
        expires_at: u64,
    }

    /// Calls by operation: (ok, failed).
    type Calls = BTreeMap<&'static str, (u64, u64)>;

    #[derive(Default)]
    struct Shared {
        closed: Mutex<HashSet<String>>,
        claims: Mutex<HashMap<String, Vec<Claim>>>,
        calls: Mutex<Calls>,
        /// Expired claims given back by the sweep (each is a lost claim or a worker too slow).
        expired_claims: AtomicU64,
        /// Expired closings given back.
        expired_closings: AtomicU64,
        done: AtomicBool,
        /// An example error message per operation.
        errors: Mutex<BTreeMap<&'static str, String>>,
    }

    impl Shared {
        fn record<T>(&self, op: &'static str, result: &Result<T, StorageError>) {
            let mut calls = self.calls.lock().expect("calls");
            let entry = calls.entry(op).or_default();
            match result {
                Ok(_) => entry.0 += 1,
                Err(error) => {
                    entry.1 += 1;
                    self.errors
                        .lock()
                        .expect("errors")
                        .entry(op)
                        .or_insert_with(|| error.to_string().chars().take(300).collect());
                }
            }
        }
    }

    /// What the workload observed.
    #[derive(Debug)]
    pub struct Report {
        pub elapsed: Duration,
        /// The workers' HTTP clients.
        pub client: ClientTotals,
        pub proxy: ProxyStats,
        pub calls: Calls,
        pub errors: BTreeMap<&'static str, String>,
        /// Executions not closed at the end (from the server, not through the proxy).
        pub not_closed: Vec<String>,
        /// Two observed claims of one execution, the second before the first's lease expired.
        pub claimed_twice: Vec<String>,
        /// Executions claimed more than once (observed), each after the previous lease expired.
        pub reclaimed: usize,
        pub observed_claims: usize,
        /// Executions with at least one observed claim.
        pub executions_claimed: usize,
        pub expired_claims: u64,
        pub expired_closings: u64,
        pub blackout_started_at: Option<Duration>,
        /// Faults injected per kind: (on only-unsent operations, on the others).
        pub faults_by_safety: BTreeMap<FaultKind, (u64, u64)>,
    }

    /// Makes each worker's HTTP client for a URL (through the proxy).
    pub type MakeHttp = dyn Fn(&str) -> ConvexHttpClient + Send + Sync;

    /// Worker `w`'s storage: its own HTTP client (connection pool), through the proxy,
    /// serving shard `w % total_shards` (so two workers compete for each of 4 shards; every
    /// worker inserts into all shards).
    fn storage(
        deployment: &TestDeployment,
        proxy: &FaultProxy,
        plan: &Plan,
        make_http: &MakeHttp,
        w: usize,
    ) -> (Arc<ConvexTaskExecutionsStorage>, ConvexHttpClient) {
        let http = make_http(&proxy.url_for(deployment.url()));
        let shard = u32::try_from(w).unwrap_or(0) % plan.total_shards;
        let storage = Arc::new(
            ConvexTaskExecutionsStorage::new(
                deployment.client_over(http.clone()),
                ConvexStorageOptions::default()
                    .with_total_shards(plan.total_shards)
                    .with_shards(Some(vec![shard])),
            )
            .expect("valid options"),
        );
        (storage, http)
    }

    /// The workers' clients' counters, summed.
    #[derive(Clone, Debug, Default)]
    pub struct ClientTotals {
        pub calls: u64,
        pub requests: u64,
        pub retries: u64,
        pub failed_calls: u64,
        pub connect: u64,
        pub timeout: u64,
        pub connection_lost: u64,
        pub rate_limited: u64,
        pub unavailable: u64,
        pub bad_gateway: u64,
    }

    impl ClientTotals {
        fn add(&mut self, http: &ConvexHttpClient) {
            let s = http.stats();
            self.calls += s.calls;
            self.requests += s.requests;
            self.retries += s.retries;
            self.failed_calls += s.failed_calls;
            self.connect += s.failures.connect;
            self.timeout += s.failures.timeout;
            self.connection_lost += s.failures.connection_lost;
            self.rate_limited += s.failures.rate_limited;
            self.unavailable += s.failures.unavailable;
            self.bad_gateway += s.failures.bad_gateway;
        }
    }

    fn ids_of(values: &[TaskExecutionStorageValue]) -> Vec<String> {
        values.iter().map(|v| v.execution_id.clone()).collect()
    }

    pub async fn run(deployment: &TestDeployment, plan: &Plan, make_http: Arc<MakeHttp>) -> Report {
        let proxy = Arc::new(FaultProxy::start(deployment.url()).await.expect("proxy"));
        proxy.set_random(Some(RandomFaults {
            seed: plan.seed,
            rate: plan.fault_rate,
            mix: vec![
                (Fault::DropResponse, 4),
                (Fault::Refuse, 1),
                (Fault::Reset, 1),
                (Fault::too_many_requests(1), 1),
                (Fault::status(502), 1),
                (Fault::status(503), 2),
                (Fault::status(504), 1),
                (Fault::StatusAfterForward { status: 504 }, 1),
                (Fault::Delay(Duration::from_millis(300)), 1),
                (Fault::DelayResponse(Duration::from_millis(300)), 1),
                (Fault::TruncateResponse, 1),
            ],
        }));
        let ids: Vec<String> = (0..plan.executions).map(|i| format!("w-{i}")).collect();
        let shared = Arc::new(Shared::default());
        let started = Instant::now();
        let deadline = started + plan.deadline;

        let mut workers = Vec::new();
        let mut clients = Vec::new();
        for w in 0..plan.workers {
            let (storage, http) = storage(deployment, &proxy, plan, &*make_http, w);
            clients.push(http);
            let mine: Vec<String> = ids.iter().skip(w).step_by(plan.workers).cloned().collect();
            let shared = shared.clone();
            let plan = plan.clone();
            workers.push(tokio::spawn(async move {
                worker(w, storage, mine, &plan, &shared, deadline).await;
            }));
        }

        // The monitor: starts the blackout once, ends the workload when every execution is
        // closed (asking the server directly about those no worker saw closed).
        let direct = Arc::new(
            ConvexTaskExecutionsStorage::new(
                deployment.client(),
                ConvexStorageOptions::default().with_total_shards(plan.total_shards),
            )
            .expect("valid options"),
        );
        let mut blackout_started_at = None;
        let mut last_progress = (0, Instant::now());
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let closed = shared.closed.lock().expect("closed").len();
            if blackout_started_at.is_none()
                && closed as f64 >= plan.blackout_at * plan.executions as f64
            {
                proxy.blackout(plan.blackout, Blackout::RefuseConnections);
                blackout_started_at = Some(started.elapsed());
            }
            if closed == plan.executions {
                break;
            }
            if closed != last_progress.0 {
                last_progress = (closed, Instant::now());
            } else if last_progress.1.elapsed() > Duration::from_secs(2) {
                // Closed, but the worker never heard it (a lost answer after all retries).
                let missing: Vec<String> = {
                    let closed = shared.closed.lock().expect("closed");
                    ids.iter()
                        .filter(|id| !closed.contains(*id))
                        .cloned()
                        .collect()
                };
                if let Ok(found) = direct.get_many_by_id(get_requests(&missing)).await {
                    let mut closed = shared.closed.lock().expect("closed");
                    for value in found.into_iter().flatten() {
                        if value.close_status == CloseStatus::Closed {
                            closed.insert(value.execution_id);
                        }
                    }
                }
                last_progress.1 = Instant::now();
            }
        }
        shared.done.store(true, Ordering::SeqCst);
        for worker in workers {
            let _ = worker.await;
        }
        let elapsed = started.elapsed();

        // The truth, from the server (not through the proxy).
        let stored = direct
            .get_many_by_id(get_requests(&ids))
            .await
            .expect("read back every execution");
        let not_closed: Vec<String> = ids
            .iter()
            .zip(&stored)
            .filter(|(_, value)| {
                value.as_ref().is_none_or(|v| {
                    v.close_status != CloseStatus::Closed
                        || v.status != TaskExecutionStatus::Completed
                        || !v.is_finished
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        let claims = shared.claims.lock().expect("claims").clone();
        let mut claimed_twice = Vec::new();
        let mut reclaimed = 0;
        let mut observed_claims = 0;
        let executions_claimed = claims.len();
        for (id, mut list) in claims {
            observed_claims += list.len();
            if list.len() > 1 {
                reclaimed += 1;
            }
            list.sort_by_key(|c| c.started_at);
            if list
                .windows(2)
                .any(|pair| pair[1].started_at < pair[0].expires_at)
            {
                claimed_twice.push(format!("{id}: {list:?}"));
            }
        }
        let calls = shared.calls.lock().expect("calls").clone();
        let errors = shared.errors.lock().expect("errors").clone();
        let mut client = ClientTotals::default();
        for http in &clients {
            client.add(http);
        }
        let mut faults_by_safety: BTreeMap<FaultKind, (u64, u64)> = BTreeMap::new();
        for event in proxy.events() {
            let Some(kind) = event.fault else { continue };
            let name = event
                .path
                .as_deref()
                .and_then(|p| p.rsplit_once(':'))
                .map_or("", |(_, name)| name);
            let only_unsent = crate::lost::RETRY_SAFETY
                .iter()
                .any(|(op, safety)| *op == name && *safety == RetrySafety::OnlyUnsent);
            let entry = faults_by_safety.entry(kind).or_default();
            if only_unsent {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
        Report {
            elapsed,
            client,
            proxy: proxy.stats(),
            calls,
            errors,
            not_closed,
            claimed_twice,
            reclaimed,
            observed_claims,
            executions_claimed,
            expired_claims: shared.expired_claims.load(Ordering::SeqCst),
            expired_closings: shared.expired_closings.load(Ordering::SeqCst),
            blackout_started_at,
            faults_by_safety,
        }
    }

    fn get_requests(ids: &[String]) -> Vec<GetByIdRequest> {
        ids.iter()
            .map(|id| GetByIdRequest {
                execution_id: id.clone(),
                filters: None,
            })
            .collect()
    }

    fn by_id(
        ids: &[String],
        filters: Option<TaskExecutionFilters>,
        update: &TaskExecutionStorageUpdate,
    ) -> Vec<UpdateByIdRequest> {
        ids.iter()
            .map(|id| UpdateByIdRequest {
                execution_id: id.clone(),
                filters: filters.clone(),
                update: update.clone(),
            })
            .collect()
    }

    /// Inserts `ids`, whatever the faults: after a failure, reads back which are there and
    /// inserts the others.
    async fn insert_all(
        storage: &ConvexTaskExecutionsStorage,
        ids: &[String],
        plan: &Plan,
        shared: &Shared,
        deadline: Instant,
    ) {
        for batch in ids.chunks(25) {
            let mut missing: Vec<String> = batch.to_vec();
            while !missing.is_empty() && Instant::now() < deadline {
                let values = missing
                    .iter()
                    .map(|id| {
                        let mut value = new_value(id);
                        value.timeout_ms = plan.lease_ms;
                        value
                    })
                    .collect();
                let result = storage.insert_many(values).await;
                shared.record("insertMany", &result);
                if result.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                // Unknown outcome (or a duplicate of our own first attempt): what is there?
                let found = storage.get_many_by_id(get_requests(&missing)).await;
                shared.record("getManyById", &found);
                if let Ok(found) = found {
                    missing = missing
                        .iter()
                        .zip(found)
                        .filter(|(_, value)| value.is_none())
                        .map(|(id, _)| id.clone())
                        .collect();
                }
            }
        }
    }

    async fn worker(
        w: usize,
        storage: Arc<ConvexTaskExecutionsStorage>,
        mine: Vec<String>,
        plan: &Plan,
        shared: &Shared,
        deadline: Instant,
    ) {
        insert_all(&storage, &mine, plan, shared, deadline).await;
        let executor = format!("worker-{w}");
        // The Convex storage gives each shard the whole limit.
        let limit = plan.batch_per_shard;
        // Idle polls back off (up to 400 ms), so that idle workers leave the server to the
        // busy ones: convex-test runs one transaction at a time.
        let mut idle = Duration::from_millis(25);
        let mut to_complete: Vec<String> = Vec::new();
        let mut to_ready: Vec<String> = Vec::new();
        let mut to_close: Vec<String> = Vec::new();
        let mut last_sweep = Instant::now();
        for _ in 0..1_000_000 {
            if shared.done.load(Ordering::SeqCst) || Instant::now() >= deadline {
                return;
            }
            let mut progress = false;
            let now = storage.now_millis();

            // Claim.
            let claimed = storage
                .update_by_status_and_start_at_less_than_and_return(
                    UpdateByStatusAndStartAtLessThanRequest {
                        status: TaskExecutionStatus::Ready,
                        start_at_less_than: now + 1,
                        update: TaskExecutionStorageUpdate {
                            status: Some(TaskExecutionStatus::Running),
                            executor_id: Some(executor.clone()),
                            started_at: Some(now),
                            updated_at: now,
                            ..TaskExecutionStorageUpdate::default()
                        },
                        update_expires_at_with_started_at: now,
                        limit,
                    },
                )
                .await;
            shared.record("claim", &claimed);
            if let Ok(claimed) = claimed {
                let mut claims = shared.claims.lock().expect("claims");
                for value in &claimed {
                    claims
                        .entry(value.execution_id.clone())
                        .or_default()
                        .push(Claim {
                            worker: w,
                            started_at: value.started_at.unwrap_or(0),
                            expires_at: value.expires_at.unwrap_or(u64::MAX),
                        });
                }
                progress |= !claimed.is_empty();
                to_complete.extend(ids_of(&claimed));
            }

            // Complete what this worker runs (only while it is still running).
            if !to_complete.is_empty() {
                let now = storage.now_millis();
                let update = TaskExecutionStorageUpdate {
                    status: Some(TaskExecutionStatus::Completed),
                    is_finished: Some(true),
                    output: Some("\"done\"".to_owned()),
                    finished_at: Some(now),
                    updated_at: now,
                    unset: Some(TaskExecutionUnset {
                        expires_at: true,
                        ..TaskExecutionUnset::default()
                    }),
                    ..TaskExecutionStorageUpdate::default()
                };
                let running = TaskExecutionFilters {
                    status: Some(TaskExecutionStatus::Running),
                    ..TaskExecutionFilters::default()
                };
                let result = storage
                    .update_many_by_id(by_id(&to_complete, Some(running), &update))
                    .await;
                shared.record("complete", &result);
                if result.is_ok() {
                    to_ready.append(&mut to_complete);
                    progress = true;
                }
            }

            // Mark finished executions ready to close.
            if !to_ready.is_empty() {
                let update = TaskExecutionStorageUpdate {
                    close_status: Some(CloseStatus::Ready),
                    updated_at: storage.now_millis(),
                    ..TaskExecutionStorageUpdate::default()
                };
                let finished = TaskExecutionFilters {
                    is_finished: Some(true),
                    ..TaskExecutionFilters::default()
                };
                let result = storage
                    .update_many_by_id(by_id(&to_ready, Some(finished), &update))
                    .await;
                shared.record("markCloseReady", &result);
                if result.is_ok() {
                    to_ready.clear();
                    progress = true;
                }
            }

            // Close: pick ready-to-close executions (of any worker), then mark them closed.
            let now = storage.now_millis();
            let picked = storage
                .update_by_close_status_and_return(UpdateByCloseStatusRequest {
                    close_status: CloseStatus::Ready,
                    update: TaskExecutionStorageUpdate {
                        close_status: Some(CloseStatus::Closing),
                        close_expires_at: Some(now + plan.close_lease_ms),
                        updated_at: now,
                        ..TaskExecutionStorageUpdate::default()
                    },
                    limit,
                })
                .await;
            shared.record("pickToClose", &picked);
            if let Ok(picked) = picked {
                progress |= !picked.is_empty();
                to_close.extend(ids_of(&picked));
            }
            if !to_close.is_empty() {
                let now = storage.now_millis();
                let update = TaskExecutionStorageUpdate {
                    close_status: Some(CloseStatus::Closed),
                    closed_at: Some(now),
                    updated_at: now,
                    unset: Some(TaskExecutionUnset {
                        close_expires_at: true,
                        ..TaskExecutionUnset::default()
                    }),
                    ..TaskExecutionStorageUpdate::default()
                };
                let result = storage
                    .update_many_by_id(by_id(&to_close, None, &update))
                    .await;
                shared.record("close", &result);
                if result.is_ok() {
                    shared
                        .closed
                        .lock()
                        .expect("closed")
                        .extend(to_close.drain(..));
                    progress = true;
                }
            }

            // Sweeps, by two of the workers: expired claims and closings go back.
            if w < 2 && last_sweep.elapsed() > Duration::from_millis(500) {
                last_sweep = Instant::now();
                let now = storage.now_millis();
                let expired = storage
                    .update_by_status_and_is_sleeping_task_and_expires_at_less_than(
                        expire_claims_request(now),
                    )
                    .await;
                shared.record("expireClaims", &expired);
                if let Ok(n) = expired {
                    shared
                        .expired_claims
                        .fetch_add(u64::from(n), Ordering::SeqCst);
                }
                let expired = storage
                    .update_by_close_expires_at_less_than(expire_closings_request(now, 100))
                    .await;
                shared.record("expireClosings", &expired);
                if let Ok(n) = expired {
                    shared
                        .expired_closings
                        .fetch_add(u64::from(n), Ordering::SeqCst);
                }
            }

            if progress {
                idle = Duration::from_millis(25);
            } else {
                tokio::time::sleep(idle).await;
                idle = (idle * 2).min(Duration::from_millis(400));
            }
        }
    }

    impl Report {
        pub fn print(&self, plan: &Plan) {
            let kinds: Vec<String> = self
                .proxy
                .faults
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            println!(
                "FAULTS REPORT: {} executions in {:.1?}; {} requests reached the proxy, {} \
                 forwarded; {} faults injected ({:.1}%): {}; client: {} calls, {} requests, {} \
                 retries, {} calls failed after their retries; re-claims: {} executions went \
                 back to ready after their lease expired, {} claimed again after that (observed); \
                 {} claimed twice within a lease, {} not closed",
                plan.executions,
                self.elapsed,
                self.proxy.requests,
                self.proxy.forwarded,
                self.proxy.faults_total(),
                100.0 * self.proxy.faults_total() as f64 / self.proxy.requests.max(1) as f64,
                kinds.join(", "),
                self.client.calls,
                self.client.requests,
                self.client.retries,
                self.client.failed_calls,
                self.expired_claims,
                self.reclaimed,
                self.claimed_twice.len(),
                self.not_closed.len()
            );
            println!(
                "workload: {} executions, {} workers, {} shards, lease {} ms, {:.0}% faults \
                 (seed {:#x}), blackout {:?} at {:?}: {:.1?}",
                plan.executions,
                plan.workers,
                plan.total_shards,
                plan.lease_ms,
                plan.fault_rate * 100.0,
                plan.seed,
                plan.blackout,
                self.blackout_started_at,
                self.elapsed
            );
            println!("  proxy: {}", self.proxy);
            let c = &self.client;
            println!(
                "  clients: {} calls, {} requests, {} retries, {} calls failed after retries; \
                 failed attempts: connect {}, timeout {}, connection lost {}, 429 {}, 503 {}, \
                 502/504 {}",
                c.calls,
                c.requests,
                c.retries,
                c.failed_calls,
                c.connect,
                c.timeout,
                c.connection_lost,
                c.rate_limited,
                c.unavailable,
                c.bad_gateway
            );
            println!(
                "  claims observed {}, executions re-claimed {}, expired claims swept {}, \
                 expired closings swept {}, claimed twice {}, not closed {}",
                self.observed_claims,
                self.reclaimed,
                self.expired_claims,
                self.expired_closings,
                self.claimed_twice.len(),
                self.not_closed.len()
            );
            println!(
                "  blackout: the listener closed for {:?}: {} connects refused in the clients \
                 (nothing sent: re-sent whatever the operation, until the attempts ran out)",
                plan.blackout, self.client.connect
            );
            for (kind, (only_unsent, others)) in &self.faults_by_safety {
                let what = match kind {
                    FaultKind::Status429 | FaultKind::Status503 => {
                        "not run by the server: re-sent whatever the operation"
                    }
                    FaultKind::Delay | FaultKind::DelayResponse => {
                        "answered late (within the request timeout): nothing to retry"
                    }
                    FaultKind::RefusedConnection => {
                        "a request on a connection opened before the blackout, closed unanswered"
                    }
                    _ => {
                        "outcome unknown to the client: re-sent for idempotent and \
                         verify-duplicates operations, not for only-unsent ones (their \
                         executions wait for the lease to expire)"
                    }
                };
                println!(
                    "  {kind}: {} ({only_unsent} on only-unsent calls, {others} on others): {what}",
                    only_unsent + others
                );
            }
            for (op, (ok, failed)) in &self.calls {
                println!("  {op}: {ok} ok, {failed} failed");
            }
            for (op, error) in &self.errors {
                println!("  e.g. {op}: {error}");
            }
        }
    }
}

fn workload_plan() -> workload::Plan {
    let executions = std::env::var("FAULTS_WORKLOAD_EXECUTIONS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(2_000);
    workload::Plan {
        executions,
        workers: 8,
        total_shards: 4,
        lease_ms: 3_000,
        close_lease_ms: 3_000,
        batch_per_shard: 8,
        fault_rate: 0.10,
        seed: 0xfa17,
        blackout: Duration::from_secs(5),
        blackout_at: 0.3,
        deadline: Duration::from_secs(300),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_under_faults_closes_every_execution_once() {
    let plan = workload_plan();
    let deployment = TestDeployment::local_only("faults_workload", true);
    let make_http: Arc<workload::MakeHttp> = Arc::new(|url: &str| {
        ConvexHttpClient::new(url)
            .expect("a valid URL")
            .with_timeouts(Duration::from_secs(2), Duration::from_secs(30))
            .with_retry_policy(lost::quick_retries())
    });
    let report = workload::run(&deployment, &plan, make_http).await;
    report.print(&plan);
    assert!(
        report.not_closed.is_empty(),
        "not closed: {:?}",
        report.not_closed
    );
    assert!(
        report.claimed_twice.is_empty(),
        "claimed twice while the lease was valid: {:?}",
        report.claimed_twice
    );
    assert_eq!(
        report.executions_claimed, plan.executions,
        "every execution was claimed by a worker that saw its claim"
    );
    assert!(
        report.blackout_started_at.is_some(),
        "the blackout happened"
    );
    // About 10% of the requests that reached the proxy were faulted, of every kind.
    let share = report.proxy.faults_total() as f64 / report.proxy.requests.max(1) as f64;
    assert!((0.05..=0.15).contains(&share), "{}", report.proxy);
    assert!(
        report.proxy.fault(FaultKind::DropResponse) > 0,
        "{}",
        report.proxy
    );
    assert_eq!(report.proxy.fault(FaultKind::ListenerDown), 1);
    // The client retried: refused connects during the blackout at least.
    assert!(
        report.client.retries > 0 && report.client.connect > 0,
        "{:?}",
        report.client
    );
}

// ---------------------------------------------------------------------------------------------
// Each of the 17 operations: the response lost after the commit, then the client's retry (or
// not, per the operation's declared RetrySafety). Then the other faults.
// ---------------------------------------------------------------------------------------------

mod lost {
    use std::time::{Duration, Instant};

    use durable_execution_storage_convex::runtime::{
        ConvexError, ConvexHttpClient, ConvexOperation, RetryPolicy, RetrySafety, StopReason,
    };
    use durable_execution_storage_convex::storage::{
        now_millis, GetByIdRequest, StorageError, TaskExecutionStorageUpdate,
        TaskExecutionStorageValue, TaskExecutionsStorage, UpdateByCloseExpiresAtLessThanRequest,
        UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByIdRequest,
        UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest,
        UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
        UpdateByStatusAndStartAtLessThanRequest,
    };
    use durable_execution_storage_convex::task_executions::{
        self as tx, CloseStatus, OnChildrenFinishedProcessingStatus, TaskExecutionFilters,
        TaskExecutionStatus, TaskExecutionUnset,
    };
    use durable_execution_storage_convex::{ConvexStorageOptions, ConvexTaskExecutionsStorage};

    use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
    use crate::support::{child_value, new_value, TestDeployment};

    /// The design's retry safety of each operation (SPEC §B, the README's table).
    pub const RETRY_SAFETY: [(&str, RetrySafety); 17] = [
        ("insertMany", RetrySafety::VerifyDuplicates),
        ("getManyById", RetrySafety::Idempotent),
        ("getManyBySleepingTaskUniqueId", RetrySafety::Idempotent),
        ("updateManyById", RetrySafety::Idempotent),
        (
            "updateManyByIdAndInsertChildrenIfUpdated",
            RetrySafety::VerifyDuplicates,
        ),
        (
            "updateByStatusAndStartAtLessThanAndReturn",
            RetrySafety::OnlyUnsent,
        ),
        (
            "updateByStatusAndOCFPStatusAndACCZeroAndReturn",
            RetrySafety::OnlyUnsent,
        ),
        ("updateByCloseStatusAndReturn", RetrySafety::OnlyUnsent),
        (
            "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan",
            RetrySafety::Idempotent,
        ),
        ("updateByOCFPExpiresAt", RetrySafety::Idempotent),
        ("updateByCloseExpiresAt", RetrySafety::Idempotent),
        ("updateByExecutorIdAndNPCAndReturn", RetrySafety::OnlyUnsent),
        ("getManyByParentExecutionId", RetrySafety::Idempotent),
        (
            "updateManyByParentExecutionIdAndIsFinished",
            RetrySafety::Idempotent,
        ),
        (
            "updateAndDecrementParentACCByIsFinishedAndCloseStatus",
            RetrySafety::OnlyUnsent,
        ),
        ("deleteById", RetrySafety::Idempotent),
        ("deleteAll", RetrySafety::Idempotent),
    ];

    /// What the generated code declares for each operation.
    pub fn declared() -> Vec<(&'static str, RetrySafety)> {
        fn of<O: ConvexOperation>() -> (&'static str, RetrySafety) {
            (O::NAME, O::RETRY_SAFETY)
        }
        vec![
            of::<tx::InsertManyArgs>(),
            of::<tx::GetManyByIdArgs>(),
            of::<tx::GetManyBySleepingTaskUniqueIdArgs>(),
            of::<tx::UpdateManyByIdArgs>(),
            of::<tx::UpdateManyByIdAndInsertChildrenIfUpdatedArgs>(),
            of::<tx::UpdateByStatusAndStartAtLessThanAndReturnArgs>(),
            of::<tx::UpdateByStatusAndOcfpStatusAndAccZeroAndReturnArgs>(),
            of::<tx::UpdateByCloseStatusAndReturnArgs>(),
            of::<tx::UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanArgs>(),
            of::<tx::UpdateByOcfpExpiresAtArgs>(),
            of::<tx::UpdateByCloseExpiresAtArgs>(),
            of::<tx::UpdateByExecutorIdAndNpcAndReturnArgs>(),
            of::<tx::GetManyByParentExecutionIdArgs>(),
            of::<tx::UpdateManyByParentExecutionIdAndIsFinishedArgs>(),
            of::<tx::UpdateAndDecrementParentAccByIsFinishedAndCloseStatusArgs>(),
            of::<tx::DeleteByIdArgs>(),
            of::<tx::DeleteAllArgs>(),
        ]
    }

    /// The lease of the executions of these tests (their `timeoutMs`), and of the processing
    /// and closing batches they pick.
    pub const LEASE_MS: u64 = 1_000;

    /// One test's database, a proxy in front of it, a storage through the proxy (one shard,
    /// test mode, quick retries) and one straight to the server (to set up and to look).
    pub struct Rig {
        pub deployment: TestDeployment,
        pub proxy: FaultProxy,
        pub http: ConvexHttpClient,
        pub storage: ConvexTaskExecutionsStorage,
        pub direct: ConvexTaskExecutionsStorage,
    }

    pub fn quick_retries() -> RetryPolicy {
        RetryPolicy::default()
            .with_initial_backoff(Duration::from_millis(20))
            .with_max_backoff(Duration::from_millis(200))
    }

    impl Rig {
        pub async fn new(name: &str) -> Self {
            Self::with_request_timeout(name, Duration::from_secs(20)).await
        }

        pub async fn with_request_timeout(name: &str, request_timeout: Duration) -> Self {
            let deployment = TestDeployment::local_only(name, true);
            let proxy = FaultProxy::start(deployment.url()).await.expect("proxy");
            let http = ConvexHttpClient::new(&proxy.url_for(deployment.url()))
                .expect("url")
                .with_timeouts(Duration::from_secs(2), request_timeout)
                .with_retry_policy(quick_retries());
            let options = ConvexStorageOptions::default().with_test_mode(true);
            let storage = ConvexTaskExecutionsStorage::new(
                deployment.client_over(http.clone()),
                options.clone(),
            )
            .expect("options");
            let direct = deployment.storage(options);
            Self {
                deployment,
                proxy,
                http,
                storage,
                direct,
            }
        }

        /// Requests the proxy saw for the function `name`.
        pub fn requests(&self, name: &str) -> usize {
            self.proxy.events_for(name).len()
        }

        pub async fn insert(&self, values: Vec<TaskExecutionStorageValue>) {
            self.direct.insert_many(values).await.expect("set up");
        }

        pub async fn get(&self, id: &str) -> Option<TaskExecutionStorageValue> {
            self.direct
                .get_many_by_id(vec![by_id(id)])
                .await
                .expect("read")
                .pop()
                .flatten()
        }

        pub async fn get_all(&self, ids: &[&str]) -> Vec<Option<TaskExecutionStorageValue>> {
            self.direct
                .get_many_by_id(ids.iter().map(|id| by_id(id)).collect())
                .await
                .expect("read")
        }

        /// Waits until the server's clock is past the `updatedAt` of `ids`, so that "not
        /// updated since now" holds for them.
        pub async fn settle(&self, ids: &[&str]) {
            let latest = self
                .get_all(ids)
                .await
                .into_iter()
                .flatten()
                .map(|v| v.updated_at)
                .max()
                .unwrap_or(0);
            wait_past(latest).await;
        }

        /// Loses the next response of `name` after the server committed it.
        pub fn lose_next_response(&self, name: &str) {
            self.proxy.add_rule(Rule::path(name, Fault::DropResponse));
        }

        /// Loses the next response of `name`, then awaits `call` (a call of `name` on
        /// [`storage`](Self::storage), sent when awaited) and checks that it was not re-sent:
        /// one request, an unknown outcome.
        pub async fn assert_lost_call_not_re_sent<T: std::fmt::Debug>(
            &self,
            name: &str,
            what: &str,
            call: impl std::future::Future<Output = Result<T, StorageError>>,
        ) {
            self.lose_next_response(name);
            let error = call.await.expect_err("not re-sent");
            assert_unknown_outcome(&error, what);
            assert_eq!(self.requests(name), 1, "{what}: sent once");
        }
    }

    /// A ready execution with a short lease.
    pub fn ready(id: &str) -> TaskExecutionStorageValue {
        let mut value = new_value(id);
        value.timeout_ms = LEASE_MS;
        value
    }

    pub fn touch(now: u64) -> TaskExecutionStorageUpdate {
        TaskExecutionStorageUpdate {
            updated_at: now,
            ..TaskExecutionStorageUpdate::default()
        }
    }

    /// The error of a call whose response was lost and which was not re-sent: transient,
    /// of unknown outcome (not retry-safe), stopped for that reason after one attempt.
    pub fn assert_unknown_outcome(error: &StorageError, name: &str) {
        let convex = error
            .convex_error()
            .unwrap_or_else(|| panic!("{name}: a Convex error, got {error:?}"));
        assert!(error.is_transient(), "{name}: transient: {error:?}");
        assert!(!error.is_retry_safe(), "{name}: not retry-safe: {error:?}");
        assert!(
            matches!(
                convex,
                ConvexError::Attempts {
                    attempts: 1,
                    stopped: StopReason::OutcomeUnknown,
                    ..
                }
            ),
            "{name}: one attempt, stopped because the outcome is unknown: {convex:?}"
        );
        assert!(
            matches!(
                convex.last_attempt(),
                ConvexError::Transport {
                    request_sent: true,
                    ..
                }
            ),
            "{name}: {convex:?}"
        );
    }

    /// The local server's clock: it runs on this machine, so it is this process's system
    /// clock. Bounds the tests compare exactly (expiry sweeps right after a lease) use it; the
    /// storage's own estimate (from `Date` headers) is only good to about half a second.
    pub fn server_now() -> u64 {
        now_millis()
    }

    /// Waits until the server's clock passes `at` (epoch ms), plus a margin. The local
    /// server runs on this machine: its clock is this process's system clock (the storage's
    /// estimate from `Date` headers is only good to about half a second).
    pub async fn wait_past(at: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while now_millis() <= at + 20 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn claim_request(executor: &str, now: u64) -> UpdateByStatusAndStartAtLessThanRequest {
        UpdateByStatusAndStartAtLessThanRequest {
            status: TaskExecutionStatus::Ready,
            start_at_less_than: now + 1,
            update: TaskExecutionStorageUpdate {
                status: Some(TaskExecutionStatus::Running),
                executor_id: Some(executor.to_owned()),
                started_at: Some(now),
                ..touch(now)
            },
            update_expires_at_with_started_at: now,
            limit: 10,
        }
    }

    pub fn expire_claims_request(
        now: u64,
    ) -> UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
        UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
            status: TaskExecutionStatus::Running,
            is_sleeping_task: false,
            expires_at_less_than: now,
            update: TaskExecutionStorageUpdate {
                status: Some(TaskExecutionStatus::Ready),
                unset: Some(TaskExecutionUnset {
                    executor_id: true,
                    expires_at: true,
                    started_at: true,
                    ..TaskExecutionUnset::default()
                }),
                ..touch(now)
            },
            limit: 100,
        }
    }

    /// The sweep that gives expired closings back (`closeStatus` ready again).
    pub fn expire_closings_request(now: u64, limit: u32) -> UpdateByCloseExpiresAtLessThanRequest {
        UpdateByCloseExpiresAtLessThanRequest {
            close_expires_at_less_than: now,
            update: TaskExecutionStorageUpdate {
                close_status: Some(CloseStatus::Ready),
                unset: Some(TaskExecutionUnset {
                    close_expires_at: true,
                    ..TaskExecutionUnset::default()
                }),
                ..touch(now)
            },
            limit,
        }
    }

    /// The sweep that resets expired on-children-finished processing (`ocfpStatus` idle).
    pub fn expire_ocfp_request(
        now: u64,
    ) -> UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest {
        UpdateByOnChildrenFinishedProcessingExpiresAtLessThanRequest {
            on_children_finished_processing_expires_at_less_than: now,
            update: TaskExecutionStorageUpdate {
                on_children_finished_processing_status: Some(
                    OnChildrenFinishedProcessingStatus::Idle,
                ),
                unset: Some(TaskExecutionUnset {
                    on_children_finished_processing_expires_at: true,
                    ..TaskExecutionUnset::default()
                }),
                ..touch(now)
            },
            limit: 10,
        }
    }

    /// One update of `id`'s retry attempts (an idempotent call, to be lost or delayed).
    pub fn set_retry_attempts(id: &str, attempts: u32, now: u64) -> Vec<UpdateByIdRequest> {
        vec![update_by_id(
            id,
            None,
            TaskExecutionStorageUpdate {
                retry_attempts: Some(attempts),
                ..touch(now)
            },
        )]
    }

    pub fn by_id(id: &str) -> GetByIdRequest {
        GetByIdRequest {
            execution_id: id.to_owned(),
            filters: None,
        }
    }

    pub fn update_by_id(
        id: &str,
        filters: Option<TaskExecutionFilters>,
        update: TaskExecutionStorageUpdate,
    ) -> UpdateByIdRequest {
        UpdateByIdRequest {
            execution_id: id.to_owned(),
            filters,
            update,
        }
    }

    pub fn status_filter(status: TaskExecutionStatus) -> Option<TaskExecutionFilters> {
        Some(TaskExecutionFilters {
            status: Some(status),
            ..TaskExecutionFilters::default()
        })
    }

    pub fn ids(values: &[TaskExecutionStorageValue]) -> Vec<String> {
        let mut ids: Vec<String> = values.iter().map(|v| v.execution_id.clone()).collect();
        ids.sort();
        ids
    }

    pub fn child(id: &str, parent: &str, index: u32) -> TaskExecutionStorageValue {
        let mut value = child_value(id, parent, index);
        value.timeout_ms = LEASE_MS;
        value
    }

    /// A parent running, with `children` children inserted under it, `finished` of which
    /// finished and ready to close; its active children count says `children`.
    pub async fn family(rig: &Rig, parent: &str, children: u32, finished: u32) -> Vec<String> {
        let mut value = ready(parent);
        value.status = TaskExecutionStatus::Running;
        rig.insert(vec![value]).await;
        let kids: Vec<TaskExecutionStorageValue> = (0..children)
            .map(|i| {
                let mut kid = child(&format!("{parent}-c{i}"), parent, i);
                if i < finished {
                    kid.status = TaskExecutionStatus::Completed;
                    kid.is_finished = true;
                    kid.close_status = CloseStatus::Ready;
                }
                kid
            })
            .collect();
        let names = kids.iter().map(|k| k.execution_id.clone()).collect();
        let now = server_now();
        rig.direct
            .update_many_by_id_and_insert_children_if_updated(vec![
                UpdateByIdAndInsertChildrenIfUpdatedRequest {
                    execution_id: parent.to_owned(),
                    filters: None,
                    update: TaskExecutionStorageUpdate {
                        status: Some(TaskExecutionStatus::WaitingForChildren),
                        active_children_count: Some(children),
                        ..touch(now)
                    },
                    children_task_executions_to_insert_if_any_updated: kids,
                },
            ])
            .await
            .expect("set up the family");
        names
    }
}

use durable_execution_storage_convex::runtime::{RetryPolicy, StopReason};
use durable_execution_storage_convex::storage::{
    GetByParentExecutionIdRequest, GetBySleepingTaskUniqueIdRequest, TaskExecutionStorageUpdate,
    TaskExecutionsStorage, UpdateAndDecrementParentActiveChildrenCountRequest,
    UpdateByCloseStatusRequest, UpdateByExecutorIdAndNeedsPromiseCancellationRequest,
    UpdateByIdAndInsertChildrenIfUpdatedRequest, UpdateByParentExecutionIdAndIsFinishedRequest,
    UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest,
};
use durable_execution_storage_convex::task_executions::{
    CloseStatus, OnChildrenFinishedProcessingStatus, TaskExecutionStatus,
};
use durable_execution_storage_convex::{ConvexStorageOptions, ConvexTaskExecutionsStorage};
use lost::{
    assert_unknown_outcome, by_id, claim_request, expire_claims_request, expire_closings_request,
    expire_ocfp_request, family, ids, ready, server_now, set_retry_attempts, status_filter, touch,
    update_by_id, wait_past, Rig, LEASE_MS,
};

#[test]
fn every_operation_declares_the_designed_retry_safety() {
    let declared = lost::declared();
    assert_eq!(declared.len(), 17);
    let mismatches: Vec<String> = lost::RETRY_SAFETY
        .iter()
        .zip(&declared)
        .filter(|(designed, declared)| designed != declared)
        .map(|((name, designed), (_, declared))| {
            format!("{name}: the design says {designed:?}, the declaration {declared:?}")
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// insertMany (verify_duplicates): the re-send is refused as a duplicate of the first
/// attempt; the client reads the executions back, finds them as sent: success, inserted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_insert_many_is_re_sent_and_verified() {
    let rig = Rig::new("lost_insertMany").await;
    rig.lose_next_response("insertMany");
    rig.storage
        .insert_many(vec![ready("a"), ready("b")])
        .await
        .expect("the re-sent insert is verified as the first one's success");
    let stored = rig.get_all(&["a", "b"]).await;
    assert!(stored.iter().all(Option::is_some), "{stored:?}");
    assert_eq!(rig.requests("insertMany"), 2, "sent twice");
    assert!(rig.requests("getManyById") >= 1, "then read back");
    assert_eq!(rig.http.stats().retries, 1);
    assert_eq!(rig.deployment.calls("insertMany").await, Some(2));

    // A real duplicate (different content, no lost response) is still refused.
    let mut other = ready("a");
    other.input = "{\"different\":true}".to_owned();
    let error = rig
        .storage
        .insert_many(vec![other])
        .await
        .expect_err("a real duplicate");
    assert!(error.is_already_exists(), "{error:?}");
}

/// The three queries (idempotent): re-sent, same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_queries_are_re_sent() {
    let rig = Rig::new("lost_queries").await;
    let mut sleeping = ready("s");
    sleeping.is_sleeping_task = true;
    sleeping.sleeping_task_unique_id = Some("s-unique".to_owned());
    rig.insert(vec![ready("a"), sleeping]).await;
    family(&rig, "p", 2, 0).await;

    rig.lose_next_response("getManyById");
    let got = rig
        .storage
        .get_many_by_id(vec![by_id("a"), by_id("nope")])
        .await
        .expect("re-sent");
    assert_eq!(got[0].as_ref().map(|v| v.execution_id.as_str()), Some("a"));
    assert!(got[1].is_none());
    assert_eq!(rig.requests("getManyById"), 2);

    rig.lose_next_response("getManyBySleepingTaskUniqueId");
    let got = rig
        .storage
        .get_many_by_sleeping_task_unique_id(vec![GetBySleepingTaskUniqueIdRequest {
            sleeping_task_unique_id: "s-unique".to_owned(),
        }])
        .await
        .expect("re-sent");
    assert_eq!(got[0].as_ref().map(|v| v.execution_id.as_str()), Some("s"));
    assert_eq!(rig.requests("getManyBySleepingTaskUniqueId"), 2);

    rig.lose_next_response("getManyByParentExecutionId");
    let got = rig
        .storage
        .get_many_by_parent_execution_id(vec![GetByParentExecutionIdRequest {
            parent_execution_id: "p".to_owned(),
        }])
        .await
        .expect("re-sent");
    assert_eq!(ids(&got[0]), ["p-c0", "p-c1"]);
    assert_eq!(rig.requests("getManyByParentExecutionId"), 2);
    assert_eq!(rig.http.stats().retries, 3);
}

/// updateManyById (idempotent): the same patch again; with a filter the patch no longer
/// matches and is skipped. One application either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_update_many_by_id_is_re_sent() {
    let rig = Rig::new("lost_updateManyById").await;
    let mut running = ready("r");
    running.status = TaskExecutionStatus::Running;
    rig.insert(vec![running, ready("plain")]).await;
    rig.lose_next_response("updateManyById");
    let now = rig.storage.now_millis();
    rig.storage
        .update_many_by_id(vec![
            update_by_id(
                "r",
                status_filter(TaskExecutionStatus::Running),
                TaskExecutionStorageUpdate {
                    status: Some(TaskExecutionStatus::Completed),
                    is_finished: Some(true),
                    output: Some("out".to_owned()),
                    ..touch(now)
                },
            ),
            update_by_id(
                "plain",
                None,
                TaskExecutionStorageUpdate {
                    retry_attempts: Some(2),
                    ..touch(now)
                },
            ),
        ])
        .await
        .expect("re-sent");
    let r = rig.get("r").await.expect("r");
    assert_eq!(r.status, TaskExecutionStatus::Completed);
    assert!(r.is_finished);
    assert_eq!(r.output.as_deref(), Some("out"));
    assert_eq!(rig.get("plain").await.expect("plain").retry_attempts, 2);
    assert_eq!(rig.requests("updateManyById"), 2);
    assert_eq!(rig.deployment.calls("updateManyById").await, Some(2));
}

/// updateManyByIdAndInsertChildrenIfUpdated (verify_duplicates): with a filter the re-send
/// skips (the parent no longer matches); without, its children are refused as duplicates and
/// the client verifies the parent's children are there. Children inserted once either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_update_and_insert_children_is_re_sent_and_verified() {
    let rig = Rig::new("lost_insertChildren").await;
    let mut filtered = ready("pf");
    filtered.status = TaskExecutionStatus::Running;
    let mut unfiltered = ready("pu");
    unfiltered.status = TaskExecutionStatus::Running;
    rig.insert(vec![filtered, unfiltered]).await;
    for (parent, filters) in [
        ("pf", status_filter(TaskExecutionStatus::Running)),
        ("pu", None),
    ] {
        rig.lose_next_response("updateManyByIdAndInsertChildrenIfUpdated");
        let now = rig.storage.now_millis();
        rig.storage
            .update_many_by_id_and_insert_children_if_updated(vec![
                UpdateByIdAndInsertChildrenIfUpdatedRequest {
                    execution_id: parent.to_owned(),
                    filters,
                    update: TaskExecutionStorageUpdate {
                        status: Some(TaskExecutionStatus::WaitingForChildren),
                        active_children_count: Some(2),
                        ..touch(now)
                    },
                    children_task_executions_to_insert_if_any_updated: vec![
                        lost::child(&format!("{parent}-0"), parent, 0),
                        lost::child(&format!("{parent}-1"), parent, 1),
                    ],
                },
            ])
            .await
            .unwrap_or_else(|e| panic!("{parent}: re-sent and verified: {e:?}"));
        let p = rig.get(parent).await.expect("parent");
        assert_eq!(p.status, TaskExecutionStatus::WaitingForChildren);
        assert_eq!(p.active_children_count, 2);
        let children = rig
            .direct
            .get_many_by_parent_execution_id(vec![GetByParentExecutionIdRequest {
                parent_execution_id: parent.to_owned(),
            }])
            .await
            .expect("children");
        assert_eq!(
            ids(&children[0]),
            [format!("{parent}-0"), format!("{parent}-1")],
            "{parent}: each child once"
        );
    }
    assert_eq!(rig.requests("updateManyByIdAndInsertChildrenIfUpdated"), 4);
    assert_eq!(rig.http.stats().retries, 2);
}

/// The claim (only_unsent): NOT re-sent. The call fails with an unknown outcome; the
/// executions stay claimed (running, with their lease) until the lease expires, then the
/// expiry sweep gives them back and they are claimed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_claim_is_not_re_sent_and_the_lease_expires() {
    let rig = Rig::new("lost_claim").await;
    rig.insert(vec![ready("a"), ready("b"), ready("c")]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = rig.storage.now_millis();
    rig.assert_lost_call_not_re_sent(
        "updateByStatusAndStartAtLessThanAndReturn",
        "claim",
        rig.storage
            .update_by_status_and_start_at_less_than_and_return(claim_request("lost", now)),
    )
    .await;
    assert_eq!(rig.http.stats().retries, 0);

    // Claimed by the lost call, with a lease.
    let stored = rig.get_all(&["a", "b", "c"]).await;
    let mut latest_expiry = 0;
    for value in stored.iter().flatten() {
        assert_eq!(value.status, TaskExecutionStatus::Running);
        assert_eq!(value.executor_id.as_deref(), Some("lost"));
        let expires_at = value.expires_at.expect("a lease");
        latest_expiry = latest_expiry.max(expires_at);
    }
    assert_eq!(stored.iter().flatten().count(), 3);
    // Nobody else can claim them while the lease holds.
    let now = server_now();
    let again = rig
        .direct
        .update_by_status_and_start_at_less_than_and_return(claim_request("other", now))
        .await
        .expect("claim");
    assert!(again.is_empty(), "still leased: {again:?}");
    let swept = rig
        .direct
        .update_by_status_and_is_sleeping_task_and_expires_at_less_than(expire_claims_request(now))
        .await
        .expect("sweep");
    assert_eq!(swept, 0, "the lease has not expired yet");

    // After the lease: swept back to ready, claimable again.
    wait_past(latest_expiry).await;
    let now = server_now();
    let swept = rig
        .direct
        .update_by_status_and_is_sleeping_task_and_expires_at_less_than(expire_claims_request(now))
        .await
        .expect("sweep");
    assert_eq!(swept, 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = server_now();
    let reclaimed = rig
        .direct
        .update_by_status_and_start_at_less_than_and_return(claim_request("other", now))
        .await
        .expect("claim");
    assert_eq!(ids(&reclaimed), ["a", "b", "c"]);
}

/// On-children-finished processing pick (only_unsent): not re-sent; `ocfpStatus` stays
/// `processing` until `ocfpExpiresAt`, then the sweep resets it and it is picked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_ocfp_pick_is_not_re_sent_and_expires() {
    let rig = Rig::new("lost_ocfp").await;
    let mut parent = ready("p");
    parent.status = TaskExecutionStatus::WaitingForChildren;
    rig.insert(vec![parent]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pick = |now: u64| {
        UpdateByStatusAndOnChildrenFinishedProcessingStatusAndActiveChildrenCountZeroRequest {
            status: TaskExecutionStatus::WaitingForChildren,
            on_children_finished_processing_status: OnChildrenFinishedProcessingStatus::Idle,
            update: TaskExecutionStorageUpdate {
                on_children_finished_processing_status: Some(
                    OnChildrenFinishedProcessingStatus::Processing,
                ),
                on_children_finished_processing_expires_at: Some(now + LEASE_MS),
                ..touch(now)
            },
            limit: 10,
        }
    };
    rig.assert_lost_call_not_re_sent(
        "updateByStatusAndOCFPStatusAndACCZeroAndReturn",
        "ocfp pick",
        rig.storage
            .update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(pick(rig.storage.now_millis())),
    )
    .await;
    let p = rig.get("p").await.expect("p");
    assert_eq!(
        p.on_children_finished_processing_status,
        OnChildrenFinishedProcessingStatus::Processing
    );
    let expires_at = p
        .on_children_finished_processing_expires_at
        .expect("an expiry");
    wait_past(expires_at).await;
    let now = server_now();
    let reset = rig
        .direct
        .update_by_on_children_finished_processing_expires_at_less_than(expire_ocfp_request(now))
        .await
        .expect("sweep");
    assert_eq!(reset, 1);
    rig.settle(&["p"]).await;
    let picked = rig
        .direct
        .update_by_status_and_on_children_finished_processing_status_and_active_children_count_zero_and_return(pick(rig.direct.now_millis()))
        .await
        .expect("pick");
    assert_eq!(ids(&picked), ["p"]);
}

/// Closing pick (only_unsent): not re-sent; `closeStatus` stays `closing` until
/// `closeExpiresAt`, then the sweep gives it back and it is picked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_close_pick_is_not_re_sent_and_expires() {
    let rig = Rig::new("lost_close").await;
    let mut done = ready("d");
    done.status = TaskExecutionStatus::Completed;
    done.is_finished = true;
    done.close_status = CloseStatus::Ready;
    rig.insert(vec![done]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pick = |now: u64| UpdateByCloseStatusRequest {
        close_status: CloseStatus::Ready,
        update: TaskExecutionStorageUpdate {
            close_status: Some(CloseStatus::Closing),
            close_expires_at: Some(now + LEASE_MS),
            ..touch(now)
        },
        limit: 10,
    };
    rig.assert_lost_call_not_re_sent(
        "updateByCloseStatusAndReturn",
        "close pick",
        rig.storage
            .update_by_close_status_and_return(pick(rig.storage.now_millis())),
    )
    .await;
    let d = rig.get("d").await.expect("d");
    assert_eq!(d.close_status, CloseStatus::Closing);
    wait_past(d.close_expires_at.expect("an expiry")).await;
    let now = server_now();
    let reset = rig
        .direct
        .update_by_close_expires_at_less_than(expire_closings_request(now, 10))
        .await
        .expect("sweep");
    assert_eq!(reset, 1);
    rig.settle(&["d"]).await;
    let picked = rig
        .direct
        .update_by_close_status_and_return(pick(rig.direct.now_millis()))
        .await
        .expect("pick");
    assert_eq!(ids(&picked), ["d"]);
}

/// The three expiry sweeps (idempotent): re-sent; the second sweep finds nothing more (its
/// count, 0, is what the call returns); every expired execution patched once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_sweeps_are_re_sent() {
    let rig = Rig::new("lost_sweeps").await;
    let now = server_now();
    let lease_end = now + 200;
    let mut values = Vec::new();
    for id in ["x1", "x2"] {
        let mut value = ready(id);
        value.status = TaskExecutionStatus::Running;
        value.expires_at = Some(lease_end);
        value.on_children_finished_processing_status =
            OnChildrenFinishedProcessingStatus::Processing;
        value.on_children_finished_processing_expires_at = Some(lease_end);
        value.close_status = CloseStatus::Closing;
        value.close_expires_at = Some(lease_end);
        values.push(value);
    }
    rig.insert(values).await;
    let stored = rig.get_all(&["x1", "x2"]).await;
    let latest = stored
        .iter()
        .flatten()
        .flat_map(|v| {
            [
                v.expires_at,
                v.on_children_finished_processing_expires_at,
                v.close_expires_at,
            ]
        })
        .flatten()
        .max()
        .expect("expiries");
    wait_past(latest).await;
    let now = server_now();

    rig.lose_next_response("updateByStatusAndIsSleepingTaskAndExpiresAtLessThan");
    let n = rig
        .storage
        .update_by_status_and_is_sleeping_task_and_expires_at_less_than(expire_claims_request(now))
        .await
        .expect("re-sent");
    assert_eq!(n, 0, "the re-sent sweep's own count");

    rig.lose_next_response("updateByOCFPExpiresAt");
    let n = rig
        .storage
        .update_by_on_children_finished_processing_expires_at_less_than(expire_ocfp_request(now))
        .await
        .expect("re-sent");
    assert_eq!(n, 0);

    rig.lose_next_response("updateByCloseExpiresAt");
    let n = rig
        .storage
        .update_by_close_expires_at_less_than(expire_closings_request(now, 10))
        .await
        .expect("re-sent");
    assert_eq!(n, 0);

    for value in rig.get_all(&["x1", "x2"]).await.into_iter().flatten() {
        assert_eq!(value.status, TaskExecutionStatus::Ready);
        assert_eq!(value.expires_at, None);
        assert_eq!(
            value.on_children_finished_processing_status,
            OnChildrenFinishedProcessingStatus::Idle
        );
        assert_eq!(value.on_children_finished_processing_expires_at, None);
        assert_eq!(value.close_status, CloseStatus::Ready);
        assert_eq!(value.close_expires_at, None);
    }
    for name in [
        "updateByStatusAndIsSleepingTaskAndExpiresAtLessThan",
        "updateByOCFPExpiresAt",
        "updateByCloseExpiresAt",
    ] {
        assert_eq!(rig.requests(name), 2, "{name}");
    }
    assert_eq!(rig.http.stats().retries, 3);
}

/// Promise-cancellation pick (only_unsent): not re-sent; `npc` is already cleared, so the
/// cancellation of those executions is not delivered to this executor (documented): a second
/// poll finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_promise_cancellation_pick_is_not_re_sent() {
    let rig = Rig::new("lost_npc").await;
    let mut values = Vec::new();
    for id in ["n1", "n2"] {
        let mut value = ready(id);
        value.status = TaskExecutionStatus::Running;
        value.executor_id = Some("exec".to_owned());
        value.needs_promise_cancellation = true;
        values.push(value);
    }
    rig.insert(values).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pick = |now: u64| UpdateByExecutorIdAndNeedsPromiseCancellationRequest {
        executor_id: "exec".to_owned(),
        needs_promise_cancellation: true,
        update: TaskExecutionStorageUpdate {
            needs_promise_cancellation: Some(false),
            ..touch(now)
        },
        limit: 10,
    };
    rig.assert_lost_call_not_re_sent(
        "updateByExecutorIdAndNPCAndReturn",
        "npc pick",
        rig.storage
            .update_by_executor_id_and_needs_promise_cancellation_and_return(pick(
                rig.storage.now_millis(),
            )),
    )
    .await;
    for value in rig.get_all(&["n1", "n2"]).await.into_iter().flatten() {
        assert!(
            !value.needs_promise_cancellation,
            "cleared by the lost call"
        );
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = rig
        .direct
        .update_by_executor_id_and_needs_promise_cancellation_and_return(pick(
            rig.direct.now_millis(),
        ))
        .await
        .expect("poll");
    assert!(
        again.is_empty(),
        "the cancellations are not delivered again"
    );
}

/// updateManyByParentExecutionIdAndIsFinished (idempotent): re-sent, same patch again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_update_by_parent_is_re_sent() {
    let rig = Rig::new("lost_byParent").await;
    let children = family(&rig, "p", 3, 1).await;
    rig.lose_next_response("updateManyByParentExecutionIdAndIsFinished");
    let now = rig.storage.now_millis();
    rig.storage
        .update_many_by_parent_execution_id_and_is_finished(vec![
            UpdateByParentExecutionIdAndIsFinishedRequest {
                parent_execution_id: "p".to_owned(),
                is_finished: false,
                update: TaskExecutionStorageUpdate {
                    needs_promise_cancellation: Some(true),
                    ..touch(now)
                },
            },
        ])
        .await
        .expect("re-sent");
    let names: Vec<&str> = children.iter().map(String::as_str).collect();
    let stored = rig.get_all(&names).await;
    let npc: Vec<bool> = stored
        .iter()
        .flatten()
        .map(|v| v.needs_promise_cancellation)
        .collect();
    assert_eq!(npc, [false, true, true], "the unfinished children only");
    assert_eq!(
        rig.requests("updateManyByParentExecutionIdAndIsFinished"),
        2
    );
}

/// Close and decrement (only_unsent): not re-sent; the children are closed and the parent
/// decremented exactly once each; the count of the lost call is lost, and a second poll
/// finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_decrement_is_not_re_sent_and_applied_once() {
    let rig = Rig::new("lost_decrement").await;
    let children = family(&rig, "p", 3, 2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let close = |now: u64| UpdateAndDecrementParentActiveChildrenCountRequest {
        is_finished: true,
        close_status: CloseStatus::Ready,
        update: TaskExecutionStorageUpdate {
            close_status: Some(CloseStatus::Closed),
            closed_at: Some(now),
            ..touch(now)
        },
        limit: 10,
    };
    rig.assert_lost_call_not_re_sent(
        "updateAndDecrementParentACCByIsFinishedAndCloseStatus",
        "decrement",
        rig.storage
            .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(
                close(rig.storage.now_millis()),
            ),
    )
    .await;
    assert_eq!(
        rig.get("p").await.expect("p").active_children_count,
        1,
        "3 - 2, decremented once per closed child"
    );
    let names: Vec<&str> = children.iter().map(String::as_str).collect();
    let closed: Vec<CloseStatus> = rig
        .get_all(&names)
        .await
        .into_iter()
        .flatten()
        .map(|v| v.close_status)
        .collect();
    assert_eq!(
        closed,
        [CloseStatus::Closed, CloseStatus::Closed, CloseStatus::Idle]
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = rig
        .direct
        .update_and_decrement_parent_active_children_count_by_is_finished_and_close_status(close(
            rig.direct.now_millis(),
        ))
        .await
        .expect("poll");
    assert_eq!(again, 0);
}

/// deleteById and deleteAll (idempotent): re-sent, nothing more to delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_deletes_are_re_sent() {
    let rig = Rig::new("lost_deletes").await;
    rig.insert(vec![ready("a"), ready("b"), ready("c")]).await;
    rig.lose_next_response("deleteById");
    rig.storage.delete_by_id("a").await.expect("re-sent");
    assert!(rig.get("a").await.is_none());
    assert!(rig.get("b").await.is_some());
    rig.lose_next_response("deleteAll");
    rig.storage.delete_all().await.expect("re-sent");
    assert!(rig.get_all(&["b", "c"]).await.iter().all(Option::is_none));
    assert_eq!(rig.requests("deleteById"), 2);
    assert!(rig.requests("deleteAll") >= 2);
}

// ---------------------------------------------------------------------------------------------
// The other faults: retried or not, as documented.
// ---------------------------------------------------------------------------------------------

/// Refused connections (nothing listens): nothing was sent, so even a claim (only_unsent) is
/// retried, and succeeds once the server is reachable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_retried_even_for_a_claim() {
    let rig = Rig::new("fault_refused").await;
    rig.insert(vec![ready("a")]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Enough attempts that their random delays surely outlast the refusal window.
    let http = rig.http.clone().with_retry_policy(
        RetryPolicy::default()
            .with_max_attempts(30)
            .with_initial_backoff(Duration::from_millis(50))
            .with_max_backoff(Duration::from_millis(200)),
    );
    let storage = ConvexTaskExecutionsStorage::new(
        rig.deployment.client_over(http.clone()),
        ConvexStorageOptions::default(),
    )
    .expect("options");
    rig.proxy
        .blackout(Duration::from_millis(250), Blackout::RefuseConnections);
    while !rig.proxy.is_listener_down() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let now = storage.now_millis();
    let claimed = storage
        .update_by_status_and_start_at_less_than_and_return(claim_request("w", now))
        .await
        .expect("retried until the server is back");
    assert_eq!(ids(&claimed), ["a"]);
    let stats = http.stats();
    assert!(stats.failures.connect >= 1, "{stats:?}");
    assert!(stats.retries >= 1, "{stats:?}");
    assert_eq!(rig.requests("updateByStatusAndStartAtLessThanAndReturn"), 1);
}

/// 429 with Retry-After and 503: the call did not run, so a claim is retried; the client
/// waits as long as Retry-After says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_and_unavailable_claims_are_retried() {
    let rig = Rig::new("fault_429_503").await;
    rig.insert(vec![ready("a"), ready("b")]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let path = "updateByStatusAndStartAtLessThanAndReturn";
    rig.proxy
        .add_rule(Rule::path(path, Fault::too_many_requests(1)));
    let started = Instant::now();
    let mut request = claim_request("w", rig.storage.now_millis());
    request.limit = 1;
    let claimed = rig
        .storage
        .update_by_status_and_start_at_less_than_and_return(request)
        .await
        .expect("retried");
    assert_eq!(claimed.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 honoured ({:?})",
        started.elapsed()
    );
    rig.proxy
        .add_rule(Rule::path(path, Fault::status(503)).times(2));
    let claimed = rig
        .storage
        .update_by_status_and_start_at_less_than_and_return(claim_request(
            "w",
            rig.storage.now_millis(),
        ))
        .await
        .expect("retried");
    assert_eq!(claimed.len(), 1);
    let stats = rig.http.stats();
    assert_eq!(stats.failures.rate_limited, 1, "{stats:?}");
    assert_eq!(stats.failures.unavailable, 2, "{stats:?}");
    assert_eq!(stats.retries, 3, "{stats:?}");
    // 5 requests reached the proxy; 2 were forwarded.
    assert_eq!(rig.requests(path), 5);
    assert_eq!(rig.deployment.calls(path).await, Some(2));
}

/// 502/504, a reset and a connection closed unanswered: the client cannot tell whether the
/// call ran. A claim is not re-sent (and fails); an idempotent update is. Here the proxy did
/// NOT forward the claim, so nothing was claimed — or, for a 504 after forwarding, it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_outcomes_are_retried_only_when_safe() {
    let rig = Rig::new("fault_unknown").await;
    rig.insert(vec![ready("a"), ready("u")]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let claim = "updateByStatusAndStartAtLessThanAndReturn";
    for fault in [
        Fault::status(502),
        Fault::status(504),
        Fault::Reset,
        Fault::Refuse,
        Fault::TruncateResponse,
    ] {
        let forwards = fault.forwards();
        rig.proxy.add_rule(Rule::path(claim, fault.clone()));
        let error = rig
            .storage
            .update_by_status_and_start_at_less_than_and_return(claim_request(
                "w",
                rig.storage.now_millis(),
            ))
            .await
            .expect_err("not re-sent");
        let convex = error.convex_error().expect("a Convex error");
        assert!(
            matches!(
                convex,
                ConvexError::Attempts {
                    attempts: 1,
                    stopped: StopReason::OutcomeUnknown,
                    ..
                }
            ),
            "{fault:?}: {convex:?}"
        );
        assert!(error.is_transient() && !error.is_retry_safe(), "{fault:?}");
        let a = rig.get("a").await.expect("a");
        if forwards {
            // Truncated: the claim ran. Give it back for the next round.
            assert_eq!(a.status, TaskExecutionStatus::Running, "{fault:?}");
            rig.direct
                .update_many_by_id(vec![update_by_id(
                    "a",
                    None,
                    TaskExecutionStorageUpdate {
                        status: Some(TaskExecutionStatus::Ready),
                        ..touch(rig.direct.now_millis())
                    },
                )])
                .await
                .expect("reset");
        } else {
            assert_eq!(
                a.status,
                TaskExecutionStatus::Ready,
                "{fault:?}: not forwarded"
            );
        }
    }
    assert_eq!(rig.http.stats().retries, 0);

    // The same faults on an idempotent update: re-sent, applied.
    let update = "updateManyById";
    for (n, fault) in [
        Fault::status(502),
        Fault::status(504),
        Fault::StatusAfterForward { status: 504 },
        Fault::Reset,
        Fault::Refuse,
        Fault::TruncateResponse,
    ]
    .into_iter()
    .enumerate()
    {
        rig.proxy.add_rule(Rule::path(update, fault.clone()));
        let attempts = u32::try_from(n + 1).expect("small");
        rig.storage
            .update_many_by_id(set_retry_attempts("u", attempts, rig.storage.now_millis()))
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: re-sent: {e:?}"));
        assert_eq!(
            rig.get("u").await.expect("u").retry_attempts,
            attempts,
            "{fault:?}"
        );
    }
    assert_eq!(rig.http.stats().retries, 6);

    // Reset halfway through the request body (before the proxy knows the function): the
    // claim is not re-sent (nothing was claimed: not forwarded), the update is.
    rig.proxy.reset_next_requests_mid_body(1);
    let error = rig
        .storage
        .update_by_status_and_start_at_less_than_and_return(claim_request(
            "w",
            rig.storage.now_millis(),
        ))
        .await
        .expect_err("not re-sent");
    assert_unknown_outcome(&error, "claim reset mid-request");
    assert_eq!(
        rig.get("a").await.expect("a").status,
        TaskExecutionStatus::Ready
    );
    rig.proxy.reset_next_requests_mid_body(1);
    rig.storage
        .update_many_by_id(set_retry_attempts("u", 9, rig.storage.now_millis()))
        .await
        .expect("re-sent");
    assert_eq!(rig.get("u").await.expect("u").retry_attempts, 9);
    assert_eq!(rig.http.stats().retries, 7);
    assert_eq!(rig.proxy.stats().fault(FaultKind::ResetMidRequest), 2);
}

/// An attempt that outlives the request timeout: the client gives up on it, but the server
/// may still run it. An idempotent update is re-sent (and applied, twice: harmless); a claim
/// is not re-sent, and the late request still claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_past_the_request_timeout() {
    let rig = Rig::with_request_timeout("fault_delay", Duration::from_millis(500)).await;
    rig.insert(vec![ready("a"), ready("u")]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let delay = Duration::from_millis(1_200);

    rig.proxy
        .add_rule(Rule::path("updateManyById", Fault::Delay(delay)));
    rig.storage
        .update_many_by_id(set_retry_attempts("u", 5, rig.storage.now_millis()))
        .await
        .expect("re-sent after the timeout");
    assert_eq!(rig.get("u").await.expect("u").retry_attempts, 5);
    let stats = rig.http.stats();
    assert_eq!(stats.failures.timeout, 1, "{stats:?}");
    assert_eq!(stats.retries, 1, "{stats:?}");

    let claim = "updateByStatusAndStartAtLessThanAndReturn";
    rig.proxy.add_rule(Rule::path(claim, Fault::Delay(delay)));
    let mut request = claim_request("late", rig.storage.now_millis());
    request.limit = 1;
    let error = rig
        .storage
        .update_by_status_and_start_at_less_than_and_return(request)
        .await
        .expect_err("timed out, not re-sent");
    assert_unknown_outcome(&error, "delayed claim");
    assert_eq!(
        rig.get("a").await.expect("a").status,
        TaskExecutionStatus::Ready
    );
    tokio::time::sleep(delay).await;
    let a = rig.get("a").await.expect("a");
    assert_eq!(a.status, TaskExecutionStatus::Running, "the late claim ran");
    assert_eq!(a.executor_id.as_deref(), Some("late"));
    assert_eq!(
        rig.deployment.calls("updateManyById").await,
        Some(2),
        "both ran"
    );
}

/// A server that keeps failing: the client stops after `max_attempts`, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_after_max_attempts() {
    let rig = Rig::new("fault_exhausted").await;
    rig.proxy
        .add_rule(Rule::path("getManyById", Fault::status(503)).always());
    let error = rig
        .storage
        .get_many_by_id(vec![by_id("a")])
        .await
        .expect_err("gave up");
    let convex = error.convex_error().expect("a Convex error");
    assert!(
        matches!(
            convex,
            ConvexError::Attempts {
                attempts: 5,
                stopped: StopReason::MaxAttempts(5),
                ..
            }
        ),
        "{convex:?}"
    );
    assert!(error.is_transient());
    assert_eq!(rig.requests("getManyById"), 5);
    let stats = rig.http.stats();
    assert_eq!((stats.retries, stats.failed_calls), (4, 1), "{stats:?}");
    // RetryPolicy::none(): one attempt.
    let once = ConvexHttpClient::new(&rig.proxy.url_for(rig.deployment.url()))
        .expect("url")
        .with_retry_policy(RetryPolicy::none());
    let storage = ConvexTaskExecutionsStorage::new(
        rig.deployment.client_over(once.clone()),
        ConvexStorageOptions::default(),
    )
    .expect("options");
    storage
        .get_many_by_id(vec![by_id("a")])
        .await
        .expect_err("no retry");
    assert_eq!(once.stats().requests, 1);
}
