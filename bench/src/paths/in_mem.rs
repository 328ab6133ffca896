//! py-in-mem: `Outliers::detect` on a borrowed slice, the crate's one path.

use std::time::Duration;

use py_in_mem::Outliers;

use super::{time_loop, Path};

pub struct InMem<'a> {
    pub func: &'a Outliers,
    pub data: &'a [f64],
}

impl Path for InMem<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        Ok(self.func.detect(self.data)?)
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        time_loop(calls, || self.call())
    }
}

/// py-in-mem's calls made inside one held-GIL scope (`py_in_mem::hold_gil`)
/// per batch: the same `Outliers::detect`, each call lending and checking
/// its slice as always, without taking the GIL and the turn per call.
pub struct InMemHeldGil<'a> {
    pub func: &'a Outliers,
    pub data: &'a [f64],
}

// The closures return py_in_mem::Error, large by design (the library's own
// lints allow it: it is returned only on the cold path).
#[allow(clippy::result_large_err)]
impl Path for InMemHeldGil<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        Ok(py_in_mem::hold_gil(|_| self.func.detect(self.data))?)
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        let (func, data) = (self.func, self.data);
        py_in_mem::hold_gil(|_| Ok(time_loop(calls, || Ok(func.detect(data)?))))?
    }
}
