//! [`ConvexError`] and [`FunctionKind`].

use std::fmt;
use std::time::Duration;

use super::retry::{classify, StopReason};

/// The kind of a Convex function, which decides both the HTTP endpoint and whether a failed call
/// may be retried blindly (a query never writes; a mutation or an action may have).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// A read-only, deterministic function.
    Query,
    /// A transactional write.
    Mutation,
    /// A function with arbitrary side effects.
    Action,
}

impl FunctionKind {
    /// The last segment of the HTTP endpoint: `POST /api/{endpoint}`.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
            Self::Action => "action",
        }
    }
}

impl fmt::Display for FunctionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.endpoint())
    }
}

/// The `errorData.code` with which our generated public API refuses a wrong auth secret.
pub(crate) const UNAUTHORIZED_CODE: &str = "UNAUTHORIZED";

/// Why a call to a Convex function failed.
///
/// Every variant says what the caller can do next: [`is_transient`](Self::is_transient) says
/// whether the failure may go away by itself, [`is_retry_safe`](Self::is_retry_safe) whether
/// calling again could apply a write twice. A call that was retried, or that failed
/// transiently and was not retried, comes back as [`Attempts`](Self::Attempts): which attempt
/// failed, how many were made, why the client stopped, and the last attempt's error
/// ([`last_attempt`](Self::last_attempt)); [`code`](Self::code), [`path`](Self::path) and the
/// other accessors look through it. No variant ever holds the auth secret, the admin key or
/// the bearer token: the client scrubs them from anything the server echoes back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvexError {
    /// The function ran and threw. `code` is `errorData.code` when the function threw a
    /// `ConvexError` whose data is an object with a string `code`; `data` is the whole
    /// `errorData`. The function's transaction (if any) was rolled back, but calling it again
    /// will most likely throw again.
    #[error("Convex function `{path}` failed{}: {message}", code_suffix(code.as_deref()))]
    Function {
        /// The function path, e.g. `taskExecutionsStorage:insertMany`.
        path: String,
        /// `errorMessage` of the response.
        message: String,
        /// `errorData.code`, when present and a string.
        code: Option<String>,
        /// `errorData`, when present.
        data: Option<serde_json::Value>,
    },

    /// The function refused the call: it threw a `ConvexError` with `errorData.code ==
    /// "UNAUTHORIZED"`, which is how the generated public API answers a wrong auth secret.
    #[error("Convex function `{path}` refused the call as unauthorized: {message}")]
    Unauthorized {
        /// The function path.
        path: String,
        /// `errorMessage` of the response.
        message: String,
    },

    /// The deployment answered with an HTTP status other than 200 or 560 (the two statuses that
    /// carry a function result). `code`/`message` come from the usual `{"code", "message"}` body;
    /// when the body is not that, `message` is the body text, truncated.
    #[error("Convex answered HTTP {status} to the {kind} `{path}`{}: {message}", code_suffix(code.as_deref()))]
    Http {
        /// The function path.
        path: String,
        /// The function kind, which decides whether a 5xx is retry-safe.
        kind: FunctionKind,
        /// The HTTP status.
        status: u16,
        /// The `code` of the body, e.g. `BadJsonBody`.
        code: Option<String>,
        /// The `message` of the body, or the (truncated) body text.
        message: String,
    },

    /// No usable HTTP response: connection refused, DNS failure, timeout, connection reset.
    #[error(
        "could not call the {kind} `{path}` ({}): {message}",
        if *request_sent { "the request may have reached the deployment" } else { "nothing was sent" }
    )]
    Transport {
        /// The function path.
        path: String,
        /// The function kind, which decides whether retrying an unknown outcome is safe.
        kind: FunctionKind,
        /// What the HTTP stack reported, with its causes.
        message: String,
        /// `false` only when the request provably never left (the connection could not be
        /// established); `true` when it may have been received and even executed.
        request_sent: bool,
    },

    /// The deployment answered, but not in the documented shape, or with a value that does not
    /// match the expected Rust type. For a mutation the write may well have happened.
    #[error("unexpected response from Convex to `{path}`: {message}")]
    Decode {
        /// The function path.
        path: String,
        /// What did not match.
        message: String,
    },

    /// The arguments could not be serialized (e.g. an integer beyond 2^53-1). Nothing was sent.
    #[error("could not encode the arguments of `{path}` (nothing was sent): {message}")]
    Encode {
        /// The function path.
        path: String,
        /// What could not be encoded.
        message: String,
    },

    /// The deployment URL is not an `http://` or `https://` URL.
    #[error("invalid Convex deployment URL `{url}`: {message}")]
    InvalidUrl {
        /// The URL as given (any password removed).
        url: String,
        /// What is wrong with it.
        message: String,
    },

    /// The call was attempted `attempts` times and the last attempt failed with `last`
    /// (retried failures, or a transient failure that was not retried: `stopped` says why).
    #[error(
        "`{path}`: attempt {attempts} failed ({attempts} made in {} ms; {stopped}{}): {last}",
        elapsed.as_millis(),
        earlier_suffix(earlier)
    )]
    Attempts {
        /// The function path.
        path: String,
        /// Attempts made, the failed last one included.
        attempts: u32,
        /// From the start of the first attempt to the end of the last.
        elapsed: Duration,
        /// Why the client did not try again.
        stopped: StopReason,
        /// What each earlier attempt failed with, in order (`attempt 1: …`).
        earlier: Vec<String>,
        /// Whether an earlier attempt of this write may have taken effect (its outcome was
        /// unknown and the call was sent again): a refusal of the last attempt may then be
        /// caused by the first one, e.g. a duplicate of its own insert.
        earlier_may_have_applied: bool,
        /// The last attempt's error.
        last: Box<ConvexError>,
    },
}

