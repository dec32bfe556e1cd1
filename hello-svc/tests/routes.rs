//! hello-svc's router, exercised in process with `oneshot`.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use hello_svc::{
    config::Config,
    formatter_client::FormatterClient,
    routes::{AppState, router},
};
use http_body_util::BodyExt;
use mesh_telemetry::config::parse_ignoring_env;
use tower::ServiceExt;

/// A router whose formatter is at `formatter_url`.
fn app(formatter_url: &str) -> axum::Router {
    let config: Config =
        parse_ignoring_env(&["hello-svc", "--formatter-url", formatter_url]).unwrap();
    let formatter = FormatterClient::new(&config).unwrap();
    router(AppState {
        formatter,
        limits: config.limits,
    })
}

/// A URL where nothing listens.
fn closed_url() -> String {
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!("http://{address}")
}

async fn get(app: axum::Router, uri: &str) -> (StatusCode, String) {
    let response = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn bad_names_are_rejected_before_calling_the_formatter() {
    let url = closed_url();
    let long = format!("/sayHello/{}", "a".repeat(257));
    for (uri, expected) in [
        ("/sayHello/%C3%28", "name must be percent-encoded UTF-8\n"),
        (long.as_str(), "name is longer than 256 bytes\n"),
    ] {
        // A formatter call would have failed with 502, not 400.
        assert_eq!(
            get(app(&url), uri).await,
            (StatusCode::BAD_REQUEST, expected.to_owned()),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_formatter_gives_502_on_both_paths() {
    let url = closed_url();
    for uri in ["/sayHello/Brian", "/sayHello2/Brian"] {
        assert_eq!(
            get(app(&url), uri).await,
            (
                StatusCode::BAD_GATEWAY,
                "formatter unavailable\n".to_owned()
            )
        );
    }
}

#[test]
fn a_formatter_url_without_an_http_host_or_with_credentials_is_refused() {
    for (bad, reason) in [
        ("formatter-svc:8080", "is not an http:// URL with a host"),
        ("ftp://formatter", "is not an http:// URL with a host"),
        ("unix:/tmp/socket", "is not an http:// URL with a host"),
        // Every CLIENT span records the URL as url.full.
        (
            "http://user:secret@formatter-svc",
            "credentials in the URL are not supported",
        ),
        (
            "http://user@formatter-svc",
            "credentials in the URL are not supported",
        ),
    ] {
        let error =
            parse_ignoring_env::<Config>(&["hello-svc", "--formatter-url", bad]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(error.to_string().contains(reason), "{bad}: {error}");
    }
}

#[test]
fn an_https_formatter_url_is_refused_saying_the_mesh_encrypts() {
    let error =
        parse_ignoring_env::<Config>(&["hello-svc", "--formatter-url", "https://formatter-svc"])
            .unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
    assert!(
        error.to_string().contains("https:// is not supported"),
        "{error}"
    );
    assert!(error.to_string().contains("mutual TLS"), "{error}");
}

#[test]
fn formatter_timeout_must_be_positive() {
    let error =
        parse_ignoring_env::<Config>(&["hello-svc", "--formatter-timeout-ms", "0"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
    assert!(
        error.to_string().contains("--formatter-timeout-ms"),
        "{error}"
    );
}

/// A formatter that accepts connections and never answers. Keep the
/// listener alive for as long as it should hang.
async fn hanging_formatter() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

fn app_with(args: &[&str]) -> axum::Router {
    let argv: Vec<&str> = std::iter::once("hello-svc")
        .chain(args.iter().copied())
        .collect();
    let config: Config = parse_ignoring_env(&argv).unwrap();
    let formatter = FormatterClient::new(&config).unwrap();
    router(AppState {
        formatter,
        limits: config.limits,
    })
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let app = app(&closed_url());
    let request = Request::get("/sayHello/Brian")
        .header("baggage", "x".repeat(20_000))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"request headers too large\n");
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_are_shed_with_503_not_queued() {
    let (listener, url) = hanging_formatter().await;
    let app = app_with(&["--formatter-url", &url, "--max-concurrent-requests", "2"]);
    let hang = || {
        let app = app.clone();
        tokio::spawn(async move {
            app.oneshot(Request::get("/sayHello/Brian").body(Body::empty()).unwrap())
                .await
        })
    };
    let (first, second) = (hang(), hang());
    // Both hold a slot once their formatter calls have connected.
    let _calls = (
        listener.accept().await.unwrap(),
        listener.accept().await.unwrap(),
    );

    // Queued behind two calls that never end, it would never be answered.
    let third = get(app.clone(), "/sayHello2/Brian");
    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(5), third)
        .await
        .expect("shed at once, not queued");
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "server busy, retry later\n"
        )
    );
    assert_eq!(
        get(app.clone(), "/healthz").await.0,
        StatusCode::OK,
        "probes are not limited"
    );
    first.abort();
    second.abort();
}

#[tokio::test]
async fn a_request_over_the_server_timeout_gets_503() {
    let (_listener, url) = hanging_formatter().await;
    let app = app_with(&[
        "--formatter-url",
        &url,
        "--formatter-timeout-ms",
        "5000",
        "--request-timeout-ms",
        "100",
    ]);
    let started = std::time::Instant::now();
    let (status, body) = get(app, "/sayHello/Brian").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "request timed out\n")
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(1000));
}
