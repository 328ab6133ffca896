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
