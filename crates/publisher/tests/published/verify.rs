use ocsp_edge_core::ocsp::RequestedCertId;
use ocsp_edge_core::pki::{CertIdHash, Certificate};
use ocsp_edge_core::snapshot::{
    document_bytes, is_ocsp_request_path, read_metadata, verify_manifest, ContentHash, Document,
    DocumentKind, Manifest, ManifestBody, Metadata, Snapshot, SnapshotBytes, SnapshotWriter, StatusChange,
    StoredStatus, TrustAnchors, FOOTER_LEN, FOOTER_MAGIC, FORMAT_VERSION,
};
use ocsp_edge_core::time::UnixTime;
use ocsp_edge_publisher::publish::{publish, PublishConfig};

const NOW: UnixTime = UnixTime(1_790_000_000);

/// A freshly published demo snapshot: (manifest bytes, snapshot bytes, trust anchors).
fn published() -> (Vec<u8>, Vec<u8>, TrustAnchors) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/publish.toml");
    let plan = PublishConfig::from_file(&path).unwrap().load(NOW).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
    let trust = TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect());
    (
        std::fs::read(report.manifest).unwrap(),
        std::fs::read(report.snapshot).unwrap(),
        trust,
    )
}

fn refusal(manifest: &[u8], snapshot: &[u8], trust: &TrustAnchors) -> &'static str {
    match Snapshot::verify(manifest, SnapshotBytes::Owned(snapshot.to_vec()), trust, NOW) {
        Ok(_) => "accepted",
        Err(e) => e.label(),
    }
}

fn edit_manifest(manifest: &[u8], edit: impl FnOnce(&mut Manifest)) -> Vec<u8> {
    let mut parsed = Manifest::parse(manifest).unwrap();
    edit(&mut parsed);
    parsed.to_json()
}

#[test]
fn every_refusal_reason_has_its_case() {
    let (manifest, snapshot, trust) = published();
    assert_eq!(refusal(&manifest, &snapshot, &trust), "accepted");

    let unsigned = edit_manifest(&manifest, |m| m.signatures.clear());
    assert_eq!(refusal(&unsigned, &snapshot, &trust), "unsigned");

    let forged = edit_manifest(&manifest, |m| m.body.size += 1);
    assert_eq!(refusal(&forged, &snapshot, &trust), "bad_signature");

    let future_format = edit_manifest(&manifest, |m| m.body.format_version = FORMAT_VERSION + 1);
    assert_eq!(refusal(&future_format, &snapshot, &trust), "unsupported_version");

    assert_eq!(refusal(b"{not json", &snapshot, &trust), "bad_manifest");
    let unknown_field = String::from_utf8(manifest.clone())
        .unwrap()
        .replacen('{', "{\"extra\": 1,", 1);
    assert_eq!(
        refusal(unknown_field.as_bytes(), &snapshot, &trust),
        "bad_manifest"
    );

    let stranger = TrustAnchors::new(vec![trust.issuers()[1].clone()]);
    assert_eq!(refusal(&manifest, &snapshot, &stranger), "untrusted_signer");

    // Shorter than stated: most likely still being copied (retried); longer: altered.
    assert_eq!(
        refusal(&manifest, &snapshot[..snapshot.len() - 1], &trust),
        "incomplete"
    );
    let mut longer = snapshot.clone();
    longer.push(0);
    assert_eq!(refusal(&manifest, &longer, &trust), "hash_mismatch");
    let mut flipped = snapshot.clone();
    flipped[snapshot.len() / 3] ^= 0x01;
    assert_eq!(refusal(&manifest, &flipped, &trust), "hash_mismatch");
}

#[test]
fn a_manifest_naming_a_file_outside_its_directory_is_refused_before_any_download() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/publish.toml");
    let plan = PublishConfig::from_file(&path).unwrap().load(NOW).unwrap();
    let (manifest, _, trust) = published();
    let signers: Vec<_> = plan
        .issuers
        .iter()
        .map(|i| (i.name.as_str(), &i.signer, &i.key))
        .collect();
    for name in ["../x.snapshot", "a/b.snapshot", ".hidden", ""] {
        let mut body = Manifest::parse(&manifest).unwrap().body;
        body.snapshot = name.to_string();
        // Properly signed, so only the name can be what is refused.
        let signed = Manifest::sign(body, &signers).unwrap().to_json();
        let refused = verify_manifest(&signed, &trust, NOW).err().map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("not a plain file name")),
            "{name}: {refused:?}"
        );
    }
}

