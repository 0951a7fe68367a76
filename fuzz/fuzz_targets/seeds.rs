//! Not a fuzz target: writes every target's seed corpus (see `ocsp_edge_fuzz_common::seeds`)
//! into `$FUZZ_SEEDS_DIR` (default `fuzz/seeds`) at start-up and exits. It lives here so
//! that it shares the fuzz build instead of needing a second build of ocsp-edge.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn write_seeds_and_exit() {
    let root = std::env::var_os("FUZZ_SEEDS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"));
    let written = ocsp_edge_fuzz_common::seeds::write_all(&root);
    println!("wrote {written} seeds under {}", root.display());
    std::process::exit(0)
}

fuzz_target!(init: write_seeds_and_exit(), |_data: &[u8]| {});
