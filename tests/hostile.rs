//! Attack tests against running responders, hubs and caches (issue 12): one submodule per
//! area under `tests/hostile/`. Each test plays the attacker and checks what an honest
//! client then sees.

mod common;

#[path = "hostile/feed.rs"]
mod feed;
#[path = "hostile/http.rs"]
mod http;
#[path = "hostile/replication.rs"]
mod replication;