#[test]
fn status_changes_list_exactly_the_certificates_whose_status_differs() {
    use ocsp_edge_core::model::{CertStatus, RevocationReason};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/publish.toml");
    let mut plan = PublishConfig::from_file(&path).unwrap().load(NOW).unwrap();
    let trust = TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect());
    let dir = tempfile::tempdir().unwrap();
    let load = |report: ocsp_edge_publisher::publish::PublishReport| {
        Snapshot::verify(
            &std::fs::read(report.manifest).unwrap(),
            SnapshotBytes::Owned(std::fs::read(report.snapshot).unwrap()),
            &trust,
            NOW,
        )
        .unwrap()
    };
    let before = load(publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap());
    let records = &mut plan.issuers[1].records;
    let good = records.iter().position(|r| r.status == CertStatus::Good).unwrap();
    records[good].status = CertStatus::Revoked {
        at: NOW,
        reason: Some(RevocationReason::KeyCompromise),
        invalidity: None,
    };
    let revoked_serial = records[good].serial.clone();
    let removed = records.pop().unwrap().serial;
    // Re-signed an hour later: every response differs, two statuses do.
    let after = load(publish(&plan, dir.path(), NOW.plus_seconds(3600), &mut |_| {}).unwrap());
    let changes = after.status_changes_since(&before);
    let rsa = plan.issuers[1].name.clone();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.iter().all(|c| c.issuer == rsa));
    assert!(changes.contains(&StatusChange {
        issuer: rsa.clone(),
        serial: revoked_serial,
        status: Some(StoredStatus::Revoked {
            at: NOW,
            reason: Some(RevocationReason::KeyCompromise)
        }),
    }));
    assert!(changes.contains(&StatusChange {
        issuer: rsa,
        serial: removed,
        status: None,
    }));
    assert!(before.status_changes_since(&before).is_empty());
}

// ---- Forging, as an attacker holding some keys would ------------------------------

fn demo_plan() -> ocsp_edge_publisher::publish::PublishPlan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/publish.toml");
    PublishConfig::from_file(&path).unwrap().load(NOW).unwrap()
}

type Signer<'a> = (&'a str, &'a Certificate, &'a ocsp_edge_core::pki::SigningKey);

fn signers_of(plan: &ocsp_edge_publisher::publish::PublishPlan) -> Vec<Signer<'_>> {
    plan.issuers
        .iter()
        .map(|i| (i.name.as_str(), &i.signer, &i.key))
        .collect()
}

/// `snapshot` with its metadata edited by `edit`, which may append bytes (documents)
/// after the existing records, tables and documents.
fn rewrite(snapshot: &[u8], edit: impl FnOnce(&mut Metadata, &mut Vec<u8>)) -> Vec<u8> {
    let mut metadata = read_metadata(snapshot).unwrap();
    let footer = &snapshot[snapshot.len() - FOOTER_LEN..];
    let metadata_offset = u64::from_le_bytes(footer[16..24].try_into().unwrap()) as usize;
    let mut out = snapshot[..metadata_offset].to_vec();
    edit(&mut metadata, &mut out);
    let json = serde_json::to_vec(&metadata).unwrap();
    let mut footer = [0u8; FOOTER_LEN];
    footer[..8].copy_from_slice(FOOTER_MAGIC);
    footer[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    footer[16..24].copy_from_slice(&(out.len() as u64).to_le_bytes());
    footer[24..32].copy_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend(json);
    out.extend(footer);
    out
}

/// Appends `bytes` to the file and serves them at `like.path` (replacing any document
/// there), described as `like` says.
fn plant(metadata: &mut Metadata, out: &mut Vec<u8>, like: Document, bytes: &[u8]) {
    metadata.documents.retain(|d| d.path != like.path);
    metadata.documents.push(Document {
        offset: out.len() as u64,
        length: bytes.len() as u64,
        sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes)),
        ..like
    });
    out.extend_from_slice(bytes);
}

