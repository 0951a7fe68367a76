//! The OCSP endpoint of a cache-mode responder: the same HTTP surface as snapshot mode
//! (POST, GET below the OCSP path, HEAD, conditional GET, RFC 5019 caching headers), with
//! answers from [`crate::cache::CacheTier`] instead of a snapshot.
//!
//! Thin like [`super::http`], whose helpers it reuses: it decodes the request and applies
//! the nonce policy here (so a malformed or refused request never reaches a hub), and
//! turns the tier's outcome into a response. It must never serve bytes the tier did not
//! hand it, and never answer for documents (CRLs): a cache holds OCSP responses only.

use super::http;
use crate::cache::{CacheTier, Entry};
use crate::config::Config;
use crate::metrics::Outcome;
use crate::served::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use ocsp_edge_core::ocsp::get::InPath;
use ocsp_edge_core::ocsp::{decode_request, OcspRequest};
use ocsp_edge_core::time::UnixTime;
use std::sync::Arc;
use std::time::Duration;

pub async fn route(
    state: &State,
    tier: &Arc<CacheTier>,
    request: Request<Incoming>,
) -> (Response<Full<Bytes>>, Outcome) {
    let (parts, body) = request.into_parts();
    let config = state.request_config();
    let head_only = parts.method == hyper::Method::HEAD;
    let is_get = head_only || parts.method == hyper::Method::GET;
    let Some(rest) = ocsp_edge_core::ocsp::get::ocsp_remainder(parts.uri.path(), &config.ocsp.path) else {
        return (http::not_found(), Outcome::HttpError);
    };
    let decoded = match parts.method {
        hyper::Method::GET | hyper::Method::HEAD => {
            match request_in_path(rest, config.server.max_request_bytes) {
                InPath::Request(decoded) => decoded,
                InPath::NotARequest(refusal) => Err(refusal),
                InPath::NotBase64 => return (http::not_found(), Outcome::HttpError),
            }
        }
        hyper::Method::POST => http::read_post(&config, body, http::content_length(&parts.headers))
            .await
            .and_then(|der| decode_request(&der)),
        _ => return (http::method_not_allowed(), Outcome::HttpError),
    };
    let now = UnixTime::now();
    let timeout = config
        .cache
        .as_ref()
        .map_or(Duration::from_secs(2), |cache| cache.request_timeout);
    // The responder's nonce policy, applied before the tier so a refused request never
    // reaches a hub.
    let admitted = decoded.and_then(|request| config.ocsp.nonce.admit(request.has_nonce).map(|()| request));
    let answer = match admitted {
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

/// The request in a GET path, found as in snapshot mode ([`ocsp_edge_core::ocsp::get::from_get_path`]).
fn request_in_path(rest: &str, limit: usize) -> InPath<OcspRequest> {
    ocsp_edge_core::ocsp::get::from_get_path(rest, limit, decode_request)
}

fn success(
    state: &State,
    config: &Config,
    entry: &Entry,
    now: UnixTime,
    if_none_match: Option<&HeaderValue>,
    head_only: bool,
) -> (Response<Full<Bytes>>, Outcome) {
    let answer = http::Answer {
        issuer: &entry.issuer,
        revoked: entry.revoked(),
        etag: entry.etag,
        len: entry.response.len(),
        this_update: entry.this_update,
        next_update: entry.next_update,
        max_age: entry.max_age(now, config.ocsp.cache_max_age.as_secs()),
    };
    // A reference-counted handle on the cached bytes: no copy per hit.
    answer.respond(state, if_none_match, head_only, || entry.response.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocsp_edge_core::ocsp::request::{encode_request, RequestedCertId};
    use ocsp_edge_core::ocsp::Refusal;
    use ocsp_edge_core::pki::cert::CertIdHash;

    #[test]
    fn get_requests_are_found_below_a_path_prefix() {
        let id = RequestedCertId {
            hash: CertIdHash::Sha1,
            issuer_name_hash: vec![1; 20],
            issuer_key_hash: vec![2; 20],
            serial: ocsp_edge_core::model::Serial::from_hex("0ABC").unwrap(),
        };
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(encode_request(&id, None));
        let found = |path: &str| match request_in_path(path, 1024) {
            InPath::Request(Ok(request)) => request.cert_id,
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(found(&encoded), id);
        assert_eq!(found(&format!("ocsp/{encoded}")), id);
        // Base64 but no request: malformed; not base64 at all: no OCSP request path.
        assert!(matches!(
            request_in_path("nothing-here", 1024),
            InPath::NotARequest(Refusal::Malformed(_))
        ));
        assert!(matches!(request_in_path("crl/ec.crl", 1024), InPath::NotBase64));
    }
}
