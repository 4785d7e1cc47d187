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

/// A run of trouble (descriptors exhausted, connections at the cap), logged
/// once when it starts and once when it is over. It is over only after
/// `QUIET` without trouble, so a condition that flickers (a descriptor freed
/// for one accept, then gone again) stays one episode, not a line per flicker.
#[derive(Default)]
struct Episode {
    last_trouble: Option<tokio::time::Instant>,
}

const QUIET: Duration = Duration::from_secs(5);

impl Episode {
    /// Trouble now; true if this starts an episode.
    fn trouble(&mut self) -> bool {
        self.last_trouble
            .replace(tokio::time::Instant::now())
            .is_none()
    }

    /// No trouble now; true if this ends an episode.
    fn fine(&mut self) -> bool {
        let over = self.last_trouble.is_some_and(|t| t.elapsed() >= QUIET);
        if over {
            self.last_trouble = None;
        }
        over
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
                if out_of_descriptors.trouble() {
                    tracing::error!(
                        "API cannot accept connections ({e}); serving the open ones, retrying \
                         (raise the descriptor limit, e.g. LimitNOFILE, or lower api.max_connections)"
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if out_of_descriptors.fine() {
            tracing::info!("API accepts connections again");
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if full.trouble() {
                tracing::warn!(
                    "API at its {} connections (api.max_connections): closing new ones until some end",
                    limits.max_connections
                );
            }
            drop(stream);
            continue;
        };
        if full.fine() {
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