fn earlier_suffix(earlier: &[String]) -> String {
    if earlier.is_empty() {
        String::new()
    } else {
        format!("; earlier: {}", earlier.join("; "))
    }
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" [{c}]")).unwrap_or_default()
}

impl ConvexError {
    /// Whether the failure may go away by itself, so that the same call may succeed later:
    /// connection refused or reset, timeouts, HTTP 429, 502, 503 and 504, and Convex's
    /// overload and write-conflict (OCC) errors. Whether calling again is *safe* is another
    /// question ([`is_retry_safe`](Self::is_retry_safe)). For [`Attempts`](Self::Attempts),
    /// that of the last attempt.
    pub fn is_transient(&self) -> bool {
        classify(self).is_some()
    }

    /// Whether calling the same function again cannot apply a write twice.
    ///
    /// True for: a transport error where the request was provably not sent; HTTP 429 (rate
    /// limited before running) and 503 (unavailable, not run); and, for queries, any transport
    /// error or 5xx, since a query never writes. False for everything else, in particular for a
    /// mutation or action whose outcome is unknown (timeout or reset after sending, 500, 502,
    /// 504), for a function that threw, for anything the caller must fix (4xx, encode,
    /// decode, URL), and after retries when an earlier attempt may have taken effect.
    pub fn is_retry_safe(&self) -> bool {
        match self {
            Self::Transport {
                kind, request_sent, ..
            } => !*request_sent || *kind == FunctionKind::Query,
            Self::Http { kind, status, .. } => match status {
                429 | 503 => true,
                500..=599 => *kind == FunctionKind::Query,
                _ => false,
            },
            Self::Attempts {
                earlier_may_have_applied,
                last,
                ..
            } => !*earlier_may_have_applied && last.is_retry_safe(),
            Self::Function { .. }
            | Self::Unauthorized { .. }
            | Self::Decode { .. }
            | Self::Encode { .. }
            | Self::InvalidUrl { .. } => false,
        }
    }

