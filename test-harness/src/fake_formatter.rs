//! A stand-in for formatter-svc that records each request and can be told to
//! answer slowly or with an error status.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Request, State},
    http::StatusCode,
    routing::get,
};
use tokio::net::TcpListener;

/// One request as the formatter saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Path and query, as received.
    pub uri: String,
    /// Header names (lower case) and values, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The value of header `name`, if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the fake answers.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// Wait this long before answering.
    pub delay: Duration,
    /// Answer with this status.
    pub status: StatusCode,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            status: StatusCode::OK,
        }
    }
}

impl Behaviour {
    /// Answers 200, after `delay`: a slow or (with a long delay) hanging
    /// formatter.
    pub fn answering_after(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }
}

#[derive(Debug)]
struct Shared {
    behaviour: Behaviour,
    requests: Mutex<Vec<RecordedRequest>>,
}

/// A running fake formatter. Dropping it stops the server task.
#[derive(Debug)]
pub struct FakeFormatter {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeFormatter {
    /// Starts the fake on a free loopback port.
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("bound address");
        let shared = Arc::new(Shared {
            behaviour,
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/formatGreeting", get(answer))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("the fake formatter stopped: {error}");
            }
        });
        Self {
            address,
            shared,
            server,
        }
    }

    /// `http://ADDRESS`, for `FORMATTER_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for FakeFormatter {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> (StatusCode, String) {
    let recorded = RecordedRequest {
        uri: request.uri().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    shared
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(recorded);
    tokio::time::sleep(shared.behaviour.delay).await;
    (shared.behaviour.status, "fake greeting\n".to_owned())
}
