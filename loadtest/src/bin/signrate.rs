//! `signrate`: how many ECDSA P-256 / SHA-256 signatures ring makes per second on this
//! machine — on one thread, and on every core at once — the yardstick for the publisher's
//! signing rate (`ocsp-edge publish` signs with the same ring algorithm).
//!
//! ```text
//! signrate [--seconds 3] [--threads N (default: all cores)] [--message-bytes 250] [--json OUT]
//! ```

use clap::Parser;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "signrate",
    about = "ring ECDSA P-256 signatures per second, one core and all cores"
)]
struct Cli {
    /// Length of each measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Threads for the all-cores measurement (default: the available parallelism).
    #[arg(long)]
    threads: Option<usize>,
    /// Size of the signed message (a tbsResponseData is ~250 bytes).
    #[arg(long, default_value_t = 250)]
    message_bytes: usize,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Signs for `duration` on the calling thread; returns the number of signatures.
fn sign_for(key: &EcdsaKeyPair, message: &[u8], duration: Duration) -> u64 {
    let rng = SystemRandom::new();
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < duration {
        // Check the clock every 64 signatures (~1 ms): negligible next to signing.
        for _ in 0..64 {
            let signature = key.sign(&rng, message).expect("ECDSA signing");
            std::hint::black_box(signature);
        }
        count += 64;
    }
    count
}

/// Signatures per second of `threads` threads signing at once.
fn rate(key: &EcdsaKeyPair, message: &[u8], threads: usize, duration: Duration) -> f64 {
    let started = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| sign_for(key, message, duration)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("signing thread"))
            .sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(|_| "key generation")?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| "key parsing")?;
    let message = vec![0x5a; cli.message_bytes];
    let duration = Duration::from_secs_f64(cli.seconds);
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // A short warm-up (CPU frequency, page faults), then the two measurements.
    sign_for(&key, &message, Duration::from_millis(200));
    let single = rate(&key, &message, 1, duration);
    let all = rate(&key, &message, threads, duration);
    let document = serde_json::json!({
        "algorithm": "ECDSA_P256_SHA256_ASN1",
        "message_bytes": cli.message_bytes,
        "seconds": cli.seconds,
        "single_core_per_s": single,
        "threads": threads,
        "all_cores_per_s": all,
        "single_core_x_threads_per_s": single * threads as f64,
        "all_cores_scaling": all / (single * threads as f64),
    });
    println!(
        "ring ECDSA P-256: {single:.0} signatures/s on one thread; {all:.0}/s on {threads} threads ({:.2} × single × threads)",
        all / (single * threads as f64)
    );
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
    }
    Ok(())
}
