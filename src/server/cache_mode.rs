//! The OCSP endpoint of a cache-mode responder: the same HTTP surface as snapshot mode
//! (POST, GET below the OCSP path, HEAD, conditional GET, RFC 5019 caching headers), with
//! answers from [`crate::cache::CacheTier`] instead of a snapshot.
//!
//! Thin like [`super::http`], whose helpers it reuses: it decodes the request and applies
//! the nonce policy here (so a malformed or refused request never reaches a hub), and
//! turns the tier's outcome into a response. It must never serve bytes the tier did not
//! hand it, and never answer for documents (CRLs): a cache holds OCSP responses only.

use super::http::{self, caching_headers, etag_matches, plain};
use super::metrics::Outcome;
use super::state::State;
use crate::cache::{CacheTier, Entry};
use crate::config::Config;
use crate::ocsp::{decode_request, OcspRequest, Refusal};
use crate::responder::NoncePolicy;
use crate::time::UnixTime;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

const OCSP_RESPONSE: HeaderValue = HeaderValue::from_static("application/ocsp-response");

pub async fn route(
    state: &State,
    tier: &Arc<CacheTier>,
    request: Request<Incoming>,
) -> (Response<Full<Bytes>>, Outcome) {
    let (parts, body) = request.into_parts();
    let config = state.config();
    let head_only = parts.method == hyper::Method::HEAD;
    let is_get = head_only || parts.method == hyper::Method::GET;
    let Some(rest) = http::ocsp_remainder(parts.uri.path(), &config.ocsp.path) else {
        return (plain(StatusCode::NOT_FOUND, "not found\n"), Outcome::HttpError);
    };
    let decoded = match parts.method {
        hyper::Method::GET | hyper::Method::HEAD => request_in_path(rest, config.server.max_request_bytes),
        hyper::Method::POST => http::read_post(&config, body, http::content_length(&parts.headers))
            .await
            .and_then(|der| decode_request(&der)),
        _ => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
            return (response, Outcome::HttpError);
        }
    };
    let now = UnixTime::now();
    let timeout = config
        .cache
        .as_ref()
        .map_or(Duration::from_secs(2), |cache| cache.request_timeout);
    let answer = match decoded {
        Ok(request) if request.has_nonce && config.ocsp.nonce == NoncePolicy::Refuse => {
            Err(Refusal::NonceRefused)
        }
        Ok(request) => tier.answer(&request.cert_id, timeout, now).await,
        Err(refusal) => Err(refusal),
    };
    match answer {
        Ok(entry) => {
            // RFC 9110 §13.1.2: a 304 answers only GET and HEAD.
            let if_none_match = parts.headers.get(header::IF_NONE_MATCH).filter(|_| is_get);
            success(state, &config, &entry, now, if_none_match, head_only)
        }
        Err(refusal) => (http::refused(refusal, head_only), Outcome::Refused(refusal)),
    }
}

/// The request in a GET path: the whole remainder, else the text after one of its first
/// few '/' (clients append the request to whatever path their AIA URL has), as in
/// snapshot mode.
fn request_in_path(rest: &str, limit: usize) -> Result<OcspRequest, Refusal> {
    let whole = http::decode_get(rest, limit).and_then(|der| decode_request(&der));
    if !matches!(whole, Err(Refusal::Malformed(_))) {
        return whole;
    }
    rest.match_indices('/')
        .take(4)
        .filter_map(|(at, _)| http::decode_get(&rest[at + 1..], limit).ok())
        .map(|der| decode_request(&der))
        .find(|decoded| !matches!(decoded, Err(Refusal::Malformed(_))))
        .unwrap_or(whole)
}

fn success(
    state: &State,
    config: &Config,
    entry: &Entry,
    now: UnixTime,
    if_none_match: Option<&HeaderValue>,
    head_only: bool,
) -> (Response<Full<Bytes>>, Outcome) {
    let etag = http::quoted_hex(&entry.etag);
    let not_modified = if_none_match.is_some_and(|v| etag_matches(v.as_bytes(), &etag));
    state.metrics.count_answer(&entry.issuer, entry.revoked());
    let (status, body, outcome) = if not_modified {
        (StatusCode::NOT_MODIFIED, Bytes::new(), Outcome::NotModified)
    } else if head_only {
        (StatusCode::OK, Bytes::new(), outcome_of(entry))
    } else {
        // A reference-counted handle on the cached bytes: no copy per hit.
        (StatusCode::OK, entry.response.clone(), outcome_of(entry))
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, OCSP_RESPONSE);
    if head_only && !not_modified {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.response.len()));
    }
    if let Ok(value) = HeaderValue::from_bytes(&etag) {
        headers.insert(header::ETAG, value);
    }
    let max_age = entry.max_age(now, config.ocsp.cache_max_age.as_secs());
    caching_headers::insert(headers, entry.this_update, entry.next_update, max_age);
    (response, outcome)
}

fn outcome_of(entry: &Entry) -> Outcome {
    if entry.revoked() {
        Outcome::Revoked
    } else {
        Outcome::Good
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsp::request::{encode_request, RequestedCertId};
    use crate::pki::cert::CertIdHash;

    #[test]
    fn get_requests_are_found_below_a_path_prefix() {
        let id = RequestedCertId {
            hash: CertIdHash::Sha1,
            issuer_name_hash: vec![1; 20],
            issuer_key_hash: vec![2; 20],
            serial: crate::model::Serial::from_hex("0ABC").unwrap(),
        };
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(encode_request(&id, None));
        assert_eq!(request_in_path(&encoded, 1024).unwrap().cert_id, id);
        assert_eq!(
            request_in_path(&format!("ocsp/{encoded}"), 1024).unwrap().cert_id,
            id
        );
        assert!(matches!(
            request_in_path("nothing-here", 1024),
            Err(Refusal::Malformed(_))
        ));
    }
}