/// A manifest for `snapshot` based on `template` (size and hash recomputed), edited by
/// `edit` and signed by `signers` only.
fn sign_for(
    template: &[u8],
    snapshot: &[u8],
    signers: &[Signer<'_>],
    edit: impl FnOnce(&mut ManifestBody),
) -> Vec<u8> {
    let mut body = Manifest::parse(template).unwrap().body;
    body.size = snapshot.len() as u64;
    let mut hash = ContentHash::new(body.chunk_size);
    hash.update(snapshot);
    body.sha256_tree = hex::encode(hash.finish().0);
    edit(&mut body);
    Manifest::sign(body, signers).unwrap().to_json()
}

fn document<'a>(metadata: &'a Metadata, path: &str) -> &'a Document {
    metadata.documents.iter().find(|d| d.path == path).unwrap()
}

fn document_mut<'a>(metadata: &'a mut Metadata, path: &str) -> &'a mut Document {
    metadata.documents.iter_mut().find(|d| d.path == path).unwrap()
}

/// Refusal label and message of a forged snapshot, signed by every demo signer.
fn forged_documents(edit: impl FnOnce(&mut Metadata, &mut Vec<u8>, &[u8])) -> (&'static str, String) {
    let plan = demo_plan();
    let (manifest, snapshot, trust) = published();
    let forged = rewrite(&snapshot, |metadata, out| edit(metadata, out, &snapshot));
    let signed = sign_for(&manifest, &forged, &signers_of(&plan), |_| {});
    match Snapshot::verify(&signed, SnapshotBytes::Owned(forged), &trust, NOW) {
        Ok(_) => ("accepted", String::new()),
        Err(e) => (e.label(), e.to_string()),
    }
}

#[test]
fn forging_helpers_alone_change_nothing() {
    // The attacks below are refused for what they change, not for how they are built.
    let (label, message) = forged_documents(|_, _, _| {});
    assert_eq!(label, "accepted", "{message}");
    let (label, message) = forged_documents(|metadata, out, original| {
        let crl = document(metadata, "/crl/ec.crl").clone();
        let bytes = document_bytes(original, &crl).unwrap().to_vec();
        plant(metadata, out, crl, &bytes);
    });
    assert_eq!(label, "accepted", "{message}");
}

#[test]
fn finding_1_an_unsigned_manifest_listing_no_issuers_is_refused() {
    let (manifest, _, trust) = published();
    // The reproduction: sequence u64::MAX, no issuers, no signatures, a ~150-byte file.
    for sequence in [u64::MAX, NOW.seconds() as u64 + 60] {
        let (empty, _) = SnapshotWriter::new(Vec::new(), sequence, NOW)
            .unwrap()
            .finish()
            .unwrap();
        let forged = sign_for(&manifest, &empty, &[], |body| {
            body.sequence = sequence;
            body.issuers.clear();
        });
        let parsed = Manifest::parse(&forged).unwrap();
        assert!(parsed.signatures.is_empty() && parsed.body.issuers.is_empty());
        assert!(empty.len() < 200, "a snapshot of nothing: {} bytes", empty.len());
        // The gate replication runs before believing a size or deleting anything.
        let refused = verify_manifest(&forged, &trust, NOW).err();
        assert_eq!(
            refused.as_ref().map(|e| e.label()),
            Some("issuer_set"),
            "{refused:?}"
        );
        assert_eq!(refusal(&forged, &empty, &trust), "issuer_set");
    }
}

#[test]
fn finding_2a_one_issuers_signer_cannot_publish_a_snapshot_without_the_others() {
    // Properly signed by the RSA signer alone, listing only rsa: the EC issuer's
    // answers and CRLs would vanish.
    let mut plan = demo_plan();
    let (_, _, trust) = published();
    plan.issuers.retain(|i| i.name == "rsa");
    let dir = tempfile::tempdir().unwrap();
    let report = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
    let manifest = std::fs::read(report.manifest).unwrap();
    let snapshot = std::fs::read(report.snapshot).unwrap();
    let refused = verify_manifest(&manifest, &trust, NOW).err();
    assert_eq!(
        refused.as_ref().map(|e| e.label()),
        Some("issuer_set"),
        "{refused:?}"
    );
    assert!(refused.unwrap().to_string().contains("does not cover"));
    assert_eq!(refusal(&manifest, &snapshot, &trust), "issuer_set");
    // It is exactly right for a responder that trusts only rsa.
    let only_rsa = TrustAnchors::new(vec![trust.issuers()[1].clone()]);
    assert_eq!(refusal(&manifest, &snapshot, &only_rsa), "accepted");
}

