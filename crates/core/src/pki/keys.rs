//! Signer private keys: loading them from PEM (the forms openssl writes) and signing with them.
//!
//! This module never reads files itself (callers pass the PEM text) and never decides *what*
//! gets signed; it only turns key material into a [`SigningKey`] that is known to belong to
//! the signer certificate, and produces signatures in the encoding that goes into a
//! `BIT STRING`.
//!
//! Accepted PEM blocks:
//! - `PRIVATE KEY` (PKCS#8) holding a P-256, P-384, Ed25519 or RSA key;
//! - `EC PRIVATE KEY` (SEC1 / RFC 5915) for P-256 and P-384;
//! - `RSA PRIVATE KEY` (PKCS#1).
//!
//! Other blocks (such as the `EC PARAMETERS` block `openssl ecparam -genkey` writes first) are
//! skipped; the first private-key block is used.

use std::fmt;
use std::sync::Arc;

use crate::oids;
use ring::error::KeyRejected;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};

/// The key algorithms a responder may sign with (CA/Browser Forum allows no SHA-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ecdsa-with-SHA256 with a P-256 key (RFC 5758 §3.2).
    EcdsaP256Sha256,
    /// ecdsa-with-SHA384 with a P-384 key (RFC 5758 §3.2).
    EcdsaP384Sha384,
    /// sha256WithRSAEncryption, PKCS#1 v1.5 (RFC 4055 §5).
    RsaPkcs1Sha256,
    /// Ed25519 (RFC 8032, RFC 8410): no separate hash, 64-byte signatures.
    Ed25519,
}

// AlgorithmIdentifier encodings. RFC 5758 and RFC 8410 forbid parameters for ECDSA and
// Ed25519; RFC 4055 requires an explicit NULL for sha256WithRSAEncryption.
const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
const ALG_ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
const ALG_RSA_SHA256: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
const ALG_ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

impl SignatureAlgorithm {
    /// DER of the AlgorithmIdentifier to put in `signatureAlgorithm` fields.
    pub fn algorithm_identifier_der(self) -> &'static [u8] {
        match self {
            Self::EcdsaP256Sha256 => ALG_ECDSA_SHA256,
            Self::EcdsaP384Sha384 => ALG_ECDSA_SHA384,
            Self::RsaPkcs1Sha256 => ALG_RSA_SHA256,
            Self::Ed25519 => ALG_ED25519,
        }
    }

    /// Short stable name for manifests and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Self::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            Self::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            Self::Ed25519 => "ed25519",
        }
    }

    /// The inverse of [`SignatureAlgorithm::name`].
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "ecdsa-p256-sha256" => Some(Self::EcdsaP256Sha256),
            "ecdsa-p384-sha384" => Some(Self::EcdsaP384Sha384),
            "rsa-pkcs1-sha256" => Some(Self::RsaPkcs1Sha256),
            "ed25519" => Some(Self::Ed25519),
            _ => None,
        }
    }

    /// The ring verification algorithm matching it (for verifying our own manifest signatures).
    pub(crate) fn verification_algorithm(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Self::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            Self::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
            Self::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::Ed25519 => &signature::ED25519,
        }
    }
}

/// The family of the signer certificate's public key (from its SubjectPublicKeyInfo).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicKeyKind {
    /// id-ecPublicKey on secp256r1.
    EcP256,
    /// id-ecPublicKey on secp384r1.
    EcP384,
    /// rsaEncryption. Verification accepts 2048–8192-bit moduli; signing keys are held to
    /// the size policy when loaded ([`KeyError::Rejected`]).
    Rsa,
    /// id-Ed25519.
    Ed25519,
}

impl PublicKeyKind {
    /// The one algorithm a key of this family signs with here: the hash is fixed by the
    /// key (P-384 pairs with SHA-384), so nothing is negotiated.
    pub fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            Self::EcP256 => SignatureAlgorithm::EcdsaP256Sha256,
            Self::EcP384 => SignatureAlgorithm::EcdsaP384Sha384,
            Self::Rsa => SignatureAlgorithm::RsaPkcs1Sha256,
            Self::Ed25519 => SignatureAlgorithm::Ed25519,
        }
    }
}

/// Why a key could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text has no PEM block at all.
    #[error("the key file is not PEM")]
    NotPem,
    /// PEM, but no private-key block; holds the first label found (`CERTIFICATE` names
    /// the usual mistake).
    #[error(
        "PEM block \"{0}\" is not a private key; expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY"
    )]
    UnsupportedPemLabel(String),
    /// An `ENCRYPTED PRIVATE KEY` block: there is no passphrase prompt, by design.
    #[error("the key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)")]
    Encrypted,
    /// The block's DER is not the structure its label promises (holds the format name).
    #[error("the {0} key is malformed (not valid DER)")]
    Malformed(&'static str),
    /// The DER parsed, but the key is outside policy or ring refused it: an unsupported
    /// curve or algorithm, an RSA size or exponent outside the accepted range,
    /// inconsistent values.
    #[error("the {kind} key was rejected: {reason}")]
    Rejected {
        /// The key family or format that was being loaded.
        kind: &'static str,
        /// ring's reason, which never includes key material.
        reason: String,
    },
    /// The private key's public half is not the certificate's key, or is of another
    /// family: signing with it would produce responses no client can verify.
    #[error("the private key does not belong to the signer certificate")]
    DoesNotMatchCertificate,
    /// ring failed to sign (no randomness available, or an internal error); retrying later
    /// may succeed.
    #[error("signing failed")]
    Sign,
    /// A signer outside this process (an HSM) failed; the error says why and names the key.
    #[error("{0}")]
    External(#[source] ExternalSignError),
}

/// What an [`ExternalSigner`] reports when it cannot sign. Boxed so that this module does
/// not depend on any token code: the publisher's PKCS#11 module recovers its own error type
/// from it by downcasting.
pub type ExternalSignError = Box<dyn std::error::Error + Send + Sync>;

/// A private key held outside the process (a PKCS#11 token): it signs a message with the
/// certificate's signature algorithm and returns the signature in [`SigningKey::sign`]'s
/// encoding. Implementations check, before they are wrapped in a [`SigningKey`], that the
/// key belongs to the signer certificate.
pub trait ExternalSigner: Send + Sync {
    /// Signs `message` (the signer hashes it) with the certificate's algorithm.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ExternalSignError>;
    /// The public key in the certificate's subjectPublicKey encoding.
    fn public_key(&self) -> &[u8];
    /// Where the key lives, for logs (never secret: e.g. a PKCS#11 URI without PIN).
    fn describe(&self) -> String;
}

/// A loaded signer key. Cheap to share: signing takes `&self` and the type is `Send + Sync`.
pub struct SigningKey {
    inner: Inner,
    algorithm: SignatureAlgorithm,
    // ECDSA needs randomness per signature (ring hedges it with the key and message).
    rng: SystemRandom,
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
    External(Arc<dyn ExternalSigner>),
}

// rayon signs from many threads; fail the build if that ever stops being possible.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SigningKey>();
};

