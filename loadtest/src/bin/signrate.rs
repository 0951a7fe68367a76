//! `signrate`: how many ECDSA P-256 / SHA-256 signatures ring makes per second on this
//! machine — on one thread, and on every core at once — the yardstick for the publisher's
//! signing rate (`ocsp-edge publish` signs with the same ring algorithm).
//!
//! ```text
//! signrate [--seconds 3] [--threads N (default: all cores)] [--message-bytes 250] [--json OUT]
//! signrate --hsm [--records 100000] [--json OUT]
//! ```
//!
//! `--hsm` measures signing through a PKCS#11 token instead (issue 15): it creates a
//! SoftHSM2 token in a temporary directory (softhsm2-util, pkcs11-tool and openssl must be
//! installed), generates a non-extractable P-256 OCSP signer in it, certifies it with the
//! demo EC CA, and reports in one run: the token's single-session sign rate, the
//! publisher's rate through the token (a real `publish` of `--records` certificates, two
//! signatures each, sessions pooled one per signing thread), the same publish with the
//! demo PEM key, and the cores. Goal: publisher through the token ≥ 0.8 × single-session
//! rate × cores.

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
    /// Measure signing through a SoftHSM2 token (see the module documentation).
    #[arg(long)]
    hsm: bool,
    /// With --hsm: certificates in the measured publishes.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
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
    if cli.hsm {
        return hsm::run(cli.records, cli.seconds, cli.json.as_deref());
    }
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

/// `--hsm`: the token's single-session rate against the publisher's rate through it.
mod hsm {
    use ocsp_edge::publish::{publish, PublishConfig};
    use ocsp_edge::time::UnixTime;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::{Duration, Instant};

    type Error = Box<dyn std::error::Error>;

    const TOKEN: &str = "signrate";
    // A throwaway token in a temporary directory; the PIN only protects the benchmark key.
    const PIN: &str = "1234";

    fn demo(file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/demo/ec")
            .join(file)
    }

    fn module() -> Result<PathBuf, Error> {
        [
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| "libsofthsm2.so not found: install softhsm2".into())
    }

    fn succeed(command: &mut Command) -> Result<(), Error> {
        let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(())
    }