#[test]
fn an_issuer_listed_twice_is_refused() {
    // The RSA signer lists its issuer under a second name: two sections that answer
    // for the same CertIDs (the first would win, the second could shadow it later).
    let mut plan = demo_plan();
    plan.issuers.retain(|i| i.name == "rsa");
    let mut twin = demo_plan().issuers.remove(1);
    twin.name = "rsa-again".into();
    twin.crl = None;
    plan.issuers.push(twin);
    let dir = tempfile::tempdir().unwrap();
    let report = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
    let manifest = std::fs::read(report.manifest).unwrap();
    let snapshot = std::fs::read(report.snapshot).unwrap();
    let only_rsa = TrustAnchors::new(vec![plan.issuers[0].certificate.clone()]);
    assert_eq!(refusal(&manifest, &snapshot, &only_rsa), "issuer_set");

    // The same issuer name twice in a manifest is refused too.
    let (manifest, _, trust) = published();
    let plan = demo_plan();
    let mut body = Manifest::parse(&manifest).unwrap().body;
    let copy = body.issuers[1].clone();
    body.issuers.push(copy);
    let signed = Manifest::sign(body, &signers_of(&plan)).unwrap().to_json();
    let refused = verify_manifest(&signed, &trust, NOW).err();
    assert_eq!(refused.map(|e| e.label()), Some("issuer_set"));
}

#[test]
fn a_signature_no_listed_issuer_accounts_for_is_refused() {
    let (manifest, snapshot, trust) = published();
    let mut parsed = Manifest::parse(&manifest).unwrap();
    let extra = parsed.signatures[0].clone();
    parsed.signatures.push(extra);
    assert_eq!(refusal(&parsed.to_json(), &snapshot, &trust), "issuer_set");
}

#[test]
fn a_reissued_anchor_counts_as_the_same_issuer() {
    // Trusting the same CA certificate twice (as a re-issued certificate would be)
    // must not demand a second section for it.
    let (manifest, snapshot, trust) = published();
    let mut anchors = trust.issuers().to_vec();
    anchors.push(anchors[0].clone());
    assert_eq!(
        refusal(&manifest, &snapshot, &TrustAnchors::new(anchors)),
        "accepted"
    );
}

#[test]
fn a_sequence_or_creation_time_beyond_the_skew_is_refused_even_when_properly_signed() {
    let plan = demo_plan();
    let (manifest, snapshot, trust) = published();
    let skew = trust.max_sequence_skew().as_secs();
    for (sequence, label) in [
        (u64::MAX, "future_sequence"),
        (NOW.seconds() as u64 + skew + 1, "future_sequence"),
    ] {
        let signed = sign_for(&manifest, &snapshot, &signers_of(&plan), |b| {
            b.sequence = sequence
        });
        assert_eq!(
            verify_manifest(&signed, &trust, NOW).err().map(|e| e.label()),
            Some(label),
            "{sequence}"
        );
        assert_eq!(refusal(&signed, &snapshot, &trust), label);
    }
    // Exactly at the limit is still accepted by the manifest check.
    let at_limit = sign_for(&manifest, &snapshot, &signers_of(&plan), |b| {
        b.sequence = NOW.seconds() as u64 + skew
    });
    assert!(verify_manifest(&at_limit, &trust, NOW).is_ok());
    let tighter = trust
        .clone()
        .with_max_sequence_skew(std::time::Duration::from_secs(60));
    assert_eq!(
        verify_manifest(&at_limit, &tighter, NOW).err().map(|e| e.label()),
        Some("future_sequence")
    );

    let late = sign_for(&manifest, &snapshot, &signers_of(&plan), |b| {
        b.created_at = NOW.plus_seconds(skew as i64 + 1).to_rfc3339()
    });
    assert_eq!(
        verify_manifest(&late, &trust, NOW).err().map(|e| e.label()),
        Some("future_created_at")
    );
}

