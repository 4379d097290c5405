//! The HTTP status API (axum routes on hyper's HTTP/1 server). Handlers never touch the peer:
//! each request goes to the driver through [`NodeClient`] and waits for its oneshot reply.
//!
//! - `GET /status` → [`crate::Status`]
//! - `GET /blocks?from=H&limit=N` → [`crate::BlockPage`] (best chain; `limit` ≤ 1000, default 100)
//! - `GET /blocks/{hash}` → [`crate::BlockView`] or 404; a unique prefix of at least 8 hex
//!   digits also finds it (409 if several blocks share it)
//! - `GET /tips` → [`crate::api::Tips`]: the tips of the block tree, like `getchaintips`
//! - `GET /items/{id}` → [`crate::api::ItemStatus`]: pending, or in which best-chain block
//! - `POST /blocks` (body = the data, UTF-8) → `{"id": "<item id>"}`
//! - `GET /metrics` → Prometheus text
//! - `GET /accepted` → [`crate::Accepted`] list: recent accepted blocks with wall-clock times
//! - `PUT /mining` (body = `off`, `own-items`, `all-items` or `always`) → `{"mining": ..,
//!   "was": ..}`: when this node mines from now on
//!
//! Every connection is bounded ([`HttpLimits`]): at most `max_connections` are served at once
//! (more wait, unaccepted, in the kernel's queue: they cost this process no file descriptor, so
//! the API can never starve the peer listener); a request's header must arrive within
//! `header_read_timeout` (the next one's too, on a kept-alive connection); a request, its body
//! included, is answered within `request_timeout` (408 otherwise); and a connection is closed
//! at the latest `max_connection_age` plus `request_timeout` after it was accepted, even if its
//! client stopped reading.

use crate::api::{NodeClient, MAX_BLOCKS_PER_PAGE, MAX_PREFIX_MATCHES, MIN_HASH_PREFIX};
use crate::listener::Acceptor;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rantai_core::{BlockHash, ItemId, MinePolicy, SubmitError};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Largest `POST /blocks` body accepted (the block data limit is 1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most API connections served at once.
pub const MAX_API_CONNECTIONS: usize = 64;
/// Time for a request's header to arrive, from the connection's start or the previous answer.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time from a request's header to its answer, reading a (1 MiB) body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Age at which a connection is asked to close (after the request in progress, if any).
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(60);

/// The API's resource limits; [`HttpLimits::default`] holds the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connection_age: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: MAX_API_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_connection_age: MAX_CONNECTION_AGE,
        }
    }
}

/// The API's routes, bound to one node.
pub fn router(client: NodeClient) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/blocks", get(blocks).post(submit))
        .route("/blocks/{hash}", get(block))
        .route("/tips", get(tips))
        .route("/items/{id}", get(item))
        .route("/metrics", get(metrics))
        .route("/mining", put(mining))
        .route("/accepted", get(accepted))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(client)
}

/// Serves the API on `listener` within `limits` until `shutdown` completes; then open
/// connections finish their request in progress (for at most `request_timeout`) and close.
pub async fn serve(
    listener: TcpListener,
    client: NodeClient,
    limits: HttpLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let app = router(client).layer(middleware::from_fn_with_state(
        limits.request_timeout,
        answer_within,
    ));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(());
    let mut acceptor = Acceptor::new(listener, "HTTP");
    tokio::pin!(shutdown);
    loop {
        // The permit is taken before accepting: at the limit, newcomers wait in the kernel.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            conn = acceptor.accept() => conn,
            _ = &mut shutdown => break,
        };
        tokio::spawn(serve_connection(
            stream,
            app.clone(),
            limits,
            stop_rx.clone(),
            permit,
        ));
    }
    drop(stop_tx);
    // Every connection task holds a permit until it ends: all back means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// One connection, from accept to close; `_permit` frees its slot when this returns.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let deadline = tokio::time::sleep(limits.max_connection_age);
    tokio::pin!(deadline);
    let mut closing = false;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!("HTTP connection ended: {e}");
                }
                return;
            }
            _ = &mut deadline => {
                if closing {
                    // The request in progress did not finish in time (its client may have
                    // stopped reading): dropping the connection closes the socket.
                    return;
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
                deadline.as_mut().reset(tokio::time::Instant::now() + limits.request_timeout);
            }
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
                deadline.as_mut().reset(tokio::time::Instant::now() + limits.request_timeout);
            }
        }
    }
}

/// Answers 408 for a request (body included) not answered within the limit.
async fn answer_within(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            format!("request not complete within {} ms", limit.as_millis()),
        ),
    }
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

