//! OCSP on the wire (RFC 6960, lightweight profile RFC 5019/RFC 9919): decoding requests,
//! encoding pre-signed responses, and the one mapping from refusals to response statuses.
//!
//! Sans-I/O: bytes and `now` in, bytes or typed outcomes out. Never touches sockets,
//! files or the clock, and never holds a private key (signing is the publisher's).
//!
//! The submodules (`request`, `get`, `response`, `verify`) are private; what other crates
//! use is re-exported here:
//!
//! - **Requests**: [`decode_request`] / [`with_request`] for a POST body (owned
//!   [`OcspRequest`] or zero-copy [`BorrowedRequest`]), [`ocsp_remainder`],
//!   [`from_get_path`] and [`decode_get`] for a GET path ([`InPath`]); [`encode_request`]
//!   for clients and tests. [`RequestedCertId`] / [`CertIdRef`] name the certificate asked
//!   about.
//! - **Responses**: the [`ResponseTemplate`] the publisher fills with [`SingleFacts`] and
//!   signs, [`ETAG_LEN`], and the unsigned error answers ([`encode_error_response`],
//!   [`ResponseStatus`]).
//! - **Refusals**: [`Refusal`], the one mapping from a refusal to a [`ResponseStatus`].
//! - **Checking a response signed elsewhere** (the cache tier's hub answers):
//!   [`verify_response`] with the [`KnownSigners`] it has seen, giving a
//!   [`VerifiedResponse`] ([`AnsweredStatus`]) or a [`ResponseError`]; [`response_status`]
//!   reads only the status.

mod get;
mod request;
mod response;
mod verify;

// Requests: decoding a POST body or a GET path, and encoding one (clients, tests).
pub use get::{decode_get, from_get_path, ocsp_remainder, InPath};
pub use request::{
    decode_request, encode_request, with_request, BorrowedRequest, CertIdRef, OcspRequest, RequestedCertId,
};
// Responses: the pre-signed template the publisher fills, and the unsigned error answers.
pub use response::{encode_error_response, ResponseStatus, ResponseTemplate, SingleFacts, ETAG_LEN};
// Checking a response signed elsewhere (the cache tier's hub answers).
pub use verify::{
    response_status, verify_response, AnsweredStatus, KnownSigners, ResponseError, VerifiedResponse,
};

pub(crate) use get::is_ocsp_request_path;
pub(crate) use request::{decode_in_place, decode_with_rasn};
pub(crate) use response::generalized_time;

/// Why an OCSP request did not get a `successful` answer. Mapped to the wire in exactly one
/// place, [`Refusal::response_status`]; [`Refusal::label`] is the stable metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The bytes are not a DER OCSPRequest (or not valid base64 on GET).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// More or fewer than one Request: RFC 5019 §2.1.1 allows exactly one per message.
    #[error("the request must carry exactly one certificate")]
    NotOneRequest,
    /// The body exceeded the configured limit.
    #[error("request too large")]
    TooLarge,
    /// CertID hashed with something other than SHA-1 or SHA-256.
    #[error("unsupported CertID hash algorithm")]
    UnsupportedHash,
    /// No issuer in the snapshot matches the CertID's issuer hashes.
    #[error("unknown issuer")]
    UnknownIssuer,
    /// The issuer is ours but the serial is not in its records (never issued, or purged).
    #[error("serial not issued by this CA")]
    UnassignedSerial,
    /// The request carries a nonce and the policy says not to ignore it.
    #[error("nonce requested but responses are pre-signed")]
    NonceRefused,
    /// The only response we hold has passed its nextUpdate.
    #[error("response expired")]
    Expired,
    /// No verified snapshot is loaded yet.
    #[error("no snapshot loaded")]
    NotReady,
    /// Cache mode: the answer is not cached and no hub gave one that could be served.
    #[error("no hub answered")]
    Unavailable,
}

impl Refusal {
    /// The OCSPResponseStatus for this refusal (RFC 6960 §2.3, §4.2.1).
    pub fn response_status(self) -> ResponseStatus {
        match self {
            // §2.3: "malformedRequest: the request received does not conform to the OCSP syntax".
            Refusal::Malformed(_) | Refusal::NotOneRequest | Refusal::TooLarge => {
                ResponseStatus::MalformedRequest
            }
            // §2.3: "unauthorized" is returned when the client is not authorized to make this
            // query, which RFC 5019 §2.2.3 extends to "the server has no record" of the
            // certificate: unknown issuer, purged or never-issued serial, unsupported CertID
            // form (the CA/Browser Forum forbids `good` for a serial that was never issued, and
            // a keyless edge cannot sign `unknown`/`revoked` for an arbitrary serial).
            Refusal::UnsupportedHash
            | Refusal::UnknownIssuer
            | Refusal::UnassignedSerial
            | Refusal::NonceRefused => ResponseStatus::Unauthorized,
            // §2.3: "tryLater: the responder is temporarily unable to respond" — we hold
            // nothing fresh enough to sign-free answer with.
            // A cache with no hub to ask is in the same position.
            Refusal::Expired | Refusal::NotReady | Refusal::Unavailable => ResponseStatus::TryLater,
        }
    }

    /// A stable, low-cardinality label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::NotOneRequest => "not_one_request",
            Refusal::TooLarge => "too_large",
            Refusal::UnsupportedHash => "unsupported_hash",
            Refusal::UnknownIssuer => "unknown_issuer",
            Refusal::UnassignedSerial => "unassigned_serial",
            Refusal::NonceRefused => "nonce_refused",
            Refusal::Expired => "expired",
            Refusal::NotReady => "not_ready",
            Refusal::Unavailable => "upstream_unavailable",
        }
    }

    /// Every refusal once, for registering each metric label up front.
    pub const ALL: [Refusal; 10] = [
        Refusal::Malformed(""),
        Refusal::NotOneRequest,
        Refusal::TooLarge,
        Refusal::UnsupportedHash,
        Refusal::UnknownIssuer,
        Refusal::UnassignedSerial,
        Refusal::NonceRefused,
        Refusal::Expired,
        Refusal::NotReady,
        Refusal::Unavailable,
    ];
}
