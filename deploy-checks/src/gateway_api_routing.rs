//! Gateway API `HTTPRoute` routing, evaluated as Istio 1.30.3 programs Envoy
//! with it, so tests can ask which backend a request with given headers
//! reaches on the ambient data plane (the waypoint, the ingress Gateway).
//!
//! Semantics, from istio/istio `1.30.3`:
//! - the API server fills in the CRD defaults first: a rule without
//!   `matches` gets `[{path: {type: PathPrefix, value: "/"}}]`, a match
//!   without `path` gets that path, a header match without `type` is
//!   `Exact` (Gateway API v1.5.1's HTTPRoute schema, vendored in
//!   `deploy-checks/fixtures/gateway-api-v1-schemas.json`; a test holds the
//!   defaults here to it);
//! - each rule is split into one route per match, and the routes are sorted
//!   stably by precedence, not taken in written order: path kind (Exact >
//!   PathPrefix > RegularExpression), then path length, then whether a
//!   method is matched, then the number of header matches
//!   (`pilot/pkg/config/kube/gateway/route_collections.go`,
//!   `HTTPRouteCollection`; `conversion.go`, `sortHTTPRoutes`);
//! - a PathPrefix without its trailing `/` becomes Envoy's
//!   `path_separated_prefix`, which matches whole path segments
//!   (`conversion.go`, `createURIMatch`; `pilot/pkg/networking/core/route/
//!   route.go`, `TranslateRouteMatch`);
//! - a `RegularExpression` header match becomes Envoy's `safe_regex`: RE2,
//!   matching the whole value (`conversion.go`, `createHeadersMatch`).
//!
//! Every field the evaluator does not implement (filters, query and method
//! matches, hostnames, timeouts...) is rejected when parsing, so it can
//! never silently ignore a condition.

use serde::Deserialize;

use crate::istio_routing::{HttpRequest, Metadata, whole_value};

/// The parts of an HTTPRoute that decide routing.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpRoute {
    /// `metadata`.
    pub metadata: Metadata,
    /// `spec`.
    pub spec: HttpRouteSpec,
}

/// `spec` of an HTTPRoute.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteSpec {
    /// What the route attaches to: a Gateway, or (GAMMA) a Service.
    pub parent_refs: Vec<ParentReference>,
    /// The rules, in written order (not the order they are tried in).
    pub rules: Vec<HttpRouteRule>,
}

/// One `parentRefs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentReference {
    /// API group; the CRD's default is `gateway.networking.k8s.io`, and
    /// `""` is the core group (a Service).
    #[serde(default)]
    pub group: Option<String>,
    /// Kind; the CRD's default is `Gateway`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The parent's name.
    pub name: String,
    /// The parent's port (a Service's port, for GAMMA).
    #[serde(default)]
    pub port: Option<u16>,
}

impl ParentReference {
    /// `(group, kind)` with the CRD's defaults filled in.
    pub fn group_kind(&self) -> (&str, &str) {
        (
            self.group.as_deref().unwrap_or(GATEWAY_GROUP),
            self.kind.as_deref().unwrap_or("Gateway"),
        )
    }
}

/// The Gateway API's group, the default of a parentRef's `group`.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// One rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRule {
    /// The rule's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Alternative conditions; absent means the CRD's default,
    /// [`HttpRouteMatch::default`].
    #[serde(default)]
    pub matches: Option<Vec<HttpRouteMatch>>,
    /// Where matching requests go.
    pub backend_refs: Vec<BackendRef>,
}

/// One block of conditions, all of which must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteMatch {
    /// A condition on the path; absent means PathPrefix `/`.
    #[serde(default)]
    pub path: Option<PathMatch>,
    /// Conditions on headers.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
}

/// `path` of a match.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathMatch {
    /// `Exact`, `PathPrefix` (the default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The path; `/` by default.
    #[serde(default)]
    pub value: Option<String>,
}

/// One header condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatch {
    /// `Exact` (the default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The header's name, matched case-insensitively.
    pub name: String,
    /// The value, or the RE2 regex.
    pub value: String,
}

/// A backend of a rule: a Service and its port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRef {
    /// The Service's name.
    pub name: String,
    /// The Service port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Traffic share, when there are several backends.
    #[serde(default)]
    pub weight: Option<u32>,
}

/// The path condition with the CRD's defaults filled in, as Istio converts
/// it (`conversion.go`, `createURIMatch`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Path {
    Exact(String),
    /// Without its trailing `/` (unless it is `/`).
    Prefix(String),
    Regex(String),
}