impl SigningKey {
    /// Loads a private key from PEM text.
    ///
    /// `public_key` is the subjectPublicKey BIT STRING contents (without the unused-bits byte)
    /// of the signer certificate. It is used (a) for SEC1 keys, which ring cannot load without
    /// the public point, and (b) to check that the key belongs to the certificate: a mismatch
    /// is [`KeyError::DoesNotMatchCertificate`]. `spki_kind` is the family of the
    /// certificate's key; a private key of another family is also a mismatch.
    pub fn from_pem(pem_text: &str, public_key: &[u8], spki_kind: PublicKeyKind) -> Result<Self, KeyError> {
        let (format, der) = first_key_block(pem_text)?;
        let rng = SystemRandom::new();
        let inner = match format {
            KeyFormat::Pkcs8 => load_pkcs8(&der, public_key, spki_kind, &rng)?,
            KeyFormat::Sec1 => load_sec1(&der, public_key, spki_kind, &rng)?,
            KeyFormat::Pkcs1 => load_pkcs1(&der, spki_kind)?,
        };
        let key = Self {
            inner,
            algorithm: spki_kind.signature_algorithm(),
            rng,
        };
        if key.public_key() != public_key {
            return Err(KeyError::DoesNotMatchCertificate);
        }
        Ok(key)
    }

    /// Wraps a key held outside the process. `spki_kind` is the family of the signer
    /// certificate's key; the signer must already have checked that its key is that
    /// certificate's, and this checks once more that the public keys agree.
    pub fn external(
        signer: Arc<dyn ExternalSigner>,
        public_key: &[u8],
        spki_kind: PublicKeyKind,
    ) -> Result<Self, KeyError> {
        if signer.public_key() != public_key {
            return Err(KeyError::DoesNotMatchCertificate);
        }
        Ok(Self {
            inner: Inner::External(signer),
            algorithm: spki_kind.signature_algorithm(),
            rng: SystemRandom::new(),
        })
    }

    /// The algorithm every signature of this key uses, fixed by the certificate's key
    /// family at load time.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// Signature bytes as they go into a BIT STRING (ECDSA: DER Ecdsa-Sig-Value;
    /// RSA: PKCS#1 v1.5 with SHA-256; Ed25519: 64 bytes).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            Inner::Ecdsa(key) => key
                .sign(&self.rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            Inner::Ed25519(key) => Ok(key.sign(message).as_ref().to_vec()),
            Inner::Rsa(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| KeyError::Sign)?;
                Ok(sig)
            }
            Inner::External(signer) => signer.sign(message).map_err(KeyError::External),
        }
    }

    /// The public key bytes (what the certificate's subjectPublicKey BIT STRING holds:
    /// an uncompressed EC point, a DER RSAPublicKey, or 32 Ed25519 bytes).
    pub fn public_key(&self) -> &[u8] {
        match &self.inner {
            Inner::Ecdsa(key) => key.public_key().as_ref(),
            Inner::Rsa(key) => key.public_key().as_ref(),
            Inner::Ed25519(key) => key.public_key().as_ref(),
            Inner::External(signer) => signer.public_key(),
        }
    }
}

// Never print private material; the algorithm and public key identify the key well enough.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm.name())
            .field("public_key", &hex::encode(self.public_key()))
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// PEM

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyFormat {
    Pkcs8,
    Sec1,
    Pkcs1,
}

/// The DER of the first private-key block. Non-key blocks are skipped; if there is no key
/// block the first label seen is reported, which names the mistake (e.g. a certificate).
fn first_key_block(pem_text: &str) -> Result<(KeyFormat, Vec<u8>), KeyError> {
    let blocks = pem::parse_many(pem_text).map_err(|_| KeyError::NotPem)?;
    let mut first_label = None;
    for block in blocks {
        match key_format(&block)? {
            Some(format) => return Ok((format, block.into_contents())),
            None => {
                first_label.get_or_insert_with(|| block.tag().to_owned());
            }
        }
    }
    Err(first_label.map_or(KeyError::NotPem, KeyError::UnsupportedPemLabel))
}

/// `None` for blocks that are not private keys. Encrypted keys are an error rather than
/// skipped: they are the key the operator meant, just not usable as is.
fn key_format(block: &pem::Pem) -> Result<Option<KeyFormat>, KeyError> {
    let format = match block.tag() {
        "PRIVATE KEY" => KeyFormat::Pkcs8,
        "EC PRIVATE KEY" => KeyFormat::Sec1,
        "RSA PRIVATE KEY" => KeyFormat::Pkcs1,
        "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
        _ => return Ok(None),
    };
    // Traditional (pre-PKCS#8) encryption marks the block with "Proc-Type: 4,ENCRYPTED".
    let proc_type = block.headers().get("Proc-Type").unwrap_or_default();
    if proc_type.contains("ENCRYPTED") {
        return Err(KeyError::Encrypted);
    }
    Ok(Some(format))
}

