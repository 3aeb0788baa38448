//! [`ConvexHttpClient`]: Convex's HTTP function API, and [`AuthSecret`].
//!
//! Protocol (Convex's documented HTTP API): `POST {deployment}/api/{query|mutation|action}` with
//! the body `{"path": "module:function", "args": {...}, "format": "json"}`. The deployment
//! answers HTTP 200 (success, or a function error) or 560 (a function error), with
//! `{"status": "success", "value": …}` or `{"status": "error", "errorMessage": …,
//! "errorData"?: …}`, both possibly with `logLines`. Any other status is an HTTP-level failure,
//! usually with a `{"code", "message"}` body.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, DATE, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tracing::{field, Instrument};

use super::error::UNAUTHORIZED_CODE;
use super::http_date::parse_http_date;
use super::response_clock::ResponseClock;
use super::retry::{classify_call, may_resend, parse_retry_after, Outcome, StopReason};
use super::stats::StatsCounters;
use super::{ClientStats, ConvexError, ConvexOperation, FunctionKind, RetryPolicy, RetrySafety};

/// How long connecting to the deployment may take by default (see
/// [`ConvexHttpClient::with_timeouts`]).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one attempt of a call may take by default, from connecting to reading the whole
/// response (see [`ConvexHttpClient::with_timeouts`]).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// At most this many characters of an earlier attempt's error go into a final error.
const MAX_EARLIER_IN_ERROR: usize = 300;

/// The `Convex-Client` header: Convex uses it to tell client libraries (and their versions) apart
/// in its logs and to apply per-client compatibility rules.
const CONVEX_CLIENT: &str = concat!("rust-", env!("CARGO_PKG_VERSION"));

/// At most this many characters of an unexpected body go into an error message: enough to
/// diagnose, not enough to flood a log with an HTML error page.
const MAX_BODY_IN_ERROR: usize = 500;

/// The shared secret our generated public API expects in every call's envelope
/// (`{"authSecret": …, "args": …}`).
///
/// A newtype so that it cannot be printed by accident: `Debug` shows `AuthSecret(<redacted>)`
/// and there is no `Display`. Read it with [`expose`](Self::expose) only where it must travel.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthSecret(String);

impl AuthSecret {
    /// Wraps the secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthSecret(<redacted>)")
    }
}

impl From<String> for AuthSecret {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

/// How the client authenticates to the deployment itself (not to our public API: that is the
/// [`AuthSecret`] in the envelope).
#[derive(Clone)]
enum Credentials {
    /// `Authorization: Convex <admin key>`: needed to call internal functions and components.
    AdminKey(Arc<str>),
    /// `Authorization: Bearer <token>`: a user identity token (e.g. from an auth provider).
    Bearer(Arc<str>),
}

impl Credentials {
    fn secret(&self) -> &str {
        match self {
            Self::AdminKey(s) | Self::Bearer(s) => s,
        }
    }

    fn header(&self) -> Option<HeaderValue> {
        let text = match self {
            Self::AdminKey(key) => format!("Convex {key}"),
            Self::Bearer(token) => format!("Bearer {token}"),
        };
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::AdminKey(_) => "the admin key",
            Self::Bearer(_) => "the auth token",
        }
    }
}