impl Path {
    fn from_match(path: Option<&PathMatch>) -> Self {
        let kind = path.and_then(|p| p.kind.as_deref()).unwrap_or("PathPrefix");
        let value = path
            .and_then(|p| p.value.clone())
            .unwrap_or_else(|| "/".into());
        match kind {
            "PathPrefix" if value == "/" => Self::Prefix(value),
            "PathPrefix" => Self::Prefix(value.trim_end_matches('/').to_owned()),
            "Exact" => Self::Exact(value),
            "RegularExpression" => Self::Regex(value),
            other => panic!("path match type {other:?} is not one the Gateway API defines"),
        }
    }

    /// `getURIRank`: Exact 3, Prefix 2, Regex 1.
    fn rank(&self) -> u8 {
        match self {
            Self::Exact(_) => 3,
            Self::Prefix(_) => 2,
            Self::Regex(_) => 1,
        }
    }

    /// `getURILength`.
    fn length(&self) -> usize {
        match self {
            Self::Exact(v) | Self::Prefix(v) | Self::Regex(v) => v.len(),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(exact) => path == exact,
            Self::Prefix(prefix) if prefix == "/" => path.starts_with('/'),
            // Envoy's path_separated_prefix: the prefix, then the end or `/`.
            Self::Prefix(prefix) => path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            Self::Regex(pattern) => whole_value(pattern).is_match(path),
        }
    }
}

impl HeaderMatch {
    fn matches(&self, request: &HttpRequest) -> bool {
        let Some(value) = request.header(&self.name) else {
            return false;
        };
        match self.kind.as_deref().unwrap_or("Exact") {
            "Exact" => value == self.value,
            "RegularExpression" => whole_value(&self.value).is_match(&value),
            other => panic!("header match type {other:?} is not one the Gateway API defines"),
        }
    }
}

/// One route after Istio's split: one match (or none) of one rule.
struct SplitRoute<'a> {
    rule: &'a HttpRouteRule,
    /// `None` for a rule written with `matches: []`: it matches everything
    /// and sorts last.
    condition: Option<(Path, &'a [HeaderMatch])>,
}

impl SplitRoute<'_> {
    fn matches(&self, request: &HttpRequest) -> bool {
        self.condition.as_ref().is_none_or(|(path, headers)| {
            path.matches(&request.path) && headers.iter().all(|h| h.matches(request))
        })
    }
}

/// The CRD's default for an absent `matches`: one match of PathPrefix `/`.
static DEFAULT_MATCH: [HttpRouteMatch; 1] = [HttpRouteMatch {
    path: None,
    headers: Vec::new(),
}];

