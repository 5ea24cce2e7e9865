//! The page's files, compiled into the binary: no CDN, no build step, nothing fetched
//! at run time. The HTML holds no guest text; the script renders it as text.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("assets/index.html");
const WORKER: &str = include_str!("assets/worker.html");
const SCRIPT: &str = include_str!("assets/colony.js");
const STYLE: &str = include_str!("assets/style.css");

pub(super) async fn index() -> Html<&'static str> {
    Html(INDEX)
}

pub(super) async fn worker(Path(_id): Path<String>) -> Html<&'static str> {
    Html(WORKER)
}

pub(super) async fn asset(Path(name): Path<String>) -> Response {
    let (kind, body) = match name.as_str() {
        "colony.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "style.css" => ("text/css; charset=utf-8", STYLE),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
