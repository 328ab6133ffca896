//! py-in-mem: `Outliers::detect` on a borrowed slice, the crate's one path.

use std::time::Duration;

use py_in_mem::{Function, Outliers};

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

impl Path for InMemHeldGil<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        Ok(py_in_mem::hold_gil(|_| self.func.detect(self.data))?)
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        let (func, data) = (self.func, self.data);
        py_in_mem::hold_gil(|_| Ok(time_loop(calls, || Ok(func.detect(data)?))))?
    }
}

/// Calls made inside one held-GIL scope per batch, the input lent once per
/// scope (`GilScope::lend`) and passed to every call: as Python's own calls
/// pass one numpy array that already exists.
pub struct InMemHeldLent<'a> {
    pub func: &'a Function,
    pub data: &'a [f64],
}

/// The indices a call returned, as the other paths give them.
fn as_indices(found: Vec<i64>) -> anyhow::Result<Vec<usize>> {
    found
        .into_iter()
        .map(|i| usize::try_from(i).map_err(|_| anyhow::anyhow!("negative index {i}")))
        .collect()
}

impl Path for InMemHeldLent<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        let found = py_in_mem::hold_gil(|scope| {
            let data = scope.lend(self.data)?;
            self.func.call::<Vec<i64>>(data)
        })?;
        as_indices(found)
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        let (func, data) = (self.func, self.data);
        py_in_mem::hold_gil(|scope| {
            let data = scope.lend(data)?;
            let start = std::time::Instant::now();
            for _ in 0..calls {
                std::hint::black_box(func.call::<Vec<i64>>(data)?);
            }
            Ok(start.elapsed())
        })
        .map_err(Into::into)
    }
}
