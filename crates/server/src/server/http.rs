//! The OCSP HTTP endpoint (RFC 6960 Appendix A, RFC 5019/RFC 9919 §5–6): turns an HTTP
//! request into bytes for [`ocsp_edge_core::responder::answer`] and its outcome into an HTTP
//! response with caching headers a CDN can trust.
//!
//! Thin by design: no protocol decisions here beyond HTTP itself. OCSP-level refusals are
//! HTTP 200 with an OCSP error body (what RFC 6960 clients parse); only HTTP-level
//! mistakes (wrong method, a path that is neither a document nor an OCSP request) get 4xx.
//!
//! It also decides who answers a GET ([`InPath`]): a path holding an OCSP request is the
//! responder's alone and must never be answered by a snapshot document.

use super::metrics::{HttpMetrics, Method, Outcome};
use super::reply::{content_length, method_not_allowed, not_found, read_post, refused, Answer};
use super::Responder;
use crate::config::Config;
use crate::served::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use ocsp_edge_core::ocsp::{from_get_path, ocsp_remainder, InPath, Refusal};
use ocsp_edge_core::responder::{self, max_age};
use ocsp_edge_core::snapshot::{Found, StoredStatus};
use ocsp_edge_core::time::UnixTime;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

pub async fn handle(
    responder: Arc<Responder>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let method = Method::of(request.method());
    let (state, metrics) = (&*responder.state, &responder.metrics);
    let (mut response, outcome) = match state.cache() {
        Some(tier) => super::cache_mode::route(state, metrics, tier, request).await,
        None => route(state, metrics, request).await,
    };
    if state.is_draining() {
        // Keep-alive clients reconnect, and so reach the process taking over.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    // Full bodies always know their length.
    let body_bytes = response.body().size_hint().exact().unwrap_or(0);
    let seconds = started.elapsed().as_secs_f64();
    metrics.observe(method, outcome, seconds, body_bytes);
    Ok(response)
}

async fn route(
    state: &State,
    metrics: &HttpMetrics,
    request: Request<Incoming>,
) -> (Response<Full<Bytes>>, Outcome) {
    let (parts, body) = request.into_parts();
    // One consistent configuration and snapshot for the whole request, loaded once.
    let config = state.request_config();
    let guard = state.current();
    let head_only = parts.method == hyper::Method::HEAD;
    let is_get = head_only || parts.method == hyper::Method::GET;
    let rest = ocsp_remainder(parts.uri.path(), &config.ocsp.path);
    let now = UnixTime::now();
    let snapshot = guard.as_deref();
    let answer = if is_get {
        let in_path = rest.map(|rest| answer_get(&config, snapshot, rest, now));
        let document = || serve_document(metrics, &config, guard.as_ref(), &parts, head_only, now);
        match who_answers_get(in_path, document) {
            GetAnswer::Responder(answer) => answer,
            GetAnswer::Document(response) => return response,
            GetAnswer::NotFound => return (not_found(), Outcome::HttpError),
        }
    } else {
        if rest.is_none() {
            return (not_found(), Outcome::HttpError);
        }
        match parts.method {
            hyper::Method::POST => read_post(&config, body, content_length(&parts.headers))
                .await
                .and_then(|der| responder::answer(snapshot, &der, now, config.ocsp.nonce)),
            _ => return (method_not_allowed(), Outcome::HttpError),
        }
    };
    match answer {
        // RFC 9110 §13.1.2: a 304 answers only GET and HEAD; other methods ignore If-None-Match.
        Ok(found) => {
            let if_none_match = parts.headers.get(header::IF_NONE_MATCH).filter(|_| is_get);
            let mut answered = success(metrics, &config, &found, now, if_none_match, head_only);
            if parts.headers.contains_key(crate::cache::tier::SEQUENCE_HEADER) {
                insert_sequence(&mut answered.0, snapshot);
            }
            answered
        }
        Err(refusal) => (refused(refusal, head_only), Outcome::Refused(refusal)),
    }
}

/// Who answers a GET, given what its path holds below the OCSP prefix (`None`: it is
/// not below it) and the document at the path, which is looked for only when needed.
#[derive(Debug, PartialEq, Eq)]
enum GetAnswer<T, D> {
    Responder(Result<T, Refusal>),
    Document(D),
    NotFound,
}

/// The responder first: a path that holds an OCSP request is answered by it and never by
/// a document, whatever a snapshot put at that path (see [`InPath`]).
fn who_answers_get<T, D>(
    in_path: Option<InPath<T>>,
    document: impl FnOnce() -> Option<D>,
) -> GetAnswer<T, D> {
    if let Some(InPath::Request(answer)) = in_path {
        return GetAnswer::Responder(answer);
    }
    if let Some(document) = document() {
        return GetAnswer::Document(document);
    }
    match in_path {
        Some(InPath::NotARequest(refusal)) => GetAnswer::Responder(Err(refusal)),
        _ => GetAnswer::NotFound,
    }
}

/// A CRL or other snapshot document at this path, if there is one.
fn serve_document(
    metrics: &HttpMetrics,
    config: &Config,
    snapshot: Option<&Arc<ocsp_edge_core::snapshot::Snapshot>>,
    parts: &hyper::http::request::Parts,
    head_only: bool,
    now: UnixTime,
) -> Option<(Response<Full<Bytes>>, Outcome)> {
    let snapshot = snapshot?;
    let (document, bytes) = snapshot.document(parts.uri.path())?;
    let start = usize::try_from(document.offset).ok()?;
    let place = start..start.checked_add(bytes.len())?;
    let cap = config.crl.cache_max_age.as_secs();
    let answer = super::documents::respond(snapshot, document, place, &parts.headers, head_only, now, cap);
    if let Some(sent) = answer.0.body().size_hint().exact() {
        metrics.count_document_bytes(&document.path, sent);
    }
    Some(answer)
}

/// Answers a GET. Clients append the request to whatever path their AIA URL has (Java
/// GETs `/ocsp/<base64>`), so when the whole remainder is not a request, the text after
/// each of its first few '/' is tried too. Only malformed attempts fall through, and the
/// extra work happens only for requests that would otherwise fail.
fn answer_get<'a>(
    config: &Config,
    snapshot: Option<&'a ocsp_edge_core::snapshot::Snapshot>,
    rest: &str,
    now: UnixTime,
) -> InPath<Found<'a>> {
    let nonce = config.ocsp.nonce;
    from_get_path(rest, config.server.max_request_bytes, |der| {
        responder::answer(snapshot, der, now, nonce)
    })
}

