//! The machine a run was made on, for the report.

use pyo3::prelude::*;

use crate::libpython::Mapped;

use crate::steal::{cpu_times, CpuTimes};

pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub python: String,
    pub numpy: String,
    pub grpcio: String,
    /// `sys.getswitchinterval()`, seconds.
    pub switch_interval: f64,
    /// The libpython each process of the run maps.
    pub libpython: Vec<Mapped>,
    /// OPENBLAS_CORETYPE and friends, as set for this process.
    pub blas_env: String,
    /// /proc/loadavg at the start: the machine may be shared.
    pub load: String,
    pub date: String,
    /// The commit the bench was built from (`git rev-parse --short HEAD`),
    /// and whether tracked files differed from it.
    pub commit: String,
    /// Each CPU's time counters from /proc/stat at the start, to tell the
    /// share of the run the host took from the vCPUs (steal).
    pub cpu_times: Vec<CpuTimes>,
}

/// The commit of the checkout the bench was built in, "with uncommitted
/// changes" if tracked files differ from it; "?" without git.
fn commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(head) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|status| !status.is_empty());
            if dirty {
                format!("{head} with uncommitted changes")
            } else {
                head
            }
        }
        None => "?".to_owned(),
    }
}

impl Machine {
    pub fn read() -> anyhow::Result<Machine> {
        let cpu = crate::cpu_model::describe();
        let read = |path: &str| {
            std::fs::read_to_string(path).map_or_else(|_| "?".to_owned(), |s| s.trim().to_owned())
        };
        let blas_env: Vec<String> = std::env::vars()
            .filter(|(name, _)| {
                name.starts_with("OPENBLAS") || name.starts_with("OMP_") || name.starts_with("MKL")
            })
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let (python, numpy, grpcio, switch_interval) = Python::attach(|py| -> PyResult<_> {
            let version = |module: &str, attr: &str| -> PyResult<String> {
                py.import(module)?.getattr(attr)?.extract()
            };
            let python = version("sys", "version")?.replace('\n', " ");
            // grpcio's version without importing grpc into the bench process.
            let grpcio = py
                .import("importlib.metadata")?
                .call_method1("version", ("grpcio",))?
                .extract()?;
            let switch_interval = py
                .import("sys")?
                .call_method0("getswitchinterval")?
                .extract()?;
            Ok((
                python,
                version("numpy", "__version__")?,
                grpcio,
                switch_interval,
            ))
        })?;
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map_or_else(
                |_| "?".to_owned(),
                |out| String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            );
        Ok(Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease"),
            python,
            numpy,
            grpcio,
            switch_interval,
            libpython: Vec::new(),
            blas_env: if blas_env.is_empty() {
                "none set".to_owned()
            } else {
                blas_env.join(" ")
            },
            load: read("/proc/loadavg"),
            date,
            commit: commit(),
            cpu_times: cpu_times(),
        })
    }
}