// ---------------------------------------------------------------------------------------
// Loading per format

const ECDSA_P256: &signature::EcdsaSigningAlgorithm = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
const ECDSA_P384: &signature::EcdsaSigningAlgorithm = &signature::ECDSA_P384_SHA384_ASN1_SIGNING;

/// secp521r1, recognised only to say clearly that ring cannot sign with it.
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 4096;
const RSA_MIN_EXPONENT: u64 = 65537;

/// PKCS#8: classify the key by its AlgorithmIdentifier ourselves so that unsupported
/// algorithms and family mismatches get clear errors instead of ring's generic ones.
fn load_pkcs8(
    der: &[u8],
    public_key: &[u8],
    spki_kind: PublicKeyKind,
    rng: &SystemRandom,
) -> Result<Inner, KeyError> {
    let info = parse_pkcs8(der)?;
    if info.kind != spki_kind {
        return Err(KeyError::DoesNotMatchCertificate);
    }
    match info.kind {
        // The inner key is a SEC1 ECPrivateKey. Going through the SEC1 path (private scalar
        // plus the certificate's point) also accepts PKCS#8 files without the public key.
        PublicKeyKind::EcP256 | PublicKeyKind::EcP384 => {
            load_sec1_as(info.private_key, public_key, info.kind, "PKCS#8 EC", rng)
        }
        PublicKeyKind::Rsa => {
            check_rsa_private_key(info.private_key, "PKCS#8 RSA")?;
            let key = RsaKeyPair::from_pkcs8(der).map_err(|e| rejected("RSA", e))?;
            checked_rsa(key)
        }
        // openssl writes PKCS#8 v1 (no public key inside), which ring's checked loader refuses;
        // the key is checked against the certificate afterwards instead.
        PublicKeyKind::Ed25519 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(Inner::Ed25519)
            .map_err(|e| rejected("Ed25519", e)),
    }
}

fn load_sec1(
    der: &[u8],
    public_key: &[u8],
    spki_kind: PublicKeyKind,
    rng: &SystemRandom,
) -> Result<Inner, KeyError> {
    load_sec1_as(der, public_key, spki_kind, "SEC1 EC", rng)
}

/// SEC1 / RFC 5915 ECPrivateKey: ring only takes the raw scalar plus the public point, and
/// checks that they belong together.
fn load_sec1_as(
    der: &[u8],
    public_key: &[u8],
    spki_kind: PublicKeyKind,
    format: &'static str,
    rng: &SystemRandom,
) -> Result<Inner, KeyError> {
    let sec1 = parse_sec1(der, format)?;
    if sec1_curve(&sec1)? != spki_kind {
        return Err(KeyError::DoesNotMatchCertificate);
    }
    // openssl embeds the public point; if it differs, the key is another certificate's.
    if sec1.public_key.is_some_and(|embedded| embedded != public_key) {
        return Err(KeyError::DoesNotMatchCertificate);
    }
    let alg = match spki_kind {
        PublicKeyKind::EcP256 => ECDSA_P256,
        PublicKeyKind::EcP384 => ECDSA_P384,
        PublicKeyKind::Rsa | PublicKeyKind::Ed25519 => return Err(KeyError::DoesNotMatchCertificate),
    };
    EcdsaKeyPair::from_private_key_and_public_key(alg, sec1.private_key, public_key, rng)
        .map(Inner::Ecdsa)
        .map_err(|e| match e.to_string().as_str() {
            // The scalar does not produce the certificate's point.
            "InconsistentComponents" => KeyError::DoesNotMatchCertificate,
            _ => rejected("EC", e),
        })
}

/// The key's curve: the `[0]` parameters when present, else implied by the scalar length
/// (RFC 5915 fixes it to the order's byte length).
fn sec1_curve(sec1: &Sec1<'_>) -> Result<PublicKeyKind, KeyError> {
    match (sec1.curve, sec1.private_key.len()) {
        (Some(oid), _) => curve_kind(oid),
        (None, 32) => Ok(PublicKeyKind::EcP256),
        (None, 48) => Ok(PublicKeyKind::EcP384),
        (None, 66) => curve_kind(OID_P521),
        (None, len) => Err(KeyError::Rejected {
            kind: "EC",
            reason: format!("a {len}-byte private scalar matches no supported curve"),
        }),
    }
}

fn load_pkcs1(der: &[u8], spki_kind: PublicKeyKind) -> Result<Inner, KeyError> {
    if spki_kind != PublicKeyKind::Rsa {
        return Err(KeyError::DoesNotMatchCertificate);
    }
    check_rsa_private_key(der, "PKCS#1 RSA")?;
    let key = RsaKeyPair::from_der(der).map_err(|e| rejected("RSA", e))?;
    checked_rsa(key)
}

/// Enforces our RSA size policy on the loaded key too, so it holds even if a future ring
/// accepted larger or smaller keys.
fn checked_rsa(key: RsaKeyPair) -> Result<Inner, KeyError> {
    check_rsa_bits(key.public().modulus_len() * 8)?;
    Ok(Inner::Rsa(key))
}

/// Reads modulus size and exponent before ring does: ring reports both a 1024-bit modulus
/// and an e=3 key as "TooSmall", which does not tell the operator what to fix.
fn check_rsa_private_key(der: &[u8], format: &'static str) -> Result<(), KeyError> {
    // RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, ... }
    let mut key = Der::new(der, format).only(TAG_SEQUENCE)?;
    key.read(TAG_INTEGER)?;
    let modulus = key.read(TAG_INTEGER)?;
    let exponent = key.read(TAG_INTEGER)?;
    check_rsa_bits(unsigned_bit_len(modulus))?;
    match unsigned_value(exponent) {
        Some(e) if e < RSA_MIN_EXPONENT => Err(KeyError::Rejected {
            kind: "RSA",
            reason: format!("the public exponent is {e}; ring requires at least 65537"),
        }),
        _ => Ok(()),
    }
}

