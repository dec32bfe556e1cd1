//! Where hello-svc calls formatter-svc: `FORMATTER_URL` made, once, into
//! the start of every call's URL and URI, so that a call only appends the
//! encoded name.

use axum::http::{
    Uri,
    uri::{self, Authority, PathAndQuery, Scheme},
};
use url::{Position, Url, form_urlencoded};

/// `{FORMATTER_URL}/formatGreeting?name=`, parsed once at start-up and split
/// where the name goes, so that a call only appends the encoded name.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// Up to and including `name=`.
    prefix: String,
    /// Where the path starts in `prefix`.
    path_at: usize,
    /// FORMATTER_URL's `#fragment`, if any: in `url.full`, never sent (as
    /// with reqwest).
    fragment: String,
    scheme: Scheme,
    authority: Authority,
    /// `server.address`.
    pub(crate) host: Option<String>,
    /// `server.port`.
    pub(crate) port: Option<i64>,
}

impl Endpoint {
    pub(crate) fn new(base: &Url) -> Result<Self, uri::InvalidUri> {
        let mut url = base.clone();
        // An http(s) URL with a host (checked when parsing) always has a path.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("formatGreeting");
        }
        // An empty name leaves the URL ending in `name=` (then any fragment):
        // exactly where `append_pair("name", name)` puts the name's encoding.
        url.query_pairs_mut().append_pair("name", "");
        let endpoint = Self {
            prefix: url[..Position::AfterQuery].to_owned(),
            path_at: url[..Position::BeforePath].len(),
            fragment: url[Position::AfterQuery..].to_owned(),
            // The configuration refuses credentials, so the authority is the
            // host and port.
            scheme: url.scheme().parse()?,
            authority: url[Position::BeforeHost..Position::AfterPort].parse()?,
            host: url.host_str().map(str::to_owned),
            port: url.port_or_known_default().map(i64::from),
        };
        // Checked here, once: the name's encoding only adds characters a
        // query may hold, so every call's path and query parses too.
        PathAndQuery::try_from(&endpoint.prefix[endpoint.path_at..])?;
        Ok(endpoint)
    }

    /// The URL for `name`, form-urlencoded as `url`'s `append_pair` does it:
    /// `&`, `=`, `+`, `#`, spaces and non-ASCII arrive as sent.
    pub(crate) fn url_for(&self, name: &str) -> String {
        let mut url =
            String::with_capacity(self.prefix.len() + 3 * name.len() + self.fragment.len());
        url.push_str(&self.prefix);
        url.extend(form_urlencoded::byte_serialize(name.as_bytes()));
        url.push_str(&self.fragment);
        url
    }

    /// The request URI for a URL from [`Self::url_for`]: the start-up's
    /// scheme and authority, and the path and query (never the fragment).
    pub(crate) fn uri(&self, url: &str) -> Result<Uri, axum::http::Error> {
        let target = &url[self.path_at..url.len() - self.fragment.len()];
        let mut parts = uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(PathAndQuery::try_from(target)?);
        Ok(Uri::from_parts(parts)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The URL as the reqwest client built it: `url`'s own query encoding.
    fn url_as_before(base: &Url, name: &str) -> Url {
        let mut url = base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("formatGreeting");
        }
        url.query_pairs_mut().append_pair("name", name);
        url
    }

    #[test]
    fn urls_uris_and_span_attributes_are_what_the_url_crate_and_reqwest_made() {
        let bases = [
            "http://localhost:8081",
            "http://formatter-svc/",
            "http://formatter-svc:80/v2/",
            "http://10.0.0.7:8081/base",
            "http://[::1]:9/x?version=2",
            "http://f/?",
            "http://f/#fragment",
            "http://f/x?y#z",
        ];
        let names = [
            "Brian", "", "Zoë", "a&name=x", "a b", "1+1=2", "#tag?q", "..%2F", "{name}", "😀",
        ];
        for base in bases {
            let base = Url::parse(base).unwrap();
            let endpoint = Endpoint::new(&base).unwrap();
            assert_eq!(endpoint.host.as_deref(), base.host_str(), "{base}");
            let port = base.port_or_known_default().map(i64::from);
            assert_eq!(endpoint.port, port, "{base}");
            for name in names {
                let before = url_as_before(&base, name);
                let url = endpoint.url_for(name);
                assert_eq!(url, before.as_str(), "{base} {name:?}");
                // reqwest's URI was the URL's text parsed by `http`.
                let uri: Uri = before.as_str().parse().unwrap();
                assert_eq!(endpoint.uri(&url).unwrap(), uri, "{base} {name:?}");
            }
        }
    }
}
