//! A local Convex-compatible server, **for development and tests only** (never production).
//!
//! [`LocalConvexServer`] runs `convex/server/main.ts`: the app and the generated
//! `taskExecutionsStorage` component served over Convex's HTTP API by `convex-test`, an
//! in-memory mock of the Convex backend. Nothing is persisted, and index lookups are answered
//! by scanning, so it is meant for examples, tests and trying things out, with thousands of
//! documents rather than millions.
//!
//! It needs Node.js (20 or later) on `PATH` and the server's npm dependencies, installed once
//! with `cd convex && npm ci`. The server lives exactly as long as the [`LocalConvexServer`]:
//! it is started with `--exit-with-stdin` and this process holds its stdin, so it also exits
//! when this process dies, however it dies.
//!
//! ```no_run
//! use durable_execution_storage_convex::local_server::{LocalConvexServer, LocalServerOptions};
//!
//! let server = LocalConvexServer::start(LocalServerOptions::new("dev-secret"))?;
//! println!("Convex HTTP API at {}", server.url());
//! // Each instance is a separate, empty database on the same server.
//! println!("an isolated database at {}", server.instance_url("my-test"));
//! server.stop();
//! # Ok::<(), durable_execution_storage_convex::local_server::LocalServerError>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The deployment env var the public API reads its auth secret from.
pub const AUTH_SECRET_ENV_VAR: &str = "TASK_EXECUTIONS_STORAGE_AUTH_SECRET";
/// The deployment env var holding the previous secret during a rotation.
pub const PREVIOUS_AUTH_SECRET_ENV_VAR: &str = "TASK_EXECUTIONS_STORAGE_AUTH_SECRET_PREVIOUS";
/// The deployment env var that must be `true` for `deleteById` and `deleteAll` to run.
pub const TEST_MODE_ENV_VAR: &str = "TASK_EXECUTIONS_STORAGE_TEST_MODE";

/// How long [`LocalServerOptions::new`] lets the server take to start: the first start
/// compiles the TypeScript, which takes a few seconds on a cold cache.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`LocalConvexServer::stop`] waits for a clean exit before killing the server.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Lines of the server's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 50;

/// The variable naming a real deployment for tests and examples, which otherwise run on a
/// local server.
pub const CONVEX_URL_ENV_VAR: &str = "CONVEX_URL";
/// The variable holding that deployment's admin key, when it needs one.
pub const ADMIN_KEY_ENV_VAR: &str = "CONVEX_ADMIN_KEY";

/// A real deployment named by the environment: [`CONVEX_URL_ENV_VAR`], its secret in
/// [`AUTH_SECRET_ENV_VAR`] and, if it needs one, its admin key in [`ADMIN_KEY_ENV_VAR`]. The
/// tests and the examples run there instead of on a local server when it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteDeployment {
    /// The deployment URL.
    pub url: String,
    /// The secret its public API checks.
    pub auth_secret: String,
    /// Its admin key, if it needs one.
    pub admin_key: Option<String>,
}

impl fmt::Debug for RemoteDeployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteDeployment")
            .field("url", &self.url)
            .field("auth_secret", &"<redacted>")
            .field("admin_key", &self.admin_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl RemoteDeployment {
    /// The deployment the environment names: `Ok(None)` when none of the three variables is
    /// set (run locally), an error naming what is missing when it is half configured (a
    /// variable that is set but empty counts as set, so that a half-configured environment
    /// fails loudly rather than quietly running somewhere else). Values never appear in the
    /// error.
    pub fn from_env() -> Result<Option<Self>, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env), read once per process: the tests ask for it in every
    /// test, and must all agree.
    pub fn from_env_once() -> Result<Option<&'static Self>, &'static str> {
        static ONCE: OnceLock<Result<Option<RemoteDeployment>, String>> = OnceLock::new();
        match ONCE.get_or_init(Self::from_env) {
            Ok(remote) => Ok(remote.as_ref()),
            Err(error) => Err(error),
        }
    }

    /// As [`from_env`](Self::from_env), reading the variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let url = var(CONVEX_URL_ENV_VAR);
        let secret = var(AUTH_SECRET_ENV_VAR);
        let admin_key = var(ADMIN_KEY_ENV_VAR);
        match (url, secret) {
            (None, None) if admin_key.is_none() => Ok(None),
            (Some(url), Some(auth_secret)) if !url.trim().is_empty() && !auth_secret.is_empty() => {
                Ok(Some(Self {
                    url,
                    auth_secret,
                    admin_key,
                }))
            }
            (url, secret) => Err(format!(
                "the real-deployment mode is half configured: {CONVEX_URL_ENV_VAR} is {}, \
                 {AUTH_SECRET_ENV_VAR} is {}{}. Set both (and {ADMIN_KEY_ENV_VAR} if the \
                 deployment needs it) to run against a deployment, or unset all three to run \
                 on the local server.",
                describe_variable(url.as_deref()),
                describe_variable(secret.as_deref()),
                if admin_key.is_some() {
                    format!(", {ADMIN_KEY_ENV_VAR} is set")
                } else {
                    String::new()
                }
            )),
        }
    }
}