    /// Whether the function refused the credentials (a wrong auth secret).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.last_attempt(), Self::Unauthorized { .. })
    }

    /// The machine-readable code: `errorData.code` of a function error, `"UNAUTHORIZED"`, or the
    /// `code` of an HTTP error body (of the last attempt).
    pub fn code(&self) -> Option<&str> {
        match self.last_attempt() {
            Self::Function { code, .. } | Self::Http { code, .. } => code.as_deref(),
            Self::Unauthorized { .. } => Some(UNAUTHORIZED_CODE),
            _ => None,
        }
    }

    /// The function path the error is about, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Function { path, .. }
            | Self::Unauthorized { path, .. }
            | Self::Http { path, .. }
            | Self::Transport { path, .. }
            | Self::Decode { path, .. }
            | Self::Encode { path, .. }
            | Self::Attempts { path, .. } => Some(path),
            Self::InvalidUrl { .. } => None,
        }
    }

    /// The error of the last attempt: `self`, or what an [`Attempts`](Self::Attempts) wraps.
    pub fn last_attempt(&self) -> &ConvexError {
        match self {
            Self::Attempts { last, .. } => last.last_attempt(),
            other => other,
        }
    }

    /// Like [`last_attempt`](Self::last_attempt), by value.
    pub fn into_last_attempt(self) -> ConvexError {
        match self {
            Self::Attempts { last, .. } => last.into_last_attempt(),
            other => other,
        }
    }

    /// How many attempts the call made (1 unless it is an [`Attempts`](Self::Attempts)).
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Attempts { attempts, .. } => *attempts,
            _ => 1,
        }
    }

    /// Whether an earlier attempt of the call may have taken effect (see
    /// [`Attempts`](Self::Attempts)).
    pub fn earlier_attempt_may_have_applied(&self) -> bool {
        matches!(
            self,
            Self::Attempts {
                earlier_may_have_applied: true,
                ..
            }
        )
    }

    /// Replaces every occurrence of each secret in the error's text by `<redacted>`: a server
    /// (or a serde message quoting a value) may echo what it was sent.
    pub(crate) fn redact(mut self, secrets: &[&str]) -> Self {
        let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return self;
        }
        // A body may quote the secret JSON-escaped (a `"` or `\` in it becomes `\"`, `\\`),
        // and a body excerpt cut at its length bound may end inside the secret.
        let forms: Vec<String> = secrets
            .iter()
            .flat_map(|secret| {
                let escaped = serde_json::to_string(secret).unwrap_or_default();
                let escaped = escaped
                    .strip_prefix('"')
                    .and_then(|e| e.strip_suffix('"'))
                    .unwrap_or(secret)
                    .to_owned();
                [(*secret).to_owned(), escaped]
            })
            .collect();
        let scrub = |s: &mut String| {
            for form in &forms {
                if s.contains(form.as_str()) {
                    *s = s.replace(form.as_str(), "<redacted>");
                }
                redact_cut_tail(s, form);
            }
        };
        match &mut self {
            Self::Function {
                path,
                message,
                code,
                data,
            } => {
                scrub(path);
                scrub(message);
                if let Some(code) = code {
                    scrub(code);
                }
                if let Some(data) = data {
                    scrub_json(data, &scrub);
                }
            }
            Self::Http {
                path,
                code,
                message,
                ..
            } => {
                scrub(path);
                scrub(message);
                if let Some(code) = code {
                    scrub(code);
                }
            }
            Self::Unauthorized { path, message }
            | Self::Transport { path, message, .. }
            | Self::Decode { path, message }
            | Self::Encode { path, message } => {
                scrub(path);
                scrub(message);
            }
            Self::InvalidUrl { url, message } => {
                scrub(url);
                scrub(message);
            }
            Self::Attempts {
                path,
                earlier,
                last,
                ..
            } => {
                scrub(path);
                earlier.iter_mut().for_each(scrub);
                let inner = std::mem::replace(
                    last.as_mut(),
                    Self::Encode {
                        path: String::new(),
                        message: String::new(),
                    },
                );
                **last = inner.redact(&secrets);
            }
        }
        self
    }
}

/// An excerpt cut at its length bound ends with `…`: if the text before it ends with the first
/// characters of the secret (at least 3, or the whole secret if shorter), they are the start
/// of a secret the cut went through, and are redacted too.
fn redact_cut_tail(s: &mut String, secret: &str) {
    let Some(body) = s.strip_suffix('…') else {
        return;
    };
    let cut = secret
        .char_indices()
        .map(|(at, c)| at + c.len_utf8())
        .filter(|&len| len >= 3.min(secret.len()))
        .filter(|&len| body.ends_with(&secret[..len]))
        .max();
    if let Some(len) = cut {
        let keep = body.len() - len;
        *s = format!("{}<redacted>…", &body[..keep]);
    }
}

