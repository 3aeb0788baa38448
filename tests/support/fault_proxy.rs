//! [`FaultProxy`]: an HTTP/1.1 proxy on loopback, between a Convex client and the local
//! server, that injects the failures a real network and a real deployment produce.
//!
//! ```text
//!   ConvexHttpClient ──► FaultProxy (127.0.0.1:P) ──► local Convex server (127.0.0.1:S)
//! ```
//!
//! The client is pointed at the proxy with the same path ([`FaultProxy::url_for`] swaps the
//! authority of a deployment URL, so `/instance/<id>` keeps working). Every request is read
//! whole (head and `Content-Length` or chunked body), its function path is taken from the JSON
//! body's `path`, and the proxy decides what happens to it, in this order:
//!
//! 1. a **blackout** ([`FaultProxy::blackout`]): every request (or connection) fails for a
//!    while, either with a fault of your choice or with the listener closed, so that connecting
//!    fails with `ECONNREFUSED` ([`Blackout::RefuseConnections`]);
//! 2. the **rules** ([`Rule`]), in the order they were added: by function path (or any), after
//!    letting the first `skip` matches through, at most `times` times;
//! 3. **random faults** ([`RandomFaults`]): with a seeded RNG, a fraction of the requests get a
//!    fault drawn from a weighted mix.
//!
//! The faults ([`Fault`]): close the connection without answering and without forwarding
//! (`Refuse`), reset it (`Reset`), delay before forwarding (`Delay`) or before answering
//! (`DelayResponse`), answer 429 / 502 / 503 / 504 without forwarding (`Status`, with
//! `Retry-After` when given) or after forwarding (`StatusAfterForward`: the server ran the call,
//! the client sees a gateway error), and — the important one — forward the request, wait for the
//! server's whole answer (so the call has committed), then close the connection without
//! answering (`DropResponse`), or answer half of it (`TruncateResponse`).
//! [`FaultProxy::refuse_next_connections`] closes the next accepted connections at once, before
//! reading anything; [`FaultProxy::reset_next_requests_mid_body`] resets the next requests
//! halfway through their body (the client may still be sending).
//!
//! What the client can tell apart: only a refused connect (`Blackout::RefuseConnections`: no
//! listener) proves that nothing was sent. Every other fault happens after the TCP connection
//! was accepted and the request written, so to the client it is an unknown outcome, whether or
//! not the proxy forwarded the request — exactly as with a real network.
//!
//! Counters per fault kind, requests and forwarded requests: [`FaultProxy::stats`]; every
//! request with its decision: [`FaultProxy::events`].
//!
//! Bounds: loopback only (it binds 127.0.0.1 and refuses a non-loopback upstream); every read
//! and every upstream call has a timeout; a connection serves a bounded number of requests;
//! concurrent connections are capped; the proxy stops when dropped (or after
//! [`ProxyOptions::max_lifetime`]). By default every answer carries `Connection: close`, so every
//! request comes on a fresh connection and connection-level faults apply to each request;
//! [`ProxyOptions::keep_alive`] keeps connections open between requests instead.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// The largest request or response head the proxy reads.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How many times the listener is re-bound after a refusal window before giving up.
const REBIND_ATTEMPTS: u32 = 100;
/// The accept loop's rounds (accepted connections and wake-ups) before it stops.
const MAX_ACCEPT_ROUNDS: u64 = 10_000_000;
/// At most this many events are kept (the oldest are not dropped: later ones are).
const MAX_EVENTS: usize = 1_000_000;

/// What happens to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection at once, without forwarding nor answering (FIN).
    Refuse,
    /// Reset the connection (RST), without forwarding nor answering.
    Reset,
    /// Wait, then forward and answer normally. A client that gave up in the meantime still
    /// gets its call run by the server (the request "arrived late").
    Delay(Duration),
    /// Forward at once, hold the answer for this long, then answer.
    DelayResponse(Duration),
    /// Answer this HTTP status without forwarding (429, 502, 503, 504…), with `Retry-After`
    /// when given (its text, e.g. `"1"`).
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// Forward (the server runs the call), then answer this status instead of the server's
    /// answer: a gateway that timed out or failed after the backend did the work.
    StatusAfterForward { status: u16 },
    /// Forward, wait for the server's whole answer (the call committed), then close the
    /// connection without answering.
    DropResponse,
    /// Forward, then answer the head and half of the body, then close.
    TruncateResponse,
}

