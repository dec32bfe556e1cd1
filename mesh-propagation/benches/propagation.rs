//! The propagation hot path, per request: extracting the incoming context
//! and injecting the outbound one, with the default composite propagator
//! (`b3multi,tracecontext,baggage`), with and without baggage.
//!
//! Run with `cargo bench -p mesh-propagation` (or `make bench`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use mesh_propagation::{DEFAULT_PROPAGATORS, composite};

/// What Istio's ingress Envoy sends (Zipkin provider), plus a client's
/// traceparent and, optionally, baggage.
fn incoming(with_baggage: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        headers.insert(name, value.parse().expect("valid header value"));
    };
    set("host", "hello-svc:8080");
    set("user-agent", "Mozilla/4.0 (compatible; Netscape)");
    set("accept", "*/*");
    set("x-request-id", "8d4c2e1f-5c7b-4bd4-9d0e-2b1f1c0e9a77");
    set(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    );
    set("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124");
    set("x-b3-spanid", "a2fb4a1d1a96d312");
    set("x-b3-parentspanid", "0020000000000001");
    set("x-b3-sampled", "1");
    if with_baggage {
        set(
            "baggage",
            "user-agent=Mozilla/4.0%20(compatible%3B%20Netscape),tenant=blue,region=eu-west-1",
        );
    }
    headers
}

fn propagation(c: &mut Criterion) {
    let propagator = composite(&DEFAULT_PROPAGATORS);
    for with_baggage in [false, true] {
        let suffix = if with_baggage {
            "with_baggage"
        } else {
            "no_baggage"
        };
        let headers = incoming(with_baggage);

        c.bench_function(&format!("extract/{suffix}"), |b| {
            b.iter(|| propagator.extract(black_box(&headers)))
        });

        let cx = propagator.extract(&headers);
        c.bench_function(&format!("inject/{suffix}"), |b| {
            b.iter(|| {
                let mut out = HeaderMap::with_capacity(8);
                propagator.inject(black_box(&cx), &mut out);
                out
            })
        });
    }
}

criterion_group!(benches, propagation);
criterion_main!(benches);
