//! Shared by the integration tests: test data, the test Python module, and
//! running one test of this binary in a child process.
#![allow(dead_code)] // each test binary uses a different part

pub mod rng;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use py_in_mem::Outliers;

/// Set in a child process started by [`child_command`].
pub const CHILD_VAR: &str = "PY_IN_MEM_TEST_CHILD";

/// The article's data: `n` uniform values in [0, 1) from a fixed seed, with
/// +97 at indices 7, 113 and 835 (when they are in range).
pub fn article_data(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    let mut data: Vec<f64> = (0..n)
        .map(|_| {
            // SplitMix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
        })
        .collect();
    for i in [7, 113, 835] {
        if i < n {
            data[i] += 97.0;
        }
    }
    data
}

/// A function from `tests/python/pim_testfuncs.py`.
pub fn test_func(name: &str) -> Outliers {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    py_in_mem::add_sys_path(&dir).expect("add tests/python to sys.path");
    Outliers::new("pim_testfuncs", name).expect("load test function")
}

/// A command running only `test` of this test binary, in a child process
/// marked with [`CHILD_VAR`]. Child tests are `#[ignore]`d and check the
/// variable, so a plain `cargo test -- --ignored` does not run their bodies.
pub fn child_command(test: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, "1")
        .stdin(Stdio::null());
    command
}

/// Runs `command` to completion, capturing its output.
pub fn run(mut command: Command) -> Output {
    command.output().expect("spawn child test process")
}

/// How long a child process may run before it counts as hung: `secs`, or
/// `PIM_HANG_SECS` when set (`make memcheck` raises it: under valgrind a
/// child runs 20 to 50 times slower).
pub fn hang_limit(secs: u64) -> Duration {
    Duration::from_secs(std::env::var("PIM_HANG_SECS").map_or(secs, |s| s.parse().unwrap()))
}

/// How many times slower than natively this test runs: 50 under valgrind
/// (`make memcheck` sets `PIM_MEMCHECK`), else 1. For the few bounds a test
/// puts on time, which are there to catch a thread left waiting, not to
/// measure speed.
pub fn slowdown() -> u32 {
    if std::env::var_os("PIM_MEMCHECK").is_some() {
        50
    } else {
        1
    }
}

/// Runs `command` to completion with stdout and stderr captured. A child
/// still running after `limit` is killed, and the test fails with what it
/// printed: a hang is a failure, not a hung suite.
pub fn run_limited(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child test process");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).ok();
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status: status.unwrap_or_else(|| child.wait().unwrap()),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    if status.is_none() {
        panic!(
            "child hung for {limit:?} and was killed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Asserts that a child test passed: exit status 0 and the harness's
/// "1 passed"; returns its stdout.
pub fn assert_child_passed(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// Runs `first` on a new thread and returns once it has; the thread then
/// waits until told to go on (through the returned sender), runs `then` and
/// ends. For a thread that must call before, and end or call again after,
/// something happens elsewhere.
pub fn thread_in_two_steps<T: Send + 'static>(
    first: impl FnOnce() + Send + 'static,
    then: impl FnOnce() -> T + Send + 'static,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<T>) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        first();
        done_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        then()
    });
    done_rx.recv().unwrap();
    (go_tx, thread)
}

/// True in a child started by [`child_command`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_VAR).is_some()
}

/// This process's resident memory (VmRSS), in KiB.
pub fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Writes `text` to stdout with write(2): after a fork, Rust's stdout lock
/// may be held by a thread the child does not have.
pub fn write_raw(text: &str) {
    // SAFETY: writes a valid buffer to file descriptor 1.
    unsafe { libc::write(1, text.as_ptr().cast(), text.len()) };
}

/// Forks; the child runs `in_child` and exits with _exit (no atexit hooks,
/// as a forked worker of a multi-threaded process should), and the parent
/// waits for it, for at most `limit`. Returns the child's wait status, or
/// None if it was killed for hanging.
pub fn fork_and_wait(in_child: impl FnOnce(), limit: Duration) -> Option<i32> {
    // SAFETY: fork(2); the child only calls the crate, writes with write(2)
    // and leaves with _exit(2).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        in_child();
        // SAFETY: ends the child without running the parent's exit hooks.
        unsafe { libc::_exit(0) };
    }
    wait_child(pid, limit)
}

/// Whether a forked child's wait status (from [`fork_and_wait`] or
/// [`wait_child`]) says it exited with status 0. Under `make memcheck`,
/// valgrind exits a forked copy with its own code (99) for what the
/// parent's other threads held, which counts as clean: the child's own
/// verdict is then in what it printed or wrote.
#[allow(dead_code)] // not every test file forks
pub fn exited_cleanly(status: i32) -> bool {
    let codes: &[i32] = if std::env::var_os("PIM_MEMCHECK").is_some() {
        &[0, 99]
    } else {
        &[0]
    };
    libc::WIFEXITED(status) && codes.contains(&libc::WEXITSTATUS(status))
}

/// Waits up to `limit` for this process's child `pid` to end: its wait
/// status, or None if it was still running then (it is killed).
#[allow(dead_code)] // not every test file forks
pub fn wait_child(pid: libc::pid_t, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child, without blocking.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            return Some(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A timeout error's fields (function, limit, elapsed, ran), or a panic
/// naming what came instead.
pub fn timeout_fields(
    outcome: Result<i64, py_in_mem::Error>,
) -> (String, Duration, Duration, bool) {
    match outcome {
        Err(py_in_mem::Error::Timeout {
            function,
            limit,
            elapsed,
            ran,
            ..
        }) => (function, limit, elapsed, ran),
        other => panic!("expected Error::Timeout, got {other:?}"),
    }
}

/// The function named by an `Error::InputRetained` whose call did not fail
/// otherwise (its `error` is None); None for any other error.
pub fn retained_alone(err: &py_in_mem::Error) -> Option<String> {
    match err {
        py_in_mem::Error::InputRetained {
            function,
            error: None,
            ..
        } => Some(function.clone()),
        _ => None,
    }
}
