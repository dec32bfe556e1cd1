//! formatter-svc's router, exercised in process with `oneshot`.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use formatter_svc::{
    config::Config,
    greeting::FormatterVersion,
    routes::{AppState, router},
};
use http_body_util::BodyExt;
use mesh_telemetry::config::parse_ignoring_env;
use tower::ServiceExt;

async fn get(version: FormatterVersion, uri: &str) -> (StatusCode, String, String) {
    let limits = parse_ignoring_env::<Config>(&["formatter-svc"])
        .unwrap()
        .limits;
    let response = router(AppState { version, limits })
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn v2_answers_with_the_professors_greeting_in_plain_text() {
    let (status, content_type, body) =
        get(FormatterVersion::V2, "/formatGreeting?name=Brian").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert_eq!(
        body,
        "Good news, Brian! If anyone needs me I'll be in the Angry Dome!"
    );
}

#[tokio::test]
async fn query_decoding_keeps_reserved_characters() {
    let (_, _, body) = get(FormatterVersion::V1, "/formatGreeting?name=a%26b%3Dc+d%2B").await;
    assert_eq!(
        body,
        "Hello, puny human a&b=c d+! Morbo asks: how do you like running on Kubernetes?"
    );
}

#[tokio::test]
async fn missing_or_empty_names_get_400() {
    for uri in [
        "/formatGreeting",
        "/formatGreeting?name=",
        "/formatGreeting?other=x",
    ] {
        let (status, _, body) = get(FormatterVersion::V1, uri).await;
        assert_eq!(
            (status, body.as_str()),
            (
                StatusCode::BAD_REQUEST,
                "query parameter `name` is required\n"
            ),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn names_over_256_bytes_get_400() {
    let uri = format!("/formatGreeting?name={}", "a".repeat(257));
    let (status, _, body) = get(FormatterVersion::V1, &uri).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "name is longer than 256 bytes\n")
    );
}
