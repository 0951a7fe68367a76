//! The one harness every integration test binary uses (`mod common;`): the demo PKI, the
//! publisher (in-process and `publish --watch`), responders in-process and as a child
//! process, origins, a raw HTTP/1.1 client, external programs (`openssl`, and
//! [`skip_without`] for tools that may be missing), OCSP bytes, certificates and CRLs
//! decoded with rasn-pkix, network namespaces and PostgreSQL. Each area is a submodule;
//! the general ones are re-exported here, so a test writes `use common::*;`.
#![allow(dead_code, unused_imports)]

mod edge;
mod http;
pub mod netns;
mod ocsp;
mod openssl;
mod origin;
mod pki;
mod process;
mod publisher;
mod x509;

pub use edge::*;
pub use http::*;
pub use ocsp::*;
pub use openssl::*;
pub use origin::*;
pub use pki::*;
pub use process::*;
pub use publisher::*;
pub use x509::*;

pub mod postgres;

use ocsp_edge::config::{Config, Sources};
use ocsp_edge::publish::{PublishConfig, PublishReport};
use ocsp_edge::server::Background;
use ocsp_edge::time::UnixTime;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