#[test]
fn a_crl_document_must_be_a_crl_its_issuer_signed_as_described() {
    // Bytes that are an OCSP response (say a replayed `good` one) at a CRL's path.
    let response = ocsp_response();
    let (label, message) = forged_documents(|metadata, out, _| {
        let crl = document(metadata, "/crl/ec.crl").clone();
        plant(metadata, out, crl, &response);
    });
    assert_eq!(label, "bad_document", "{message}");
    assert!(
        message.contains("/crl/ec.crl") && message.contains("not a DER CRL"),
        "{message}"
    );

    // The RSA issuer's genuine CRL, served as the EC issuer's.
    let (label, message) = forged_documents(|metadata, out, original| {
        let rsa = document_bytes(original, document(metadata, "/crl/rsa.crl"))
            .unwrap()
            .to_vec();
        let mut ec = document(metadata, "/crl/ec.crl").clone();
        let rsa_facts = document(metadata, "/crl/rsa.crl").clone();
        (ec.this_update, ec.next_update, ec.crl_number) =
            (rsa_facts.this_update, rsa_facts.next_update, rsa_facts.crl_number);
        plant(metadata, out, ec, &rsa);
    });
    assert_eq!(label, "bad_document", "{message}");
    assert!(message.contains("issuer"), "{message}");

    // A genuine CRL whose metadata claims a later nextUpdate (caching headers).
    let (label, message) = forged_documents(|metadata, _, _| {
        let crl = document_mut(metadata, "/crl/ec.crl");
        crl.next_update += 86_400;
    });
    assert_eq!(label, "bad_document", "{message}");
    assert!(message.contains("differ from the CRL's own"), "{message}");

    // ... or another cRLNumber.
    let (label, _) = forged_documents(|metadata, _, _| {
        let crl = document_mut(metadata, "/crl/rsa.crl");
        crl.crl_number = crl.crl_number.map(|n| n + 1);
    });
    assert_eq!(label, "bad_document");

    // A CRL served with another content type.
    let (label, _) = forged_documents(|metadata, _, _| {
        let crl = document_mut(metadata, "/crl/rsa.crl");
        crl.content_type = "application/ocsp-response".into();
    });
    assert_eq!(label, "bad_document");
}

#[test]
fn a_crl_is_served_only_at_a_path_and_as_a_kind_it_names() {
    // Partitions 0 and 1 swapped: each names its own URL in its issuingDistributionPoint.
    let (label, message) = forged_documents(|metadata, _, _| {
        let paths: Vec<_> = metadata.documents.iter().map(|d| d.path.clone()).collect();
        for document in &mut metadata.documents {
            document.path = match document.path.as_str() {
                "/crl/ec/0.crl" => "/crl/ec/1.crl".into(),
                "/crl/ec/1.crl" => "/crl/ec/0.crl".into(),
                other => other.into(),
            };
        }
        assert!(paths.contains(&"/crl/ec/0.crl".to_string()));
    });
    assert_eq!(label, "bad_document", "{message}");
    assert!(message.contains("issuingDistributionPoint"), "{message}");

    // The delta CRL described as the full CRL (and served at its path).
    let (label, message) = forged_documents(|metadata, out, original| {
        let delta = document(metadata, "/crl/ec-delta.crl").clone();
        let bytes = document_bytes(original, &delta).unwrap().to_vec();
        let full = document(metadata, "/crl/ec.crl").clone();
        let described = Document {
            kind: DocumentKind::CrlFull,
            this_update: delta.this_update,
            next_update: delta.next_update,
            crl_number: delta.crl_number,
            ..full
        };
        plant(metadata, out, described, &bytes);
    });
    assert_eq!(label, "bad_document", "{message}");
    assert!(message.contains("CrlFull"), "{message}");

    // The full CRL described as a partition.
    let (label, _) = forged_documents(|metadata, _, _| {
        let crl = document_mut(metadata, "/crl/ec.crl");
        crl.kind = DocumentKind::CrlPartition;
    });
    assert_eq!(label, "bad_document");
}

#[test]
fn the_crl_index_lists_only_its_issuers_partitions_with_their_freshness() {
    let (label, message) = forged_documents(|metadata, out, _| {
        let index = document(metadata, "/crl/ec.json").clone();
        let urls = serde_json::to_vec(&["http://127.0.0.1:8080/crl/rsa/0.crl"]).unwrap();
        plant(metadata, out, index, &urls);
    });
    assert_eq!(label, "bad_document", "{message}");
    assert!(message.contains("not a partition of issuer"), "{message}");

    let (label, _) = forged_documents(|metadata, _, _| {
        let index = document_mut(metadata, "/crl/ec.json");
        index.next_update += 86_400;
    });
    assert_eq!(label, "bad_document");
}