fn success(
    metrics: &HttpMetrics,
    config: &Config,
    found: &Found<'_>,
    now: UnixTime,
    if_none_match: Option<&HeaderValue>,
    head_only: bool,
) -> (Response<Full<Bytes>>, Outcome) {
    let answer = Answer {
        issuer: found.issuer,
        revoked: matches!(found.status, StoredStatus::Revoked { .. }),
        etag: found.etag(),
        len: found.response_len(),
        this_update: found.this_update,
        next_update: found.next_update,
        max_age: max_age(found, now, config.ocsp.cache_max_age.as_secs()),
    };
    answer.respond(metrics, if_none_match, head_only, || {
        Bytes::from(found.response())
    })
}

/// `OCSP-Edge-Sequence: N` on a successful answer: the sequence of the snapshot it came
/// from, so a cache tier in front knows whether it may keep it (see
/// [`crate::cache::entry::admit`]). Taken from the very snapshot that answered, never the
/// one served a moment later.
fn insert_sequence(
    response: &mut Response<Full<Bytes>>,
    snapshot: Option<&ocsp_edge_core::snapshot::Snapshot>,
) {
    if let Some(snapshot) = snapshot {
        response.headers_mut().insert(
            crate::cache::tier::SEQUENCE_HEADER,
            HeaderValue::from(snapshot.sequence()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding 2(b) at the routing level (the verifier now refuses such snapshots, so no
    /// running responder can hold one): a document at a path that holds an OCSP request
    /// is neither served nor even looked up.
    #[test]
    fn a_document_never_answers_at_an_ocsp_request_path() {
        use base64::Engine;
        let request = ocsp_edge_core::der::element(ocsp_edge_core::der::SEQUENCE, &[&[0x02, 0x01, 0x07]]);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&request);
        for refusal in [
            None,
            Some(Refusal::Malformed("two requests")),
            Some(Refusal::UnknownIssuer),
        ] {
            let answer = || refusal.map_or(Ok("signed answer"), Err);
            let in_path = from_get_path(&encoded, 1024, |_| answer());
            let looked_up = std::cell::Cell::new(false);
            let document = || {
                looked_up.set(true);
                Some("planted document")
            };
            assert_eq!(
                who_answers_get(Some(in_path), document),
                GetAnswer::Responder(answer())
            );
            assert!(!looked_up.get(), "{refusal:?}: the document was looked up");
        }
        // Elsewhere the document is served, and only without one do refusals and 404s come.
        let cases: [(Option<InPath<()>>, _); 3] = [
            (Some(InPath::NotBase64), GetAnswer::NotFound),
            (None, GetAnswer::NotFound),
            (
                Some(InPath::NotARequest(Refusal::TooLarge)),
                GetAnswer::Responder(Err(Refusal::TooLarge)),
            ),
        ];
        for (in_path, without_document) in cases {
            let with = who_answers_get(in_path.clone(), || Some("crl"));
            assert_eq!(with, GetAnswer::Document("crl"), "{in_path:?}");
            assert_eq!(who_answers_get(in_path, || None::<&str>), without_document);
        }
    }
}
