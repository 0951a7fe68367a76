//! The token side: loading the PKCS#11 module, choosing the token, logging in, finding the
//! private key and its public key, and signing with it on a pool of sessions.
//!
//! All PKCS#11 calls go through the `cryptoki` crate. The private key never leaves the
//! token: only public attributes (CKA_EC_POINT, CKA_MODULUS, CKA_PUBLIC_EXPONENT, labels and
//! ids) are read, so keys created sensitive and non-extractable work as they must.
//!
//! Before a [`TokenSigner`] exists, the token's public key has been compared with the
//! signer certificate's, and one probe signature made on the token has been verified with
//! that certificate's key: a wrong key, a wrong curve or a token that cannot produce the
//! encoding we expect is found before anything is written.

use super::pin::{self, Pin};
use super::pool::{OpenFailure, Pool};
use super::uri::Pkcs11Uri;
use super::HsmError;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use ocsp_edge_core::pki::{Certificate, ExternalSignError, ExternalSigner, PublicKeyKind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

/// How the token is asked to sign for each certificate key family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// `CKM_ECDSA` over a digest computed here (SoftHSM2 2.6 and many HSMs have no
    /// combined ECDSA-with-SHA-2 mechanism); the raw r‖s is re-encoded as DER.
    Ecdsa {
        digest: &'static ring::digest::Algorithm,
        scalar_len: usize,
    },
    /// `CKM_SHA256_RSA_PKCS`: the token hashes and pads.
    RsaSha256,
    /// `CKM_EDDSA` (pure Ed25519).
    Ed25519,
}

impl Method {
    fn for_kind(kind: PublicKeyKind) -> Method {
        match kind {
            PublicKeyKind::EcP256 => Method::Ecdsa {
                digest: &ring::digest::SHA256,
                scalar_len: 32,
            },
            PublicKeyKind::EcP384 => Method::Ecdsa {
                digest: &ring::digest::SHA384,
                scalar_len: 48,
            },
            PublicKeyKind::Rsa => Method::RsaSha256,
            PublicKeyKind::Ed25519 => Method::Ed25519,
        }
    }

