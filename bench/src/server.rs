//! The Python gRPC server process: started by the bench, stopped by its PID.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};

/// How long the server may take to print its port (imports, protoc).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `python/grpc_server.py`. Dropping it (on any path, errors and
/// panics included) kills the process by its PID and reaps it.
pub struct Server {
    child: Child,
    /// Held open: the server exits by itself when this closes.
    _stdin: Option<ChildStdin>,
    pub port: u16,
}

impl Server {
    /// Starts the server with `python` and waits until it serves.
    pub fn start(
        python: &str,
        script: &Path,
        proto: &Path,
        python_path: &str,
    ) -> anyhow::Result<Server> {
        let mut child = Command::new(python)
            .arg(script)
            .arg(proto)
            .env("PYTHONPATH", python_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} with {python}", script.display()))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .context("no stdout from the gRPC server")?;
        // From here on, dropping `server` stops the child.
        let mut server = Server {
            child,
            _stdin: stdin,
            port: 0,
        };
        server.port = read_port(stdout)?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Reads the `port=N` line, giving up after START_TIMEOUT.
fn read_port(stdout: std::process::ChildStdout) -> anyhow::Result<u16> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(read.map(|_| line));
    });
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(read) => read.context("reading the gRPC server's port")?,
        Err(_) => bail!("the gRPC server printed no port within {START_TIMEOUT:?}"),
    };
    match line.trim().strip_prefix("port=").map(str::parse) {
        Some(Ok(port)) => Ok(port),
        _ => bail!("the gRPC server did not start (it printed {line:?}); see its error above"),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
