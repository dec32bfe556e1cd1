//! The real service binaries, run as child processes on free loopback ports.
//! Every wait is on a condition (the address logged, the pipe closed, the
//! process exited), awaited, so no test thread is blocked while it waits.

use std::{
    collections::VecDeque,
    fs::File,
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    process::{Child, Command},
    sync::oneshot,
};

/// A running service binary. Dropping it kills the process.
#[derive(Debug)]
pub struct ServiceProcess {
    name: &'static str,
    child: Child,
    pid: u32,
    address: SocketAddr,
    logs: Arc<Mutex<VecDeque<String>>>,
    written: Arc<LinesWritten>,
}

/// Every line the process has written to its log, kept or not, and whether
/// its log has closed (the process exited and every line was read).
#[derive(Debug, Default)]
struct LinesWritten {
    lines: AtomicU64,
    closed: AtomicBool,
}

/// How many log lines are kept: the newest, so a service under load (the
/// benchmark) cannot grow the caller's memory without bound.
const KEPT_LOG_LINES: usize = 10_000;

/// How long a service has to log its address.
const START_TIMEOUT: Duration = Duration::from_secs(10);

impl ServiceProcess {
    /// Starts `binary` (`hello-svc` or `formatter-svc`) with a clean
    /// environment plus `env`, on port 0, and waits until it logs the
    /// address it is listening on.
    ///
    /// The environment is cleared so that `OTEL_*` variables in the
    /// developer's shell cannot change what a test observes.
    pub async fn spawn(binary: &'static str, env: &[(&str, &str)]) -> Self {
        Self::spawn_with(binary, env, true).await
    }

    /// Like [`spawn`](Self::spawn), but once the service is listening its
    /// log is read and dropped, not kept: for load, where reading costs CPU
    /// on the machine being measured.
    pub async fn spawn_discarding_logs(binary: &'static str, env: &[(&str, &str)]) -> Self {
        Self::spawn_with(binary, env, false).await
    }

    async fn spawn_with(binary: &'static str, env: &[(&str, &str)], keep_logs: bool) -> Self {
        let path = binary_path(binary);
        let mut child = Command::new(&path)
            .env_clear()
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            // Export quickly, so tests wait milliseconds rather than the
            // default five seconds for the batch processor.
            .env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", path.display()));
        let pid = child.id().expect("a process just spawned has an id");

        // The log is read on a thread of its own, so lines keep arriving
        // whatever the test's runtime is doing.
        let stdout = child
            .stdout
            .take()
            .expect("stdout is piped")
            .into_owned_fd()
            .expect("the pipe converts to a blocking file");
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        let (address_tx, address_rx) = oneshot::channel();
        let sink = logs.clone();
        let written = Arc::new(LinesWritten::default());
        let counter = written.clone();
        std::thread::spawn(move || {
            let mut address_tx = Some(address_tx);
            let mut reader = BufReader::new(File::from(stdout));
            for line in reader.by_ref().lines().map_while(Result::ok) {
                counter.lines.fetch_add(1, Ordering::Relaxed);
                // Parse only until the address is known: under load (the
                // benchmark) this thread must cost the machine next to nothing.
                if address_tx.is_some()
                    && let Some(address) = listening_address(&line)
                {
                    let _ = address_tx.take().map(|tx| tx.send(address));
                    if !keep_logs {
                        count_lines(&mut reader, &counter.lines);
                        counter.closed.store(true, Ordering::Release);
                        return;
                    }
                }
                let mut kept = sink.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == KEPT_LOG_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
            // End of the pipe: the process exited, and `address_tx`, if it
            // is still here, is dropped, which tells the waiter so.
            counter.closed.store(true, Ordering::Release);
        });

        let failure = match tokio::time::timeout(START_TIMEOUT, address_rx).await {
            Ok(Ok(address)) => {
                return Self {
                    name: binary,
                    child,
                    pid,
                    address,
                    logs,
                    written,
                };
            }
            Ok(Err(_pipe_closed)) => format!("exited: {:?}", child.wait().await),
            Err(_elapsed) => format!("no address logged within {START_TIMEOUT:?}"),
        };
        panic!(
            "{binary} did not start ({failure}); its log:\n{}",
            Vec::from(logs.lock().unwrap_or_else(|e| e.into_inner()).clone()).join("\n")
        );
    }

    /// `http://ADDRESS`, the base URL of the running service.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The newest log lines written so far (JSON, one object a line).
    pub fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// The first log line `matches` accepts, waiting up to five seconds for
    /// it: lines reach the harness through a pipe and a reader thread, a
    /// little after the service wrote them. Panics with the log, naming
    /// `what`, when none comes.
    pub async fn log_line(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let found = crate::poll_for(|| self.logs().into_iter().find(|line| matches(line))).await;
        found.unwrap_or_else(|| panic!("no {what} in the log: {:#?}", self.logs()))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Open file descriptors (sockets included), from /proc.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |dir| dir.count())
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
                line.split_whitespace().nth(1)?.parse().ok()
            })
            .unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM, as Kubernetes does when it stops a pod.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {} failed", self.name);
    }

    /// The lines the process has written to its log so far.
    pub fn log_lines_so_far(&self) -> u64 {
        self.written.lines.load(Ordering::Relaxed)
    }

    /// Every line the process wrote to its log, once it has exited and the
    /// log is read to its end; `None` if that does not happen in time.
    pub async fn log_lines_at_exit(&self) -> Option<u64> {
        crate::poll_for(|| {
            let written = &self.written;
            written
                .closed
                .load(Ordering::Acquire)
                .then(|| written.lines.load(Ordering::Relaxed))
        })
        .await
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// Reads `reader` to its end, counting lines as they pass: cheap, for a
/// service under load whose lines are not kept.
fn count_lines(reader: &mut impl BufRead, lines: &AtomicU64) {
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(chunk) => chunk,
        };
        let newlines = chunk.iter().filter(|&&byte| byte == b'\n').count();
        lines.fetch_add(newlines as u64, Ordering::Relaxed);
        let read = chunk.len();
        reader.consume(read);
    }
}

/// The `listening` line both services log at start, with the bound address.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields")?;
    if fields.get("message")?.as_str()? != "listening" {
        return None;
    }
    fields.get("address")?.as_str()?.parse().ok()
}

/// Runs `binary` with a clean environment plus `env` and `args`, expecting it
/// to exit by itself within ten seconds (a refused configuration), and
/// returns its output.
pub async fn run_to_exit(
    binary: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let path = binary_path(binary);
    let output = Command::new(&path)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(START_TIMEOUT, output).await {
        Ok(output) => {
            output.unwrap_or_else(|error| panic!("cannot run {}: {error}", path.display()))
        }
        Err(_) => panic!("{binary} {args:?} kept running: it accepted the configuration"),
    }
}

/// Where cargo put the workspace's binaries: the profile directory of the
/// running executable (a test lives in its `deps/`, a binary in it), so the
/// target directory and profile are whatever built the caller.
pub fn binary_path(binary: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe is known");
    let dir = exe.parent().expect("an executable lives in a directory");
    let profile_dir = if dir.ends_with("deps") {
        dir.parent().expect("deps has a parent")
    } else {
        dir
    };
    let path = profile_dir.join(binary);
    assert!(
        path.exists(),
        "{} is missing: build the services first with `cargo build --workspace --bins` \
         (`make test` does)",
        path.display()
    );
    path
}