fn check_rsa_bits(bits: usize) -> Result<(), KeyError> {
    if (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Ok(());
    }
    Err(KeyError::Rejected {
        kind: "RSA",
        reason: format!("the key has {bits} bits; only 2048- to 4096-bit RSA keys can sign"),
    })
}

/// Turns ring's terse rejection codes into something an operator can act on; the code is
/// kept in parentheses for searching.
fn rejected(kind: &'static str, e: KeyRejected) -> KeyError {
    let code = e.to_string();
    let reason = match code.as_str() {
        "InvalidEncoding" => "the key is not encoded as expected",
        "WrongAlgorithm" => "the key is for a different algorithm",
        "TooSmall" => "the RSA modulus is under 2048 bits or the exponent is under 65537",
        "TooLarge" => "the RSA modulus is over 4096 bits",
        "InconsistentComponents" => "the key's parts do not belong together (corrupt key)",
        "InvalidComponent" => "a part of the key is out of range",
        "VersionNotSupported" => "the key format version is not supported",
        "PublicKeyIsMissing" => "the key lacks its public part",
        "PrivateModulusLenNotMultipleOf512Bits" => {
            "the RSA primes are not a multiple of 512 bits (use 2048, 3072 or 4096 bits)"
        }
        _ => "ring refused it",
    };
    KeyError::Rejected {
        kind,
        reason: format!("{reason} ({code})"),
    }
}

// ---------------------------------------------------------------------------------------
// Structure parsing (only what is needed to route keys and explain refusals)

struct Pkcs8<'a> {
    kind: PublicKeyKind,
    private_key: &'a [u8],
}

/// PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, privateKey OCTET STRING, ... }
fn parse_pkcs8(der: &[u8]) -> Result<Pkcs8<'_>, KeyError> {
    let mut info = Der::new(der, "PKCS#8").only(TAG_SEQUENCE)?;
    info.read(TAG_INTEGER)?;
    let mut alg = info.nested(TAG_SEQUENCE)?;
    let oid = alg.read(TAG_OID)?;
    let kind = pkcs8_kind(oid, &mut alg)?;
    let private_key = info.read(TAG_OCTET_STRING)?;
    Ok(Pkcs8 { kind, private_key })
}

fn pkcs8_kind(oid: &[u8], params: &mut Der<'_>) -> Result<PublicKeyKind, KeyError> {
    match oid {
        oids::RSA_ENCRYPTION => Ok(PublicKeyKind::Rsa),
        oids::ED25519 => Ok(PublicKeyKind::Ed25519),
        // Only named curves: explicit curve parameters are not an OID and end up here too.
        oids::EC_PUBLIC_KEY => match params.optional(TAG_OID)? {
            Some(curve) => curve_kind(curve),
            None => Err(KeyError::Rejected {
                kind: "EC",
                reason: "the curve is not given as a named curve".to_owned(),
            }),
        },
        other => Err(KeyError::Rejected {
            kind: "PKCS#8",
            reason: format!(
                "key algorithm {} is not supported; use P-256, P-384, RSA or Ed25519",
                dotted_oid(other)
            ),
        }),
    }
}

fn curve_kind(oid: &[u8]) -> Result<PublicKeyKind, KeyError> {
    let name = match oid {
        oids::CURVE_P256 => return Ok(PublicKeyKind::EcP256),
        oids::CURVE_P384 => return Ok(PublicKeyKind::EcP384),
        OID_P521 => "P-521 (secp521r1)".to_owned(),
        other => dotted_oid(other),
    };
    Err(KeyError::Rejected {
        kind: "EC",
        reason: format!("curve {name} is not supported by ring; use P-256 or P-384"),
    })
}

struct Sec1<'a> {
    private_key: &'a [u8],
    curve: Option<&'a [u8]>,
    public_key: Option<&'a [u8]>,
}

/// ECPrivateKey ::= SEQUENCE { version INTEGER (1), privateKey OCTET STRING,
///   parameters [0] ECParameters OPTIONAL, publicKey [1] BIT STRING OPTIONAL }
fn parse_sec1<'a>(der: &'a [u8], format: &'static str) -> Result<Sec1<'a>, KeyError> {
    let mut key = Der::new(der, format).only(TAG_SEQUENCE)?;
    if key.read(TAG_INTEGER)? != [1] {
        return Err(KeyError::Malformed(format));
    }
    let private_key = key.read(TAG_OCTET_STRING)?;
    let curve = match key.optional(TAG_CONTEXT_0)? {
        Some(params) => Some(Der::new(params, format).whole(TAG_OID)?),
        None => None,
    };
    let public_key = match key.optional(TAG_CONTEXT_1)? {
        Some(bits) => Some(bit_string_bytes(
            Der::new(bits, format).whole(TAG_BIT_STRING)?,
            format,
        )?),
        None => None,
    };
    Ok(Sec1 {
        private_key,
        curve,
        public_key,
    })
}

/// BIT STRING contents without the unused-bits byte; keys are always whole bytes.
fn bit_string_bytes<'a>(contents: &'a [u8], format: &'static str) -> Result<&'a [u8], KeyError> {
    match contents.split_first() {
        Some((0, bytes)) => Ok(bytes),
        _ => Err(KeyError::Malformed(format)),
    }
}

/// Bit length of a DER INTEGER read as unsigned (leading zero bytes ignored).
fn unsigned_bit_len(integer: &[u8]) -> usize {
    let skip = integer.iter().take_while(|&&b| b == 0).count();
    match integer.get(skip..) {
        Some([first, rest @ ..]) => rest.len() * 8 + (8 - first.leading_zeros() as usize),
        _ => 0,
    }
}