    fn mechanism_type(self) -> (MechanismType, &'static str) {
        match self {
            Method::Ecdsa { .. } => (MechanismType::ECDSA, "CKM_ECDSA"),
            Method::RsaSha256 => (MechanismType::SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS"),
            Method::Ed25519 => (MechanismType::EDDSA, "CKM_EDDSA"),
        }
    }
}

/// A private key in a token, ready to sign from any thread.
pub(super) struct TokenSigner {
    module: Pkcs11,
    slot: Slot,
    key: ObjectHandle,
    method: Method,
    kind: PublicKeyKind,
    public_key: Vec<u8>,
    /// The PIN-free URI, for messages.
    name: String,
    pin: Pin,
    sessions: Pool<Session>,
}

impl TokenSigner {
    pub(super) fn open(
        uri: &Pkcs11Uri,
        certificate: &Certificate,
        certificate_path: &Path,
    ) -> Result<Self, HsmError> {
        let name = uri.to_string();
        let module_path = uri.module_path.as_deref().ok_or(super::UriError::NoModule)?;
        let kind = certificate.key_kind().map_err(|e| HsmError::KeyMismatch {
            key: name.clone(),
            key_fingerprint: "unknown".into(),
            certificate: certificate_path.display().to_string(),
            certificate_fingerprint: fingerprint(certificate.public_key()),
            detail: e.to_string(),
        })?;
        let pin = pin::read(uri.pin.as_ref()).map_err(|e| HsmError::PinSource {
            key: name.clone(),
            source_name: pin::describe(uri.pin.as_ref()),
            reason: e.to_string(),
        })?;
        let module = load_module(module_path)?;
        let (slot, token_label) = find_token(&module, uri, &name)?;
        let session = open_session(&module, slot, &name).map_err(|e| match e {
            OpenFailure::SessionLimit => pkcs11_error(
                &name,
                "C_OpenSession",
                &CkError::Pkcs11(RvError::SessionCount, cryptoki::context::Function::OpenSession),
            ),
            OpenFailure::Other(e) => e,
        })?;
        log_in(&session, &pin, uri, &name)?;
        let key = find_private_key(&session, uri, &name, &token_label)?;
        let certificate_label = format!("{} ({})", certificate_path.display(), certificate.display_name());
        let token_public = public_key_of(&session, key, kind).map_err(|problem| HsmError::KeyMismatch {
            key: name.clone(),
            key_fingerprint: "unknown".into(),
            certificate: certificate_label.clone(),
            certificate_fingerprint: fingerprint(certificate.public_key()),
            detail: problem.to_string(),
        })?;
        if token_public != certificate.public_key() {
            return Err(HsmError::KeyMismatch {
                key: name,
                key_fingerprint: fingerprint(&token_public),
                certificate: certificate_label,
                certificate_fingerprint: fingerprint(certificate.public_key()),
                detail: "the token's public key differs from the certificate's".into(),
            });
        }
        let method = Method::for_kind(kind);
        let (mechanism, mechanism_name) = method.mechanism_type();
        // Asking for the one mechanism (not the whole list, which names vendor mechanisms
        // cryptoki does not know and logs about) also tells whether it can sign.
        let can_sign = match module.get_mechanism_info(slot, mechanism) {
            Ok(info) => info.sign(),
            Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => false,
            Err(e) => return Err(pkcs11_error(&name, "C_GetMechanismInfo", &e)),
        };
        if !can_sign {
            return Err(HsmError::MechanismUnsupported {
                key: name,
                mechanism: mechanism_name,
                algorithm: kind.signature_algorithm().name(),
            });
        }
        warn_if_extractable(&session, key, &name);
        let signer = TokenSigner {
            module,
            slot,
            key,
            method,
            kind,
            public_key: token_public,
            name,
            pin,
            sessions: Pool::new(session),
        };
        signer.probe(certificate, kind, certificate_path)?;
        Ok(signer)
    }

    /// Signs a fixed message and verifies it with the certificate's key.
    fn probe(
        &self,
        certificate: &Certificate,
        kind: PublicKeyKind,
        certificate_path: &Path,
    ) -> Result<(), HsmError> {
        const PROBE: &[u8] = b"ocsp-edge: does this token key sign for its certificate?";
        let signature = self.sign_with_session(PROBE)?;
        if certificate.verify_signature(kind.signature_algorithm(), PROBE, &signature) {
            return Ok(());
        }
        Err(HsmError::KeyMismatch {
            key: self.name.clone(),
            key_fingerprint: fingerprint(&self.public_key),
            certificate: certificate_path.display().to_string(),
            certificate_fingerprint: fingerprint(certificate.public_key()),
            detail: "a signature made on the token does not verify with the certificate's key".into(),
        })
    }

    fn sign_with_session(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let session = self.sessions.take(|| {
            let session = open_session(&self.module, self.slot, &self.name)?;
            self.relogin_if_needed(&session).map_err(OpenFailure::Other)?;
            Ok(session)
        })?;
        match self.sign_on(&session, message) {
            Ok(signature) => {
                self.sessions.give_back(session);
                Ok(signature)
            }
            Err(error) => {
                self.sessions.discard(session);
                Err(self.classify(&error, "C_Sign"))
            }
        }
    }

