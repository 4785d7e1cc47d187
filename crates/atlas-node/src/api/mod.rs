//! HTTP surfaces of a node: the REST API and Prometheus metrics.

pub mod client;
mod server;

pub use server::ApiLimits;

use std::net::SocketAddr;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::net::{NodeHandle, PutError, PutOutcome};
use crate::whitelist::Announcer;
use atlas_core::zonefile::{Hash160, MAX_ZONEFILE_BYTES};

#[derive(Clone)]
pub struct ApiState {
    pub node: NodeHandle,
    /// Present on devnet nodes: lets clients announce hashes.
    pub devnet: Option<std::sync::Arc<dyn Announcer>>,
}

pub fn router(state: ApiState) -> Router {
    let mut r = Router::new()
        .route("/v1/zonefiles/{hash}", get(get_zonefile))
        .route("/v1/zonefiles", post(post_zonefile))
        .route("/v1/status", get(status))
        .route("/v1/peers", get(peers))
        .route("/metrics", get(metrics_text));
    if state.devnet.is_some() {
        r = r.route(
            "/v1/devnet/announce",
            post(devnet_announce).layer(DefaultBodyLimit::max(16 << 20)),
        );
    }
    // Let bodies a little over the limit through, so we can answer 413 ourselves.
    r.layer(DefaultBodyLimit::max(MAX_ZONEFILE_BYTES * 2))
        .with_state(state)
}

/// Binds first (so a taken port is an error now), then serves in the background.
pub async fn serve(
    listen: SocketAddr,
    state: ApiState,
    limits: ApiLimits,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(server::run(listener, router(state), limits));
    Ok((addr, task))
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": message.to_string() }))).into_response()
}

async fn get_zonefile(State(s): State<ApiState>, Path(hash): Path<String>) -> Response {
    let hash: Hash160 = match hash.parse() {
        Ok(h) => h,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match s.node.store.get_zonefile(&hash) {
        Ok(Some(bytes)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("zone file {hash} is not held here"),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store could not be read: {e}"),
        ),
    }
}

/// The inbox's name for an API client: its IPv4 address, or its IPv6 /64
/// (one host commonly holds a whole /64).
fn client_source(client: Option<SocketAddr>) -> String {
    match client.map(|a| a.ip()) {
        Some(std::net::IpAddr::V4(v4)) => format!("ip:{v4}"),
        Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "api".into(),
    }
}

async fn post_zonefile(
    State(s): State<ApiState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        // Past the body limit axum stops reading; answer in JSON like the rest.
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("zone file is over the {MAX_ZONEFILE_BYTES}-byte limit"),
            );
        }
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    if body.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "empty body: send the zone file's raw bytes",
        );
    }
    if body.len() > MAX_ZONEFILE_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "zone file is {} bytes; the limit is {MAX_ZONEFILE_BYTES}",
                body.len()
            ),
        );
    }
    let source = client_source(client.map(|c| c.0.0));
    match s.node.put_zonefile_from(body, &source).await {
        Ok(PutOutcome::Stored { hash, new }) => {
            let code = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (
                code,
                axum::Json(json!({ "hash": hash, "status": "stored" })),
            )
                .into_response()
        }
        Ok(PutOutcome::Pending { hash }) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "hash": hash, "status": "pending" })),
        )
            .into_response(),
        Err(e @ PutError::NoSpace(_)) => error(StatusCode::INSUFFICIENT_STORAGE, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn status(State(s): State<ApiState>) -> Response {
    axum::Json(s.node.status.borrow().clone()).into_response()
}

async fn peers(State(s): State<ApiState>) -> Response {
    match s.node.peers().await {
        Ok(p) => axum::Json(p).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn metrics_text(State(s): State<ApiState>) -> Response {
    let mut out = String::new();
    let encoded = {
        let registry = s.node.registry.lock().expect("registry lock");
        prometheus_client::encoding::text::encode(&mut out, &registry)
    };
    match encoded {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
struct Announce {
    hashes: Vec<Hash160>,
}

async fn devnet_announce(State(s): State<ApiState>, body: Bytes) -> Response {
    let Some(wl) = s.devnet else {
        return error(StatusCode::NOT_FOUND, "not a devnet node");
    };
    let req: Announce = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"hashes\":[\"<40 hex>\",...]}}: {e}"),
            );
        }
    };
    // Mining is CPU work under the chain's lock: off the async workers, so
    // the API and the nodes keep answering meanwhile.
    match tokio::task::spawn_blocking(move || wl.announce(&req.hashes)).await {
        Ok(length) => axum::Json(json!({ "length": length })).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("announcing failed: {e}"),
        ),
    }
}