    /// A token holding a P-256 signer and its certificate from the demo EC CA; returns
    /// the key's URI and the certificate's path.
    fn make_token(dir: &Path, module: &Path) -> Result<(String, PathBuf), Error> {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens)?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )?;
        // Before any PKCS#11 module is loaded in this process, which reads it once.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        succeed(Command::new("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            "12345678",
            "--pin",
            PIN,
        ]))?;
        let tool = |args: &[&str]| {
            let mut command = Command::new("pkcs11-tool");
            command
                .arg("--module")
                .arg(module)
                .args(["--token-label", TOKEN, "--login", "--pin", PIN])
                .args(args);
            command
        };
        succeed(&mut tool(&[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--usage-sign",
            "--label",
            "signer",
            "--id",
            "01",
        ]))?;
        let public_der = dir.join("signer.pub.der");
        let public_pem = dir.join("signer.pub.pem");
        succeed(tool(&["--read-object", "--type", "pubkey", "--id", "01", "-o"]).arg(&public_der))?;
        succeed(
            Command::new("openssl")
                .args(["pkey", "-pubin", "-inform", "DER", "-in"])
                .arg(&public_der)
                .arg("-out")
                .arg(&public_pem),
        )?;
        let extensions = dir.join("ext.cnf");
        std::fs::write(
            &extensions,
            "[s]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\n\
             noCheck=ignored\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n",
        )?;
        let certificate = dir.join("signer.pem");
        succeed(
            Command::new("openssl")
                .args([
                    "x509",
                    "-new",
                    "-subj",
                    "/CN=signrate HSM OCSP signer",
                    "-days",
                    "30",
                    "-extensions",
                    "s",
                ])
                .arg("-force_pubkey")
                .arg(&public_pem)
                .arg("-CA")
                .arg(demo("ca.pem"))
                .arg("-CAkey")
                .arg(demo("ca.key"))
                .arg("-extfile")
                .arg(&extensions)
                .arg("-out")
                .arg(&certificate),
        )?;
        std::fs::write(dir.join("pin"), PIN)?;
        let uri = format!(
            "pkcs11:token={TOKEN};object=signer?module-path={}&pin-source=file:{}",
            module.display(),
            dir.join("pin").display()
        );
        Ok((uri, certificate))
    }

    /// Publishes the feed once with this signer; returns signatures per second.
    /// A rate measured two ways: per wall-clock second, and per CPU-second of this process
    /// (the token runs in the process too). On a machine shared with other work the wall
    /// rate depends on what else runs; signatures per CPU-second do not, and × cores they
    /// are what the same code reaches with the cores to itself.
    #[derive(Clone, Copy)]
    struct Rate {
        wall: f64,
        per_cpu_second: f64,
    }

    fn measure(work: impl FnOnce() -> Result<u64, Error>) -> Result<Rate, Error> {
        let ticks = loadtest::cpu::cpu_ticks(None).unwrap_or(0);
        let started = Instant::now();
        let signatures = work()? as f64;
        let wall = started.elapsed().as_secs_f64();
        let spent = loadtest::cpu::cpu_ticks(None).unwrap_or(0).saturating_sub(ticks);
        let cpu = spent as f64 / loadtest::cpu::clock_ticks_per_second() as f64;
        Ok(Rate {
            wall: signatures / wall,
            per_cpu_second: signatures / cpu.max(1e-9),
        })
    }

    /// Publishes the feed once with this signer; returns the signatures made.
    fn publish_once(
        dir: &Path,
        name: &str,
        feed: &Path,
        certificate: &Path,
        key: &str,
    ) -> Result<u64, Error> {
        let toml = dir.join(format!("{name}.toml"));
        std::fs::write(
            &toml,
            format!(
                "validity = \"96h\"\nkeep = 0\n[[issuer]]\nname = \"ec\"\ncertificate = {:?}\njson_lines = {:?}\n\
                 signer_certificate = {:?}\nsigner_key = {:?}\n",
                demo("ca.pem"),
                feed,
                certificate,
                key
            ),
        )?;
        let now = UnixTime::now();
        let plan = PublishConfig::from_file(&toml)?.load(now)?;
        let out = dir.join(format!("{name}-out"));
        let report = publish(&plan, &out, now, &mut |_| {})?;
        std::fs::remove_dir_all(&out)?;
        Ok(report.signatures)
    }

    pub fn run(records: usize, seconds: f64, json: Option<&Path>) -> Result<(), Error> {
        let module = module()?;
        let dir = tempfile::tempdir()?;
        let (uri, certificate) = make_token(dir.path(), &module)?;
        let feed = dir.path().join("feed.jsonl");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&feed)?);
        loadtest::prepare::write_feed(&loadtest::prepare::FeedSpec::new(records, 2, 15), &mut file, None)?;
        drop(file);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

        // The token through the same signing path the publisher uses.
        let signer = std::fs::read_to_string(&certificate)?;
        let signer = ocsp_edge::pki::Certificate::from_pem(&signer)?;
        let key = ocsp_edge::publish::hsm::open_signing_key(&uri, &signer, &certificate)?;
        let message = vec![0x5a; 250];
        ocsp_edge::publish::hsm::single_session_rate(&key, &message, 200)?;
        let duration = Duration::from_secs_f64(seconds);
        let sign_for = |duration: Duration| -> Result<u64, String> {
            let started = Instant::now();
            let mut count = 0u64;
            while started.elapsed() < duration {
                ocsp_edge::publish::hsm::single_session_rate(&key, &message, 100)
                    .map_err(|e| e.to_string())?;
                count += 100;
            }
            Ok(count)
        };
        let single = measure(|| Ok(sign_for(duration)?))?;
        // The session pool alone: one thread per core signing with the same key.
        let pool = measure(|| {
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..cores).map(|_| scope.spawn(|| sign_for(duration))).collect();
                let mut total = 0u64;
                for worker in workers {
                    total += worker.join().map_err(|_| "signing thread panicked")??;
                }
                Ok(total)
            })
        })?;
        drop(key);
        let signatures = std::cell::Cell::new(0);
        let token = measure(|| {
            let made = publish_once(dir.path(), "token", &feed, &certificate, &uri)?;
            signatures.set(made);
            Ok(made)
        })?;
        let pem_key = demo("ocsp.key").display().to_string();
        let pem = measure(|| publish_once(dir.path(), "pem", &feed, &demo("ocsp.pem"), &pem_key))?;
        let signatures = signatures.get();
        let cores_f = cores as f64;
        println!(
            "signing through a PKCS#11 token (SoftHSM2, ECDSA P-256, CKM_ECDSA); {records} certificates = \
             {signatures} signatures per publish; {cores} cores"
        );
        println!("| measure | signatures/s (wall) | per CPU-second | × {cores} cores |");
        println!("|---|---:|---:|---:|");
        for (label, rate) in [
            ("token, one session, one thread", single),
            ("token, session pool, one thread per core", pool),
            ("publisher through the token (publish)", token),
            ("publisher with the PEM key (publish)", pem),
        ] {
            println!(
                "| {label} | {:.0} | {:.0} | {:.0} |",
                rate.wall,
                rate.per_cpu_second,
                rate.per_cpu_second * cores_f
            );
        }
        // With the cores to itself, one session signs `single.per_cpu_second` per second
        // and the publisher `token.per_cpu_second × cores`: their ratio is
        // publisher / (single × cores).
        let scaling_cpu = token.per_cpu_second / single.per_cpu_second;
        let scaling_wall = token.wall / (single.wall * cores_f);
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "publisher through the token / (single session × cores): {scaling_cpu:.2} by CPU time, \
             {scaling_wall:.2} by wall clock (load average {}); goal 0.80 {}",
            load.split_whitespace().next().unwrap_or("?"),
            if scaling_cpu >= 0.8 { "met" } else { "NOT met" }
        );
        if let Some(path) = json {
            let document = serde_json::json!({
                "algorithm": "ECDSA P-256 SHA-256 via CKM_ECDSA (SoftHSM2)",
                "records": records,
                "signatures_per_publish": signatures,
                "cores": cores,
                "token_single_session_per_s": single.wall,
                "token_single_session_per_cpu_s": single.per_cpu_second,
                "token_pool_per_s": pool.wall,
                "publisher_token_per_s": token.wall,
                "publisher_token_per_cpu_s": token.per_cpu_second,
                "publisher_pem_per_s": pem.wall,
                "publisher_pem_per_cpu_s": pem.per_cpu_second,
                "scaling_cpu": scaling_cpu,
                "scaling_wall": scaling_wall,
            });
            std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
        }
        Ok(())
    }
}
