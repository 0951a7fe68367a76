//! Incremental publishing: deciding what a delta against a full snapshot must carry.
//!
//! A delta is cumulative: it holds every record that differs from its base, so a
//! responder needs only the base and the newest delta, never a chain. For each
//! certificate of the new state, the previous answer (the previous delta's record, else
//! the base's) is kept if its status is unchanged and it is younger than
//! `refresh_after`; a kept base record costs nothing, a kept delta record is carried with
//! its signatures. Everything else is signed anew; a certificate the base has and the new
//! state lacks becomes a tombstone. No I/O, no signing: the caller does both.

use ocsp_edge_core::model::{CertRecord, CertStatus, Serial};
use ocsp_edge_core::snapshot::{merge_by_serial, LoadedSection, ResponseTimes, StoredRecord, StoredStatus};
use ocsp_edge_core::time::UnixTime;
use std::time::Duration;

/// One record of the delta being written, in serial order.
pub enum DeltaItem<'a> {
    /// A previous delta's record, still fresh and with the same status: carried as is.
    Keep {
        record: StoredRecord<'a>,
        times: ResponseTimes,
    },
    /// Signed anew.
    Sign(&'a CertRecord),
    /// In the base, gone from the new state.
    Remove(Serial),
}

/// What a delta section holds and what the merged section serves.
pub struct SectionDelta<'a> {
    pub items: Vec<DeltaItem<'a>>,
    /// Certificates the merged section serves.
    pub live: u64,
    /// Earliest nextUpdate of the base records the delta leaves in place.
    pub base_earliest_next_update: i64,
}

/// One layer's section: the mapped bytes and the section read from them.
#[derive(Clone, Copy)]
pub struct Layer<'a> {
    pub bytes: &'a [u8],
    pub section: &'a LoadedSection,
}

impl<'a> Layer<'a> {
    fn records(self) -> impl Iterator<Item = (Serial, (StoredRecord<'a>, Option<ResponseTimes>))> + 'a {
        let section = self.section;
        self.section
            .records(self.bytes)
            .filter_map(move |r| Some((Serial::from_der_content(r.serial)?, (r, section.times_of(&r)))))
    }
}

/// Plans one issuer's delta section. `records` must be sorted by serial.
pub fn plan_section<'a>(
    records: &[&'a CertRecord],
    base: Layer<'a>,
    previous_delta: Option<Layer<'a>>,
    now: UnixTime,
    refresh_after: Duration,
) -> SectionDelta<'a> {
    let fresh = |times: &Option<ResponseTimes>| {
        times.is_some_and(|t| {
            t.this_update + refresh_after.as_secs() as i64 > now.seconds() && t.next_update > now.seconds()
        })
    };
    let overlay: Box<dyn Iterator<Item = _>> = match previous_delta {
        Some(layer) => Box::new(layer.records()),
        None => Box::new(std::iter::empty()),
    };
    let previous = merge_by_serial(overlay, base.records());
    let wanted = records.iter().map(|r| (r.serial.clone(), *r));
    let mut plan = SectionDelta {
        items: Vec::new(),
        live: 0,
        base_earliest_next_update: i64::MAX,
    };
    for (serial, new, (overlay, below)) in merge_by_serial(wanted, previous.map(|(s, o, b)| (s, (o, b))))
        .map(|(serial, new, previous)| (serial, new, previous.unwrap_or((None, None))))
    {
        let Some(new) = new else {
            if below.is_some() {
                plan.items.push(DeltaItem::Remove(serial));
            }
            continue;
        };
        plan.live += 1;
        let status = stored_status(&new.status);
        match (overlay, below) {
            (Some((record, times)), _) if record.status == Some(status) && fresh(&times) => {
                if let Some(times) = times {
                    plan.items.push(DeltaItem::Keep { record, times });
                }
            }
            (None, Some((record, times))) if record.status == Some(status) && fresh(&times) => {
                if let Some(times) = times {
                    plan.base_earliest_next_update = plan.base_earliest_next_update.min(times.next_update);
                }
            }
            _ => plan.items.push(DeltaItem::Sign(new)),
        }
    }
    plan
}

pub fn stored_status(status: &CertStatus) -> StoredStatus {
    match status {
        CertStatus::Good => StoredStatus::Good,
        CertStatus::Revoked { at, reason, .. } => StoredStatus::Revoked {
            at: *at,
            reason: *reason,
        },
    }
}
