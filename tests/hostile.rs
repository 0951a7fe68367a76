//! Attack tests against running responders, hubs and caches (issue 12): one submodule per
//! area under `tests/hostile/`. Each test plays the attacker and checks what an honest
//! client then sees: every certificate's answer stays correct, nothing is persisted from
//! what was refused, and the refusal is counted by reason.

mod common;

#[path = "hostile/feed.rs"]
mod feed;
#[path = "hostile/http.rs"]
mod http;
#[path = "hostile/manifests.rs"]
mod manifests;
#[path = "hostile/replication.rs"]
mod replication;
#[path = "hostile/unrevoke.rs"]
mod unrevoke;