#[test]
fn finding_2b_nothing_but_the_responder_answers_at_an_ocsp_get_path() {
    use base64::Engine;
    // A genuine, issuer-signed CRL planted where an EC certificate's OCSP GET lands:
    // everything about it verifies except where it sits.
    let leaf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/ec/certs");
    let first = std::fs::read_dir(&leaf).unwrap().flatten().next().unwrap().path();
    let cert = Certificate::from_pem(&std::fs::read_to_string(first).unwrap()).unwrap();
    let ec = &demo_plan().issuers[0].certificate;
    let id = RequestedCertId {
        hash: CertIdHash::Sha1,
        issuer_name_hash: ec.name_hash(CertIdHash::Sha1),
        issuer_key_hash: ec.key_hash(CertIdHash::Sha1),
        serial: cert.serial().clone(),
    };
    let request = ocsp_edge_core::ocsp::encode_request(&id, None);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&request);
    let escaped = b64.replace('/', "%2F").replace('+', "%2B").replace('=', "%3D");
    for path in [
        format!("/{escaped}"),
        format!("/ocsp/{escaped}"),
        format!("/{b64}"),
    ] {
        assert!(is_ocsp_request_path(&path), "{path}");
        let (label, message) = forged_documents(|metadata, out, original| {
            let crl = document(metadata, "/crl/ec.crl").clone();
            let bytes = document_bytes(original, &crl).unwrap().to_vec();
            plant(
                metadata,
                out,
                Document {
                    path: path.clone(),
                    ..crl
                },
                &bytes,
            );
        });
        assert_eq!(label, "bad_document", "{path}: {message}");
        assert!(message.contains("OCSP GET request"), "{message}");
    }
    for path in ["/crl/ec.crl", "/crl/ec/0.crl", "/crl/ec.json", "/", "/ocsp/"] {
        assert!(!is_ocsp_request_path(path), "{path}");
    }
}

#[test]
fn a_snapshot_with_nothing_that_expires_is_refused() {
    // Readiness compares now with the earliest nextUpdate: i64::MAX would keep a
    // responder ready forever. Sections with no live entries and no documents.
    let (label, message) = forged_documents(|metadata, _, _| {
        metadata.documents.clear();
        for section in &mut metadata.issuers {
            section.live_entries = 0;
        }
    });
    assert_eq!(label, "corrupt", "{message}");
    assert!(message.contains("nextUpdate"), "{message}");
    // A section cannot claim to outlast the responses it holds.
    let plan = demo_plan();
    let (manifest, snapshot, trust) = published();
    let honest = Snapshot::verify(&manifest, SnapshotBytes::Owned(snapshot.clone()), &trust, NOW)
        .unwrap()
        .earliest_next_update();
    let forged = rewrite(&snapshot, |metadata, _| {
        metadata.documents.clear();
        for section in &mut metadata.issuers {
            section.earliest_next_update = i64::MAX;
        }
    });
    let signed = sign_for(&manifest, &forged, &signers_of(&plan), |_| {});
    let claimed = Snapshot::verify(&signed, SnapshotBytes::Owned(forged), &trust, NOW)
        .unwrap()
        .earliest_next_update();
    assert!(
        claimed < UnixTime(i64::MAX) && claimed >= honest,
        "{claimed} vs {honest}"
    );
}

/// A genuine OCSP response of the demo snapshot (the first EC record's).
fn ocsp_response() -> Vec<u8> {
    let plan = demo_plan();
    let (manifest, snapshot, trust) = published();
    let snapshot = Snapshot::verify(&manifest, SnapshotBytes::Owned(snapshot), &trust, NOW).unwrap();
    let ec = &plan.issuers[0].certificate;
    let id = RequestedCertId {
        hash: CertIdHash::Sha1,
        issuer_name_hash: ec.name_hash(CertIdHash::Sha1),
        issuer_key_hash: ec.key_hash(CertIdHash::Sha1),
        serial: plan.issuers[0].records[0].serial.clone(),
    };
    let mut out = Vec::new();
    snapshot.lookup(&id).unwrap().write_response(&mut out);
    out
}

#[test]
fn a_signer_outside_its_validity_is_untrusted() {
    let (manifest, snapshot, trust) = published();
    let long_after = UnixTime(4_102_444_800); // 2100, after every demo certificate
    let refused = Snapshot::verify(&manifest, SnapshotBytes::Owned(snapshot), &trust, long_after);
    assert_eq!(refused.err().map(|e| e.label()), Some("untrusted_signer"));
}