/// A full hash, or a unique prefix of at least [`MIN_HASH_PREFIX`] hex digits.
async fn block(State(c): State<NodeClient>, Path(hash): Path<String>) -> Response {
    let hex = hash.len() <= 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex || hash.len() < MIN_HASH_PREFIX {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "expected a block hash: 64 hex digits, or a unique prefix of at least \
                 {MIN_HASH_PREFIX}"
            ),
        );
    }
    let hash = match BlockHash::from_hex(&hash) {
        Ok(h) => h,
        Err(_) => match c.blocks_with_prefix(hash.clone(), MAX_PREFIX_MATCHES).await {
            Ok(found) => match resolve_prefix(&hash, &found) {
                Ok(h) => h,
                Err((code, body)) => return (code, Json(body)).into_response(),
            },
            Err(_) => return stopped(),
        },
    };
    match c.block(hash).await {
        Ok(Some(b)) => Json(b).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "unknown block"),
        Err(_) => stopped(),
    }
}

/// The one block a hash prefix names; else the error answer: 404 if none, 409 naming the
/// candidates if several (`found` holds at most [`MAX_PREFIX_MATCHES`]).
fn resolve_prefix(
    prefix: &str,
    found: &[BlockHash],
) -> Result<BlockHash, (StatusCode, serde_json::Value)> {
    match found {
        [h] => Ok(*h),
        [] => Err((StatusCode::NOT_FOUND, json!({ "error": "unknown block" }))),
        _ => {
            let more = if found.len() >= MAX_PREFIX_MATCHES {
                " or more"
            } else {
                ""
            };
            let matches: Vec<String> = found.iter().map(|h| h.to_string()).collect();
            let body = json!({
                "error": format!(
                    "ambiguous hash prefix {prefix}: {}{more} blocks start with it",
                    found.len()
                ),
                "matches": matches,
            });
            Err((StatusCode::CONFLICT, body))
        }
    }
}

async fn tips(State(c): State<NodeClient>) -> Response {
    match c.tips().await {
        Ok(t) => Json(t).into_response(),
        Err(_) => stopped(),
    }
}

async fn item(State(c): State<NodeClient>, Path(id): Path<String>) -> Response {
    let Ok(id) = ItemId::from_hex(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected an item id of 64 hex digits",
        );
    };
    match c.item(id).await {
        Ok(Some(s)) => Json(s).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "unknown item"),
        Err(_) => stopped(),
    }
}

async fn submit(State(c): State<NodeClient>, body: axum::body::Bytes) -> Response {
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return error(StatusCode::BAD_REQUEST, "data must be UTF-8");
    };
    match c.submit(text).await {
        Ok(Ok(id)) => (StatusCode::ACCEPTED, Json(json!({ "id": id.to_string() }))).into_response(),
        Ok(Err(e @ SubmitError::TooLarge { .. })) => error(StatusCode::PAYLOAD_TOO_LARGE, e),
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

async fn mining(State(c): State<NodeClient>, body: axum::body::Bytes) -> Response {
    let Some(policy) = std::str::from_utf8(&body)
        .ok()
        .and_then(|t| t.trim().parse::<MinePolicy>().ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a mining policy: off, own-items, all-items or always",
        );
    };
    match c.set_mine_policy(policy).await {
        Ok(was) => Json(json!({ "mining": policy.as_str(), "was": was.as_str() })).into_response(),
        Err(_) => stopped(),
    }
}

async fn accepted(State(c): State<NodeClient>) -> Response {
    match c.accepted().await {
        Ok(list) => Json(list).into_response(),
        Err(_) => stopped(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rantai_core::Hash32;

    /// Two blocks sharing a prefix of 8 hex digits cost 2^32 hashes to make, so the answer to
    /// an ambiguous prefix is checked here, on made-up hashes.
    #[test]
    fn an_ambiguous_prefix_is_a_conflict_naming_the_candidates() {
        let a = Hash32([0xab; 32]);
        let mut b = a;
        b.0[31] = 0;
        assert_eq!(resolve_prefix("abababab", &[a]).ok(), Some(a));
        let none = resolve_prefix("abababab", &[]).map_err(|e| e.0);
        assert_eq!(none, Err(StatusCode::NOT_FOUND));
        let Err((code, v)) = resolve_prefix("abababab", &[a, b]) else {
            panic!("two matches are an error")
        };
        assert_eq!(code, StatusCode::CONFLICT);
        assert_eq!(
            v["error"],
            "ambiguous hash prefix abababab: 2 blocks start with it"
        );
        assert_eq!(v["matches"], json!([a.to_string(), b.to_string()]));
        let many = vec![a; MAX_PREFIX_MATCHES];
        let Err((_, v)) = resolve_prefix("abababab", &many) else {
            panic!("many matches are an error")
        };
        assert!(v["error"].as_str().is_some_and(|e| e.contains("8 or more")));
    }
}