    fn sign_on(&self, session: &Session, message: &[u8]) -> Result<Vec<u8>, CkError> {
        match self.method {
            Method::Ecdsa { digest, scalar_len } => {
                let digest = ring::digest::digest(digest, message);
                let raw = session.sign(&Mechanism::Ecdsa, self.key, digest.as_ref())?;
                ecdsa_raw_to_der(&raw, scalar_len).ok_or(CkError::InvalidValue)
            }
            Method::RsaSha256 => session.sign(&Mechanism::Sha256RsaPkcs, self.key, message),
            Method::Ed25519 => session.sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519)),
                self.key,
                message,
            ),
        }
    }

    /// Login state belongs to the application and survives while any session is open; a
    /// session opened after every other one was lost may need to log in again.
    fn relogin_if_needed(&self, session: &Session) -> Result<(), HsmError> {
        use cryptoki::session::SessionState;
        let state = session
            .get_session_info()
            .map_err(|e| self.classify(&e, "C_GetSessionInfo"))?
            .session_state();
        if matches!(state, SessionState::RoPublic | SessionState::RwPublic) {
            match session.login(UserType::User, Some(self.pin.secret())) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => return Err(self.classify(&e, "C_Login")),
            }
        }
        Ok(())
    }

    fn classify(&self, error: &CkError, operation: &'static str) -> HsmError {
        match error {
            // Some tokens list a mechanism they then refuse (SoftHSM2 with a restricted
            // slots.mechanisms does): the probe signature finds it before anything is written.
            CkError::Pkcs11(
                RvError::MechanismInvalid | RvError::MechanismParamInvalid | RvError::FunctionNotSupported,
                _,
            ) => HsmError::MechanismUnsupported {
                key: self.name.clone(),
                mechanism: self.method.mechanism_type().1,
                algorithm: self.kind.signature_algorithm().name(),
            },
            other => classify(&self.name, other, operation),
        }
    }
}

impl ExternalSigner for TokenSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ExternalSignError> {
        self.sign_with_session(message)
            .map_err(|e| Box::new(e) as ExternalSignError)
    }

    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// Errors while signing: a token that went away is its own case (the publish can be rerun).
fn classify(name: &str, error: &CkError, operation: &'static str) -> HsmError {
    match error {
        CkError::Pkcs11(
            rv @ (RvError::DeviceRemoved
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::TokenNotPresent
            | RvError::DeviceError
            | RvError::CryptokiNotInitialized
            // The key's handle worked for the probe; losing it means the key (or the
            // token holding it) is gone. SoftHSM2 reports a deleted token this way.
            | RvError::ObjectHandleInvalid
            | RvError::KeyHandleInvalid),
            _,
        ) => HsmError::TokenGone {
            key: name.to_string(),
            code: ckr_name(*rv),
        },
        CkError::Pkcs11(RvError::PinIncorrect | RvError::PinExpired | RvError::UserNotLoggedIn, _) => {
            HsmError::TokenGone {
                key: name.to_string(),
                code: format!("{operation}: the login was lost"),
            }
        }
        other => pkcs11_error(name, operation, other),
    }
}

fn pkcs11_error(name: &str, operation: &'static str, error: &CkError) -> HsmError {
    let code = match error {
        CkError::Pkcs11(rv, _) => ckr_name(*rv),
        other => other.to_string(),
    };
    HsmError::Pkcs11 {
        key: name.to_string(),
        operation,
        code,
    }
}

/// `CKR_…` names as the PKCS#11 standard and HSM vendors' manuals spell them.
fn ckr_name(rv: RvError) -> String {
    let camel = format!("{rv:?}");
    let mut name = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// SHA-256 of a public key, shortened: enough to tell two keys apart in a message.
pub(super) fn fingerprint(public_key: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
    format!("sha256:{}", hex::encode(&digest.as_ref()[..12]))
}

// ---------------------------------------------------------------------------------------
// Module, token, login

/// Modules loaded in this process, by path. PKCS#11 allows one `C_Initialize` per process
/// and module, and the CRL key and the OCSP signer often live in the same HSM.
fn load_module(path: &Path) -> Result<Pkcs11, HsmError> {
    static LOADED: OnceLock<Mutex<Vec<(PathBuf, Pkcs11)>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some((_, module)) = loaded.iter().find(|(p, _)| p == path) {
        return Ok(module.clone());
    }
    let failure = |reason: String| HsmError::Module {
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(failure(
            "no such file; install the HSM vendor's PKCS#11 library or fix module-path".into(),
        ));
    }
    let module = Pkcs11::new(path).map_err(|e| match e {
        CkError::LibraryLoading(e) => failure(format!("cannot be loaded as a shared library ({e})")),
        other => failure(format!(
            "is not a PKCS#11 library (no usable C_GetFunctionList: {other})"
        )),
    })?;
    match module.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(failure(format!("C_Initialize failed: {}", describe_ck(&e)))),
    }
    loaded.push((path.to_path_buf(), module.clone()));
    Ok(module)
}

