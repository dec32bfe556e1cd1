//! The real service binaries, run as child processes on free loopback ports.

use std::{
    io::{BufRead, BufReader},
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
    logs: Arc<Mutex<Vec<String>>>,
}

impl ServiceProcess {
    /// Starts `binary` (`hello-svc` or `formatter-svc`) with a clean
    /// environment plus `env`, on port 0, and waits until it logs the
    /// address it is listening on.
    ///
    /// The environment is cleared so that `OTEL_*` variables in the
    /// developer's shell cannot change what a test observes.
    pub fn spawn(binary: &'static str, env: &[(&str, &str)]) -> Self {
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

        let logs = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = listening_address(&line) {
                    let _ = address_tx.send(address);
                }
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
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
                    logs.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
                );
            }
        }
    }

    /// `http://ADDRESS`, the base URL of the running service.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The log lines written so far (JSON, one object a line).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

/// Where cargo put the workspace's binaries: next to this test's own
/// `deps/` directory, whatever the target directory or profile.
fn binary_path(binary: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("current_exe is known");
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    let path = profile_dir.join(binary);
    assert!(
        path.exists(),
        "{} is missing: build the services first with `cargo build --workspace --bins` \
         (`make test` does)",
        path.display()
    );
    path
}

/// hello-svc and formatter-svc v1, started together and exporting to one
/// OTLP receiver: the pair as `make run` runs it, on free ports.
#[derive(Debug)]
pub struct ServicePair {
    /// The formatter, started first.
    pub formatter: ServiceProcess,
    /// hello-svc, pointing at the formatter.
    pub hello: ServiceProcess,
}

impl ServicePair {
    /// Starts the pair, exporting to `otlp_endpoint` over `protocol`; `env`
    /// is given to both (for example `OTEL_PROPAGATORS`).
    pub fn spawn(otlp_endpoint: &str, protocol: &str, env: &[(&str, &str)]) -> Self {
        let otlp = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ];
        let formatter_env: Vec<_> = otlp.iter().chain(env).copied().collect();
        let formatter = ServiceProcess::spawn("formatter-svc", &formatter_env);
        let formatter_url = formatter.url();
        let mut hello_env = formatter_env.clone();
        hello_env.push(("FORMATTER_URL", &formatter_url));
        let hello = ServiceProcess::spawn("hello-svc", &hello_env);
        Self { formatter, hello }
    }
}
