//! HTTP/1.1 on the plugin's unix socket: every call is a POST of JSON to a fixed path. The
//! engine is synchronous (plain netlink sockets, `setns` per thread), so each call runs on the
//! blocking pool, one at a time: a setup takes about a millisecond and dockerd rarely sends two
//! at once.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use crate::plugin::Plugin;

/// Docker's requests are a few hundred bytes; anything far larger is refused.
const MAX_BODY: usize = 1 << 20;
/// What Docker's plugin client accepts.
const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// Serves `listener` until the future is dropped, or, with `idle`, until no connection has
/// come or been open for that long (socket activation: systemd keeps the socket and starts the
/// plugin again at the next connection).
pub async fn serve(
    listener: UnixListener,
    plugin: Arc<Mutex<Plugin>>,
    idle: Option<Duration>,
) -> std::io::Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = match idle {
            None => listener.accept().await?,
            Some(idle) => match tokio::time::timeout(idle, listener.accept()).await {
                Ok(accepted) => accepted?,
                Err(_) if open.load(Ordering::SeqCst) == 0 => return Ok(()),
                Err(_) => continue,
            },
        };
        let (stream, _) = accepted;
        let plugin = plugin.clone();
        let open = open.clone();
        open.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(plugin.clone(), req));
            // A peer that goes away mid-request is its own business.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn answer(
    plugin: Arc<Mutex<Plugin>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let err = serde_json::json!({ "Err": format!("cannot read the request: {e}") });
            return Ok(reply(StatusCode::BAD_REQUEST, &err));
        }
    };
    let call = path.clone();
    let handled = tokio::task::spawn_blocking(move || {
        // A handler that panicked left nothing half-written in memory: the state is on disk.
        let plugin = plugin.lock().unwrap_or_else(|p| p.into_inner());
        plugin.handle(&call, &body)
    })
    .await;
    let (ok, value) = match handled {
        Ok(answer) => answer,
        Err(e) => (
            false,
            serde_json::json!({ "Err": format!("{path} failed: {e}") }),
        ),
    };
    if !ok {
        ocinet::stderr_line!(
            "ocinet-docker: {path}: {}",
            value["Err"].as_str().unwrap_or_default()
        );
    }
    let status = match ok {
        true => StatusCode::OK,
        false => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Ok(reply(status, &value))
}

fn reply(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}