fn describe_ck(error: &CkError) -> String {
    match error {
        CkError::Pkcs11(rv, _) => ckr_name(*rv),
        other => other.to_string(),
    }
}

/// The one slot whose token matches the URI's token attributes.
fn find_token(module: &Pkcs11, uri: &Pkcs11Uri, name: &str) -> Result<(Slot, String), HsmError> {
    let slots = module
        .get_slots_with_token()
        .map_err(|e| pkcs11_error(name, "C_GetSlotList", &e))?;
    let mut present = Vec::new();
    let mut matching = Vec::new();
    for slot in slots {
        let Ok(info) = module.get_token_info(slot) else {
            continue;
        };
        let label = info.label().trim_end().to_string();
        let serial = info.serial_number().trim_end().to_string();
        let matches = uri.token.as_deref().is_none_or(|t| t == label)
            && uri.serial.as_deref().is_none_or(|s| s == serial)
            && uri
                .manufacturer
                .as_deref()
                .is_none_or(|m| m == info.manufacturer_id().trim_end())
            && uri.model.as_deref().is_none_or(|m| m == info.model().trim_end())
            && uri.slot_id.is_none_or(|id| id == slot.id());
        let description = format!("slot-id={} token={label:?} serial={serial:?}", slot.id());
        if matches {
            matching.push((slot, label, description.clone(), info.user_pin_locked()));
        }
        present.push(description);
    }
    match matching.len() {
        1 => {
            let (slot, label, _, locked) = matching.remove(0);
            if locked {
                return Err(HsmError::PinLocked {
                    key: name.to_string(),
                });
            }
            Ok((slot, label))
        }
        0 => Err(HsmError::Token {
            key: name.to_string(),
            reason: if present.is_empty() {
                "no token is present in any slot of this module".into()
            } else {
                format!("no token matches; present: {}", present.join("; "))
            },
        }),
        _ => Err(HsmError::Token {
            key: name.to_string(),
            reason: format!(
                "{} tokens match; add token=, serial= or slot-id= to pick one: {}",
                matching.len(),
                matching
                    .iter()
                    .map(|m| m.2.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
    }
}

fn open_session(module: &Pkcs11, slot: Slot, name: &str) -> Result<Session, OpenFailure<HsmError>> {
    module.open_ro_session(slot).map_err(|e| match e {
        CkError::Pkcs11(RvError::SessionCount, _) => OpenFailure::SessionLimit,
        other => OpenFailure::Other(classify(name, &other, "C_OpenSession")),
    })
}

/// Logs in once; a refused PIN is never tried again (tokens lock after a few).
fn log_in(session: &Session, pin: &Pin, uri: &Pkcs11Uri, name: &str) -> Result<(), HsmError> {
    match session.login(UserType::User, Some(pin.secret())) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
            Err(HsmError::PinIncorrect {
                key: name.to_string(),
                source_name: pin::describe(uri.pin.as_ref()),
            })
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(HsmError::PinLocked {
            key: name.to_string(),
        }),
        Err(e) => Err(pkcs11_error(name, "C_Login", &e)),
    }
}

// ---------------------------------------------------------------------------------------
// Key objects

fn find_private_key(
    session: &Session,
    uri: &Pkcs11Uri,
    name: &str,
    token: &str,
) -> Result<ObjectHandle, HsmError> {
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let found = session
        .find_objects(&template)
        .map_err(|e| pkcs11_error(name, "C_FindObjects", &e))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => {
            let all = session
                .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
                .unwrap_or_default();
            Err(HsmError::KeyNotFound {
                key: name.to_string(),
                token: token.to_string(),
                present: all.iter().map(|k| describe_object(session, *k)).collect(),
            })
        }
        many => Err(HsmError::KeyAmbiguous {
            key: name.to_string(),
            token: token.to_string(),
            matches: many.iter().map(|k| describe_object(session, *k)).collect(),
        }),
    }
}

/// `object=LABEL;id=%XX…` of a key, as the user would write it in the URI.
fn describe_object(session: &Session, object: ObjectHandle) -> String {
    let mut label = String::new();
    let mut id = String::new();
    for attribute in session
        .get_attributes(object, &[AttributeType::Label, AttributeType::Id])
        .unwrap_or_default()
    {
        match attribute {
            Attribute::Label(bytes) => label = String::from_utf8_lossy(&bytes).into_owned(),
            Attribute::Id(bytes) => id = bytes.iter().map(|b| format!("%{b:02X}")).collect(),
            _ => {}
        }
    }
    format!("object={label};id={id}")
}

fn warn_if_extractable(session: &Session, key: ObjectHandle, name: &str) {
    let attributes = session
        .get_attributes(key, &[AttributeType::Sensitive, AttributeType::Extractable])
        .unwrap_or_default();
    let exposed = attributes
        .iter()
        .any(|a| matches!(a, Attribute::Sensitive(false) | Attribute::Extractable(true)));
    if exposed {
        tracing::warn!(key = %name, "the private key is not sensitive or is extractable; an HSM key should be CKA_SENSITIVE=true, CKA_EXTRACTABLE=false");
    }
}

/// Why the token key's public key cannot be read, so that it cannot be checked against
/// the certificate: the `detail` of [`HsmError::KeyMismatch`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum PublicKeyProblem {
    #[error("reading the key's public attributes failed: {0}")]
    Unreadable(String),
    #[error("the token key is of type {token}, the certificate's key is {certificate}")]
    KeyType {
        token: String,
        certificate: &'static str,
    },
    #[error("the token shows no modulus for the RSA key")]
    NoModulus,
    #[error("the private key has neither CKA_ID nor CKA_LABEL to find its public key by")]
    NoIdOrLabel,
    #[error(
        "found {0} public-key objects with the private key's CKA_ID/label; need exactly one to check it"
    )]
    PublicObjects(usize),
    #[error("the public-key object has no CKA_EC_POINT")]
    NoEcPoint,
}

