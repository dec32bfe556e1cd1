//! Istio VirtualService HTTP routing, evaluated as Envoy evaluates it, so
//! tests can ask which destination a request with given headers reaches.
//!
//! Semantics: rules are tried in order and the first that matches wins; a
//! rule matches when any of its `match` blocks does (or it has none); a block
//! matches when all of its conditions do; `regex` is RE2 and must match the
//! whole value (Envoy's `safe_regex`). Every field the evaluator does not
//! implement is rejected when parsing, so it can never silently ignore a
//! condition.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

/// The parts of a VirtualService that decide routing.
#[derive(Debug, Clone, Deserialize)]
pub struct VirtualService {
    /// `metadata`.
    pub metadata: Metadata,
    /// `spec`.
    pub spec: VirtualServiceSpec,
}

/// `metadata`, the name only.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// `metadata.name`.
    pub name: String,
}

/// `spec` of a VirtualService.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualServiceSpec {
    /// Hosts the rules apply to.
    pub hosts: Vec<String>,
    /// Gateways the rules are bound to (none: the mesh's sidecars).
    #[serde(default)]
    pub gateways: Vec<String>,
    /// HTTP rules, in order.
    pub http: Vec<HttpRoute>,
}

/// One HTTP rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRoute {
    /// The rule's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Alternative conditions; empty means "always".
    #[serde(default, rename = "match")]
    pub matches: Vec<HttpMatchRequest>,
    /// Where matching requests go.
    pub route: Vec<RouteDestination>,
    /// Does not affect where a request goes.
    #[serde(default)]
    pub timeout: Option<String>,
}

/// One block of conditions, all of which must hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMatchRequest {
    /// The block's name.
    #[serde(default)]
    pub name: Option<String>,
    /// A condition on the path.
    #[serde(default)]
    pub uri: Option<StringMatch>,
    /// Conditions on headers, by lower-case name.
    #[serde(default)]
    pub headers: BTreeMap<String, StringMatch>,
}

/// Istio's `StringMatch`: exactly one of exact, prefix or regex.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum StringMatch {
    /// The whole value equals this.
    Exact(String),
    /// The value starts with this.
    Prefix(String),
    /// RE2 regex that must match the whole value.
    Regex(String),
}

impl StringMatch {
    /// Whether `value` matches, with Envoy's semantics.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(expected) => value == expected,
            Self::Prefix(prefix) => value.starts_with(prefix.as_str()),
            Self::Regex(pattern) => whole_value(pattern).is_match(value),
        }
    }
}

/// A destination of a rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteDestination {
    /// The destination.
    pub destination: Destination,
    /// Traffic share, when there are several destinations.
    #[serde(default)]
    pub weight: Option<u32>,
}

/// A Service, optionally a subset of it and a port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// The Service's name.
    pub host: String,
    /// A DestinationRule subset.
    #[serde(default)]
    pub subset: Option<String>,
    /// The Service port.
    #[serde(default)]
    pub port: Option<PortSelector>,
}

/// `destination.port`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSelector {
    /// The port number.
    pub number: u16,
}

/// A request as Envoy sees it: the path and the lower-case headers.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// The path, without the query.
    pub path: String,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
}

/// An RE2 regex anchored to the whole value, as Envoy's `safe_regex` uses
/// it; both evaluators match with it.
pub(crate) fn whole_value(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$"))
        .unwrap_or_else(|error| panic!("invalid RE2 regex `{pattern}`: {error}"))
}

impl HttpRequest {
    /// Header `name` as Envoy's route matcher reads it: every line of it,
    /// joined with `,` (envoyproxy/envoy `source/common/http/header_utility.cc`,
    /// `HeaderUtility::matchHeaders` through `getAllOfHeaderAsString`, read
    /// at the stored commit `002aa00b`); `None` when absent.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let lines: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect();
        (!lines.is_empty()).then(|| lines.join(","))
    }
}

impl VirtualService {
    /// The destination Envoy sends `request` to, or `None` when no rule
    /// matches (Envoy answers 404).
    pub fn route(&self, request: &HttpRequest) -> Option<&Destination> {
        let rule = self.spec.http.iter().find(|rule| {
            rule.matches.is_empty() || rule.matches.iter().any(|block| block.matches(request))
        })?;
        assert!(
            rule.route.len() == 1,
            "rule {:?} splits traffic by weight; a test cannot say where one request goes",
            rule.name
        );
        Some(&rule.route[0].destination)
    }
}

impl HttpMatchRequest {
    fn matches(&self, request: &HttpRequest) -> bool {
        let uri_ok = self
            .uri
            .as_ref()
            .is_none_or(|uri| uri.matches(&request.path));
        let headers_ok = self.headers.iter().all(|(name, condition)| {
            request
                .header(name)
                .is_some_and(|value| condition.matches(&value))
        });
        uri_ok && headers_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_must_match_the_whole_value() {
        let netscape = StringMatch::Regex("Netscape".into());
        assert!(netscape.matches("Netscape"));
        assert!(
            !netscape.matches("Mozilla (Netscape)"),
            "a substring is not a match in Envoy"
        );
        assert!(StringMatch::Regex(".*Netscape.*".into()).matches("Mozilla (Netscape)"));
    }

    #[test]
    fn an_alternation_cannot_escape_the_anchors() {
        assert!(!StringMatch::Regex("a|b".into()).matches("ab"));
    }

    #[test]
    fn unknown_match_fields_are_rejected_not_ignored() {
        let rule = serde_json::json!({"queryParams": {"x": {"exact": "1"}}});
        assert!(serde_json::from_value::<HttpMatchRequest>(rule).is_err());
    }
}