impl HttpRoute {
    /// The routes in the order Envoy tries them: split per match, then
    /// sorted as `sortHTTPRoutes` does (stable, so ties keep written order).
    fn sorted_routes(&self) -> Vec<SplitRoute<'_>> {
        let mut routes: Vec<SplitRoute<'_>> = Vec::new();
        for rule in &self.spec.rules {
            let matches = rule.matches.as_deref().unwrap_or(&DEFAULT_MATCH);
            if matches.is_empty() {
                routes.push(SplitRoute {
                    rule,
                    condition: None,
                });
            }
            for m in matches {
                routes.push(SplitRoute {
                    rule,
                    condition: Some((Path::from_match(m.path.as_ref()), &m.headers)),
                });
            }
        }
        // No method matches are accepted, so that criterion is always a tie.
        routes.sort_by(|a, b| match (&a.condition, &b.condition) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (Some((pa, ha)), Some((pb, hb))) => pb
                .rank()
                .cmp(&pa.rank())
                .then(pb.length().cmp(&pa.length()))
                .then(hb.len().cmp(&ha.len())),
        });
        routes
    }

    /// The rule names (or `#index`) in the order they are tried, one entry
    /// per match.
    pub fn precedence(&self) -> Vec<String> {
        self.sorted_routes()
            .iter()
            .map(|route| {
                route.rule.name.clone().unwrap_or_else(|| {
                    let index = self
                        .spec
                        .rules
                        .iter()
                        .position(|r| std::ptr::eq(r, route.rule))
                        .unwrap_or_default();
                    format!("#{index}")
                })
            })
            .collect()
    }

    /// The backend Envoy sends `request` to, or `None` when no rule matches
    /// (Envoy answers 404).
    pub fn route(&self, request: &HttpRequest) -> Option<&BackendRef> {
        let routes = self.sorted_routes();
        let rule = routes.iter().find(|route| route.matches(request))?.rule;
        assert!(
            rule.backend_refs.len() == 1,
            "rule {:?} splits traffic by weight; a test cannot say where one request goes",
            rule.name
        );
        Some(&rule.backend_refs[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(rules: serde_json::Value) -> HttpRoute {
        serde_json::from_value(json!({
            "metadata": {"name": "r"},
            "spec": {"parentRefs": [{"name": "g"}], "rules": rules}
        }))
        .unwrap()
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            path: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn backend<'a>(route: &'a HttpRoute, request: &HttpRequest) -> Option<&'a str> {
        route.route(request).map(|b| b.name.as_str())
    }

    #[test]
    fn a_header_match_wins_over_a_catch_all_written_before_it() {
        let r = route(json!([
            {"name": "all", "backendRefs": [{"name": "v1"}]},
            {"name": "netscape", "matches": [{"headers": [{"name": "baggage", "type": "RegularExpression", "value": ".*Netscape.*"}]}], "backendRefs": [{"name": "v2"}]}
        ]));
        assert_eq!(r.precedence(), ["netscape", "all"]);
        assert_eq!(
            backend(&r, &request("/x", &[("Baggage", "ua=Netscape")])),
            Some("v2")
        );
        assert_eq!(backend(&r, &request("/x", &[])), Some("v1"));
    }

    #[test]
    fn exact_beats_prefix_and_a_longer_prefix_beats_a_shorter_one() {
        let r = route(json!([
            {"name": "short", "matches": [{"path": {"value": "/a"}}], "backendRefs": [{"name": "short"}]},
            {"name": "long", "matches": [{"path": {"value": "/a/b"}}], "backendRefs": [{"name": "long"}]},
            {"name": "exact", "matches": [{"path": {"type": "Exact", "value": "/a/b/c"}}], "backendRefs": [{"name": "exact"}]}
        ]));
        assert_eq!(r.precedence(), ["exact", "long", "short"]);
        assert_eq!(backend(&r, &request("/a/b/c", &[])), Some("exact"));
        assert_eq!(backend(&r, &request("/a/b/d", &[])), Some("long"));
        assert_eq!(backend(&r, &request("/a", &[])), Some("short"));
    }

    #[test]
    fn a_path_prefix_matches_whole_segments_only() {
        let r = route(json!([
            {"matches": [{"path": {"type": "PathPrefix", "value": "/sayHello/"}}], "backendRefs": [{"name": "hello"}]}
        ]));
        assert_eq!(backend(&r, &request("/sayHello/Brian", &[])), Some("hello"));
        assert_eq!(backend(&r, &request("/sayHello", &[])), Some("hello"));
        assert_eq!(backend(&r, &request("/sayHello2/Brian", &[])), None);
    }

    #[test]
    fn a_header_regex_must_match_the_whole_value() {
        let r = route(json!([
            {"matches": [{"headers": [{"name": "baggage", "type": "RegularExpression", "value": "Netscape"}]}], "backendRefs": [{"name": "v2"}]}
        ]));
        assert_eq!(
            backend(&r, &request("/", &[("baggage", "Netscape")])),
            Some("v2")
        );
        assert_eq!(
            backend(&r, &request("/", &[("baggage", "ua=Netscape")])),
            None
        );
    }

    #[test]
    fn fields_the_evaluator_does_not_implement_are_rejected_not_ignored() {
        for rule in [
            json!({"matches": [{"queryParams": [{"name": "x", "value": "1"}]}], "backendRefs": []}),
            json!({"matches": [{"method": "GET"}], "backendRefs": []}),
            json!({"filters": [], "backendRefs": []}),
            json!({"timeouts": {"request": "1s"}, "backendRefs": []}),
        ] {
            let parsed = serde_json::from_value::<HttpRoute>(json!({
                "metadata": {"name": "r"},
                "spec": {"parentRefs": [{"name": "g"}], "rules": [rule.clone()]}
            }));
            assert!(parsed.is_err(), "{rule}");
        }
        let with_hostnames = serde_json::from_value::<HttpRoute>(json!({
            "metadata": {"name": "r"},
            "spec": {"parentRefs": [{"name": "g"}], "hostnames": ["a"], "rules": []}
        }));
        assert!(with_hostnames.is_err());
    }
}