impl Fault {
    /// `429 Too Many Requests` with `Retry-After: <seconds>`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::Status {
            status: 429,
            retry_after: Some(retry_after_secs.to_string()),
        }
    }

    /// An HTTP status without `Retry-After`, not forwarded.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after: None,
        }
    }

    /// The counter this fault is counted under.
    pub fn kind(&self) -> FaultKind {
        match self {
            Self::Refuse => FaultKind::Refuse,
            Self::Reset => FaultKind::Reset,
            Self::Delay(_) => FaultKind::Delay,
            Self::DelayResponse(_) => FaultKind::DelayResponse,
            Self::Status { status: 429, .. } => FaultKind::Status429,
            Self::Status { status: 502, .. } => FaultKind::Status502,
            Self::Status { status: 503, .. } => FaultKind::Status503,
            Self::Status { status: 504, .. } => FaultKind::Status504,
            Self::Status { .. } => FaultKind::StatusOther,
            Self::StatusAfterForward { .. } => FaultKind::StatusAfterForward,
            Self::DropResponse => FaultKind::DropResponse,
            Self::TruncateResponse => FaultKind::TruncateResponse,
        }
    }

    /// Whether the server runs the request despite the fault.
    pub fn forwards(&self) -> bool {
        matches!(
            self,
            Self::Delay(_)
                | Self::DelayResponse(_)
                | Self::StatusAfterForward { .. }
                | Self::DropResponse
                | Self::TruncateResponse
        )
    }
}

/// The counters of [`ProxyStats::faults`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A connection closed right after accept ([`FaultProxy::refuse_next_connections`]), or a
    /// request that arrived on an open connection while the listener was down.
    RefusedConnection,
    /// A refusal window ([`Blackout::RefuseConnections`]) started: connects fail with
    /// `ECONNREFUSED` (the attempts themselves are refused by the kernel and not counted here).
    ListenerDown,
    Refuse,
    Reset,
    /// [`FaultProxy::reset_next_requests_mid_body`].
    ResetMidRequest,
    Delay,
    DelayResponse,
    Status429,
    Status502,
    Status503,
    Status504,
    StatusOther,
    StatusAfterForward,
    DropResponse,
    TruncateResponse,
}

impl FaultKind {
    /// A short name, for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::RefusedConnection => "refused-connection",
            Self::ListenerDown => "listener-down",
            Self::Refuse => "refuse",
            Self::Reset => "reset",
            Self::ResetMidRequest => "reset-mid-request",
            Self::Delay => "delay",
            Self::DelayResponse => "delay-response",
            Self::Status429 => "429",
            Self::Status502 => "502",
            Self::Status503 => "503",
            Self::Status504 => "504",
            Self::StatusOther => "status-other",
            Self::StatusAfterForward => "status-after-forward",
            Self::DropResponse => "drop-response",
            Self::TruncateResponse => "truncate-response",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A programmed fault: which requests, how many, what happens to them.
#[derive(Clone, Debug)]
pub struct Rule {
    /// `None`: every request. A path with a `:` (`taskExecutionsStorage:insertMany`) matches
    /// exactly; a bare name (`insertMany`) matches that function in any module.
    path: Option<String>,
    /// Matching requests let through before the rule applies.
    skip: u64,
    /// How many times it applies; `None`: forever.
    times: Option<u64>,
    fault: Fault,
}

impl Rule {
    /// A rule for the requests whose body names the function `path`.
    pub fn path(path: impl Into<String>, fault: Fault) -> Self {
        Self {
            path: Some(path.into()),
            skip: 0,
            times: Some(1),
            fault,
        }
    }

    /// A rule for every request.
    pub fn any(fault: Fault) -> Self {
        Self {
            path: None,
            skip: 0,
            times: Some(1),
            fault,
        }
    }

    /// Applies `times` times (the default is once).
    pub fn times(mut self, times: u64) -> Self {
        self.times = Some(times);
        self
    }

    /// Applies to every match, forever.
    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }

    /// Lets the first `skip` matching requests through first.
    pub fn skip(mut self, skip: u64) -> Self {
        self.skip = skip;
        self
    }

    fn matches(&self, path: Option<&str>) -> bool {
        match (&self.path, path) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(wanted), Some(path)) if wanted.contains(':') => wanted == path,
            (Some(wanted), Some(path)) => path
                .rsplit_once(':')
                .is_some_and(|(_, name)| name == wanted),
        }
    }
}

