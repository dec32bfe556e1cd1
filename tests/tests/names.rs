//! Names travel from hello's path to the formatter's query and back intact,
//! and bad names get a clear 400.

use test_harness::{Formatter, TestApp};

fn greeting(name: &str) -> String {
    format!("Hello, puny human {name}! Morbo asks: how do you like running on Kubernetes?")
}

async fn spawn_pair() -> TestApp {
    TestApp::builder().formatter(Formatter::Real).start().await
}

async fn get(url: String) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn names_come_back_exactly_as_sent() {
    let pair = spawn_pair().await;
    // (the name, as it is percent-encoded in the path)
    let cases = [
        ("Zoë", "Zo%C3%AB"),
        ("a&name=x", "a%26name%3Dx"),
        ("a b", "a%20b"),
        ("../", "..%2F"),
        ("..%2F", "..%252F"),
        ("1+1=2", "1+1%3D2"),
        ("#tag?q", "%23tag%3Fq"),
        ("{name}", "%7Bname%7D"),
    ];
    for path in ["sayHello", "sayHello2"] {
        for (name, encoded) in cases {
            let (status, body) = get(format!("{}/{path}/{encoded}", pair.hello.url())).await;
            assert_eq!((status, body), (200, greeting(name)), "/{path}/{encoded}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn names_over_256_bytes_are_rejected_with_400() {
    let pair = spawn_pair().await;
    let longest = "é".repeat(128); // 256 bytes in UTF-8
    let (status, body) = get(format!("{}/sayHello/{longest}", pair.hello.url())).await;
    assert_eq!((status, body), (200, greeting(&longest)));

    for path in ["sayHello", "sayHello2"] {
        let (status, body) = get(format!("{}/{path}/{}", pair.hello.url(), "a".repeat(257))).await;
        assert_eq!(
            (status, body.as_str()),
            (400, "name is longer than 256 bytes\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn names_that_are_not_utf8_are_rejected_with_400() {
    let pair = spawn_pair().await;
    for path in ["sayHello", "sayHello2"] {
        let (status, body) = get(format!("{}/{path}/%FF%FE", pair.hello.url())).await;
        assert_eq!(
            (status, body.as_str()),
            (400, "name must be percent-encoded UTF-8\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_formatter_rejects_a_missing_name_in_plain_text() {
    let pair = spawn_pair().await;
    let formatter = pair.formatter.as_ref().expect("the real formatter runs");
    let response = reqwest::get(format!("{}/formatGreeting", formatter.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        response.text().await.unwrap(),
        "query parameter `name` is required\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_answers_unknown_paths_with_a_plain_404_and_its_probe_with_ok() {
    let pair = spawn_pair().await;
    let (status, body) = get(format!("{}/nothing/here", pair.hello.url())).await;
    assert_eq!((status, body.as_str()), (404, "not found\n"));
    let (status, body) = get(format!("{}/healthz", pair.hello.url())).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}