/// The value of a DER INTEGER read as unsigned, if it fits in 64 bits.
fn unsigned_value(integer: &[u8]) -> Option<u64> {
    let skip = integer.iter().take_while(|&&b| b == 0).count();
    let bytes = integer.get(skip..)?;
    if bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Dotted form of an OID for error messages (best effort: malformed input still prints).
fn dotted_oid(oid: &[u8]) -> String {
    let arcs: Vec<String> = crate::der::oid_arcs(oid).iter().map(u64::to_string).collect();
    arcs.join(".")
}

// ---------------------------------------------------------------------------------------
// Reading key structures with the crate's DER reader; errors carry the key format so
// messages say which file form was broken.

const TAG_INTEGER: u8 = crate::der::INTEGER;
const TAG_BIT_STRING: u8 = crate::der::BIT_STRING;
const TAG_OCTET_STRING: u8 = crate::der::OCTET_STRING;
const TAG_OID: u8 = crate::der::OID;
const TAG_SEQUENCE: u8 = crate::der::SEQUENCE;
const TAG_CONTEXT_0: u8 = 0xa0;
const TAG_CONTEXT_1: u8 = 0xa1;

struct Der<'a> {
    reader: crate::der::Reader<'a>,
    format: &'static str,
}

impl<'a> Der<'a> {
    fn new(input: &'a [u8], format: &'static str) -> Self {
        Self {
            reader: crate::der::Reader::new(input),
            format,
        }
    }

    fn malformed(&self) -> KeyError {
        KeyError::Malformed(self.format)
    }