/// The handle of an added rule, for [`FaultProxy::rule_hits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleId(usize);

/// Faults at random: each request gets one with probability `rate`, drawn from `mix` by
/// weight. Seeded, so a run is reproducible up to the order in which concurrent requests
/// arrive.
#[derive(Clone, Debug)]
pub struct RandomFaults {
    pub seed: u64,
    /// In `[0, 1]`.
    pub rate: f64,
    /// `(fault, weight)`; weights need not sum to anything.
    pub mix: Vec<(Fault, u32)>,
}

/// What a blackout does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blackout {
    /// The listener is closed: connecting fails with `ECONNREFUSED` (nothing is sent). A request
    /// arriving meanwhile on a connection opened before is closed unanswered, unforwarded.
    RefuseConnections,
    /// Every request gets this fault.
    Fault(Fault),
}

/// How the proxy behaves.
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    /// Keep client connections open between requests (HTTP/1.1 keep-alive). Off by default:
    /// every answer says `Connection: close`, so each request comes on a new connection.
    pub keep_alive: bool,
    /// The longest wait for (the rest of) a request.
    pub read_timeout: Duration,
    /// The longest wait for the upstream's whole answer.
    pub upstream_timeout: Duration,
    /// The largest request or response body.
    pub max_body_bytes: usize,
    /// Requests served on one connection before it is closed.
    pub max_requests_per_connection: u32,
    /// Connections served at once; more are closed at accept (counted as refused).
    pub max_connections: usize,
    /// The proxy stops accepting after this long.
    pub max_lifetime: Duration,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            keep_alive: false,
            read_timeout: Duration::from_secs(30),
            upstream_timeout: Duration::from_secs(120),
            max_body_bytes: 64 * 1024 * 1024,
            max_requests_per_connection: 10_000,
            max_connections: 512,
            max_lifetime: Duration::from_secs(30 * 60),
        }
    }
}

/// The proxy's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: u64,
    /// Requests read (whole).
    pub requests: u64,
    /// Requests sent to the upstream (with or without a fault).
    pub forwarded: u64,
    /// Forwarded requests the upstream did not answer (the client got a 502 from the proxy).
    pub upstream_errors: u64,
    /// Faults injected, per kind (only kinds that happened).
    pub faults: BTreeMap<FaultKind, u64>,
}

impl ProxyStats {
    /// How many faults of `kind` were injected.
    pub fn fault(&self, kind: FaultKind) -> u64 {
        self.faults.get(&kind).copied().unwrap_or(0)
    }

    /// Every fault injected, [`FaultKind::ListenerDown`] windows excluded.
    pub fn faults_total(&self) -> u64 {
        self.faults
            .iter()
            .filter(|(kind, _)| **kind != FaultKind::ListenerDown)
            .map(|(_, n)| n)
            .sum()
    }
}

impl fmt::Display for ProxyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} connections, {} requests, {} forwarded, {} upstream errors; faults:",
            self.connections, self.requests, self.forwarded, self.upstream_errors
        )?;
        if self.faults.is_empty() {
            return f.write_str(" none");
        }
        for (kind, n) in &self.faults {
            write!(f, " {kind}={n}")?;
        }
        Ok(())
    }
}

/// One request the proxy read, and what it did with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyEvent {
    /// Since the proxy started.
    pub at: Duration,
    /// The function path of the JSON body, if any.
    pub path: Option<String>,
    pub fault: Option<FaultKind>,
    pub forwarded: bool,
    /// The upstream's HTTP status, when it answered.
    pub upstream_status: Option<u16>,
}

/// The proxy (see the [module docs](self)). Stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept_task: JoinHandle<()>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        // The accept task owns the connection tasks (a JoinSet): aborting it aborts them.
        self.accept_task.abort();
    }
}

struct Shared {
    options: ProxyOptions,
    upstream: SocketAddr,
    started: Instant,
    state: Mutex<State>,
    /// Wakes the accept loop when a refusal window starts.
    wake_acceptor: Notify,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    requests: AtomicU64,
    forwarded: AtomicU64,
    upstream_errors: AtomicU64,
}

struct RuleState {
    rule: Rule,
    matched: u64,
    applied: u64,
}

#[derive(Default)]
struct State {
    rules: Vec<RuleState>,
    random: Option<(RandomFaults, SplitMix64)>,
    blackout: Option<(Instant, Blackout)>,
    refuse_connections: u64,
    reset_mid_body: u64,
    faults: BTreeMap<FaultKind, u64>,
    events: Vec<ProxyEvent>,
    listener_down: bool,
}

