//! The API's accept loop. `axum::serve` has no header timeout, no cap on
//! connections and retries a failed accept silently: 2,000 slowloris
//! connections were held for minutes, and with descriptors exhausted both
//! devnet APIs stopped answering without a word. Here every connection must
//! send a request's headers within `header_timeout` (idle keep-alive
//! connections included), each request must finish within `request_timeout`,
//! at most `max_connections` are open at once (more are closed on accept), and
//! running out of descriptors is logged once while open connections go on.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits of the HTTP server; `config::ApiConfig` fills them.
#[derive(Clone, Copy, Debug)]
pub struct ApiLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A request (its body included) that takes longer than this is answered 408.
fn with_request_timeout(app: Router, limit: Duration) -> Router {
    app.layer(middleware::from_fn(
        move |req: Request, next: Next| async move {
            match tokio::time::timeout(limit, next.run(req)).await {
                Ok(response) => response,
                Err(_) => (
                    StatusCode::REQUEST_TIMEOUT,
                    axum::Json(
                        json!({ "error": format!("request not completed within {limit:?}") }),
                    ),
                )
                    .into_response(),
            }
        },
    ))
}

/// Logs the first of a run of events, and the end of the run.
#[derive(Default)]
struct Episode(bool);

impl Episode {
    fn start(&mut self) -> bool {
        !std::mem::replace(&mut self.0, true)
    }

    fn end(&mut self) -> bool {
        std::mem::replace(&mut self.0, false)
    }
}

pub async fn run(listener: TcpListener, app: Router, limits: ApiLimits) {
    let app = with_request_timeout(app, limits.request_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut out_of_descriptors = Episode::default();
    let mut full = Episode::default();
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE/ENFILE and the like: the open connections go on; new
                // ones wait in the kernel's backlog until descriptors free up.
                if out_of_descriptors.start() {
                    tracing::error!(
                        "API cannot accept connections ({e}); serving the open ones, retrying \
                         (raise the descriptor limit, e.g. LimitNOFILE, or lower api.max_connections)"
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if out_of_descriptors.end() {
            tracing::info!("API accepts connections again");
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if full.start() {
                tracing::warn!(
                    "API at its {} connections (api.max_connections): closing new ones until some end",
                    limits.max_connections
                );
            }
            drop(stream);
            continue;
        };
        if full.end() {
            tracing::info!("API below its connection limit again");
        }
        // Handlers see the client's address (the inbox keeps uploads per source).
        let router = TowerToHyperService::new(app.clone());
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(client));
            hyper::service::Service::call(&router, req)
        });
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            // Errors here are the client's (reset, timed out): nothing to report.
            let _ = conn.await;
        });
    }
}