/// How an environment variable looks, without its value (it may be a secret).
fn describe_variable(value: Option<&str>) -> &'static str {
    match value {
        None => "unset",
        Some(v) if v.trim().is_empty() => "empty",
        Some(_) => "set",
    }
}

/// How to start a [`LocalConvexServer`].
#[derive(Clone)]
pub struct LocalServerOptions {
    /// The secret every call must carry (`TASK_EXECUTIONS_STORAGE_AUTH_SECRET`).
    pub auth_secret: String,
    /// Sets `TASK_EXECUTIONS_STORAGE_TEST_MODE=true`, which lets `deleteById` and `deleteAll`
    /// run. Off by default, as on a production deployment.
    pub test_mode: bool,
    /// More environment variables for the server's functions (e.g.
    /// `TASK_EXECUTIONS_STORAGE_AUTH_SECRET_PREVIOUS`). Applied after the two above, so they
    /// can override them.
    pub env: Vec<(String, String)>,
    /// The `convex/` directory of this crate (with `server/main.ts` and `node_modules`).
    /// `None`: `$CARGO_MANIFEST_DIR/convex` of this crate's sources, which is right when the
    /// crate is built from its repository (tests, examples, a path dependency).
    pub convex_dir: Option<PathBuf>,
    /// How long to wait for the server to answer `GET /version`.
    pub startup_timeout: Duration,
}

impl LocalServerOptions {
    /// Options with `auth_secret`, test mode off, no extra env, the default `convex/` dir and
    /// [`DEFAULT_STARTUP_TIMEOUT`].
    pub fn new(auth_secret: impl Into<String>) -> Self {
        Self {
            auth_secret: auth_secret.into(),
            test_mode: false,
            env: Vec::new(),
            convex_dir: None,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }

    /// Turns test mode on or off.
    pub fn test_mode(mut self, on: bool) -> Self {
        self.test_mode = on;
        self
    }

    /// Adds an environment variable for the server's functions.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Uses the `convex/` directory at `dir`.
    pub fn convex_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.convex_dir = Some(dir.into());
        self
    }

    /// Waits at most `timeout` for the server to start.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }
}

impl fmt::Debug for LocalServerOptions {
    // By hand, so that the secret (and env values, which may be secrets too) never get logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_keys: Vec<&str> = self.env.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("LocalServerOptions")
            .field("auth_secret", &"<redacted>")
            .field("test_mode", &self.test_mode)
            .field("env_keys", &env_keys)
            .field("convex_dir", &self.convex_dir)
            .field("startup_timeout", &self.startup_timeout)
            .finish()
    }
}

/// Why the local server could not start. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalServerError {
    /// `node` could not be run.
    #[error(
        "cannot run `node` ({message}): the local Convex server needs Node.js 20 or later on PATH"
    )]
    NodeNotFound {
        /// What running `node --version` reported.
        message: String,
    },
    /// The `convex/` directory is not where it was looked for.
    #[error(
        "no local Convex server in {}: expected server/main.ts there; \
         set LocalServerOptions::convex_dir to the crate's convex/ directory",
        dir.display()
    )]
    ConvexDirNotFound {
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The server's npm dependencies are not installed.
    #[error(
        "the local Convex server's dependencies are not installed ({} is missing): run `{command}`",
        missing.display()
    )]
    DependenciesMissing {
        /// The file that is missing.
        missing: PathBuf,
        /// The command that installs them: `cd <convex dir> && npm ci`.
        command: String,
    },
    /// The server process could not be spawned, or its output read.
    #[error("could not run the local Convex server: {0}")]
    Io(#[from] io::Error),
    /// The server exited before it was ready.
    #[error(
        "the local Convex server exited ({status}) before it was ready; its stderr:\n{stderr}"
    )]
    Exited {
        /// How it exited.
        status: ExitStatus,
        /// The end of its stderr.
        stderr: String,
    },
    /// The server was not ready in time.
    #[error(
        "the local Convex server was not ready after {waited:?} (it was killed); its stderr:\n{stderr}"
    )]
    Timeout {
        /// How long it was given.
        waited: Duration,
        /// The end of its stderr.
        stderr: String,
    },
}