/// A client for one Convex deployment's HTTP function API.
///
/// Cheap to clone (the connection pool, settings and [`stats`](Self::stats) are shared), so
/// clone it into every task rather than wrapping it in an `Arc`. The generated typed client
/// holds one of these.
///
/// - **Timeouts.** Connecting may take [`DEFAULT_CONNECT_TIMEOUT`] (10 s) and each attempt,
///   from connecting to reading the whole response, [`DEFAULT_REQUEST_TIMEOUT`] (60 s);
///   change them with [`with_timeouts`](Self::with_timeouts). A hung deployment never blocks a
///   call longer than the request timeout per attempt.
/// - **Retries.** Transient failures are retried with exponential backoff and full jitter, as
///   far as the operation's [`RetrySafety`] allows, within a [`RetryPolicy`] (default: 5
///   attempts within 30 s; [`with_retry_policy`](Self::with_retry_policy),
///   [`RetryPolicy::none()`] to disable). A `Retry-After` on 429/503 is honoured.
/// - **Tracing.** Every call is a `convex_call` span (function, kind, retry safety, attempts,
///   duration, outcome) with one `convex_attempt` span per attempt; retries are logged at WARN.
///   Arguments, results and credentials are never logged.
#[derive(Clone)]
pub struct ConvexHttpClient {
    http: reqwest::Client,
    url: Arc<str>,
    credentials: Option<Credentials>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    /// Whether `http` came from the caller (then the connect timeout is the caller's).
    custom_http: bool,
    retry: RetryPolicy,
    stats: Arc<StatsCounters>,
    /// Told the local send/receive times and the server's `Date` of every response, so that
    /// its owner (the Convex storage) can estimate the deployment's clock.
    response_clock: Option<Arc<dyn ResponseClock>>,
}

impl fmt::Debug for ConvexHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = self.credentials.as_ref().map(|c| match c {
            Credentials::AdminKey(_) => "Convex <redacted>",
            Credentials::Bearer(_) => "Bearer <redacted>",
        });
        f.debug_struct("ConvexHttpClient")
            .field("url", &self.url)
            .field("authorization", &credentials)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// The request body of every call.
#[derive(Serialize)]
struct RequestBody<'a, A: ?Sized> {
    path: &'a str,
    args: &'a A,
    format: &'static str,
}

/// The argument envelope of our generated public API: the secret travels next to the real
/// arguments so that every public function can check it before doing anything.
#[derive(Serialize)]
struct AuthEnvelope<'a, A: ?Sized> {
    #[serde(rename = "authSecret")]
    auth_secret: &'a str,
    args: &'a A,
}

/// `deployment_url` with any `user:password@` after the scheme removed.
fn without_userinfo(deployment_url: &str) -> String {
    let Some((scheme, rest)) = deployment_url.split_once("://") else {
        return deployment_url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => deployment_url.to_owned(),
    }
}

impl ConvexHttpClient {
    /// A client for the deployment at `deployment_url` (e.g. `https://happy-otter-123.convex.cloud`
    /// or `http://127.0.0.1:3210`). A trailing slash is ignored.
    ///
    /// Refuses anything that is not an absolute `http://`/`https://` URL with a host, and URLs
    /// with credentials, a query or a fragment, which Convex would never use: better to fail
    /// here than with a confusing 404 on the first call.
    pub fn new(deployment_url: &str) -> Result<Self, ConvexError> {
        let trimmed = deployment_url.trim().trim_end_matches('/');
        let invalid = |url: String, message: &str| ConvexError::InvalidUrl {
            url,
            message: message.to_owned(),
        };
        // An unparsable URL is echoed without anything between `://` and `@`: that part may
        // hold a password.
        let parsed = reqwest::Url::parse(trimmed)
            .map_err(|e| invalid(without_userinfo(deployment_url), &e.to_string()))?;
        let shown = || {
            let mut safe = parsed.clone();
            // Never echo a password back into an error message.
            let _ = safe.set_password(None);
            safe.to_string()
        };
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(shown(), "expected an http:// or https:// URL"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid(shown(), "the URL has no host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(
                shown(),
                "credentials in the URL are not supported; use with_admin_key or with_auth_token",
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid(
                shown(),
                "a deployment URL has no query or fragment",
            ));
        }
        let http = build_http(DEFAULT_CONNECT_TIMEOUT)
            .map_err(|e| invalid(shown(), &format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            url: Arc::from(trimmed),
            credentials: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            custom_http: false,
            retry: RetryPolicy::default(),
            stats: Arc::default(),
            response_clock: None,
        })
    }

