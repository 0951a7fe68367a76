//! The snapshot file format without the signature gate: `SnapshotView::open` (footer,
//! metadata JSON, issuer sections, table bounds and order, document bounds) on any bytes,
//! then every way a responder reads an opened file: the sequential record walk, lookups
//! through the hash index and the sorted search, and rebuilding responses from records.
//!
//! Properties: no panic, no hang (libFuzzer's -timeout), no huge allocation (-rss_limit);
//! a lookup returns only the record it was asked for; a response is built at exactly
//! the length `response_len` announces; every listed document lies inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocsp_edge::model::Serial;
use ocsp_edge::pki::CertIdHash;
use ocsp_edge::snapshot::{document_bytes, SnapshotView};

/// Responses rebuilt per section: enough to reach every record shape, few enough that a
/// large seed stays fast.
const RESPONSES_PER_SECTION: usize = 4;

fuzz_target!(|data: &[u8]| {
    let Ok(view) = SnapshotView::open(data) else {
        return;
    };
    for document in &view.metadata().documents {
        assert!(
            document_bytes(data, document).is_some(),
            "open accepted a document out of bounds"
        );
    }
    for (position, section) in view.sections().iter().enumerate() {
        let mut walked = 0u64;
        for record in section.records(data) {
            walked += 1;
            if let Some(found) = section.record(data, record.serial) {
                assert_eq!(found.serial, record.serial, "a lookup returned another record");
            }
            let _ = section.times_of(&record);
            if walked as usize > RESPONSES_PER_SECTION {
                continue;
            }
            for hash in CertIdHash::ALL {
                if let Some(Ok(found)) = section.found(data, record.serial, hash) {
                    assert_eq!(found.response().len(), found.response_len());
                    let _ = found.etag();
                }
            }
            if let Some(serial) = Serial::from_der_content(record.serial) {
                if let Some(found) = view.lookup(position, &serial, CertIdHash::Sha256) {
                    assert_eq!(found.serial, serial.as_der_content());
                }
            }
        }
        assert!(walked <= section.section.entry_count);
        // Serials that are not in the table: around the ends and a long one.
        for probe in [&[0x00][..], &[0x7f; 20][..], &[0x01; 23][..], &[0x01; 30][..]] {
            if let Some(found) = section.record(data, probe) {
                assert_eq!(found.serial, probe);
            }
        }
    }
});
