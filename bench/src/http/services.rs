//! The services, each a process of its own on 127.0.0.1: started by the
//! bench, which reads the `port=N` line it prints, and stopped by PID.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};

/// How long a service may take to print its port (imports, uvicorn's
/// workers start after that: the first request waits for them).
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Service {
    /// axum + py-in-mem, the call on tokio's blocking pool.
    InMemBlocking,
    /// axum + py-in-mem, `call_async` awaited.
    InMemAsync,
    /// FastAPI + uvicorn, one worker.
    FastApi1,
    /// FastAPI + uvicorn, one worker per core.
    FastApiPerCore,
    /// axum + PyO3 + rust-numpy, on tokio's blocking pool.
    Pyo3,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::InMemBlocking,
        Service::InMemAsync,
        Service::FastApi1,
        Service::FastApiPerCore,
        Service::Pyo3,
    ];

    pub fn label(self, cores: usize) -> String {
        match self {
            Service::InMemBlocking => "axum + py-in-mem, spawn_blocking".to_owned(),
            Service::InMemAsync => "axum + py-in-mem, call_async".to_owned(),
            Service::FastApi1 => "FastAPI + uvicorn, 1 worker".to_owned(),
            Service::FastApiPerCore => format!("FastAPI + uvicorn, {cores} workers"),
            Service::Pyo3 => "axum + PyO3 + rust-numpy, spawn_blocking".to_owned(),
        }
    }

    /// The Rust service's binary name, None for FastAPI.
    pub fn binary(self) -> Option<&'static str> {
        match self {
            Service::InMemBlocking => Some("http_inmem"),
            Service::InMemAsync => Some("http_inmem_async"),
            Service::Pyo3 => Some("http_pyo3"),
            Service::FastApi1 | Service::FastApiPerCore => None,
        }
    }

    /// The command that starts it, or why it cannot be.
    pub fn command(self, bench_dir: &Path, cores: usize) -> Result<Command, String> {
        let python = bench_dir.join("python");
        let workers = match self {
            Service::FastApi1 => 1,
            Service::FastApiPerCore => cores,
            _ => {
                let binary = self.binary().expect("a Rust service");
                let path = binaries_dir().join(binary);
                if !path.exists() {
                    return Err(format!(
                        "`{binary}` not built ({} is missing{})",
                        path.display(),
                        if self == Service::InMemAsync {
                            "; it needs the bench's `async-service` feature"
                        } else {
                            ""
                        }
                    ));
                }
                return Ok(Command::new(path));
            }
        };
        let mut command = Command::new(py_in_mem::BUILD_PYTHON);
        command
            .arg(python.join("http_fastapi.py"))
            .arg(workers.to_string())
            .env("PYTHONPATH", &python);
        Ok(command)
    }
}

/// Where this binary is, and so the services built with it.
fn binaries_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

/// Builds the Rust services with the profile and features of this binary
/// when it runs under cargo (`cargo run`, `make bench`: cargo builds only
/// the binary it runs), so that they are never older than it.
pub fn build(workspace: &Path) -> anyhow::Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--quiet", "-p", "py-in-mem-bench", "--bins"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    if cfg!(feature = "async-service") {
        command.args(["--features", "async-service"]);
    }
    let status = command
        .status()
        .context("running cargo build for the HTTP services")?;
    if !status.success() {
        bail!("building the HTTP services failed ({status})");
    }
    Ok(())
}

/// A running service. Dropping it (on any path, errors and panics included)
/// kills its processes by their PIDs, children first, and reaps it.
pub struct Running {
    child: Child,
    /// Held open: the service exits by itself when this closes.
    _stdin: Option<ChildStdin>,
    pub port: u16,
}

impl Running {
    pub fn start(mut command: Command, label: &str) -> anyhow::Result<Running> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {label}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("no stdout from the service")?;
        let mut running = Running {
            child,
            _stdin: stdin,
            port: 0,
        };
        running.port = read_port(stdout, label)?;
        Ok(running)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its processes: itself, then its children and theirs (uvicorn's
    /// workers, multiprocessing's resource tracker).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.pid()];
        let mut i = 0;
        while i < pids.len() {
            pids.extend(children(pids[i]));
            i += 1;
        }
        pids
    }
}

/// The PIDs of `pid`'s children, from `/proc/PID/task/*/children`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

/// Reads the `port=N` line, giving up after START_TIMEOUT.
fn read_port(stdout: std::process::ChildStdout, label: &str) -> anyhow::Result<u16> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(read.map(|_| line));
    });
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(read) => read.with_context(|| format!("reading the port of {label}"))?,
        Err(_) => bail!("{label} printed no port within {START_TIMEOUT:?}"),
    };
    match line.trim().strip_prefix("port=").map(str::parse) {
        Some(Ok(port)) => Ok(port),
        _ => bail!("{label} did not start (it printed {line:?}); see its error above"),
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Descendants first (by PID), while the parent is still there to be
        // asked for them; then the child itself, which is reaped.
        let pids = self.pids();
        for &pid in pids.iter().skip(1).rev() {
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: kill(2) with a PID read from /proc just now, of a
                // process this one started (directly or through the child);
                // no memory is involved.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
