//! Core tests that need a real published snapshot: verification (`snapshot::verify`), the
//! un-revocation check (`snapshot::unrevoke`) and answering (`responder`). They live here,
//! not in the core, because the core cannot depend on the publisher, even for tests (a
//! dev-dependency cycle would build two copies of every core type).

#[path = "published/responder.rs"]
mod responder;
#[path = "published/unrevoke.rs"]
mod unrevoke;
#[path = "published/verify.rs"]
mod verify;
