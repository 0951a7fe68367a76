//! Manifest JSON (`Manifest::parse`) and its verification against the demo trust anchors
//! (`verify_manifest`, which replication runs on every manifest a source offers before
//! trusting the size it names).
//!
//! Properties: no panic; a manifest that parses writes back to JSON that parses to the
//! same manifest (what is signed is rebuilt from the parsed body, so a lossy round trip
//! would let two texts share a signature).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocsp_edge::snapshot::{verify_manifest, Manifest};
use ocsp_edge_fuzz_common::{trust, NOW};
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static TRUST: OnceLock<ocsp_edge::snapshot::TrustAnchors> = OnceLock::new();
    let trust = TRUST.get_or_init(trust);
    let verified = verify_manifest(data, trust, NOW);
    let Ok(manifest) = Manifest::parse(data) else {
        assert!(verified.is_err());
        return;
    };
    assert_eq!(Manifest::parse(&manifest.to_json()).as_ref(), Ok(&manifest));
    if let Ok((checked, anchors)) = verified {
        assert_eq!(checked, manifest);
        assert_eq!(anchors.len(), manifest.body.issuers.len());
    }
});
