//! PEM and DER keys and certificates: `Certificate::all_from_pem` / `from_der` and every
//! accessor and check the publisher and responders run on a certificate, and
//! `SigningKey::from_pem` (PKCS#8, SEC1, PKCS#1 via the crate's own DER walk) for each key
//! family of the demo signers.
//!
//! Properties: no panic; a key is accepted only for the certificate it belongs to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocsp_edge::pki::{CertIdHash, Certificate, SigningKey};
use ocsp_edge_fuzz_common::{certificate, issuers, NOW};
use std::sync::OnceLock;

fn exercise(certificate: &Certificate) {
    let _ = certificate.key_kind();
    let _ = (
        certificate.serial(),
        certificate.not_before(),
        certificate.not_after(),
    );
    let _ = (
        certificate.display_name(),
        certificate.key_identifier(),
        certificate.key_id(),
    );
    for hash in CertIdHash::ALL {
        let _ = (certificate.name_hash(hash), certificate.key_hash(hash));
    }
    for issuer in issuers() {
        let _ = certificate.verify_issued_by(issuer);
        let _ = certificate.verify_ocsp_signer_for(issuer, NOW);
        let _ = certificate.same_entity(issuer);
    }
    let _ = certificate.verify_valid_at(NOW);
}

fn signers() -> &'static [Certificate; 2] {
    static SIGNERS: OnceLock<[Certificate; 2]> = OnceLock::new();
    SIGNERS.get_or_init(|| [certificate("ec/ocsp.pem"), certificate("rsa/ocsp.pem")])
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    match choice % 3 {
        0 => {
            if let Ok(certificate) = Certificate::from_der(rest.to_vec()) {
                exercise(&certificate);
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(certificates) = Certificate::all_from_pem(text) {
                certificates.iter().for_each(exercise);
            }
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let signer = &signers()[usize::from(choice >> 7)];
            let Ok(kind) = signer.key_kind() else { return };
            if let Ok(key) = SigningKey::from_pem(text, signer.public_key(), kind) {
                assert_eq!(key.public_key(), signer.public_key());
            }
        }
    }
});
