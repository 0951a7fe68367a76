//! The ocsp-edge publisher: runs next to the CA, holds the signing keys (in files or a
//! PKCS#11 token) and turns a CA's records into a signed snapshot, its CRLs and its
//! manifest (see [`publish`]). Depends on the core and the transport (for the S3 upload)
//! only: nothing here knows the edge, and the edge never links this crate.

pub mod publish;
