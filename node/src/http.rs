//! The HTTP status API (axum). Handlers never touch the peer: each request goes to the driver
//! through [`NodeClient`] and waits for its oneshot reply.
//!
//! - `GET /status` → [`crate::Status`]
//! - `GET /blocks?from=H&limit=N` → [`crate::BlockPage`] (best chain; `limit` ≤ 1000, default 100)
//! - `GET /blocks/{hash}` → [`crate::BlockView`] or 404
//! - `POST /blocks` (body = the data, UTF-8) → `{"id": "<item id>"}`
//! - `GET /metrics` → Prometheus text

use crate::api::{NodeClient, MAX_BLOCKS_PER_PAGE};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rantai_core::{BlockHash, SubmitError};
use serde::Deserialize;
use serde_json::json;

/// Largest `POST /blocks` body accepted (the block data limit is 1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The API's routes, bound to one node.
pub fn router(client: NodeClient) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/blocks", get(blocks).post(submit))
        .route("/blocks/{hash}", get(block))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(client)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    client: NodeClient,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(client))
        .with_graceful_shutdown(shutdown)
        .await
}

fn error(code: StatusCode, msg: impl std::fmt::Display) -> Response {
    (code, Json(json!({ "error": msg.to_string() }))).into_response()
}

fn stopped() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down")
}

async fn status(State(c): State<NodeClient>) -> Response {
    match c.status().await {
        Ok(s) => Json(s).into_response(),
        Err(_) => stopped(),
    }
}

#[derive(Deserialize)]
struct BlocksQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

async fn blocks(State(c): State<NodeClient>, Query(q): Query<BlocksQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).min(MAX_BLOCKS_PER_PAGE);
    match c.blocks(q.from.unwrap_or(0), limit).await {
        Ok(p) => Json(p).into_response(),
        Err(_) => stopped(),
    }
}

async fn block(State(c): State<NodeClient>, Path(hash): Path<String>) -> Response {
    let Ok(hash) = BlockHash::from_hex(&hash) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a block hash of 64 hex digits",
        );
    };
    match c.block(hash).await {
        Ok(Some(b)) => Json(b).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "unknown block"),
        Err(_) => stopped(),
    }
}

async fn submit(State(c): State<NodeClient>, body: axum::body::Bytes) -> Response {
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return error(StatusCode::BAD_REQUEST, "data must be UTF-8");
    };
    match c.submit(text).await {
        Ok(Ok(id)) => (StatusCode::ACCEPTED, Json(json!({ "id": id.to_string() }))).into_response(),
        Ok(Err(e @ (SubmitError::TooLarge { .. } | SubmitError::TooLargeOnWire { .. }))) => {
            error(StatusCode::PAYLOAD_TOO_LARGE, e)
        }
        Ok(Err(e @ SubmitError::PoolFull(_))) => error(StatusCode::SERVICE_UNAVAILABLE, e),
        Err(_) => stopped(),
    }
}

async fn metrics(State(c): State<NodeClient>) -> Response {
    match c.metrics_text().await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(_) => stopped(),
    }
}
