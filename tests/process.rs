//! What only a separate process can show: Ctrl-C still stops the host,
//! Python is found with the environment cleared, and the right libpython is
//! loaded. (Retention aborts are in tests/retention.rs.)
//!
//! Each `child_*` test is the body run in the child; it is `#[ignore]`d and
//! does nothing unless started by `common::child_command`.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{article_data, child_command, is_child, run};
use py_in_mem::Outliers;

// ---- Ctrl-C -------------------------------------------------------------------

/// Printed by the child once it is calling Python. The test harness prints
/// "test name ... " before it on the same line.
const READY: &str = "PIM-CHILD-READY";

#[test]
#[ignore = "child process body"]
fn child_calls_in_a_loop() {
    if !is_child() {
        return;
    }
    // A host whose Ctrl-C works, as in a terminal: a job started in the
    // background by a non-interactive shell inherits SIGINT ignored.
    // SAFETY: signal(2) swaps a process-wide disposition atomically, and
    // SIG_DFL installs no handler code that could run in an unsafe context.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let data = article_data(1000, 1);
    outliers.detect(&data).unwrap();
    println!("{READY}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        assert_eq!(outliers.detect(&data).unwrap(), [7, 113, 835]);
    }
    println!("still running after 60 s");
}

#[test]
fn sigint_ends_a_process_that_is_calling_python() {
    let mut child = child_command("child_calls_in_a_loop")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = stdout.lines();
    let ready = lines.any(|line| line.map(|l| l.ends_with(READY)).unwrap_or(false));
    assert!(ready, "child never became ready");
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on the PID of our own live child; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("child ignored SIGINT for 10 s: Python's handler is installed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}

#[test]
#[ignore = "child process body"]
fn child_reads_python_s_record_of_sigint() {
    if !is_child() {
        return;
    }
    // SAFETY: as in child_calls_in_a_loop.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    let record = py_in_mem::Function::from_source(
        "pim_sigint_record",
        "import signal\n\
         def record():\n\
         \x20   handler = signal.getsignal(signal.SIGINT)\n\
         \x20   return (handler is signal.default_int_handler, handler == signal.SIG_DFL)\n",
        "record",
    )
    .unwrap();
    println!("RECORD: {:?}", record.call0::<(bool, bool)>().unwrap());
}

/// Python's record of SIGINT says the host's default, not Python's handler,
/// which it does not handle: code that puts back what it read there
/// (`asyncio.run` on Python's main thread, on leaving) installed Python's
/// handler for good, and Ctrl-C then raised KeyboardInterrupt in the next
/// call instead of stopping the host.
#[test]
fn python_s_record_of_sigint_is_the_host_s_default() {
    let output = run(child_command("child_reads_python_s_record_of_sigint"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("RECORD: (false, true)"), "{stdout}");
}

// ---- Finding Python with no help from the environment ---------------------------

#[test]
#[ignore = "child process body"]
fn child_detects_and_reports_python() {
    if !is_child() {
        return;
    }
    let outliers = Outliers::new("outliers", "detect").unwrap();
    assert_eq!(
        outliers.detect(&article_data(1000, 2)).unwrap(),
        [7, 113, 835]
    );
    // Where the loaded libpython lives, from the process's own mappings.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines().filter(|l| l.contains("libpython")) {
        println!("mapped: {}", line.split_whitespace().last().unwrap());
    }
    if let Ok(module) = std::env::var("PIM_USER_MODULE") {
        let user = Outliers::new(&module, "detect").unwrap();
        assert_eq!(user.detect(&[0.0, 5.0]).unwrap(), [1]);
        println!("user module loaded");
    }
}

#[test]
fn python_numpy_and_outliers_are_found_with_the_environment_cleared() {
    let mut command = child_command("child_detects_and_reports_python");
    command.env_clear().env(common::CHILD_VAR, "1");
    let output = run(command);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[test]
fn the_libpython_build_rs_linked_is_the_one_loaded() {
    let mut command = child_command("child_detects_and_reports_python");
    command.env_clear().env(common::CHILD_VAR, "1");
    let output = run(command);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mapped: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("mapped: "))
        .collect();
    assert!(!mapped.is_empty(), "no libpython mapped:\n{stdout}");
    let lib_dir = env!("PY_IN_MEM_LIBDIR");
    for path in mapped {
        let real = std::fs::canonicalize(path).unwrap();
        let expected = std::fs::canonicalize(lib_dir).unwrap();
        assert!(real.starts_with(&expected), "{path} is not under {lib_dir}");
    }
}

#[test]
fn a_user_pythonpath_is_still_honoured() {
    let dir = std::env::temp_dir().join(format!("pim_pythonpath_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pim_user_module.py"),
        "def detect(data):\n    return (data > 1.0).nonzero()[0]\n",
    )
    .unwrap();
    let mut command = child_command("child_detects_and_reports_python");
    command
        .env_clear()
        .env(common::CHILD_VAR, "1")
        .env("PYTHONPATH", &dir)
        .env("PIM_USER_MODULE", "pim_user_module");
    let output = run(command);
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("user module loaded"), "{stdout}");
}

#[test]
fn build_python_is_the_interpreter_pyo3_chose() {
    // PYO3_PYTHON, when set (in this checkout by .cargo/config.toml, for make
    // and plain cargo alike), is what pyo3-build-config ran; the crate bakes
    // in that interpreter's sys.executable.
    if let Some(chosen) = option_env!("PYO3_PYTHON") {
        let output = std::process::Command::new(chosen)
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap();
        let executable = String::from_utf8(output.stdout).unwrap();
        assert_eq!(executable.trim(), py_in_mem::BUILD_PYTHON);
        // scripts/venv-python (the checkout's default) runs .venv's python.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        if std::path::Path::new(chosen) == root.join("scripts/venv-python") {
            assert_eq!(
                std::path::Path::new(py_in_mem::BUILD_PYTHON),
                root.join(".venv/bin/python")
            );
        }
    }
    assert!(std::path::Path::new(py_in_mem::BUILD_PYTHON).exists());
}
