//! py-in-mem from several threads at once on one `Outliers`: throughput.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use py_in_mem::Outliers;

use super::Path;

pub struct Threads<'a> {
    pub func: &'a Outliers,
    pub data: &'a [f64],
    pub threads: usize,
}

impl Path for Threads<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        Ok(self.func.detect(self.data)?)
    }

    /// `calls` calls split over the threads, started together; the wall time
    /// from start to the last one done (so per call, the inverse throughput).
    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        let per_thread = calls.div_ceil(self.threads as u64);
        let start = Barrier::new(self.threads + 1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..self.threads)
                .map(|_| {
                    scope.spawn(|| -> anyhow::Result<()> {
                        start.wait();
                        for _ in 0..per_thread {
                            std::hint::black_box(self.func.detect(self.data)?);
                        }
                        Ok(())
                    })
                })
                .collect();
            start.wait();
            let began = Instant::now();
            for worker in workers {
                worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a bench thread panicked"))??;
            }
            // Per call of the `calls` asked for, not of the rounded-up count.
            Ok(began
                .elapsed()
                .mul_f64(calls as f64 / (per_thread * self.threads as u64) as f64))
        })
    }
}
