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
        TaskExecutionsStorage, UpdateByCloseExpiresAtLessThanRequest, UpdateByCloseStatusRequest,
        UpdateByIdRequest, UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest,
        UpdateByStatusAndStartAtLessThanRequest,
    };
    use durable_execution_storage_convex::task_executions::{
        CloseStatus, TaskExecutionFilters, TaskExecutionStatus, TaskExecutionUnset,
    };
    use durable_execution_storage_convex::{ConvexStorageOptions, ConvexTaskExecutionsStorage};

    use crate::support::fault_proxy::{Blackout, Fault, FaultProxy, ProxyStats, RandomFaults};
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
        pub expired_claims: u64,
        pub expired_closings: u64,
        pub blackout_started_at: Option<Duration>,
    }

    /// Each worker's storage: its own HTTP client (connection pool), through the proxy.
    pub type MakeHttp = dyn Fn(&str) -> ConvexHttpClient + Send + Sync;

    fn storage(
        deployment: &TestDeployment,
        proxy: &FaultProxy,
        plan: &Plan,
        make_http: &MakeHttp,
    ) -> Arc<ConvexTaskExecutionsStorage> {
        let http = make_http(&proxy.url_for(deployment.url()));
        Arc::new(
            ConvexTaskExecutionsStorage::new(
                deployment.client_over(http),
                ConvexStorageOptions::default().with_total_shards(plan.total_shards),
            )
            .expect("valid options"),
        )
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
        for w in 0..plan.workers {
            let storage = storage(deployment, &proxy, plan, &*make_http);
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
        Report {
            elapsed,
            proxy: proxy.stats(),
            calls,
            errors,
            not_closed,
            claimed_twice,
            reclaimed,
            observed_claims,
            expired_claims: shared.expired_claims.load(Ordering::SeqCst),
            expired_closings: shared.expired_closings.load(Ordering::SeqCst),
            blackout_started_at,
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
                        UpdateByStatusAndIsSleepingTaskAndExpiresAtLessThanRequest {
                            status: TaskExecutionStatus::Running,
                            is_sleeping_task: false,
                            expires_at_less_than: now,
                            update: TaskExecutionStorageUpdate {
                                status: Some(TaskExecutionStatus::Ready),
                                updated_at: now,
                                unset: Some(TaskExecutionUnset {
                                    executor_id: true,
                                    expires_at: true,
                                    started_at: true,
                                    ..TaskExecutionUnset::default()
                                }),
                                ..TaskExecutionStorageUpdate::default()
                            },
                            limit: 100,
                        },
                    )
                    .await;
                shared.record("expireClaims", &expired);
                if let Ok(n) = expired {
                    shared
                        .expired_claims
                        .fetch_add(u64::from(n), Ordering::SeqCst);
                }
                let expired = storage
                    .update_by_close_expires_at_less_than(UpdateByCloseExpiresAtLessThanRequest {
                        close_expires_at_less_than: now,
                        update: TaskExecutionStorageUpdate {
                            close_status: Some(CloseStatus::Ready),
                            updated_at: now,
                            unset: Some(TaskExecutionUnset {
                                close_expires_at: true,
                                ..TaskExecutionUnset::default()
                            }),
                            ..TaskExecutionStorageUpdate::default()
                        },
                        limit: 100,
                    })
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
            .with_timeout(Duration::from_secs(30))
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
    assert!(
        report.blackout_started_at.is_some(),
        "the blackout happened"
    );
    assert!(report.proxy.faults_total() > 0);
}