/// The key's public key in the certificate's encoding: the uncompressed point (EC), DER
/// RSAPublicKey (RSA) or 32 bytes (Ed25519). Read from the private key's public attributes
/// or from the public-key object with the same CKA_ID (or label).
/// Errors say why the key cannot be the certificate's (the caller names both).
fn public_key_of(
    session: &Session,
    key: ObjectHandle,
    kind: PublicKeyKind,
) -> Result<Vec<u8>, PublicKeyProblem> {
    let unreadable = |e: CkError| PublicKeyProblem::Unreadable(describe_ck(&e));
    let attributes = session
        .get_attributes(
            key,
            &[AttributeType::KeyType, AttributeType::Id, AttributeType::Label],
        )
        .map_err(unreadable)?;
    let mut key_type = None;
    let mut id = None;
    let mut label = None;
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Id(bytes) if !bytes.is_empty() => id = Some(bytes),
            Attribute::Label(bytes) if !bytes.is_empty() => label = Some(bytes),
            _ => {}
        }
    }
    let expected = match kind {
        PublicKeyKind::EcP256 | PublicKeyKind::EcP384 => KeyType::EC,
        PublicKeyKind::Rsa => KeyType::RSA,
        PublicKeyKind::Ed25519 => KeyType::EC_EDWARDS,
    };
    if key_type != Some(expected) {
        return Err(PublicKeyProblem::KeyType {
            token: key_type.map_or("unknown".into(), |t| t.to_string()),
            certificate: kind_name(kind),
        });
    }
    if kind == PublicKeyKind::Rsa {
        let parts = session
            .get_attributes(key, &[AttributeType::Modulus, AttributeType::PublicExponent])
            .map_err(unreadable)?;
        let mut modulus = None;
        let mut exponent = None;
        for attribute in parts {
            match attribute {
                Attribute::Modulus(m) => modulus = Some(m),
                Attribute::PublicExponent(e) => exponent = Some(e),
                _ => {}
            }
        }
        return match (modulus, exponent) {
            (Some(m), Some(e)) => Ok(rsa_public_key_der(&m, &e)),
            _ => Err(PublicKeyProblem::NoModulus),
        };
    }
    let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
    match (id, label) {
        (Some(id), _) => template.push(Attribute::Id(id)),
        (None, Some(label)) => template.push(Attribute::Label(label)),
        (None, None) => return Err(PublicKeyProblem::NoIdOrLabel),
    }
    let publics = session.find_objects(&template).map_err(unreadable)?;
    let [public] = publics.as_slice() else {
        return Err(PublicKeyProblem::PublicObjects(publics.len()));
    };
    let point = session
        .get_attributes(*public, &[AttributeType::EcPoint])
        .map_err(unreadable)?
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(point) => Some(point),
            _ => None,
        })
        .ok_or(PublicKeyProblem::NoEcPoint)?;
    Ok(unwrap_octet_string(&point))
}

