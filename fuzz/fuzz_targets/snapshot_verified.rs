//! The whole snapshot verifier (`Snapshot::verify`) on mutated snapshot files, each given
//! a manifest that vouches for exactly those bytes, signed by the demo EC issuer's OCSP
//! signer: so mutations get past the signature and integrity checks and reach what stands
//! behind them — the structure checks, matching sections to the manifest and the trust
//! anchors, the document index — and then what a responder does with a snapshot it
//! trusts: lookups, the record walks of `live_statuses`, documents, and the change-feed
//! diff against the unmutated snapshot.
//!
//! Property: a snapshot that passes verification never makes a lookup, walk or diff
//! panic, read out of bounds or loop. (A signed snapshot is trusted for its *contents*;
//! it must still never crash the responder.) Deltas are not reached: a delta names its
//! base by hash, which a mutation cannot keep matching.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocsp_edge::model::Serial;
use ocsp_edge::ocsp::RequestedCertId;
use ocsp_edge::pki::CertIdHash;
use ocsp_edge::snapshot::{
    read_metadata, ContentHash, Manifest, ManifestBody, ManifestIssuer, Snapshot, SnapshotBytes,
    FORMAT_VERSION,
};
use ocsp_edge::time::UnixTime;
use ocsp_edge_fuzz_common::{ec_signer, issuers, published_ec, trust_ec, NOW};

const CHUNK_SIZE: u64 = 64 << 10;

/// A manifest for `bytes` as the publisher would sign it, or `None` when the bytes have
/// no metadata to describe.
fn manifest_for(bytes: &[u8]) -> Option<Vec<u8>> {
    let metadata = read_metadata(bytes).ok()?;
    let mut hash = ContentHash::new(CHUNK_SIZE);
    hash.update(bytes);
    let (root, size) = hash.finish();
    let issuers: Vec<ManifestIssuer> = metadata
        .issuers
        .iter()
        .map(|section| ManifestIssuer {
            name: section.name.clone(),
            subject: String::new(),
            entries: section.entry_count,
        })
        .collect();
    // Built from JSON so that optional fields the manifest gains keep their defaults.
    let body: ManifestBody = serde_json::from_value(serde_json::json!({
        "format_version": FORMAT_VERSION,
        "sequence": metadata.sequence,
        "created_at": UnixTime(metadata.created_at).to_rfc3339(),
        "snapshot": "snapshot.bin",
        "size": size,
        "chunk_size": CHUNK_SIZE,
        "sha256_tree": hex_lower(&root),
        "base": metadata.base,
        "earliest_next_update": NOW.to_rfc3339(),
        "issuers": issuers,
    }))
    .ok()?;
    let (certificate, key) = ec_signer();
    let names: Vec<&str> = metadata.issuers.iter().map(|s| s.name.as_str()).collect();
    let signers: Vec<_> = names.iter().map(|name| (*name, certificate, key)).collect();
    Some(Manifest::sign(body, &signers).ok()?.to_json())
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let original = &published_ec().snapshot;
    let Some(manifest) = manifest_for(data) else {
        return;
    };
    let Ok(snapshot) = Snapshot::verify(&manifest, SnapshotBytes::Owned(data.to_vec()), &trust_ec(), NOW)
    else {
        return;
    };
    let ec = &issuers()[0];
    let names: Vec<String> = snapshot.issuer_names().map(str::to_string).collect();
    for (position, name) in names.iter().enumerate() {
        for (serial, _status) in snapshot.live_statuses(position).take(64) {
            for hash in CertIdHash::ALL {
                let id = RequestedCertId {
                    hash,
                    issuer_name_hash: ec.name_hash(hash),
                    issuer_key_hash: ec.key_hash(hash),
                    serial: serial.clone(),
                };
                if let Ok(found) = snapshot.lookup(&id) {
                    assert_eq!(found.serial, serial.as_der_content());
                    assert_eq!(found.response().len(), found.response_len());
                }
            }
            let _ = snapshot.lists(name, &serial);
        }
        let _ = snapshot.lists(name, &Serial::from_hex("01").expect("serial 01"));
    }
    for document in snapshot.documents() {
        let (_, bytes) = snapshot
            .document(&document.path)
            .expect("verified documents are served");
        assert_eq!(bytes.len() as u64, document.length);
    }
    let _ = ocsp_edge::cache::feed::step_between(original, &snapshot);
    let _ = ocsp_edge::cache::feed::step_between(&snapshot, original);
});
