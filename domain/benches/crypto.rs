//! `cargo bench -p domain`: cost of sealing, opening and lookup tokens for
//! one 40-byte field, against an unencrypted copy of the same field measured
//! in the same run. Figures are medians over many samples; the target is
//! under 2 µs per field for each operation.

#![expect(clippy::print_stdout, reason = "the report is what a benchmark is for")]

use std::hint::black_box;
use std::time::Instant;

use domain::crypto::{Field, KeyRing};

const FIELD: &[u8; 40] = b"ada.lovelace@analytical-engine.example.o";
const ROW: &str = "7a1c7d0e-8d55-4d7e-9d38-2f1f4c3a9b10";
const SAMPLES: usize = 101;
const ITERATIONS: u32 = 2_000;

/// Median nanoseconds per call of `work` over `SAMPLES` timed batches.
fn median_ns(mut work: impl FnMut()) -> f64 {
    for _ in 0..ITERATIONS {
        work();
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                work();
            }
            start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[SAMPLES / 2]
}

fn main() {
    let ring = KeyRing::for_testing(2);
    let sealed = ring
        .seal(Field::GUEST_EMAIL, ROW, FIELD)
        .unwrap_or_default();

    let baseline = median_ns(|| {
        black_box(black_box(FIELD).to_vec());
    });
    let rows = [
        (
            "seal (AES-SIV, random nonce)",
            median_ns(|| {
                black_box(
                    ring.seal(Field::GUEST_EMAIL, black_box(ROW), black_box(FIELD))
                        .ok(),
                );
            }),
        ),
        (
            "open",
            median_ns(|| {
                black_box(
                    ring.open(Field::GUEST_EMAIL, black_box(ROW), black_box(&sealed))
                        .ok(),
                );
            }),
        ),
        (
            "lookup token (deterministic)",
            median_ns(|| {
                black_box(ring.lookup_token(Field::GUEST_EMAIL, black_box(FIELD)).ok());
            }),
        ),
        (
            "lookup tokens, 2 key versions",
            median_ns(|| {
                black_box(
                    ring.lookup_tokens(Field::GUEST_EMAIL, black_box(FIELD))
                        .ok(),
                );
            }),
        ),
    ];

    println!("40-byte field, median of {SAMPLES} samples x {ITERATIONS} calls");
    println!("{:<32} {:>10} {:>10}", "operation", "ns/call", "x copy");
    println!(
        "{:<32} {:>10.1} {:>10.1}",
        "baseline: unencrypted copy", baseline, 1.0
    );
    let mut over_target = Vec::new();
    for (name, ns) in rows {
        println!("{name:<32} {ns:>10.1} {:>10.1}", ns / baseline);
        if ns > 2_000.0 && !name.contains("2 key versions") {
            over_target.push(name);
        }
    }
    if over_target.is_empty() {
        println!("target met: every single-version operation under 2 µs per field");
    } else {
        println!(
            "target MISSED (2 µs per field) by: {}",
            over_target.join(", ")
        );
    }
}