    /// Sends `Authorization: Convex <key>` with every call. An admin (deploy) key can call
    /// internal functions and component functions directly.
    pub fn with_admin_key(mut self, key: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::AdminKey(Arc::from(key.into())));
        self
    }

    /// Sends `Authorization: Bearer <token>` with every call (a user identity token).
    pub fn with_auth_token(mut self, token: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Bearer(Arc::from(token.into())));
        self
    }

    /// Bounds connecting (`connect`) and each attempt of a call (`request`: from connecting to
    /// reading the whole response). Defaults: [`DEFAULT_CONNECT_TIMEOUT`] (10 s) and
    /// [`DEFAULT_REQUEST_TIMEOUT`] (60 s). An attempt that times out after sending is a
    /// [`ConvexError::Transport`] with `request_sent: true`: for a mutation, its outcome is
    /// unknown. With a client of [`with_http_client`](Self::with_http_client), only the request
    /// timeout applies (the connect timeout is that client's).
    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> Self {
        if !self.custom_http && connect != self.connect_timeout {
            match build_http(connect) {
                Ok(http) => {
                    self.http = http;
                    self.connect_timeout = connect;
                }
                // Building failed where it succeeded with the default timeout: keep the
                // working client rather than fail a setter.
                Err(error) => tracing::warn!(%error, "cannot apply the connect timeout"),
            }
        }
        self.timeout = Some(request);
        self
    }

    /// Sets the request timeout only (see [`with_timeouts`](Self::with_timeouts)).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Retries transient failures as `policy` says (see [`RetryPolicy`]);
    /// [`RetryPolicy::none()`] disables retries.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Reports every response's `Date` header to `clock` (see [`ResponseClock`]).
    pub(crate) fn with_response_clock(mut self, clock: Arc<dyn ResponseClock>) -> Self {
        self.response_clock = Some(clock);
        self
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The connect timeout and the request timeout.
    pub fn timeouts(&self) -> (Duration, Option<Duration>) {
        (self.connect_timeout, self.timeout)
    }

    /// What this client and its clones have done so far.
    pub fn stats(&self) -> ClientStats {
        self.stats.snapshot()
    }

    /// Uses `client` (e.g. one with a proxy, custom roots or shared with the application)
    /// instead of a default one. Its own connect timeout applies; the request timeout of
    /// [`with_timeouts`](Self::with_timeouts) still bounds each attempt.
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = client;
        self.custom_http = true;
        self
    }

    /// The deployment URL, without trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls the function `path` (e.g. `"taskExecutionsStorage:insertMany"`) of kind `kind` with
    /// `args`, and decodes its return value as `R`. Retried as
    /// [`RetrySafety::default_for(kind)`](RetrySafety::default_for) allows (queries on every
    /// transient failure, mutations and actions only when they provably did not run); see
    /// [`call_with_retry_safety`](Self::call_with_retry_safety).
    ///
    /// The arguments are serialized before anything is sent, so an [`ConvexError::Encode`]
    /// guarantees the deployment saw nothing.
    pub async fn call<A, R>(
        &self,
        kind: FunctionKind,
        path: &str,
        args: &A,
    ) -> Result<R, ConvexError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.run(kind, RetrySafety::default_for(kind), path, None, args)
            .await
    }

    /// Like [`call`](Self::call), retried as `safety` says.
    pub async fn call_with_retry_safety<A, R>(
        &self,
        kind: FunctionKind,
        safety: RetrySafety,
        path: &str,
        args: &A,
    ) -> Result<R, ConvexError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.run(kind, safety, path, None, args).await
    }

    /// Like [`call`](Self::call), for a function of our generated public API: the arguments
    /// travel in the envelope `{"authSecret": <secret>, "args": <args>}`. A wrong secret comes
    /// back as [`ConvexError::Unauthorized`]. Retried as
    /// [`RetrySafety::default_for(kind)`](RetrySafety::default_for) allows;
    /// [`call_operation`](Self::call_operation) uses the operation's declared safety instead.
    pub async fn call_authenticated<A, R>(
        &self,
        kind: FunctionKind,
        path: &str,
        secret: &AuthSecret,
        args: &A,
    ) -> Result<R, ConvexError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let envelope = AuthEnvelope {
            auth_secret: secret.expose(),
            args,
        };
        let safety = RetrySafety::default_for(kind);
        self.run(kind, safety, path, Some(secret), &envelope).await
    }

    /// Calls the operation `O` of our generated public API at `path` (`<module>:<O::NAME>`),
    /// with its kind and its declared [`RetrySafety`] (`O::RETRY_SAFETY`), in the auth
    /// envelope, and decodes `O::Response`.
    pub async fn call_operation<O: ConvexOperation>(
        &self,
        path: &str,
        secret: &AuthSecret,
        args: &O,
    ) -> Result<O::Response, ConvexError> {
        let envelope = AuthEnvelope {
            auth_secret: secret.expose(),
            args,
        };
        self.run(O::KIND, O::RETRY_SAFETY, path, Some(secret), &envelope)
            .await
    }

    /// Encodes, sends with retries, decodes; every error scrubbed of the secrets.
    async fn run<A, R>(
        &self,
        kind: FunctionKind,
        safety: RetrySafety,
        path: &str,
        secret: Option<&AuthSecret>,
        args: &A,
    ) -> Result<R, ConvexError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let secrets = self.secrets(secret);
        let result = async {
            let body = encode_body(path, args)?;
            let value = self.execute(kind, safety, path, body, &secrets).await?;
            decode_value(path, value)
        }
        .await;
        result.map_err(|e| e.redact(&secrets))
    }

    /// Everything that must never show up in an error.
    fn secrets<'a>(&'a self, auth_secret: Option<&'a AuthSecret>) -> Vec<&'a str> {
        self.credentials
            .as_ref()
            .map(Credentials::secret)
            .into_iter()
            .chain(auth_secret.map(AuthSecret::expose))
            .collect()
    }

    /// Sends `body` until an attempt succeeds or the policy and `safety` say stop. Not
    /// generic, so that it is compiled once rather than per argument/result type.
    async fn execute(
        &self,
        kind: FunctionKind,
        safety: RetrySafety,
        path: &str,
        body: Vec<u8>,
        secrets: &[&str],
    ) -> Result<Value, ConvexError> {
        let clock = self.response_clock.as_deref();
        let span = tracing::info_span!(
            "convex_call",
            function = path,
            kind = %kind,
            retry = ?safety,
            attempts = field::Empty,
            duration_ms = field::Empty,
            outcome = field::Empty,
        );
        let body = Bytes::from(body);
        let call_span = span.clone();
        async {
            self.stats.call();
            let start = Instant::now();
            let mut earlier = Vec::new();
            let mut earlier_may_have_applied = false;
            let mut attempt: u32 = 0;
            loop {
                attempt += 1;
                self.stats.request(attempt);
                let attempt_span = tracing::debug_span!(
                    "convex_attempt",
                    attempt,
                    duration_ms = field::Empty,
                    outcome = field::Empty,
                );
                let attempt_start = Instant::now();
                let result = self
                    .send(kind, path, body.clone(), clock)
                    .instrument(attempt_span.clone())
                    .await;
                attempt_span.record("duration_ms", millis(attempt_start.elapsed()));
                let (error, retry_after) = match result {
                    Ok(value) => {
                        attempt_span.record("outcome", "ok");
                        call_span.record("attempts", attempt);
                        call_span.record("duration_ms", millis(start.elapsed()));
                        call_span.record("outcome", "ok");
                        return Ok(value);
                    }
                    Err(failed) => (failed.error.redact(secrets), failed.retry_after),
                };
                let failure_kind = self.stats.failed_attempt(&error);
                attempt_span.record("outcome", failure_kind);
                let outcome = classify_call(&error, kind);
                let stop = match outcome {
                    None => Some(StopReason::NotTransient),
                    Some(outcome) if !may_resend(outcome, safety) => {
                        Some(StopReason::OutcomeUnknown)
                    }
                    Some(_) if attempt >= self.retry.max_attempts => {
                        Some(StopReason::MaxAttempts(self.retry.max_attempts))
                    }
                    Some(_) => None,
                };
                let delay = match stop {
                    Some(_) => None,
                    None => {
                        let backoff = self.retry.backoff(attempt);
                        let delay = retry_after.map_or(backoff, |asked| asked.max(backoff));
                        Some(delay)
                    }
                };
                let stop = match (stop, delay) {
                    (Some(stop), _) => stop,
                    (None, Some(delay)) if start.elapsed() + delay > self.retry.max_elapsed => {
                        StopReason::MaxElapsed(self.retry.max_elapsed)
                    }
                    (None, Some(delay)) => {
                        tracing::warn!(
                            function = path,
                            attempt,
                            failure = failure_kind,
                            delay_ms = millis(delay),
                            error = %error,
                            "retrying a failed Convex call"
                        );
                        if outcome == Some(Outcome::Unknown) && kind != FunctionKind::Query {
                            earlier_may_have_applied = true;
                        }
                        earlier.push(format!(
                            "attempt {attempt}: {}",
                            excerpt(&error.to_string(), MAX_EARLIER_IN_ERROR)
                        ));
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    (None, None) => StopReason::NotTransient,
                };
                self.stats.failed_call();
                call_span.record("attempts", attempt);
                call_span.record("duration_ms", millis(start.elapsed()));
                call_span.record("outcome", failure_kind);
                tracing::debug!(function = path, attempt, reason = %stop, error = %error, "Convex call failed");
                if attempt == 1 && stop == StopReason::NotTransient {
                    return Err(error);
                }
                return Err(ConvexError::Attempts {
                    path: path.to_owned(),
                    attempts: attempt,
                    elapsed: start.elapsed(),
                    stopped: stop,
                    earlier,
                    earlier_may_have_applied,
                    last: Box::new(error),
                });
            }
        }
        .instrument(span)
        .await
    }

    /// One attempt: posts `body` and returns the function's return value.
    async fn send(
        &self,
        kind: FunctionKind,
        path: &str,
        body: Bytes,
        clock: Option<&dyn ResponseClock>,
    ) -> Result<Value, FailedAttempt> {
        let mut request = self
            .http
            .post(format!("{}/api/{}", self.url, kind.endpoint()))
            .header(CONTENT_TYPE, "application/json")
            .header("Convex-Client", CONVEX_CLIENT)
            .body(body);
        if let Some(credentials) = &self.credentials {
            let value = credentials.header().ok_or_else(|| ConvexError::Encode {
                path: path.to_owned(),
                message: format!(
                    "{} is not a valid HTTP header value",
                    credentials.describe()
                ),
            })?;
            request = request.header(AUTHORIZATION, value);
        }
        if let Some(timeout) = self.timeout {
            request = request.timeout(timeout);
        }

        let sent = clock.map(ResponseClock::local_now);
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(path, kind, &e))?;
        if let (Some(clock), Some(sent)) = (clock, sent) {
            let received = clock.local_now();
            let date = response
                .headers()
                .get(DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_http_date);
            if let Some(date) = date {
                clock.observe(sent, received, date);
            }
        }
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // A failure while reading the body happens after the request was sent (the status line
        // already arrived), so `transport_error` sees a non-connect error: outcome unknown.
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(path, kind, &e))?;

        match status.as_u16() {
            200 | 560 => Ok(parse_function_result(path, &bytes)?),
            code => Err(FailedAttempt {
                error: http_error(path, kind, code, status.canonical_reason(), &bytes),
                retry_after: matches!(code, 429 | 503).then_some(retry_after).flatten(),
            }),
        }
    }
}

