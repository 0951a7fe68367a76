//! `ceiling`: the machine's ceiling for an HTTP/1.1 responder on hyper.
//!
//! Same settings as ocsp-edge's server (multi-thread tokio runtime, hyper 1 http1 with a
//! timer and a header-read timeout, keep-alive, TCP_NODELAY, the request body read in full)
//! but no work per request: every request gets the same 300-byte body with
//! `Content-Type: application/ocsp-response`. What ocsp-edge reaches relative to this is
//! the cost of its own work (decode, lookup, headers, metrics).
//!
//! ```text
//! ceiling [--listen 127.0.0.1:8090] [--body-bytes 300] [--caching-headers]
//! ```

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

const BODY_LEN: usize = 300;

#[derive(Parser)]
#[command(
    name = "ceiling",
    about = "Fixed-response hyper server: the HTTP ceiling of this machine"
)]
struct Cli {
    /// Listen address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Body size (300 = the reference ceiling; ~830 = the size of a pre-signed P-256
    /// response with its delegated signer's certificate).
    #[arg(long, default_value_t = BODY_LEN)]
    body_bytes: usize,
    /// Also send fixed ETag, Cache-Control, Last-Modified and Expires headers shaped like
    /// ocsp-edge's (to separate the cost of response size from the cost of work).
    #[arg(long)]
    caching_headers: bool,
}

/// A fixed body that looks like the start of a successful OCSPResponse (so a DER-aware
/// client would at least recognise its header), padded to 300 bytes.
fn body(len: usize) -> Bytes {
    let len = len.max(7);
    let mut body = vec![0u8; len];
    let content_len = (len - 4).min(0xffff);
    body[..7].copy_from_slice(&[
        0x30,
        0x82,
        (content_len >> 8) as u8,
        content_len as u8,
        0x0a,
        0x01,
        0x00,
    ]);
    Bytes::from(body)
}

async fn handle(
    request: Request<Incoming>,
    body: Bytes,
    caching_headers: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read and discard the body, as a real responder must.
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/ocsp-response"),
    );
    if caching_headers {
        use hyper::header::{CACHE_CONTROL, ETAG, EXPIRES, LAST_MODIFIED};
        headers.insert(
            ETAG,
            HeaderValue::from_static("\"5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592\""),
        );
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("max-age=3600, public, no-transform, must-revalidate"),
        );
        headers.insert(
            LAST_MODIFIED,
            HeaderValue::from_static("Thu, 26 Nov 2026 06:00:00 GMT"),
        );
        headers.insert(EXPIRES, HeaderValue::from_static("Mon, 30 Nov 2026 06:00:00 GMT"));
    }
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    if !cli.listen.ip().is_loopback() {
        return Err(std::io::Error::other(
            "ceiling listens on loopback addresses only",
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cli.listen).await?;
        println!("ceiling listening on {}", listener.local_addr()?);
        let body = body(cli.body_bytes);
        let caching_headers = cli.caching_headers;
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            let service = service_fn(move |request| handle(request, body.clone(), caching_headers));
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
