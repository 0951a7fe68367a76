//! The change feed as a cache receives it from a hub: the JSON of a `200` (`ChangeFeed`,
//! each step carrying the signed manifest it leads to as evidence) or a `410` (`Gone`),
//! then the cache's `plan` for it, with the demo issuers as trust anchors.
//!
//! Properties: no panic; a plan acknowledges a sequence only from an answer that starts
//! where the cache asked, never below the floor it has already acknowledged, and a `410`
//! only at the sequence its manifest signs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocsp_edge::cache::feed::{plan, Answer, ChangeFeed, FeedTrust, Gone, Plan};
use ocsp_edge_fuzz_common::{issuers, NOW};
use std::sync::OnceLock;

fn trust() -> &'static FeedTrust {
    static TRUST: OnceLock<FeedTrust> = OnceLock::new();
    TRUST.get_or_init(|| FeedTrust::new(issuers()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, json)) = data.split_first() else {
        return;
    };
    // The sequence the cache has acknowledged: none, or near what the seeds carry.
    let floor = u64::from(choice >> 4) * 0x1000_0000;
    if choice & 1 == 1 {
        let Ok(gone) = serde_json::from_slice::<Gone>(json) else {
            return;
        };
        let to = gone.to;
        if let Ok(planned) = plan(None, floor, Answer::Gone(gone), trust(), NOW) {
            assert!(
                matches!(planned, Plan::InvalidateAll { acknowledge, .. } if acknowledge == to && to >= floor)
            );
        }
        return;
    }
    let Ok(feed) = serde_json::from_slice::<ChangeFeed>(json) else {
        return;
    };
    // Ask for exactly where the feed starts, or for something else.
    let asked = match choice >> 1 & 3 {
        0 => None,
        1 => Some(feed.from),
        2 => Some(feed.from.wrapping_add(1)),
        _ => Some(feed.to),
    };
    let (from, to) = (feed.from, feed.to);
    match plan(asked, floor, Answer::Changes(feed), trust(), NOW) {
        Ok(Plan::Nothing) => assert_eq!(from, to),
        Ok(Plan::Invalidate { acknowledge, .. }) => {
            assert_eq!(asked, Some(from));
            assert!(acknowledge == to && to > from && to >= floor);
        }
        Ok(Plan::InvalidateAll { .. }) => panic!("a 200 answer never invalidates everything"),
        Err(_) => {}
    }
});
