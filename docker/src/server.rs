//! HTTP/1.1 on the plugin's unix socket: every call is a POST of JSON to a fixed path. The
//! engine is synchronous (plain netlink sockets, `setns` per thread), so each call runs on the
//! blocking pool, one at a time: a setup takes about a millisecond and dockerd rarely sends two
//! at once.
//!
//! Whoever can reach the socket gets only so much: at most [`MAX_CONNECTIONS`] connections are
//! served at once (the others wait in the socket's listen queue), one request each, whose head
//! and then body must each arrive within [`READ_LIMIT`], the body at most [`MAX_BODY`] bytes.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixListener;
use tokio::sync::Semaphore;

use crate::plugin::Plugin;

/// Docker's requests are a few hundred bytes, but a published port range is one binding per
/// port (about 80 bytes each): 1 MiB takes a range of about 13000 ports.
const MAX_BODY: usize = 1 << 20;
/// Connections served at once; the others wait in the listen queue until one ends. The engine
/// serves one call at a time anyway, and dockerd has a few calls under way at most (one per
/// container it starts or stops at that moment), so queuing the rest costs them little. It
/// bounds what requests being read can hold: 8 bodies of `MAX_BODY` are 8 MiB.
const MAX_CONNECTIONS: usize = 8;
/// How long a request's head, and then its body, may take to arrive. dockerd writes a request
/// at once over a local socket (microseconds); on a loaded host a few seconds are still
/// plenty, and a client that dribbles gives its place up after this.
const READ_LIMIT: Duration = Duration::from_secs(5);
/// hyper's read buffer per connection (400 KiB by default): a request's head is far smaller,
/// and the body is copied out of it as it comes.
const READ_BUFFER: usize = 64 * 1024;
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
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // A free slot before the next accept: connections beyond the bound wait in the queue.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            // Never closed: nothing left to serve with.
            return Ok(());
        };
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
            // A peer that goes away mid-request, or too slowly, is its own business.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_LIMIT)
                .max_buf_size(READ_BUFFER)
                // One request per connection: an idle connection kept for the next would hold
                // a slot (dockerd dials again for each call, a few microseconds).
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            open.fetch_sub(1, Ordering::SeqCst);
            drop(slot);
        });
    }
}

async fn answer(
    plugin: Arc<Mutex<Plugin>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = match tokio::time::timeout(READ_LIMIT, read_body(req.into_body())).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => return Ok(refuse(StatusCode::BAD_REQUEST, &e)),
        Err(_) => {
            let e = format!("the request's body did not arrive within {READ_LIMIT:?}");
            return Ok(refuse(StatusCode::REQUEST_TIMEOUT, &e));
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

/// The whole body, at most `MAX_BODY` bytes, in one buffer sized from its announced length.
async fn read_body(body: Incoming) -> Result<Vec<u8>, String> {
    let announced = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(announced.min(MAX_BODY));
    let mut body = Limited::new(body, MAX_BODY);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("cannot read the request: {e}"))?;
        if let Ok(data) = frame.into_data() {
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

fn refuse(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    reply(status, &serde_json::json!({ "Err": reason }))
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
