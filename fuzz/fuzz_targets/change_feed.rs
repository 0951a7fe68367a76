//! The change feed as a cache receives it from a hub: the JSON of a `200` (`ChangeFeed`)
//! or a `410` (`Gone`) answer, then the cache's `plan` for it.
//!
//! Properties: no panic; a plan acknowledges a sequence only from an answer that starts
//! where the cache asked; it invalidates at most two keys (SHA-1 and SHA-256 CertIDs) per
//! change listed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocsp_edge::cache::feed::{plan, Answer, ChangeFeed, Gone, Plan};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, json)) = data.split_first() else {
        return;
    };
    if choice & 1 == 1 {
        if let Ok(gone) = serde_json::from_slice::<Gone>(json) {
            let to = gone.to;
            assert_eq!(
                plan(None, Answer::Gone(gone)),
                Ok(Plan::InvalidateAll { acknowledge: to })
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
    let (from, to, changes) = (feed.from, feed.to, feed.changes.len());
    match plan(asked, Answer::Changes(feed)) {
        Ok(Plan::Nothing) => assert_eq!(from, to),
        Ok(Plan::Invalidate { keys, acknowledge }) => {
            assert_eq!(asked.unwrap_or(0), from);
            assert!(acknowledge == to && to > from);
            assert!(keys.len() <= 2 * changes);
        }
        Ok(Plan::InvalidateAll { .. }) => panic!("a 200 answer never invalidates everything"),
        Err(_) => {}
    }
});