/// A running local server (see the [module docs](self)). Dropping it kills the server.
pub struct LocalConvexServer {
    child: Child,
    /// Held open for the server's lifetime: closing it (or this process dying) stops the
    /// server, which runs with `--exit-with-stdin`.
    stdin: Option<ChildStdin>,
    url: String,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stopped: bool,
}

impl fmt::Debug for LocalConvexServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalConvexServer")
            .field("url", &self.url)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl LocalConvexServer {
    /// Starts a server on a free port of 127.0.0.1 and waits until it answers `GET /version`.
    ///
    /// Blocks the calling thread for the start (a second or two, more on a cold cache). From
    /// async code, that is fine in tests and examples; elsewhere, call it from
    /// `tokio::task::spawn_blocking`.
    pub fn start(options: LocalServerOptions) -> Result<Self, LocalServerError> {
        let convex_dir = options
            .convex_dir
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("convex"));
        check_prerequisites(&convex_dir)?;

        let mut command = Command::new(convex_dir.join("node_modules").join(".bin").join("tsx"));
        command
            .current_dir(&convex_dir)
            .args(["--tsconfig", "tsconfig.tsx.json", "server/main.ts"])
            .args(["--port", "0", "--exit-with-stdin"])
            // The storage's variables come only from the options: a developer's exported
            // TASK_EXECUTIONS_STORAGE_TEST_MODE must not turn test mode on behind their back.
            // They travel in the environment rather than as `--env` arguments, which any user
            // of the machine could read in the process list.
            .env_remove(PREVIOUS_AUTH_SECRET_ENV_VAR)
            .env_remove(TEST_MODE_ENV_VAR)
            .env(AUTH_SECRET_ENV_VAR, &options.auth_secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if options.test_mode {
            command.env(TEST_MODE_ENV_VAR, "true");
        }
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let mut child = command.spawn()?;

        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (url_tx, url_rx) = mpsc::channel();
        // Both pipes are drained for the server's whole life: a full pipe would block it.
        if let Some(out) = child.stdout.take() {
            thread::spawn(move || read_stdout(out, url_tx));
        }
        if let Some(err) = child.stderr.take() {
            let tail = Arc::clone(&stderr);
            thread::spawn(move || read_stderr(err, &tail));
        }
        let mut server = Self {
            stdin: child.stdin.take(),
            child,
            url: String::new(),
            stderr,
            stopped: false,
        };

        let deadline = Instant::now() + options.startup_timeout;
        let timed_out = |server: &mut Self| {
            server.kill();
            LocalServerError::Timeout {
                waited: options.startup_timeout,
                stderr: server.stderr_tail(),
            }
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        match url_rx.recv_timeout(remaining) {
            Ok(url) => server.url = url,
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(timed_out(&mut server)),
            // stdout closed without the line: the server exited (or is exiting).
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(server.exited()),
        }
        loop {
            if version_answers(&server.url) {
                return Ok(server);
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                return Err(server.exited());
            }
            if Instant::now() >= deadline {
                return Err(timed_out(&mut server));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's URL, e.g. `http://127.0.0.1:45123`: the deployment URL of the instance
    /// `default`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The deployment URL of the instance `id`: a separate database, empty until first used,
    /// on the same server. `id` is 1 to 64 ASCII letters, digits, `_` or `-` (the server
    /// refuses calls to anything else with HTTP 400).
    pub fn instance_url(&self, id: &str) -> String {
        format!("{}/instance/{id}", self.url)
    }

    /// The last lines the server wrote to stderr (its failures and, with `--verbose`, calls).
    pub fn stderr_tail(&self) -> String {
        match self.stderr.lock() {
            Ok(lines) => lines.iter().cloned().collect::<Vec<_>>().join("\n"),
            Err(poisoned) => poisoned
                .into_inner()
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// Stops the server: closes its stdin, which it treats like SIGTERM (it stops accepting
    /// connections and exits), waits up to 5 s, then kills it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // Closing stdin asks for a clean exit, and also reaches the node process that tsx
        // starts underneath (it shares the pipe), which a kill of tsx alone would orphan.
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        self.kill();
    }

    fn kill(&mut self) {
        self.stopped = true;
        drop(self.stdin.take());
        // Errors mean it already exited: nothing left to do.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The error for a server that exited before it was ready.
    fn exited(&mut self) -> LocalServerError {
        self.stopped = true;
        drop(self.stdin.take());
        match self.child.wait() {
            Ok(status) => {
                // Let the stderr reader catch the last lines, which say why.
                thread::sleep(Duration::from_millis(100));
                LocalServerError::Exited {
                    status,
                    stderr: self.stderr_tail(),
                }
            }
            Err(error) => LocalServerError::Io(error),
        }
    }
}

impl Drop for LocalConvexServer {
    fn drop(&mut self) {
        // No grace period here: a test that drops its server wants it gone now.
        if !self.stopped {
            self.kill();
        }
    }
}

/// Checks what the server needs, so that a missing piece gets a clear message instead of a
/// spawn error.
fn check_prerequisites(convex_dir: &Path) -> Result<(), LocalServerError> {
    if !convex_dir.join("server").join("main.ts").is_file() {
        return Err(LocalServerError::ConvexDirNotFound {
            dir: convex_dir.to_path_buf(),
        });
    }
    match Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => {
            return Err(LocalServerError::NodeNotFound {
                message: format!("`node --version` exited with {status}"),
            })
        }
        Err(error) => {
            return Err(LocalServerError::NodeNotFound {
                message: error.to_string(),
            })
        }
    }
    let tsx = convex_dir.join("node_modules").join(".bin").join("tsx");
    if !tsx.is_file() {
        return Err(LocalServerError::DependenciesMissing {
            missing: tsx,
            command: format!("cd {} && npm ci", convex_dir.display()),
        });
    }
    Ok(())
}

/// Sends the URL of the `listening on <url>` line, then drains stdout until it closes.
fn read_stdout(out: impl Read, url_tx: mpsc::Sender<String>) {
    let mut sent = false;
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        if sent {
            continue;
        }
        if let Some(url) = line.trim().strip_prefix("listening on ") {
            sent = url_tx.send(url.to_owned()).is_ok();
        }
    }
}

/// Keeps the last [`STDERR_TAIL_LINES`] lines of stderr.
fn read_stderr(err: impl Read, tail: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(err).lines() {
        let Ok(line) = line else { break };
        let mut lines = match tail.lock() {
            Ok(lines) => lines,
            Err(poisoned) => poisoned.into_inner(),
        };
        if lines.len() == STDERR_TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

/// Whether `GET {url}/version` answers 200. A minimal HTTP/1.1 request over a plain socket:
/// it keeps `start` synchronous (usable before any async runtime exists) without a blocking
/// HTTP client dependency.
fn version_answers(url: &str) -> bool {
    let Some(address) = url
        .strip_prefix("http://")
        .and_then(|host| host.parse::<SocketAddr>().ok())
    else {
        return false;
    };
    let attempt = || -> io::Result<bool> {
        let timeout = Duration::from_secs(2);
        let mut stream = TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(
            format!("GET /version HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )?;
        let mut status_line = String::new();
        BufReader::new(stream).read_line(&mut status_line)?;
        Ok(status_line.starts_with("HTTP/1.1 200"))
    };
    attempt().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(set: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let set: Vec<(String, String)> = set
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| set.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn nothing_set_runs_locally_and_url_with_secret_names_a_deployment() {
        assert_eq!(RemoteDeployment::from_vars(vars(&[])), Ok(None));
        let remote = RemoteDeployment::from_vars(vars(&[
            (CONVEX_URL_ENV_VAR, "https://happy-otter-123.convex.cloud"),
            (AUTH_SECRET_ENV_VAR, "s3cret"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(remote.url, "https://happy-otter-123.convex.cloud");
        assert_eq!(remote.auth_secret, "s3cret");
        assert_eq!(remote.admin_key, None);
        let debug = format!("{remote:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn a_half_configured_environment_is_an_error_that_shows_no_value() {
        for set in [
            vec![(CONVEX_URL_ENV_VAR, "https://x.convex.cloud")],
            vec![(AUTH_SECRET_ENV_VAR, "s3cret")],
            vec![(ADMIN_KEY_ENV_VAR, "k3y")],
            vec![(CONVEX_URL_ENV_VAR, " "), (AUTH_SECRET_ENV_VAR, "s3cret")],
            vec![
                (CONVEX_URL_ENV_VAR, "https://x.convex.cloud"),
                (AUTH_SECRET_ENV_VAR, ""),
            ],
        ] {
            let error = RemoteDeployment::from_vars(vars(&set)).unwrap_err();
            assert!(error.contains("half configured"), "{error}");
            for value in ["s3cret", "k3y", "x.convex.cloud"] {
                assert!(!error.contains(value), "{error}");
            }
        }
        let error = RemoteDeployment::from_vars(vars(&[(CONVEX_URL_ENV_VAR, " ")])).unwrap_err();
        assert!(error.contains("CONVEX_URL is empty"), "{error}");
    }
}