/// Why one attempt failed, and how long the server asked to wait before the next.
struct FailedAttempt {
    error: ConvexError,
    retry_after: Option<Duration>,
}

impl From<ConvexError> for FailedAttempt {
    fn from(error: ConvexError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// How long an idle pooled connection is kept for reuse. A request sent on a connection the
/// server is closing for idleness at that very moment is reset after it was written, so it
/// cannot be retried unless the operation is idempotent: closing idle connections well before
/// common server keep-alive timeouts (Node's 5 s is the shortest usual one; load balancers
/// keep 60 s and more) makes that race unlikely, for the price of a new connection after a
/// pause.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

fn build_http(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `text` cut to `max` characters.
fn excerpt(text: &str, max: usize) -> String {
    let mut cut: String = text.chars().take(max).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

fn encode_body<A: Serialize + ?Sized>(path: &str, args: &A) -> Result<Vec<u8>, ConvexError> {
    serde_json::to_vec(&RequestBody {
        path,
        args,
        format: "json",
    })
    .map_err(|e| ConvexError::Encode {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn decode_value<R: DeserializeOwned>(path: &str, mut value: Value) -> Result<R, ConvexError> {
    integral_floats_to_integers(&mut value);
    serde_json::from_value(value).map_err(|e| ConvexError::Decode {
        path: path.to_owned(),
        message: format!(
            "the function's return value does not match {}: {e}",
            std::any::type_name::<R>()
        ),
    })
}

/// A deployment may render an integral float64 as `3.0`; Rust integer types (a returned count,
/// say) refuse that from serde_json. Every integral float within 2^53 becomes an integer
/// before decoding, which changes nothing for `f64` targets and lets integer targets read it.
/// Non-integral values stay floats, so an integer target still refuses `1.5`.
fn integral_floats_to_integers(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_f64() => {
            if let Some(float) = number.as_f64() {
                let in_range = float.abs() <= super::wire::MAX_SAFE_INTEGER as f64;
                if float.fract() == 0.0 && in_range {
                    *value = Value::from(float as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// Reads a 200/560 body: `{"status": "success", "value"}` or `{"status": "error", …}`.
fn parse_function_result(path: &str, bytes: &[u8]) -> Result<Value, ConvexError> {
    let decode = |message: String| ConvexError::Decode {
        path: path.to_owned(),
        message,
    };
    let body: Value = serde_json::from_slice(bytes).map_err(|e| {
        decode(format!(
            "the body is not JSON ({e}): {}",
            body_excerpt(bytes)
        ))
    })?;
    let Value::Object(mut body) = body else {
        return Err(decode(format!(
            "expected a JSON object, got: {}",
            body_excerpt(bytes)
        )));
    };
    match body.get("status").and_then(Value::as_str) {
        Some("success") => body
            .remove("value")
            .ok_or_else(|| decode("a success response without `value`".to_owned())),
        Some("error") => {
            let message = match body.remove("errorMessage") {
                Some(Value::String(message)) => message,
                _ => format!("(no errorMessage) {}", body_excerpt(bytes)),
            };
            let data = body.remove("errorData");
            let code = data
                .as_ref()
                .and_then(|d| d.get("code"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if code.as_deref() == Some(UNAUTHORIZED_CODE) {
                return Err(ConvexError::Unauthorized {
                    path: path.to_owned(),
                    message,
                });
            }
            Err(ConvexError::Function {
                path: path.to_owned(),
                message,
                code,
                data,
            })
        }
        _ => Err(decode(format!(
            "expected `status` \"success\" or \"error\", got: {}",
            body_excerpt(bytes)
        ))),
    }
}

/// Reads a non-200/560 answer: usually `{"code": "...", "message": "..."}`, but a proxy or load
/// balancer in front of the deployment may answer anything.
fn http_error(
    path: &str,
    kind: FunctionKind,
    status: u16,
    reason: Option<&str>,
    bytes: &[u8],
) -> ConvexError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        code: Option<String>,
        message: String,
    }
    let (code, message) = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => (body.code, body.message),
        Err(_) if bytes.iter().all(u8::is_ascii_whitespace) => (
            None,
            format!("{} (empty body)", reason.unwrap_or("no reason phrase")),
        ),
        Err(_) => (None, body_excerpt(bytes)),
    };
    ConvexError::Http {
        path: path.to_owned(),
        kind,
        status,
        code,
        message,
    }
}

/// The body as text, cut to [`MAX_BODY_IN_ERROR`] characters.
fn body_excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut excerpt: String = text.chars().take(MAX_BODY_IN_ERROR).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    excerpt
}

/// Maps a reqwest failure. Only a connect failure proves that the request never left: any
/// other failure (timeout, reset, truncated body) may come after the deployment received it.
fn transport_error(path: &str, kind: FunctionKind, error: &reqwest::Error) -> ConvexError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    if error.is_timeout() && !message.contains("timed out") {
        message.push_str(" (timed out)");
    }
    if error.is_builder() {
        return ConvexError::Encode {
            path: path.to_owned(),
            message: format!("the request could not be built: {message}"),
        };
    }
    ConvexError::Transport {
        path: path.to_owned(),
        kind,
        message,
        request_sent: !error.is_connect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = ConvexHttpClient::new("https://happy-otter-123.convex.cloud/").unwrap();
        assert_eq!(c.url(), "https://happy-otter-123.convex.cloud");
        let c = ConvexHttpClient::new("http://127.0.0.1:3210").unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:3210");
        let c = ConvexHttpClient::new("https://proxy.example/convex//").unwrap();
        assert_eq!(c.url(), "https://proxy.example/convex");
        for bad in [
            "ftp://x.convex.cloud",
            "happy-otter-123.convex.cloud",
            "",
            "https://",
            "file:///tmp/x",
            "https://x.convex.cloud/?a=1",
            "https://x.convex.cloud/#f",
        ] {
            let err = ConvexHttpClient::new(bad).unwrap_err();
            assert!(
                matches!(err, ConvexError::InvalidUrl { .. }),
                "{bad}: {err:?}"
            );
            assert!(!err.is_retry_safe());
        }
        let err = ConvexHttpClient::new("https://admin:hunter2@x.convex.cloud").unwrap_err();
        assert!(matches!(err, ConvexError::InvalidUrl { .. }));
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        // Unparsable (no host), with a password in it: the password is not echoed either.
        let err = ConvexHttpClient::new("https://u:hunter2@").unwrap_err();
        assert!(matches!(err, ConvexError::InvalidUrl { .. }));
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    }

    #[test]
    fn debug_redacts_credentials() {
        let c = ConvexHttpClient::new("https://x.convex.cloud")
            .unwrap()
            .with_admin_key("prod:adminkey|s3cr3t");
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("Convex <redacted>"), "{debug}");
        let c = c
            .with_auth_token("tok3n")
            .with_timeout(Duration::from_secs(3));
        let debug = format!("{c:?}");
        assert!(!debug.contains("tok3n"), "{debug}");
        assert!(debug.contains("Bearer <redacted>"), "{debug}");
        assert_eq!(
            format!("{:?}", AuthSecret::new("p4ss")),
            "AuthSecret(<redacted>)"
        );
        assert_eq!(AuthSecret::from("p4ss".to_owned()).expose(), "p4ss");
    }

    #[test]
    fn body_excerpts_are_bounded() {
        let long = "é".repeat(2000);
        let excerpt = body_excerpt(long.as_bytes());
        assert_eq!(excerpt.chars().count(), MAX_BODY_IN_ERROR + 1);
        assert!(excerpt.ends_with('…'));
        assert_eq!(body_excerpt(b"  short \n"), "short");
        assert_eq!(body_excerpt(&[0xff, b'a']), "\u{fffd}a");
    }
}