impl State {
    fn count(&mut self, kind: FaultKind) {
        *self.faults.entry(kind).or_default() += 1;
    }

    fn blackout_now(&mut self, now: Instant) -> Option<Blackout> {
        match &self.blackout {
            Some((until, _)) if now >= *until => {
                self.blackout = None;
                None
            }
            Some((_, kind)) => Some(kind.clone()),
            None => None,
        }
    }
}

/// A small seeded RNG (SplitMix64): enough for picking faults, no dependency.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform in `[0, bound)`; 0 when `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide the proxy's state from the others.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The loopback address of an `http://` URL (`localhost`, `127.0.0.1` or `[::1]`).
pub fn loopback_addr_of(url: &str) -> io::Result<SocketAddr> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("{url}: the fault proxy speaks plain http:// only")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| invalid(format!("{url}: no port")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(format!("{url}: bad port {port:?}")))?;
    let ip: IpAddr = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        "[::1]" => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        other => other
            .parse()
            .map_err(|_| invalid(format!("{url}: host {other:?} is not an IP address")))?,
    };
    if !ip.is_loopback() {
        return Err(invalid(format!(
            "{url}: the fault proxy only forwards to loopback"
        )));
    }
    Ok(SocketAddr::new(ip, port))
}

fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl FaultProxy {
    /// A proxy on `127.0.0.1:<free port>` in front of the server of `upstream_url` (an
    /// `http://` loopback URL; its path is ignored), with the default options.
    pub async fn start(upstream_url: &str) -> io::Result<Self> {
        Self::start_with(upstream_url, ProxyOptions::default()).await
    }

    /// As [`start`](Self::start), with `options`.
    pub async fn start_with(upstream_url: &str, options: ProxyOptions) -> io::Result<Self> {
        let upstream = loopback_addr_of(upstream_url)?;
        let listener = bind_listener(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            upstream,
            started: Instant::now(),
            state: Mutex::new(State::default()),
            wake_acceptor: Notify::new(),
            counters: Counters::default(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, addr, shared.clone(), shutdown_rx));
        Ok(Self {
            addr,
            upstream,
            shared,
            shutdown,
            accept_task,
        })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The upstream it forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// `deployment_url` (an `http://host:port/...` URL of the upstream) with the proxy's
    /// address instead: same path, so `/instance/<id>` keeps its database.
    pub fn url_for(&self, deployment_url: &str) -> String {
        let rest = deployment_url
            .strip_prefix("http://")
            .unwrap_or(deployment_url);
        let path_start = rest.find('/').unwrap_or(rest.len());
        format!("http://{}{}", self.addr, &rest[path_start..])
    }

    /// Adds a rule after the existing ones.
    pub fn add_rule(&self, rule: Rule) -> RuleId {
        let mut state = lock(&self.shared.state);
        state.rules.push(RuleState {
            rule,
            matched: 0,
            applied: 0,
        });
        RuleId(state.rules.len() - 1)
    }

    /// How many times the rule applied.
    pub fn rule_hits(&self, id: RuleId) -> u64 {
        lock(&self.shared.state)
            .rules
            .get(id.0)
            .map_or(0, |rule| rule.applied)
    }

    /// Removes every rule (their [`RuleId`]s then report 0) and the random faults.
    pub fn clear(&self) {
        let mut state = lock(&self.shared.state);
        state.rules.clear();
        state.random = None;
        state.refuse_connections = 0;
        state.reset_mid_body = 0;
    }

    /// Sets (or, with `None`, removes) the random faults.
    pub fn set_random(&self, random: Option<RandomFaults>) {
        lock(&self.shared.state).random = random.map(|random| {
            let rng = SplitMix64::new(random.seed);
            (random, rng)
        });
    }

    /// Every request (or connection, for [`Blackout::RefuseConnections`]) fails for `duration`,
    /// from now.
    pub fn blackout(&self, duration: Duration, kind: Blackout) {
        let until = Instant::now() + duration;
        {
            let mut state = lock(&self.shared.state);
            if kind == Blackout::RefuseConnections {
                state.count(FaultKind::ListenerDown);
            }
            state.blackout = Some((until, kind));
        }
        self.shared.wake_acceptor.notify_one();
    }

    /// Whether a blackout is on now.
    pub fn in_blackout(&self) -> bool {
        lock(&self.shared.state)
            .blackout_now(Instant::now())
            .is_some()
    }

    /// Closes the next `n` accepted connections at once, before reading anything.
    pub fn refuse_next_connections(&self, n: u64) {
        lock(&self.shared.state).refuse_connections += n;
    }

    /// Resets the next `n` requests (with a body) halfway through their body, before their
    /// function path is known: nothing is forwarded. A body larger than the socket buffers is
    /// still being sent when the reset arrives.
    pub fn reset_next_requests_mid_body(&self, n: u64) {
        lock(&self.shared.state).reset_mid_body += n;
    }

    /// The counters so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        ProxyStats {
            connections: c.connections.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            forwarded: c.forwarded.load(Ordering::Relaxed),
            upstream_errors: c.upstream_errors.load(Ordering::Relaxed),
            faults: lock(&self.shared.state).faults.clone(),
        }
    }

    /// Every request so far (at most a million), in the order decided.
    pub fn events(&self) -> Vec<ProxyEvent> {
        lock(&self.shared.state).events.clone()
    }

    /// The requests for `path` so far (exact path or bare name, as in [`Rule::path`]).
    pub fn events_for(&self, path: &str) -> Vec<ProxyEvent> {
        let matcher = Rule::path(path, Fault::Refuse);
        lock(&self.shared.state)
            .events
            .iter()
            .filter(|event| matcher.matches(event.path.as_deref()))
            .cloned()
            .collect()
    }

    /// Whether the listener is closed right now (a refusal window).
    pub fn is_listener_down(&self) -> bool {
        lock(&self.shared.state).listener_down
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let deadline = tokio::time::Instant::now() + shared.options.max_lifetime;
    let permits = Arc::new(Semaphore::new(shared.options.max_connections));
    let mut connections = JoinSet::new();
    for _ in 0..MAX_ACCEPT_ROUNDS {
        while connections.try_join_next().is_some() {}
        if *shutdown.borrow() || tokio::time::Instant::now() >= deadline {
            return;
        }
        let refuse_until = {
            let mut state = lock(&shared.state);
            match state.blackout_now(Instant::now()) {
                Some(Blackout::RefuseConnections) => state.blackout.as_ref().map(|(u, _)| *u),
                _ => None,
            }
        };
        if let Some(until) = refuse_until {
            drop(listener);
            lock(&shared.state).listener_down = true;
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => {}
                _ = shutdown.changed() => return,
            }
            listener = match rebind(addr).await {
                Ok(listener) => listener,
                Err(error) => {
                    eprintln!("fault proxy: cannot listen on {addr} again: {error}");
                    return;
                }
            };
            lock(&shared.state).listener_down = false;
            continue;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                shared.counters.connections.fetch_add(1, Ordering::Relaxed);
                let refuse = {
                    let mut state = lock(&shared.state);
                    if state.refuse_connections > 0 {
                        state.refuse_connections -= 1;
                        state.count(FaultKind::RefusedConnection);
                        true
                    } else {
                        false
                    }
                };
                let permit = match permits.clone().try_acquire_owned() {
                    Ok(permit) if !refuse => permit,
                    Ok(_) => { reset(stream); continue; }
                    Err(_) => {
                        lock(&shared.state).count(FaultKind::RefusedConnection);
                        reset(stream);
                        continue;
                    }
                };
                let shared = shared.clone();
                connections.spawn(async move {
                    serve_connection(stream, &shared).await;
                    drop(permit);
                });
            }
            () = shared.wake_acceptor.notified() => {}
            _ = shutdown.changed() => return,
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

async fn rebind(addr: SocketAddr) -> io::Result<TcpListener> {
    let mut last = None;
    for _ in 0..REBIND_ATTEMPTS {
        match bind_listener(addr) {
            Ok(listener) => return Ok(listener),
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last.unwrap_or_else(|| io::Error::other("no bind attempt")))
}

/// Closes with RST (zero linger), so the peer sees `ECONNRESET`.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// A parsed request or response: the head's lines and the body.
struct Message {
    /// `POST /api/query HTTP/1.1` or `HTTP/1.1 200 OK`.
    start_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The head and body with `Content-Length` for the body as it is (chunked decoded),
    /// `Connection` set to `connection`, hop-by-hop headers removed.
    fn encode(&self, connection: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 512);
        out.extend_from_slice(self.start_line.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (key, value) in &self.headers {
            let hop = [
                "connection",
                "keep-alive",
                "transfer-encoding",
                "content-length",
            ]
            .iter()
            .any(|h| key.eq_ignore_ascii_case(h));
            if !hop {
                out.extend_from_slice(format!("{key}: {value}\r\n").as_bytes());
            }
        }
        out.extend_from_slice(
            format!(
                "Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
                self.body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&self.body);
        out
    }

    fn status(&self) -> Option<u16> {
        self.start_line.split(' ').nth(1)?.parse().ok()
    }
}

/// Why a message could not be read.
#[derive(Debug)]
enum ReadError {
    /// The peer closed before sending anything (a clean end of a keep-alive connection).
    Closed,
    Io(io::Error),
    Malformed(String),
    TimedOut,
    /// [`FaultProxy::reset_next_requests_mid_body`] stopped reading the body halfway.
    StoppedMidBody,
}

/// Reads one HTTP/1.1 message from `stream`, starting with what is left in `buffer` (bytes read
/// past the previous message); leaves what follows it in `buffer`. `until_eof`: a message
/// without `Content-Length` nor chunking has a body up to the end of the stream (responses).
/// `stop_mid_body`, asked once the head is read: when it says so, only half of a
/// `Content-Length` body is read and [`ReadError::StoppedMidBody`] returned.
async fn read_message(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    max_body: usize,
    timeout: Duration,
    until_eof: bool,
    stop_mid_body: impl FnOnce() -> bool,
) -> Result<Message, ReadError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let head_end = loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            break end;
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(ReadError::Malformed("head too large".to_owned()));
        }
        if read_more(stream, buffer, deadline).await? == 0 {
            return Err(if buffer.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Malformed("closed inside the head".to_owned())
            });
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let start_line = lines.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| ReadError::Malformed(format!("bad header line {line:?}")))?;
        headers.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    buffer.drain(..head_end + 4);
    let mut message = Message {
        start_line,
        headers,
        body: Vec::new(),
    };
    let chunked = message
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        message.body = read_chunked(stream, buffer, max_body, deadline).await?;
    } else if let Some(length) = message.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| ReadError::Malformed(format!("bad content-length {length:?}")))?;
        if length > max_body {
            return Err(ReadError::Malformed(format!("body of {length} bytes")));
        }
        if length > 0 && stop_mid_body() {
            while buffer.len() < length / 2 {
                if read_more(stream, buffer, deadline).await? == 0 {
                    break;
                }
            }
            return Err(ReadError::StoppedMidBody);
        }
        while buffer.len() < length {
            if read_more(stream, buffer, deadline).await? == 0 {
                return Err(ReadError::Malformed("closed inside the body".to_owned()));
            }
        }
        message.body = buffer.drain(..length).collect();
    } else if until_eof {
        while read_more(stream, buffer, deadline).await? > 0 {
            if buffer.len() > max_body {
                return Err(ReadError::Malformed("body too large".to_owned()));
            }
        }
        message.body = std::mem::take(buffer);
    }
    Ok(message)
}