fn scrub_json(value: &mut serde_json::Value, scrub: &impl Fn(&mut String)) {
    match value {
        serde_json::Value::String(s) => scrub(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| scrub_json(v, scrub)),
        serde_json::Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if let Some(mut v) = map.remove(&key) {
                    scrub_json(&mut v, scrub);
                    let mut key = key;
                    scrub(&mut key);
                    map.insert(key, v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn http(kind: FunctionKind, status: u16) -> ConvexError {
        ConvexError::Http {
            path: "m:f".into(),
            kind,
            status,
            code: None,
            message: "x".into(),
        }
    }

    fn transport(kind: FunctionKind, request_sent: bool) -> ConvexError {
        ConvexError::Transport {
            path: "m:f".into(),
            kind,
            message: "x".into(),
            request_sent,
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(FunctionKind::Query.endpoint(), "query");
        assert_eq!(FunctionKind::Mutation.endpoint(), "mutation");
        assert_eq!(FunctionKind::Action.endpoint(), "action");
        assert_eq!(FunctionKind::Action.to_string(), "action");
    }

    #[test]
    fn retry_safety_table() {
        use FunctionKind::*;
        for kind in [Query, Mutation, Action] {
            assert!(transport(kind, false).is_retry_safe(), "{kind}");
            assert!(http(kind, 429).is_retry_safe(), "{kind}");
            assert!(http(kind, 503).is_retry_safe(), "{kind}");
            for status in [400, 401, 403, 404, 408, 413] {
                assert!(!http(kind, status).is_retry_safe(), "{kind} {status}");
            }
        }
        for status in [500, 502, 504] {
            assert!(http(Query, status).is_retry_safe());
            assert!(!http(Mutation, status).is_retry_safe());
            assert!(!http(Action, status).is_retry_safe());
        }
        assert!(transport(Query, true).is_retry_safe());
        assert!(!transport(Mutation, true).is_retry_safe());
        assert!(!transport(Action, true).is_retry_safe());
        let others = [
            ConvexError::Function {
                path: "p".into(),
                message: "m".into(),
                code: None,
                data: None,
            },
            ConvexError::Unauthorized {
                path: "p".into(),
                message: "m".into(),
            },
            ConvexError::Decode {
                path: "p".into(),
                message: "m".into(),
            },
            ConvexError::Encode {
                path: "p".into(),
                message: "m".into(),
            },
            ConvexError::InvalidUrl {
                url: "p".into(),
                message: "m".into(),
            },
        ];
        for e in others {
            assert!(!e.is_retry_safe(), "{e}");
        }
    }

    #[test]
    fn codes_and_messages() {
        let e = ConvexError::Function {
            path: "m:f".into(),
            message: "boom".into(),
            code: Some("NOT_FOUND".into()),
            data: Some(json!({"code": "NOT_FOUND"})),
        };
        assert_eq!(e.code(), Some("NOT_FOUND"));
        assert_eq!(
            e.to_string(),
            "Convex function `m:f` failed [NOT_FOUND]: boom"
        );
        assert_eq!(e.path(), Some("m:f"));
        let e = ConvexError::Unauthorized {
            path: "m:f".into(),
            message: "no".into(),
        };
        assert!(e.is_unauthorized());
        assert_eq!(e.code(), Some("UNAUTHORIZED"));
        assert_eq!(
            transport(FunctionKind::Mutation, true).to_string(),
            "could not call the mutation `m:f` (the request may have reached the deployment): x"
        );
        assert_eq!(
            http(FunctionKind::Query, 500).to_string(),
            "Convex answered HTTP 500 to the query `m:f`: x"
        );
    }

    #[test]
    fn redact_scrubs_every_text_field() {
        let e = ConvexError::Function {
            path: "m:f".into(),
            message: "bad secret s3cr3t".into(),
            code: Some("s3cr3t".into()),
            data: Some(json!({"echo": ["s3cr3t", {"s3cr3t": 1}], "n": 2})),
        }
        .redact(&["s3cr3t", ""]);
        let text = format!("{e:?} {e}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn redact_scrubs_json_escaped_secrets_and_a_secret_cut_by_the_excerpt_bound() {
        let secret = r#"se"cr\et-0123456789"#;
        let escaped = r#"se\"cr\\et-0123456789"#;
        let e = ConvexError::Http {
            path: "m:f".into(),
            kind: FunctionKind::Mutation,
            status: 400,
            code: None,
            message: format!("echo {{\"authSecret\":\"{escaped}\"}} and then se\"cr\\et-01…"),
        }
        .redact(&[secret]);
        let ConvexError::Http { message, .. } = &e else {
            panic!("kind changed: {e:?}");
        };
        assert_eq!(
            message,
            "echo {\"authSecret\":\"<redacted>\"} and then <redacted>…"
        );
        // A text that merely ends with an ellipsis keeps what is not a secret's start.
        let e = ConvexError::Decode {
            path: "m:f".into(),
            message: "the body was cut…".into(),
        }
        .redact(&[secret]);
        assert!(format!("{e}").contains("the body was cut…"));
    }

    fn attempts(last: ConvexError, earlier_may_have_applied: bool) -> ConvexError {
        ConvexError::Attempts {
            path: "m:f".into(),
            attempts: 3,
            elapsed: Duration::from_millis(1_234),
            stopped: StopReason::MaxAttempts(3),
            earlier: vec![
                "attempt 1: s3cr3t was refused".into(),
                "attempt 2: x".into(),
            ],
            earlier_may_have_applied,
            last: Box::new(last),
        }
    }

    #[test]
    fn attempts_say_which_attempt_failed_how_many_were_made_and_why() {
        let e = attempts(http(FunctionKind::Query, 503), false);
        assert_eq!(
            e.to_string(),
            "`m:f`: attempt 3 failed (3 made in 1234 ms; gave up: at most 3 attempts; \
             earlier: attempt 1: s3cr3t was refused; attempt 2: x): \
             Convex answered HTTP 503 to the query `m:f`: x"
        );
        assert!(e.is_transient());
        assert!(e.is_retry_safe());
        assert_eq!(e.attempts(), 3);
        assert_eq!(e.path(), Some("m:f"));
        assert!(matches!(
            e.last_attempt(),
            ConvexError::Http { status: 503, .. }
        ));
        assert!(!e.earlier_attempt_may_have_applied());
        assert!(matches!(e.into_last_attempt(), ConvexError::Http { .. }));

        let e = attempts(
            ConvexError::Function {
                path: "m:f".into(),
                message: "dup".into(),
                code: Some("ALREADY_EXISTS".into()),
                data: None,
            },
            true,
        );
        assert_eq!(e.code(), Some("ALREADY_EXISTS"));
        assert!(!e.is_transient());
        assert!(!e.is_retry_safe());
        assert!(e.earlier_attempt_may_have_applied());
        // A write whose earlier attempt may have applied is not retry-safe, even if the last
        // failure alone would be.
        let e = attempts(transport(FunctionKind::Mutation, false), true);
        assert!(e.is_transient());
        assert!(!e.is_retry_safe());
        let e = attempts(
            ConvexError::Unauthorized {
                path: "m:f".into(),
                message: "no".into(),
            },
            false,
        );
        assert!(e.is_unauthorized());
        assert_eq!(e.code(), Some("UNAUTHORIZED"));

        let e = attempts(
            ConvexError::Function {
                path: "m:f".into(),
                message: "echo s3cr3t".into(),
                code: None,
                data: Some(json!({"s": "s3cr3t"})),
            },
            false,
        )
        .redact(&["s3cr3t"]);
        let text = format!("{e} {e:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn transient_failures() {
        use FunctionKind::*;
        assert!(transport(Mutation, true).is_transient());
        assert!(transport(Query, false).is_transient());
        for status in [429, 502, 503, 504] {
            assert!(http(Action, status).is_transient(), "{status}");
        }
        for status in [400, 401, 404, 413, 500] {
            assert!(!http(Action, status).is_transient(), "{status}");
        }
        let decode = ConvexError::Decode {
            path: "p".into(),
            message: "m".into(),
        };
        assert!(!decode.is_transient());
    }
}