fn kind_name(kind: PublicKeyKind) -> &'static str {
    match kind {
        PublicKeyKind::EcP256 => "EC P-256",
        PublicKeyKind::EcP384 => "EC P-384",
        PublicKeyKind::Rsa => "RSA",
        PublicKeyKind::Ed25519 => "Ed25519",
    }
}

/// CKA_EC_POINT is a DER OCTET STRING holding the point; some tokens return the bare point.
fn unwrap_octet_string(value: &[u8]) -> Vec<u8> {
    let inner = match value {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        _ => value,
    };
    inner.to_vec()
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }.
fn rsa_public_key_der(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut body = der_unsigned_integer(modulus);
    body.extend(der_unsigned_integer(exponent));
    der_tlv(0x30, &body)
}

fn der_unsigned_integer(bytes: &[u8]) -> Vec<u8> {
    let first_nonzero = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let trimmed = &bytes[first_nonzero..];
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    der_tlv(0x02, &content)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// `CKM_ECDSA`'s r‖s (each `scalar_len` bytes, big-endian) as the DER `ECDSA-Sig-Value`
/// that X.509 and OCSP carry. `None` when the token returned another length.
fn ecdsa_raw_to_der(raw: &[u8], scalar_len: usize) -> Option<Vec<u8>> {
    if raw.len() != 2 * scalar_len {
        return None;
    }
    let (r, s) = raw.split_at(scalar_len);
    let mut body = der_unsigned_integer(r);
    body.extend(der_unsigned_integer(s));
    Some(der_tlv(0x30, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `detail` operators read after "does not belong to the certificate …: ".
    #[test]
    fn each_public_key_problem_says_what_the_token_lacks() {
        let cases = [
            (
                PublicKeyProblem::Unreadable("CKR_ATTRIBUTE_SENSITIVE".into()),
                "reading the key's public attributes failed: CKR_ATTRIBUTE_SENSITIVE",
            ),
            (
                PublicKeyProblem::KeyType {
                    token: KeyType::RSA.to_string(),
                    certificate: kind_name(PublicKeyKind::EcP256),
                },
                "the token key is of type CKK_RSA, the certificate's key is EC P-256",
            ),
            (PublicKeyProblem::NoModulus, "the token shows no modulus for the RSA key"),
            (
                PublicKeyProblem::NoIdOrLabel,
                "the private key has neither CKA_ID nor CKA_LABEL to find its public key by",
            ),
            (
                PublicKeyProblem::PublicObjects(0),
                "found 0 public-key objects with the private key's CKA_ID/label; need exactly one to check it",
            ),
            (PublicKeyProblem::NoEcPoint, "the public-key object has no CKA_EC_POINT"),
        ];
        for (problem, text) in cases {
            assert_eq!(problem.to_string(), text, "{problem:?}");
        }
    }

    #[test]
    fn raw_ecdsa_becomes_minimal_der() {
        let mut raw = vec![0u8; 64];
        raw[31] = 1; // r = 1
        raw[32] = 0x80; // s has its top bit set: needs a leading zero
        let der = ecdsa_raw_to_der(&raw, 32).unwrap();
        let mut expected = vec![0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00, 0x80];
        expected.extend([0u8; 31]);
        assert_eq!(der, expected);
        assert_eq!(ecdsa_raw_to_der(&raw, 48), None);
        assert_eq!(ecdsa_raw_to_der(&raw[..63], 32), None);
        // P-384 r and s with top bits set: 2 × (2 + 49) bytes, a two-byte length.
        let der = ecdsa_raw_to_der(&[0xff; 96], 48).unwrap();
        assert_eq!(&der[..2], &[0x30, 0x66]);
    }

    #[test]
    fn raw_ecdsa_from_ring_round_trips() {
        // ring's fixed-length signature is exactly CKM_ECDSA's r‖s: converted, it must verify
        // as ring's ASN.1 form does.
        use ring::signature::{
            EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED_SIGNING,
        };
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        for _ in 0..32 {
            let raw = key.sign(&rng, b"message").unwrap();
            let der = ecdsa_raw_to_der(raw.as_ref(), 32).unwrap();
            let public =
                ring::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key().as_ref());
            assert!(public.verify(b"message", &der).is_ok());
            assert!(public.verify(b"other", &der).is_err());
        }
    }

    #[test]
    fn rsa_public_key_matches_the_certificate_encoding() {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/rsa/ocsp.pem");
        let certificate = Certificate::from_pem(&std::fs::read_to_string(demo).unwrap()).unwrap();
        // Take the certificate's RSAPublicKey apart and rebuild it from the bare modulus and
        // exponent, as a token reports them (with a superfluous leading zero on the modulus).
        let spki = certificate.public_key();
        let (modulus, exponent) = split_rsa_public_key(spki);
        let mut padded = vec![0u8];
        padded.extend_from_slice(modulus);
        assert_eq!(rsa_public_key_der(&padded, exponent), spki);
        assert_eq!(rsa_public_key_der(modulus, &[0x01, 0x00, 0x01]), spki);
    }

    fn split_rsa_public_key(der: &[u8]) -> (&[u8], &[u8]) {
        fn read(input: &[u8]) -> (&[u8], &[u8]) {
            let (len, header) = match input[1] {
                n if n < 0x80 => (usize::from(n), 2),
                0x81 => (usize::from(input[2]), 3),
                0x82 => (usize::from(input[2]) << 8 | usize::from(input[3]), 4),
                _ => panic!("long length"),
            };
            (&input[header..header + len], &input[header + len..])
        }
        let (body, _) = read(der);
        let (modulus, rest) = read(body);
        let (exponent, _) = read(rest);
        (modulus.strip_prefix(&[0]).unwrap_or(modulus), exponent)
    }

    #[test]
    fn ec_point_is_unwrapped_from_its_octet_string() {
        let point = [4u8; 65];
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(point);
        assert_eq!(unwrap_octet_string(&wrapped), point);
        let mut long = vec![0x04, 0x81, 97];
        long.extend([4u8; 97]);
        assert_eq!(unwrap_octet_string(&long), vec![4u8; 97]);
        // A bare point (some tokens) stays as it is.
        assert_eq!(unwrap_octet_string(&point), point);
    }

    #[test]
    fn error_names_are_the_standard_ones() {
        assert_eq!(ckr_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(ckr_name(RvError::DeviceRemoved), "CKR_DEVICE_REMOVED");
        assert_eq!(
            ckr_name(RvError::SessionHandleInvalid),
            "CKR_SESSION_HANDLE_INVALID"
        );
        let gone = classify(
            "k",
            &CkError::Pkcs11(RvError::DeviceRemoved, cryptoki::context::Function::Sign),
            "C_Sign",
        );
        assert!(matches!(gone, HsmError::TokenGone { .. }), "{gone}");
        let other = classify(
            "k",
            &CkError::Pkcs11(RvError::DataLenRange, cryptoki::context::Function::Sign),
            "C_Sign",
        );
        assert!(matches!(other, HsmError::Pkcs11 { .. }), "{other}");
    }
}
