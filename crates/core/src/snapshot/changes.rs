//! The change list between two consecutive snapshots, and the digest of it a publisher
//! signs in the newer one's manifest ([`ChangeDigest`], defined with the manifest that
//! carries it).
//!
//! The change list is what a cache must invalidate to go from the older snapshot to the
//! newer one: every certificate the older snapshot lists whose status differs in the
//! newer one (revoked, reason or time changed, or removed). Newly issued certificates are
//! left out: a cache only holds answers for serials a hub listed, so no cache can hold one
//! for a certificate the older snapshot did not list, and leaving issuance out keeps the
//! list proportional to revocations.
//!
//! The digest covers exactly what a cache acts on, the (issuer section name, serial)
//! pairs, in a canonical order and encoding, so a hub and a cache that received the list
//! in any order compute the same value. It does not cover the new statuses: a cache never
//! uses them (it drops the entries and asks again), so signing them would protect nothing
//! and make every feed record carry them.
//!
//! No I/O; the publisher (`publish::changes`), the hub (`server::changes`) and the
//! cache (`cache::feed`) all compute the list or its digest through this module,
//! so the three cannot drift apart. Must never trust a digest it did not compute: callers
//! compare against a signed one.

use super::manifest::ChangeDigest;
use super::verify::{IssuerHashes, Snapshot};
use crate::model::Serial;
use std::collections::BTreeMap;

/// Prefix of the digested encoding: a digest of one kind of list can never be taken for
/// another's.
const DIGEST_CONTEXT: &[u8] = b"ocsp-edge change list v1\0";

/// One certificate in a change list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangedCertificate {
    /// Issuer section name.
    pub issuer: String,
    /// The certificate's serial.
    pub serial: Serial,
}

/// The change list from `older` to `newer`, or `None` when the two cannot be compared
/// serial by serial (an issuer of `older` is missing from `newer`, or its certificate
/// changed under the same name): then there is no list, and whoever follows the changes
/// must start over. Blocking: walks both snapshots' tables (a delta over the same base:
/// only the deltas).
pub fn changes_between(older: &Snapshot, newer: &Snapshot) -> Option<Vec<ChangedCertificate>> {
    let newer_issuers: BTreeMap<&str, IssuerHashes> = newer.issuer_hashes().collect();
    let comparable = older
        .issuer_hashes()
        .all(|(name, hashes)| newer_issuers.get(name) == Some(&hashes));
    if !comparable {
        return None;
    }
    let changes = newer
        .status_changes_since(older)
        .into_iter()
        .filter(|change| change.status.is_none() || older.lists(&change.issuer, &change.serial))
        .map(|change| ChangedCertificate {
            issuer: change.issuer,
            serial: change.serial,
        })
        .collect();
    Some(changes)
}

/// The digest a manifest carries for `changes` (in any order; duplicates count once,
/// since invalidating a certificate twice is invalidating it once). `since` is the older
/// snapshot's sequence.
pub fn digest<'a>(since: u64, changes: impl IntoIterator<Item = (&'a str, &'a Serial)>) -> ChangeDigest {
    let mut sorted: Vec<(&str, &[u8])> = changes
        .into_iter()
        .map(|(issuer, serial)| (issuer, serial.as_der_content()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(DIGEST_CONTEXT);
    for (issuer, serial) in &sorted {
        // Length-prefixed fields: no two different lists share an encoding.
        context.update(&(issuer.len() as u64).to_be_bytes());
        context.update(issuer.as_bytes());
        context.update(&(serial.len() as u64).to_be_bytes());
        context.update(serial);
    }
    ChangeDigest {
        since,
        count: sorted.len() as u64,
        sha256: hex::encode(context.finish().as_ref()),
    }
}

/// [`digest`] of a list from [`changes_between`].
pub fn digest_of(since: u64, changes: &[ChangedCertificate]) -> ChangeDigest {
    digest(since, changes.iter().map(|c| (c.issuer.as_str(), &c.serial)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial(hex: &str) -> Serial {
        Serial::from_hex(hex).unwrap()
    }

    #[test]
    fn the_digest_ignores_order_and_duplicates() {
        let (a, b) = (serial("0A"), serial("0B"));
        let one = digest(7, [("ec", &a), ("rsa", &b)]);
        let other = digest(7, [("rsa", &b), ("ec", &a), ("ec", &a)]);
        assert_eq!(one, other);
        assert_eq!(one.count, 2);
        assert_eq!(one.since, 7);
        assert_eq!(one.sha256.len(), 64);
    }

    #[test]
    fn the_digest_changes_with_every_part_of_the_list() {
        let (a, b) = (serial("0A"), serial("0B"));
        let base = digest(7, [("ec", &a), ("rsa", &b)]);
        let different = [
            digest(7, [("ec", &a)]),
            digest(7, []),
            digest(7, [("ec", &a), ("rsa", &a)]),
            digest(7, [("ec", &a), ("ec", &b)]),
            digest(7, [("ec", &a), ("rsa", &b), ("rsa", &serial("0C"))]),
        ];
        for other in different {
            assert_ne!(base.sha256, other.sha256, "{other:?}");
        }
        // Fields are length-prefixed: moving a byte from the name into the serial is
        // another list.
        assert_ne!(
            digest(1, [("e", &serial("6301"))]).sha256,
            digest(1, [("ec", &serial("01"))]).sha256
        );
        // A serial whose top bit is set keeps its sign byte: 0x00FF and 0xFF differ.
        assert_ne!(
            digest(1, [("ec", &serial("FF"))]).sha256,
            digest(1, [("ec", &serial("7F"))]).sha256
        );
    }

    #[test]
    fn an_empty_list_has_a_fixed_digest() {
        // SHA-256 of the context alone: pinned, so an encoding change is deliberate.
        let expected = hex::encode(ring::digest::digest(&ring::digest::SHA256, DIGEST_CONTEXT));
        assert_eq!(digest(3, []).sha256, expected);
        assert_eq!(digest(3, []).count, 0);
    }

    #[test]
    fn the_manifest_field_round_trips_and_refuses_unknown_fields() {
        let d = digest(5, [("ec", &serial("01"))]);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<ChangeDigest>(&json).unwrap(), d);
        let extra = json.replacen('{', "{\"extra\":1,", 1);
        assert!(serde_json::from_str::<ChangeDigest>(&extra).is_err());
    }
}
