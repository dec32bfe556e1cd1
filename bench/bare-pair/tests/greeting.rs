//! The bare pair answers what the real pair answers, over real sockets.

use std::time::Duration;

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn hello_answers_the_formatters_greeting_for_an_encoded_name() {
    let formatter = serve(bare_pair::formatter()).await;
    let hello = serve(bare_pair::hello(&formatter, Duration::from_secs(2)).unwrap()).await;

    let response = reqwest::get(format!("{hello}/sayHello/Brian%20%26%20co"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        "Hello, puny human Brian & co! Morbo asks: how do you like running on Kubernetes?"
    );

    let missing = reqwest::get(format!("{formatter}/formatGreeting"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.text().await.unwrap(),
        "query parameter `name` is required\n"
    );
    let health = reqwest::get(format!("{hello}/healthz")).await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok\n");
}