async fn read_chunked(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    max_body: usize,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(end) = find(buffer, b"\r\n") {
                break end;
            }
            if buffer.len() > MAX_HEAD_BYTES {
                return Err(ReadError::Malformed("chunk size line too long".to_owned()));
            }
            if read_more(stream, buffer, deadline).await? == 0 {
                return Err(ReadError::Malformed(
                    "closed inside a chunk size".to_owned(),
                ));
            }
        };
        let line = String::from_utf8_lossy(&buffer[..line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Malformed(format!("bad chunk size {size_text:?}")))?;
        buffer.drain(..line_end + 2);
        if size == 0 {
            // Trailers (none expected), up to the empty line.
            loop {
                if let Some(end) = find(buffer, b"\r\n") {
                    let empty = end == 0;
                    buffer.drain(..end + 2);
                    if empty {
                        return Ok(body);
                    }
                    continue;
                }
                if read_more(stream, buffer, deadline).await? == 0 {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > max_body {
            return Err(ReadError::Malformed("chunked body too large".to_owned()));
        }
        while buffer.len() < size + 2 {
            if read_more(stream, buffer, deadline).await? == 0 {
                return Err(ReadError::Malformed("closed inside a chunk".to_owned()));
            }
        }
        body.extend(buffer.drain(..size));
        buffer.drain(..2);
    }
}

async fn read_more(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    deadline: tokio::time::Instant,
) -> Result<usize, ReadError> {
    let mut chunk = [0_u8; 16 * 1024];
    match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
        Err(_) => Err(ReadError::TimedOut),
        Ok(Err(error)) => Err(ReadError::Io(error)),
        Ok(Ok(n)) => {
            buffer.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The function path named by a Convex request body, if it is JSON with a string `path`.
pub fn function_path_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct PathOnly {
        path: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<PathOnly>(body).ok()?.path? {
        serde_json::Value::String(path) => Some(path),
        _ => None,
    }
}

impl Shared {
    /// Whether to reset this request halfway through its body (and counts it).
    fn take_mid_body_reset(&self) -> bool {
        let mut state = lock(&self.state);
        if state.reset_mid_body == 0 {
            return false;
        }
        state.reset_mid_body -= 1;
        state.count(FaultKind::ResetMidRequest);
        true
    }

    /// What to do with a request for `path`.
    fn decide(&self, path: Option<&str>) -> (Decision, Option<usize>) {
        let mut state = lock(&self.state);
        let decision = if let Some(blackout) = state.blackout_now(Instant::now()) {
            match blackout {
                Blackout::RefuseConnections => {
                    state.count(FaultKind::RefusedConnection);
                    Decision::CloseUnanswered
                }
                Blackout::Fault(fault) => {
                    state.count(fault.kind());
                    Decision::Fault(fault)
                }
            }
        } else if let Some(fault) = Self::from_rules(&mut state, path) {
            state.count(fault.kind());
            Decision::Fault(fault)
        } else if let Some(fault) = Self::from_random(&mut state) {
            state.count(fault.kind());
            Decision::Fault(fault)
        } else {
            Decision::Forward
        };
        let mut event = None;
        if state.events.len() < MAX_EVENTS {
            let fault = match &decision {
                Decision::Forward => None,
                Decision::CloseUnanswered => Some(FaultKind::RefusedConnection),
                Decision::Fault(fault) => Some(fault.kind()),
            };
            let forwarded = match &decision {
                Decision::Forward => true,
                Decision::CloseUnanswered => false,
                Decision::Fault(fault) => fault.forwards(),
            };
            state.events.push(ProxyEvent {
                at: self.started.elapsed(),
                path: path.map(str::to_owned),
                fault,
                forwarded,
                upstream_status: None,
            });
            event = Some(state.events.len() - 1);
        }
        (decision, event)
    }

    fn from_rules(state: &mut State, path: Option<&str>) -> Option<Fault> {
        for rule in &mut state.rules {
            if !rule.rule.matches(path) {
                continue;
            }
            if rule.rule.times.is_some_and(|times| rule.applied >= times) {
                continue;
            }
            rule.matched += 1;
            if rule.matched <= rule.rule.skip {
                continue;
            }
            rule.applied += 1;
            return Some(rule.rule.fault.clone());
        }
        None
    }

    fn from_random(state: &mut State) -> Option<Fault> {
        let (random, rng) = state.random.as_mut()?;
        if rng.next_f64() >= random.rate {
            return None;
        }
        let total: u64 = random.mix.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut pick = rng.below(total);
        for (fault, weight) in &random.mix {
            let weight = u64::from(*weight);
            if pick < weight {
                return Some(fault.clone());
            }
            pick -= weight;
        }
        None
    }

    /// Sends `request` to the upstream on a new connection and reads its whole answer.
    async fn forward(&self, request: &Message, event: Option<usize>) -> Result<Message, String> {
        self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        let result = self.exchange(request).await;
        match &result {
            Ok(response) => {
                if let Some(index) = event {
                    if let Some(event) = lock(&self.state).events.get_mut(index) {
                        event.upstream_status = response.status();
                    }
                }
            }
            Err(_) => {
                self.counters
                    .upstream_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    async fn exchange(&self, request: &Message) -> Result<Message, String> {
        let deadline = self.options.upstream_timeout;
        let exchange = async {
            let mut upstream = TcpStream::connect(self.upstream)
                .await
                .map_err(|e| format!("connect to {}: {e}", self.upstream))?;
            upstream
                .write_all(&request.encode("close"))
                .await
                .map_err(|e| format!("write to the upstream: {e}"))?;
            let mut buffer = Vec::new();
            read_message(
                &mut upstream,
                &mut buffer,
                self.options.max_body_bytes,
                deadline,
                true,
                || false,
            )
            .await
            .map_err(|e| format!("read the upstream's answer: {e:?}"))
        };
        match tokio::time::timeout(deadline, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer from the upstream in {deadline:?}")),
        }
    }
}

enum Decision {
    Forward,
    /// The listener is down: close without reading further or answering.
    CloseUnanswered,
    Fault(Fault),
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected Fault",
    }
}

fn status_answer(status: u16, retry_after: Option<&str>, connection: &str) -> Vec<u8> {
    let body = format!(
        "{{\"code\":\"FaultProxy\",\"message\":\"injected HTTP {status} by the fault proxy\"}}"
    );
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        reason_phrase(status),
        body.len()
    );
    if let Some(retry_after) = retry_after {
        head.push_str(&format!("Retry-After: {retry_after}\r\n"));
    }
    head.push_str(&format!("Connection: {connection}\r\n\r\n"));
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Serves the requests of one client connection.
async fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let options = &shared.options;
    let connection = if options.keep_alive {
        "keep-alive"
    } else {
        "close"
    };
    let mut buffer = Vec::new();
    for _ in 0..options.max_requests_per_connection {
        let stop_mid_body = || shared.take_mid_body_reset();
        let request = match read_message(
            &mut stream,
            &mut buffer,
            options.max_body_bytes,
            options.read_timeout,
            false,
            stop_mid_body,
        )
        .await
        {
            Ok(request) => request,
            Err(ReadError::StoppedMidBody) => return reset(stream),
            Err(ReadError::Closed | ReadError::TimedOut | ReadError::Io(_)) => return,
            Err(ReadError::Malformed(message)) => {
                let body = format!("{{\"code\":\"FaultProxy\",\"message\":\"{message}\"}}");
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                return;
            }
        };
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        let path = function_path_of(&request.body);
        let client_wants_close = request
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let keep_open = options.keep_alive && !client_wants_close;
        let (decision, event) = shared.decide(path.as_deref());
        match decision {
            Decision::CloseUnanswered => return reset(stream),
            Decision::Forward => {
                if !answer_forwarded(&mut stream, shared, &request, event, connection, None).await {
                    return;
                }
            }
            Decision::Fault(fault) => match fault {
                Fault::Refuse => return,
                Fault::Reset => return reset(stream),
                Fault::Delay(delay) => {
                    tokio::time::sleep(delay).await;
                    if !answer_forwarded(&mut stream, shared, &request, event, connection, None)
                        .await
                    {
                        return;
                    }
                }
                Fault::DelayResponse(delay) => {
                    if !answer_forwarded(
                        &mut stream,
                        shared,
                        &request,
                        event,
                        connection,
                        Some(delay),
                    )
                    .await
                    {
                        return;
                    }
                }
                Fault::Status {
                    status,
                    retry_after,
                } => {
                    let answer = status_answer(status, retry_after.as_deref(), connection);
                    if stream.write_all(&answer).await.is_err() {
                        return;
                    }
                }
                Fault::StatusAfterForward { status } => {
                    let _ = shared.forward(&request, event).await;
                    let answer = status_answer(status, None, connection);
                    if stream.write_all(&answer).await.is_err() {
                        return;
                    }
                }
                Fault::DropResponse => {
                    // The whole answer was read: the call ran (and committed) on the server.
                    let _ = shared.forward(&request, event).await;
                    return;
                }
                Fault::TruncateResponse => {
                    let result = shared.forward(&request, event).await;
                    if let Ok(response) = result {
                        let encoded = response.encode("close");
                        let cut = encoded.len() - response.body.len() / 2 - 1;
                        let _ = stream.write_all(&encoded[..cut.min(encoded.len())]).await;
                        let _ = stream.flush().await;
                    }
                    return;
                }
            },
        }
        if !keep_open {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Forwards `request`, waits `hold` when given, and writes the answer. `false` when the
/// connection must end.
async fn answer_forwarded(
    stream: &mut TcpStream,
    shared: &Shared,
    request: &Message,
    event: Option<usize>,
    connection: &str,
    hold: Option<Duration>,
) -> bool {
    let (answer, keep) = match shared.forward(request, event).await {
        Ok(response) => (response.encode(connection), true),
        Err(message) => {
            let body =
                serde_json::json!({"code": "FaultProxyUpstream", "message": message}).to_string();
            let answer = format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            (answer.into_bytes(), false)
        }
    };
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    let written = stream.write_all(&answer).await.is_ok() && stream.flush().await.is_ok();
    written && keep
}