    /// The contents of the next element, which must have `tag`.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], KeyError> {
        self.reader
            .expect(tag)
            .map(|e| e.content)
            .map_err(|_| self.malformed())
    }

    /// Like `read`, but absent (next tag differs or input ends) is `None`.
    fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, KeyError> {
        self.reader
            .optional(tag)
            .map(|e| e.map(|e| e.content))
            .map_err(|_| self.malformed())
    }

    /// A reader over the contents of the next element.
    fn nested(&mut self, tag: u8) -> Result<Der<'a>, KeyError> {
        Ok(Der::new(self.read(tag)?, self.format))
    }

    /// The contents of the single element that makes up the whole input (trailing bytes
    /// are refused: they mean a corrupt or mis-labelled file).
    fn whole(mut self, tag: u8) -> Result<&'a [u8], KeyError> {
        let contents = self.read(tag)?;
        self.reader.finish().map_err(|_| self.malformed())?;
        Ok(contents)
    }

    /// A reader over the contents of the single element that makes up the whole input.
    fn only(self, tag: u8) -> Result<Der<'a>, KeyError> {
        let format = self.format;
        Ok(Der::new(self.whole(tag)?, format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;
    use tempfile::TempDir;

    const MESSAGE: &[u8] = b"tbsResponseData stand-in";

    /// Runs openssl in `dir`, panicking with its stderr on failure; returns stdout.
    fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Whether an openssl command succeeds (for verification runs that may fail).
    fn openssl_ok(dir: &Path, args: &[&str]) -> bool {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl")
            .status
            .success()
    }

    /// A key generated by openssl, with its public key as openssl reports it.
    struct Generated {
        dir: TempDir,
        pem: String,
        public_key: Vec<u8>,
    }

    /// `args` is an openssl command that writes a PEM key to stdout.
    fn generate(args: &[&str]) -> Generated {
        let dir = TempDir::new().expect("tempdir");
        let pem = openssl(dir.path(), args);
        std::fs::write(dir.path().join("key.pem"), &pem).expect("write key");
        let spki = openssl(
            dir.path(),
            &["pkey", "-in", "key.pem", "-pubout", "-outform", "DER"],
        );
        Generated {
            public_key: spki_public_key(&spki),
            pem: String::from_utf8(pem).expect("PEM is text"),
            dir,
        }
    }

    /// subjectPublicKey from a DER SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier,
    /// BIT STRING }; the key is the BIT STRING at the end without its unused-bits byte.
    fn spki_public_key(spki: &[u8]) -> Vec<u8> {
        let mut outer = Der::new(spki, "test SPKI").only(TAG_SEQUENCE).unwrap();
        outer.read(TAG_SEQUENCE).unwrap();
        let bits = outer.read(TAG_BIT_STRING).unwrap();
        assert!(outer.reader.is_empty(), "SPKI has trailing fields");
        assert_eq!(bits[0], 0, "unused bits");
        bits[1..].to_vec()
    }

    fn load(key: &Generated, kind: PublicKeyKind) -> Result<SigningKey, KeyError> {
        SigningKey::from_pem(&key.pem, &key.public_key, kind)
    }

    /// Loads, checks algorithm and public key, signs and verifies with ring.
    fn assert_signs(key: &Generated, kind: PublicKeyKind, expected: SignatureAlgorithm) {
        let signer = load(key, kind).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(signer.algorithm(), expected);
        assert_eq!(signer.public_key(), key.public_key.as_slice());
        let sig = signer.sign(MESSAGE).unwrap();
        let verifier = signature::UnparsedPublicKey::new(expected.verification_algorithm(), &key.public_key);
        verifier.verify(MESSAGE, &sig).expect("ring verifies");
        assert!(verifier.verify(b"other message", &sig).is_err());
    }

    fn assert_rejected_mentioning(result: Result<SigningKey, KeyError>, needle: &str) {
        match result {
            Err(e @ KeyError::Rejected { .. }) => {
                let text = e.to_string();
                assert!(text.contains(needle), "{text:?} lacks {needle:?}");
            }
            other => panic!("expected Rejected mentioning {needle:?}, got {other:?}"),
        }
    }

    fn p256_pkcs8() -> Generated {
        generate(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
    }

    fn sec1(curve: &str) -> Generated {
        generate(&["ecparam", "-name", curve, "-genkey", "-noout"])
    }

    fn ed25519() -> Generated {
        generate(&["genpkey", "-algorithm", "ed25519"])
    }

    fn rsa_pkcs1(bits: &str) -> Generated {
        generate(&["genrsa", "-traditional", bits])
    }

    fn rsa_pkcs8(bits: &str) -> Generated {
        let opt = format!("rsa_keygen_bits:{bits}");
        generate(&["genpkey", "-algorithm", "RSA", "-pkeyopt", &opt])
    }

    // --- SignatureAlgorithm -----------------------------------------------------------

    #[test]
    fn algorithm_identifiers_match_known_der() {
        let cases = [
            (
                SignatureAlgorithm::EcdsaP256Sha256,
                "300a06082a8648ce3d040302",
                "ecdsa-with-SHA256",
            ),
            (
                SignatureAlgorithm::EcdsaP384Sha384,
                "300a06082a8648ce3d040303",
                "ecdsa-with-SHA384",
            ),
            (
                SignatureAlgorithm::RsaPkcs1Sha256,
                "300d06092a864886f70d01010b0500",
                "sha256WithRSAEncryption",
            ),
            (SignatureAlgorithm::Ed25519, "300506032b6570", "ED25519"),
        ];
        let dir = TempDir::new().unwrap();
        for (alg, hex_der, openssl_name) in cases {
            assert_eq!(hex::encode(alg.algorithm_identifier_der()), hex_der);
            // openssl must read it as the intended algorithm, nothing left over.
            std::fs::write(dir.path().join("alg.der"), alg.algorithm_identifier_der()).unwrap();
            let dump = openssl(dir.path(), &["asn1parse", "-inform", "DER", "-in", "alg.der"]);
            let dump = String::from_utf8(dump).unwrap();
            assert!(dump.contains(openssl_name), "{dump}");
        }
    }

    #[test]
    fn names_round_trip() {
        let all = [
            SignatureAlgorithm::EcdsaP256Sha256,
            SignatureAlgorithm::EcdsaP384Sha384,
            SignatureAlgorithm::RsaPkcs1Sha256,
            SignatureAlgorithm::Ed25519,
        ];
        let names: Vec<_> = all.iter().map(|a| a.name()).collect();
        assert_eq!(
            names,
            [
                "ecdsa-p256-sha256",
                "ecdsa-p384-sha384",
                "rsa-pkcs1-sha256",
                "ed25519"
            ]
        );
        for alg in all {
            assert_eq!(SignatureAlgorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(SignatureAlgorithm::from_name("rsa-pkcs1-sha1"), None);
        assert_eq!(SignatureAlgorithm::from_name("ED25519"), None);
    }

    // --- Supported keys -----------------------------------------------------------------

    #[test]
    fn p256_pkcs8_signs() {
        let key = p256_pkcs8();
        assert!(key.pem.contains("BEGIN PRIVATE KEY"));
        assert_signs(&key, PublicKeyKind::EcP256, SignatureAlgorithm::EcdsaP256Sha256);
    }

    #[test]
    fn p256_sec1_signs() {
        let key = sec1("prime256v1");
        assert!(key.pem.contains("BEGIN EC PRIVATE KEY"));
        assert_signs(&key, PublicKeyKind::EcP256, SignatureAlgorithm::EcdsaP256Sha256);
    }

    #[test]
    fn p384_pkcs8_signs() {
        let key = generate(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ]);
        assert_signs(&key, PublicKeyKind::EcP384, SignatureAlgorithm::EcdsaP384Sha384);
    }

    #[test]
    fn p384_sec1_signs() {
        let key = sec1("secp384r1");
        assert!(key.pem.contains("BEGIN EC PRIVATE KEY"));
        assert_signs(&key, PublicKeyKind::EcP384, SignatureAlgorithm::EcdsaP384Sha384);
    }

    #[test]
    fn sec1_after_ec_parameters_block_signs() {
        // Without -noout, openssl writes an EC PARAMETERS block before the key.
        let key = generate(&["ecparam", "-name", "prime256v1", "-genkey"]);
        assert!(key.pem.find("EC PARAMETERS") < key.pem.find("EC PRIVATE KEY"));
        assert_signs(&key, PublicKeyKind::EcP256, SignatureAlgorithm::EcdsaP256Sha256);
    }

    #[test]
    fn sec1_without_optional_fields_signs() {
        // RFC 5915 makes the curve and public key optional; openssl can omit the curve.
        let key = sec1("prime256v1");
        let der = pem::parse(&key.pem).unwrap().into_contents();
        let parsed = parse_sec1(&der, "test").unwrap();
        let mut minimal = vec![0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20];
        minimal.extend_from_slice(parsed.private_key);
        let pem_text = pem::encode(&pem::Pem::new("EC PRIVATE KEY", minimal));
        let signer = SigningKey::from_pem(&pem_text, &key.public_key, PublicKeyKind::EcP256).unwrap();
        assert_eq!(signer.public_key(), key.public_key.as_slice());
    }

    #[test]
    fn ed25519_pkcs8_signs() {
        let key = ed25519();
        assert_signs(&key, PublicKeyKind::Ed25519, SignatureAlgorithm::Ed25519);
        let sig = load(&key, PublicKeyKind::Ed25519).unwrap().sign(MESSAGE).unwrap();
        assert_eq!(sig.len(), 64);
    }

    #[test]
    fn rsa_2048_pkcs1_signs() {
        let key = rsa_pkcs1("2048");
        assert!(key.pem.contains("BEGIN RSA PRIVATE KEY"));
        assert_signs(&key, PublicKeyKind::Rsa, SignatureAlgorithm::RsaPkcs1Sha256);
    }

    #[test]
    fn rsa_3072_pkcs8_signs() {
        let key = rsa_pkcs8("3072");
        assert!(key.pem.contains("BEGIN PRIVATE KEY"));
        assert_signs(&key, PublicKeyKind::Rsa, SignatureAlgorithm::RsaPkcs1Sha256);
    }

    #[test]
    fn rsa_4096_pkcs8_signs() {
        let key = rsa_pkcs8("4096");
        assert_signs(&key, PublicKeyKind::Rsa, SignatureAlgorithm::RsaPkcs1Sha256);
        let sig = load(&key, PublicKeyKind::Rsa).unwrap().sign(MESSAGE).unwrap();
        assert_eq!(sig.len(), 512);
    }

    #[test]
    fn first_of_several_key_blocks_is_used() {
        let first = p256_pkcs8();
        let second = p256_pkcs8();
        let both = format!("{}{}", first.pem, second.pem);
        let signer = SigningKey::from_pem(&both, &first.public_key, PublicKeyKind::EcP256).unwrap();
        assert_eq!(signer.public_key(), first.public_key.as_slice());
    }

    #[test]
    fn debug_shows_public_part_only() {
        let key = p256_pkcs8();
        let text = format!("{:?}", load(&key, PublicKeyKind::EcP256).unwrap());
        assert!(text.contains("ecdsa-p256-sha256"));
        assert!(text.contains(&hex::encode(&key.public_key)));
    }

    // --- Interoperability with openssl ----------------------------------------------------

    /// Signs with our key and has openssl verify it (and refuse a changed message).
    fn assert_openssl_verifies(key: &Generated, kind: PublicKeyKind, verify: &[&str]) {
        let sig = load(key, kind).unwrap().sign(MESSAGE).unwrap();
        let dir = key.dir.path();
        std::fs::write(dir.join("sig.bin"), sig).unwrap();
        std::fs::write(dir.join("msg"), MESSAGE).unwrap();
        std::fs::write(dir.join("other"), b"tampered").unwrap();
        openssl(dir, &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"]);
        assert!(openssl_ok(dir, &[verify, &["msg"]].concat()));
        assert!(!openssl_ok(dir, &[verify, &["other"]].concat()));
    }

    const DGST_VERIFY: &[&str] = &["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin"];

    #[test]
    fn openssl_verifies_ecdsa_signature() {
        assert_openssl_verifies(&sec1("prime256v1"), PublicKeyKind::EcP256, DGST_VERIFY);
    }

    #[test]
    fn openssl_verifies_rsa_signature() {
        assert_openssl_verifies(&rsa_pkcs1("2048"), PublicKeyKind::Rsa, DGST_VERIFY);
    }

    #[test]
    fn openssl_verifies_ed25519_signature() {
        let verify = [
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-sigfile", "sig.bin", "-in",
        ];
        assert_openssl_verifies(&ed25519(), PublicKeyKind::Ed25519, &verify);
    }

    // --- Refused keys --------------------------------------------------------------------

    #[test]
    fn rsa_1024_is_refused() {
        let key = rsa_pkcs1("1024");
        assert_rejected_mentioning(load(&key, PublicKeyKind::Rsa), "1024 bits");
        let key = rsa_pkcs8("1024");
        assert_rejected_mentioning(load(&key, PublicKeyKind::Rsa), "1024 bits");
    }

    #[test]
    fn rsa_size_and_exponent_limits() {
        // Synthetic RSAPrivateKey prefixes: only version, modulus and exponent are read.
        let key = |modulus_bytes: usize, exponent: &[u8]| {
            let mut modulus = vec![0x00];
            modulus.extend(std::iter::repeat_n(0xffu8, modulus_bytes));
            let mut body = vec![0x02, 0x01, 0x00];
            body.extend(tlv(TAG_INTEGER, &modulus));
            body.extend(tlv(TAG_INTEGER, exponent));
            tlv(TAG_SEQUENCE, &body)
        };
        assert!(check_rsa_private_key(&key(256, &[1, 0, 1]), "t").is_ok());
        assert!(check_rsa_private_key(&key(512, &[1, 0, 1]), "t").is_ok());
        let too_big = check_rsa_private_key(&key(1024, &[1, 0, 1]), "t").unwrap_err();
        assert!(too_big.to_string().contains("8192 bits"), "{too_big}");
        let e3 = check_rsa_private_key(&key(256, &[3]), "t").unwrap_err();
        assert!(e3.to_string().contains("exponent is 3"), "{e3}");
    }

    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let len = contents.len();
        let mut out = vec![tag];
        match len {
            0..=0x7f => out.push(len as u8),
            0x80..=0xff => out.extend([0x81, len as u8]),
            _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    #[test]
    fn p521_is_refused() {
        let key = sec1("secp521r1");
        assert_rejected_mentioning(load(&key, PublicKeyKind::EcP256), "P-521");
        let key = generate(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
        ]);
        assert_rejected_mentioning(load(&key, PublicKeyKind::EcP384), "P-521");
    }

    #[test]
    fn unsupported_pkcs8_algorithm_is_refused() {
        let key = generate(&["genpkey", "-algorithm", "ed448"]);
        assert_rejected_mentioning(load(&key, PublicKeyKind::Ed25519), "1.3.101.113");
    }

    #[test]
    fn encrypted_keys_are_refused() {
        let key = p256_pkcs8();
        let dir = key.dir.path();
        let pkcs8 = openssl(dir, &["pkey", "-in", "key.pem", "-aes256", "-passout", "pass:x"]);
        let pkcs8 = String::from_utf8(pkcs8).unwrap();
        assert!(pkcs8.contains("ENCRYPTED PRIVATE KEY"));
        // `openssl ec` writes the traditional form: "Proc-Type: 4,ENCRYPTED" inside an
        // EC PRIVATE KEY block.
        let traditional = openssl(dir, &["ec", "-in", "key.pem", "-aes256", "-passout", "pass:x"]);
        let traditional = String::from_utf8(traditional).unwrap();
        assert!(traditional.contains("Proc-Type: 4,ENCRYPTED"));
        for text in [pkcs8, traditional] {
            let err = SigningKey::from_pem(&text, &key.public_key, PublicKeyKind::EcP256).unwrap_err();
            assert!(matches!(err, KeyError::Encrypted), "{err:?}");
            assert!(err.to_string().contains("openssl pkey -in KEY -out PLAIN"));
        }
    }

    #[test]
    fn garbage_is_not_pem() {
        for text in ["", "hello world", "-----BEGIN PRIVATE KEY-----\n!!!\n"] {
            let err = SigningKey::from_pem(text, &[4; 65], PublicKeyKind::EcP256).unwrap_err();
            assert!(matches!(err, KeyError::NotPem), "{text:?}: {err:?}");
        }
        let bad_base64 = "-----BEGIN PRIVATE KEY-----\n@@@@\n-----END PRIVATE KEY-----\n";
        let err = SigningKey::from_pem(bad_base64, &[4; 65], PublicKeyKind::EcP256).unwrap_err();
        assert!(matches!(err, KeyError::NotPem), "{err:?}");
    }

    #[test]
    fn certificate_is_not_a_key() {
        let key = p256_pkcs8();
        let cert = openssl(
            key.dir.path(),
            &[
                "req", "-x509", "-new", "-key", "key.pem", "-subj", "/CN=t", "-days", "1",
            ],
        );
        let cert = String::from_utf8(cert).unwrap();
        let err = SigningKey::from_pem(&cert, &key.public_key, PublicKeyKind::EcP256).unwrap_err();
        assert!(
            matches!(&err, KeyError::UnsupportedPemLabel(label) if label == "CERTIFICATE"),
            "{err:?}"
        );
        assert!(err.to_string().contains("expected PRIVATE KEY"));
    }

    #[test]
    fn key_of_another_certificate_is_refused() {
        let pairs = [
            (p256_pkcs8(), p256_pkcs8(), PublicKeyKind::EcP256),
            (sec1("prime256v1"), sec1("prime256v1"), PublicKeyKind::EcP256),
            (sec1("secp384r1"), sec1("secp384r1"), PublicKeyKind::EcP384),
            (ed25519(), ed25519(), PublicKeyKind::Ed25519),
            (rsa_pkcs1("2048"), rsa_pkcs1("2048"), PublicKeyKind::Rsa),
        ];
        for (a, b, kind) in pairs {
            let err = SigningKey::from_pem(&a.pem, &b.public_key, kind).unwrap_err();
            assert!(
                matches!(err, KeyError::DoesNotMatchCertificate),
                "{kind:?}: {err:?}"
            );
        }
    }

    #[test]
    fn sec1_scalar_not_matching_certificate_point_is_refused() {
        // Without the embedded public key, ring itself detects the mismatch.
        let a = sec1("prime256v1");
        let b = sec1("prime256v1");
        let der = pem::parse(&a.pem).unwrap().into_contents();
        let parsed = parse_sec1(&der, "test").unwrap();
        let mut minimal = vec![0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20];
        minimal.extend_from_slice(parsed.private_key);
        let pem_text = pem::encode(&pem::Pem::new("EC PRIVATE KEY", minimal));
        let err = SigningKey::from_pem(&pem_text, &b.public_key, PublicKeyKind::EcP256).unwrap_err();
        assert!(matches!(err, KeyError::DoesNotMatchCertificate), "{err:?}");
    }

    #[test]
    fn key_of_another_family_is_refused() {
        let p256 = p256_pkcs8();
        let p384 = sec1("secp384r1");
        let rsa = rsa_pkcs1("2048");
        let cases = [
            (&p256, PublicKeyKind::Rsa),
            (&p256, PublicKeyKind::EcP384),
            (&p384, PublicKeyKind::EcP256),
            (&p384, PublicKeyKind::Ed25519),
            (&rsa, PublicKeyKind::EcP256),
        ];
        for (key, kind) in cases {
            let err = load(key, kind).unwrap_err();
            assert!(
                matches!(err, KeyError::DoesNotMatchCertificate),
                "{kind:?}: {err:?}"
            );
        }
    }

    #[test]
    fn damaged_keys_error_without_panicking() {
        let originals = [
            (sec1("prime256v1"), PublicKeyKind::EcP256),
            (p256_pkcs8(), PublicKeyKind::EcP256),
            (ed25519(), PublicKeyKind::Ed25519),
        ];
        for (key, kind) in originals {
            let block = pem::parse(&key.pem).unwrap();
            let der = block.contents();
            let damaged = (0..der.len())
                .map(|cut| der[..cut].to_vec())
                .chain((0..der.len()).map(|i| {
                    let mut flipped = der.to_vec();
                    flipped[i] ^= 0x81;
                    flipped
                }));
            for bytes in damaged {
                let text = pem::encode(&pem::Pem::new(block.tag(), bytes));
                // Any error is fine, a panic is not. A damaged file that still loads (the
                // flip hit a byte the loader ignores) must still be the certificate's key.
                if let Ok(signer) = SigningKey::from_pem(&text, &key.public_key, kind) {
                    assert_eq!(signer.public_key(), key.public_key.as_slice());
                }
            }
        }
    }

    #[test]
    fn der_reader_bounds() {
        let whole = |input: &[u8]| {
            Der::new(input, "test")
                .whole(TAG_OCTET_STRING)
                .ok()
                .map(<[u8]>::to_vec)
        };
        assert_eq!(whole(&[]), None);
        assert_eq!(whole(&[0x04]), None);
        assert_eq!(whole(&[0x04, 0x80, 0x00, 0x00]), None, "indefinite length");
        assert_eq!(whole(&[0x04, 0x85, 1, 1, 1, 1, 1]), None, "5 length bytes");
        assert_eq!(whole(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(whole(&[0x1f, 0x01, 0x00]), None, "high tag number");
        assert_eq!(whole(&[0x04, 0x81, 0x01, 0xaa, 0xbb]), None, "trailing byte");
        assert_eq!(whole(&[0x04, 0x81, 0x01, 0xaa]), Some(vec![0xaa]));
        assert_eq!(dotted_oid(OID_P521), "1.3.132.0.35");
        assert_eq!(dotted_oid(oids::RSA_ENCRYPTION), "1.2.840.113549.1.1.1");
        assert_eq!(unsigned_bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(unsigned_bit_len(&[0x00]), 0);
    }
}
