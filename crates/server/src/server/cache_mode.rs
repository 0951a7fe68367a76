//! The OCSP endpoint of a cache-mode responder: the same HTTP surface as snapshot mode
//! (POST, GET below the OCSP path, HEAD, conditional GET, RFC 5019 caching headers), with
//! answers from [`crate::cache::CacheTier`] instead of a snapshot.
//!
//! Thin like [`super::http`], with the same responses ([`super::reply`]): it decodes the request, hands it to
//! the core's [`answer_from`] with the tier as the [`AnswerSource`] (nonce policy, lookup,
//! freshness: the same decisions as snapshot mode; a refused request never reaches a hub),
//! and turns the outcome into a response. It must never serve bytes the tier did not
//! hand it, and never answer for documents (CRLs): a cache holds OCSP responses only.

use super::metrics::{HttpMetrics, Outcome};
use super::reply;
use crate::cache::{CacheTier, Entry};
use crate::config::Config;
use crate::served::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use ocsp_edge_core::ocsp::{decode_request, InPath, OcspRequest, Refusal, RequestedCertId};
use ocsp_edge_core::responder::{answer_from, AnswerSource};
use ocsp_edge_core::time::UnixTime;
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn route(
    state: &State,
    metrics: &HttpMetrics,
    tier: &Arc<CacheTier>,
    request: Request<Incoming>,
) -> (Response<Full<Bytes>>, Outcome) {
    let (parts, body) = request.into_parts();
    let config = state.request_config();
    let head_only = parts.method == hyper::Method::HEAD;
    let is_get = head_only || parts.method == hyper::Method::GET;
    let Some(rest) = ocsp_edge_core::ocsp::ocsp_remainder(parts.uri.path(), &config.ocsp.path) else {
        return (reply::not_found(), Outcome::HttpError);
    };
    let decoded = match parts.method {
        hyper::Method::GET | hyper::Method::HEAD => {
            match request_in_path(rest, config.server.max_request_bytes) {
                InPath::Request(decoded) => decoded,
                InPath::NotARequest(refusal) => Err(refusal),
                InPath::NotBase64 => return (reply::not_found(), Outcome::HttpError),
            }
        }
        hyper::Method::POST => reply::read_post(&config, body, reply::content_length(&parts.headers))
            .await
            .and_then(|der| decode_request(&der)),
        _ => return (reply::method_not_allowed(), Outcome::HttpError),
    };
    let now = UnixTime::now();
    let timeout = config
        .cache
        .as_ref()
        .map_or(Duration::from_secs(2), |cache| cache.request_timeout);
    // Nonce policy, lookup and freshness are the core's (`answer_from`), as in snapshot
    // mode; a refused request never reaches a hub.
    let source = TierSource { tier, timeout };
    let answer = match decoded {
        Ok(request) => answer_from(&source, &request, now, config.ocsp.nonce).await,
        Err(refusal) => Err(refusal),
    };
    match answer {
        Ok(entry) => {
            // RFC 9110 §13.1.2: a 304 answers only GET and HEAD.
            let if_none_match = parts.headers.get(header::IF_NONE_MATCH).filter(|_| is_get);
            success(metrics, &config, &entry, now, if_none_match, head_only)
        }
        Err(refusal) => (reply::refused(refusal, head_only), Outcome::Refused(refusal)),
    }
}

/// The cache tier as a source of answers, with this request's deadline for a fill.
struct TierSource<'a> {
    tier: &'a Arc<CacheTier>,
    timeout: Duration,
}

impl AnswerSource for TierSource<'_> {
    type Answer = Arc<Entry>;

    fn lookup(
        &self,
        cert_id: &RequestedCertId,
        now: UnixTime,
    ) -> impl std::future::Future<Output = Result<Arc<Entry>, Refusal>> + Send {
        self.tier.answer(cert_id, self.timeout, now)
    }

    fn next_update(entry: &Arc<Entry>) -> UnixTime {
        entry.next_update
    }
}

/// The request in a GET path, found as in snapshot mode ([`ocsp_edge_core::ocsp::from_get_path`]).
fn request_in_path(rest: &str, limit: usize) -> InPath<OcspRequest> {
    ocsp_edge_core::ocsp::from_get_path(rest, limit, decode_request)
}

fn success(
    metrics: &HttpMetrics,
    config: &Config,
    entry: &Entry,
    now: UnixTime,
    if_none_match: Option<&HeaderValue>,
    head_only: bool,
) -> (Response<Full<Bytes>>, Outcome) {
    let answer = reply::Answer {
        issuer: &entry.issuer,
        revoked: entry.revoked(),
        etag: entry.etag,
        len: entry.response.len(),
        this_update: entry.this_update,
        next_update: entry.next_update,
        max_age: entry.max_age(now, config.ocsp.cache_max_age.as_secs()),
    };
    // A reference-counted handle on the cached bytes: no copy per hit.
    answer.respond(metrics, if_none_match, head_only, || entry.response.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocsp_edge_core::ocsp::{encode_request, RequestedCertId};
    use ocsp_edge_core::pki::CertIdHash;

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
