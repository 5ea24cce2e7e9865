//! Who may ask what of `colony serve`: the `Host`, `Origin` and cross-site checks every
//! request passes, the token of reads off loopback, and the response headers that keep
//! the page's guest text inert. (State-changing requests' token is checked on their
//! routes, by `bearer::require_bearer`.)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::bearer::{bearer, same, unauthorized};

/// Paths that hold no data (the page's shell and files): served without the token even
/// where reads need it, so the page can load and then send it.
fn is_shell(path: &str) -> bool {
    path == "/" || path.starts_with("/workers/") || path.starts_with("/assets/")
}

/// Only this server's own files: no inline script, no other origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The checks, for the address the server is bound to.
pub(super) struct Guard {
    /// The `Host` values requests may carry; `None` when bound to a non-loopback
    /// address, reached by names this server cannot know (the token guards it then).
    hosts: Option<Vec<String>>,
    token: Arc<str>,
    /// Whether reads need the token too (a non-loopback address).
    reads_need_token: bool,
}

impl Guard {
    pub(super) fn new(bound: SocketAddr, token: Arc<str>) -> Self {
        let port = bound.port();
        let loopback = bound.ip().is_loopback();
        let hosts = loopback.then(|| {
            vec![
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
                bound.to_string(),
            ]
        });
        Self {
            hosts,
            token,
            reads_need_token: !loopback,
        }
    }

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(hosts) = &self.hosts else {
            return true;
        };
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        host.is_some_and(|host| hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
            && origin.is_none_or(|origin| {
                hosts
                    .iter()
                    .any(|h| origin.eq_ignore_ascii_case(&format!("http://{h}")))
            })
    }

    /// The token in an `Authorization` header or, for what a browser fetches without
    /// headers (pages, live streams), a `token` query parameter.
    fn token_given(&self, request: &Request) -> bool {
        let in_query = request
            .uri()
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("token="));
        bearer(request.headers())
            .or(in_query)
            .is_some_and(|given| same(given, &self.token))
    }
}

/// Every request: a `Host` (and `Origin`) naming this server, the token if reads need
/// it, and the security headers on the response.
pub(super) async fn check(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    if !guard.host_allowed(request.headers()) {
        return (StatusCode::FORBIDDEN, "unknown Host or Origin\n").into_response();
    }
    // A browser says when another site made the request (an <img>, a no-cors fetch):
    // the API is for this server's own page.
    let cross_site = request
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let path = request.uri().path();
    if cross_site && !is_shell(path) {
        return (StatusCode::FORBIDDEN, "cross-site request\n").into_response();
    }
    if guard.reads_need_token && !is_shell(path) && !guard.token_given(&request) {
        return unauthorized();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
