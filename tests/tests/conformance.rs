//! The conformance table (`propagation_conformance`) end to end: each
//! case's header lines sent to the real hello-svc binary (default
//! `OTEL_PROPAGATORS`, no User-Agent), and the headers its call to the
//! formatter really carried judged against the specifications.

use http::{HeaderMap, HeaderName, HeaderValue};
use propagation_conformance::{CASES, Mode, judge};
use test_harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn every_conformance_case_holds_through_the_real_hello_svc() {
    let app = TestApp::builder().start().await;
    let client = reqwest::Client::new();
    let mut results = Vec::new();
    for (index, case) in CASES.iter().enumerate() {
        let response = client
            .get(format!("{}/sayHello/Brian", app.hello.url()))
            .headers(case.headers())
            .send()
            .await
            .expect("hello-svc answers");
        assert_eq!(response.status(), 200, "{}", case.name);
        let requests = app.formatter_requests();
        assert_eq!(
            requests.len(),
            index + 1,
            "{}: one call per request",
            case.name
        );
        let mut sent = HeaderMap::new();
        for (name, value) in &requests[index].headers {
            sent.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        results.push((case, sent));
    }
    let judged = judge(Mode::HelloSvc, results).unwrap_or_else(|report| panic!("{report}"));
    assert_eq!(judged, CASES.len());
}
