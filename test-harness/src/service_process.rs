//! The real service binaries, run as child processes on free loopback ports.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

/// A running service binary. Dropping it kills the process.
#[derive(Debug)]
pub struct ServiceProcess {
    name: &'static str,
    child: Child,
    address: SocketAddr,
    logs: Arc<Mutex<VecDeque<String>>>,
}

/// How many log lines are kept: the newest, so a service under load (the
/// benchmark) cannot grow the caller's memory without bound.
const KEPT_LOG_LINES: usize = 10_000;

impl ServiceProcess {
    /// Starts `binary` (`hello-svc` or `formatter-svc`) with a clean
    /// environment plus `env`, on port 0, and waits until it logs the
    /// address it is listening on.
    ///
    /// The environment is cleared so that `OTEL_*` variables in the
    /// developer's shell cannot change what a test observes.
    pub fn spawn(binary: &'static str, env: &[(&str, &str)]) -> Self {
        Self::spawn_with(binary, env, true)
    }

    /// Like [`spawn`](Self::spawn), but once the service is listening its
    /// log is read and dropped, not kept: for load, where reading costs CPU
    /// on the machine being measured.
    pub fn spawn_discarding_logs(binary: &'static str, env: &[(&str, &str)]) -> Self {
        Self::spawn_with(binary, env, false)
    }

    fn spawn_with(binary: &'static str, env: &[(&str, &str)], keep_logs: bool) -> Self {
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
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", path.display()));

        let logs = Arc::new(Mutex::new(VecDeque::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut found = false;
            let mut reader = BufReader::new(stdout);
            for line in reader.by_ref().lines().map_while(Result::ok) {
                // Parse only until the address is known: under load (the
                // benchmark) this thread must cost the machine next to nothing.
                if !found && let Some(address) = listening_address(&line) {
                    found = true;
                    let _ = address_tx.send(address);
                    if !keep_logs {
                        let _ = std::io::copy(&mut reader, &mut std::io::sink());
                        return;
                    }
                }
                let mut kept = sink.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == KEPT_LOG_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(address) = address_rx.recv_timeout(Duration::from_millis(20)) {
                return Self {
                    name: binary,
                    child,
                    address,
                    logs,
                };
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{binary} did not start (exit: {exited:?}); its log:\n{}",
                    Vec::from(logs.lock().unwrap_or_else(|e| e.into_inner()).clone()).join("\n")
                );
            }
        }
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
        self.child.id()
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
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {} failed", self.name);
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
/// to exit by itself (a refused configuration), and returns its output.
pub fn run_to_exit(binary: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let path = binary_path(binary);
    let mut child = Command::new(&path)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", path.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{binary} {args:?} kept running: it accepted the configuration");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("the output is readable")
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
