//! Load: 8 threads for 60 seconds, each creating, calling and dropping
//! `Outliers` on random sizes up to 1,000,000, one call in a hundred to a
//! function that raises. No wrong result, no deadlock, and resident memory
//! flat after the first 10 seconds (printed every 5 seconds).
//!
//! Ignored by default (it takes a minute): `make soak` runs it.
//! `PIM_SOAK_SECS` and `PIM_SOAK_THREADS` change the duration and threads.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::rng::Rng;
use common::vm_rss_kib;
use py_in_mem::{Error, Outliers};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().unwrap())
}

/// `len` values in [0, 1) with +97 at 1 to 3 random places, and those
/// places, sorted: the only outliers, by a wide margin. With `len` at least
/// 1,000 the std is at most about 5.4 and 2 std at most 11, while each
/// outlier is 96 or more from the mean and every other value less than 1.
fn data_with_outliers(rng: &mut Rng, len: usize) -> (Vec<f64>, Vec<usize>) {
    let mut data: Vec<f64> = (0..len).map(|_| rng.unit()).collect();
    let mut places: Vec<usize> = (0..1 + rng.below(3)).map(|_| rng.below(len)).collect();
    places.sort_unstable();
    places.dedup();
    for &at in &places {
        data[at] += 97.0;
    }
    (data, places)
}

/// A size from 1,000 to 1,000,000, spread evenly over the orders of
/// magnitude so small and large calls both happen often.
fn random_len(rng: &mut Rng) -> usize {
    let exponent = 3.0 + 3.0 * rng.unit();
    10f64.powf(exponent) as usize
}

#[test]
#[ignore = "a minute long: run with `make soak`"]
fn soak_eight_threads_create_call_drop() {
    let secs = env_or("PIM_SOAK_SECS", 60);
    let threads = env_or("PIM_SOAK_THREADS", 8);
    py_in_mem::add_sys_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")).unwrap();

    let calls = Arc::new(AtomicU64::new(0));
    let raised = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);

    let workers: Vec<_> = (0..threads)
        .map(|worker| {
            let (calls, raised, stop) = (calls.clone(), raised.clone(), stop.clone());
            thread::spawn(move || {
                let mut rng = Rng(0x5EED ^ worker);
                while !stop.load(Ordering::Relaxed) {
                    let len = random_len(&mut rng);
                    let (data, expected) = data_with_outliers(&mut rng, len);
                    if rng.below(100) == 0 {
                        let raising = Outliers::new("pim_verify", "raise_sometimes").unwrap();
                        let err = raising.detect(&data).unwrap_err();
                        assert!(matches!(err, Error::Python(_)), "{err:?}");
                        assert_eq!(err.py_type(), Some("ValueError"));
                        raised.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let outliers = Outliers::new("outliers", "detect").unwrap();
                        let found = outliers.detect(&data).unwrap();
                        assert_eq!(found, expected, "wrong result for {} values", data.len());
                        drop(outliers);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Every 5 s: resident memory and calls so far. No progress for 30 s is a
    // deadlock: report it and fail instead of hanging.
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let mut last_progress = (Instant::now(), 0);
    while Instant::now() < deadline {
        thread::sleep(Duration::from_secs(5).min(deadline - Instant::now()));
        let elapsed = start.elapsed().as_secs();
        let rss = vm_rss_kib();
        let done = calls.load(Ordering::Relaxed);
        println!(
            "soak: t={elapsed:>3}s VmRSS={:>7.1} MiB calls={done} raised={}",
            rss as f64 / 1024.0,
            raised.load(Ordering::Relaxed)
        );
        samples.push((elapsed, rss));
        if done > last_progress.1 {
            last_progress = (Instant::now(), done);
        } else if last_progress.0.elapsed() > Duration::from_secs(30) {
            panic!("deadlock: no call finished in 30 s");
        }
        if workers.iter().any(|w| w.is_finished()) {
            break; // a worker panicked: its join below reports why
        }
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("a worker thread failed");
    }

    let total = calls.load(Ordering::Relaxed);
    let raised = raised.load(Ordering::Relaxed);
    println!("soak: {total} calls ({raised} raised) in {secs} s on {threads} threads");
    assert!(raised > 0, "the raising function was never called");

    // Flat after the first 10 s: no later sample above the highest of the
    // first 10 s by more than 64 MiB. The working set is up to 8 threads x
    // (an 8 MB input + numpy's temporaries), so samples move by tens of MiB
    // with the sizes in flight; a leak of anything per call (an input is
    // 4 MB on average, and there are thousands of calls) would pass 64 MiB
    // within seconds.
    let baseline = samples
        .iter()
        .filter(|(t, _)| *t <= 10)
        .map(|(_, rss)| *rss)
        .max()
        .expect("a sample in the first 10 s");
    let peak_after = samples
        .iter()
        .filter(|(t, _)| *t > 10)
        .map(|(_, rss)| *rss)
        .max()
        .unwrap_or(baseline);
    println!(
        "soak: VmRSS highest in the first 10 s {:.1} MiB, highest after {:.1} MiB",
        baseline as f64 / 1024.0,
        peak_after as f64 / 1024.0
    );
    assert!(
        peak_after <= baseline + 64 * 1024,
        "resident memory grew after the first 10 s: {baseline} KiB -> {peak_after} KiB"
    );
}
