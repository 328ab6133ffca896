//! Start-up that fails cleanly: each cause is an `Error` from
//! `Outliers::new` that names the cause and the fix, and the process goes on.
//! Also: a process that exits while other threads are inside calls exits
//! cleanly (Python is never finalized, so nothing is torn down under them).
//!
//! Python starts once per process, so every start-up case runs in a child
//! process (`child_*` tests are the bodies; they are `#[ignore]`d and do
//! nothing unless started by `common::child_command`). Import failures of a
//! user module happen after start-up and run in this process.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{article_data, child_command, is_child, run};
use py_in_mem::{Error, Outliers};

// ---- The child's side of the start-up cases ----------------------------------

/// Starts Python as a user would, prints what happened on marked lines, and
/// shows the process is still usable after a failed start-up.
#[test]
#[ignore = "child process body"]
fn child_reports_startup() {
    if !is_child() {
        return;
    }
    let first = Outliers::new("outliers", "detect");
    match &first {
        Ok(outliers) => {
            assert_eq!(
                outliers.detect(&article_data(1000, 3)).unwrap(),
                [7, 113, 835]
            );
            println!("STARTED");
        }
        Err(err) => {
            assert!(matches!(err, Error::Init { .. }), "{err:?}");
            println!("ERROR-DISPLAY: {err}");
            println!("ERROR-TYPE: {:?}", err.py_type());
            // Python starts once per process: later calls give the same
            // error instead of trying again on a half-started interpreter.
            let second = Outliers::new("outliers", "detect").unwrap_err();
            assert_eq!(&second, err);
            assert_eq!(
                &py_in_mem::add_sys_path(Path::new("/tmp")).unwrap_err(),
                err
            );
        }
    }
    // The host goes on after the error: it can still allocate, compute, print.
    let sum: f64 = article_data(10_000, 4).iter().sum();
    assert!(sum > 0.0);
    println!("PROCESS-ALIVE");
}

/// Runs [`child_reports_startup`] with `env` set and returns its stdout,
/// having checked that it exited 0 and printed that it was still alive.
fn startup_child(env: &[(&str, &std::ffi::OsStr)]) -> String {
    let mut command = child_command("child_reports_startup");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = run(command);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child failed: {:?}\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("PROCESS-ALIVE"), "{stdout}\n{stderr}");
    stdout
}

/// The text after `marker` on its line.
fn marked<'a>(stdout: &'a str, marker: &str) -> &'a str {
    let start = stdout
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in:\n{stdout}"));
    stdout[start + marker.len()..]
        .lines()
        .next()
        .unwrap()
        .trim()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pim_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- Start-up failures --------------------------------------------------------

#[test]
fn a_normal_start_up_starts() {
    let stdout = startup_child(&[]);
    assert!(stdout.contains("STARTED"), "{stdout}");
}

/// Records which numpy the glue was compiled against and which one runs, in
/// the file named by `PIM_REPORT_FILE` when set: `make matrix` reads it to
/// show that a cell built on numpy 2 headers really ran on numpy 1.26.
#[test]
fn the_numpy_compiled_against_and_the_one_running_are_known() {
    py_in_mem::add_sys_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")).unwrap();
    let running = Outliers::new("pim_verify", "numpy_version")
        .unwrap()
        .detect(&[0.0; 101])
        .unwrap();
    let compiled: Vec<usize> = py_in_mem::BUILD_NUMPY
        .split('.')
        .take(2)
        .map(|part| part.parse().unwrap())
        .collect();
    // numpy 1.26 or newer at both ends (python/requirements.txt).
    assert!(compiled >= vec![1, 26], "{compiled:?}");
    assert!(running >= vec![1, 26], "{running:?}");
    if let Some(file) = std::env::var_os("PIM_REPORT_FILE") {
        let line = format!(
            "compiled against numpy {}, ran on numpy {}.{}\n",
            py_in_mem::BUILD_NUMPY,
            running[0],
            running[1]
        );
        std::fs::write(file, line).unwrap();
    }
}

#[test]
fn numpy_missing_at_run_time_is_an_init_error_that_says_to_install_it() {
    // A virtualenv of the same Python with nothing installed: what a user has
    // when the binary runs with an interpreter that lacks numpy.
    let dir = scratch_dir("no_numpy");
    let venv = dir.join("venv");
    let made = Command::new(py_in_mem::BUILD_PYTHON)
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success(), "could not make a virtualenv: {made:?}");
    let python = venv.join("bin/python");
    let stdout = startup_child(&[(py_in_mem::PYTHON_ENV, python.as_os_str())]);
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(
        marked(&stdout, "ERROR-TYPE:"),
        "Some(\"ModuleNotFoundError\")"
    );
    let display = marked(&stdout, "ERROR-DISPLAY:");
    let python = python.display().to_string();
    for part in [
        "Python start-up failed",
        "No module named 'numpy'",
        &format!("numpy is not installed for the Python interpreter {python}"),
        &format!("`{python} -m pip install 'numpy>=1.26'`"),
    ] {
        assert!(display.contains(part), "{part:?} not in {display}");
    }
}

/// An interpreter that is not there (a virtualenv moved or deleted since
/// the build, a mistyped `PY_IN_MEM_PYTHON`) is named as missing. Before,
/// Python started on an installation of its own finding and the error said
/// numpy was not installed, with a `pip install` for the missing path.
#[test]
fn a_missing_interpreter_is_an_init_error_that_says_it_is_missing() {
    let missing = "/nonexistent/pim-venv/bin/python";
    let stdout = startup_child(&[(py_in_mem::PYTHON_ENV, missing.as_ref())]);
    assert_eq!(marked(&stdout, "ERROR-TYPE:"), "Some(\"\")");
    let display = marked(&stdout, "ERROR-DISPLAY:");
    for part in [
        &format!("{missing} (PY_IN_MEM_PYTHON) does not exist"),
        "set PY_IN_MEM_PYTHON to the path of a python",
        py_in_mem::BUILD_PYTHON,
    ] {
        assert!(display.contains(part), "{part:?} not in {display}");
    }
    assert!(!display.contains("pip install"), "{display}");
}

#[test]
fn a_broken_pythonhome_is_an_init_error_that_says_to_unset_it() {
    let home = "/nonexistent/pim-python-home";
    let stdout = startup_child(&[("PYTHONHOME", home.as_ref())]);
    // Not an exception: Py_InitializeFromConfig returned a failed status
    // (instead of Py_FatalError, which would have aborted the child).
    assert_eq!(marked(&stdout, "ERROR-TYPE:"), "Some(\"\")");
    let display = marked(&stdout, "ERROR-DISPLAY:");
    for part in [
        "Python start-up failed",
        "encoding",
        &format!("PYTHONHOME is set to \"{home}\""),
        "unset PYTHONHOME",
    ] {
        assert!(display.contains(part), "{part:?} not in {display}");
    }
}

/// Needs a numpy older than 1.25 (whose C API is older than the glue's
/// `NPY_TARGET_VERSION`) installed with `pip install --target` in the
/// directory named by `PIM_OLD_NUMPY_DIR`; `make old-numpy` does that and
/// runs this test. Ignored by default because it downloads numpy.
#[test]
#[ignore = "needs PIM_OLD_NUMPY_DIR: run `make old-numpy`"]
fn a_numpy_older_than_compiled_against_is_an_init_error_that_says_to_upgrade() {
    let dir = std::env::var_os("PIM_OLD_NUMPY_DIR")
        .expect("set PIM_OLD_NUMPY_DIR to a directory holding numpy < 1.25");
    // PYTHONPATH comes before site-packages, so this numpy is the one found.
    let stdout = startup_child(&[("PYTHONPATH", &dir)]);
    assert_eq!(marked(&stdout, "ERROR-TYPE:"), "Some(\"RuntimeError\")");
    let display = marked(&stdout, "ERROR-DISPLAY:");
    for part in [
        "Python start-up failed",
        // numpy 2 headers: "compiled against NumPy C-API version 0x11";
        // numpy 1.26 headers: "compiled against API version 0x11".
        "API version 0x11",
        "older than the crate needs",
        "pip install --upgrade 'numpy>=1.26'",
        "PYTHONPATH",
    ] {
        assert!(display.contains(part), "{part:?} not in {display}");
    }
}

/// Needs a crate built against numpy 1.x headers and a numpy 2 installed
/// with `pip install --target` in `PIM_NUMPY2_DIR`: numpy 2 refuses an
/// extension built on numpy 1.x (another ABI) when it asks for the C API.
/// `make matrix` runs it in each numpy 1.26 cell.
#[test]
#[ignore = "needs PIM_NUMPY2_DIR and a numpy 1.x build: run by `make matrix`"]
fn a_numpy_of_another_abi_is_an_init_error_that_says_to_rebuild() {
    assert!(
        py_in_mem::BUILD_NUMPY.starts_with("1."),
        "built against numpy {}, not 1.x",
        py_in_mem::BUILD_NUMPY
    );
    let dir = std::env::var_os("PIM_NUMPY2_DIR").expect("set PIM_NUMPY2_DIR");
    let stdout = startup_child(&[("PYTHONPATH", &dir)]);
    assert_eq!(marked(&stdout, "ERROR-TYPE:"), "Some(\"ImportError\")");
    // numpy's message spans lines: the hint is on the last one.
    let display = &stdout[stdout.find("ERROR-DISPLAY:").unwrap()..];
    let display = &display[..display.find("ERROR-TYPE:").unwrap()];
    for part in [
        "Python start-up failed",
        "A module that was compiled using NumPy 1.x cannot be run in",
        &format!(
            "the crate was compiled against numpy {}",
            py_in_mem::BUILD_NUMPY
        ),
        "rebuild the crate against the numpy you run",
    ] {
        assert!(display.contains(part), "{part:?} not in {display}");
    }
}

// ---- Import failures of the user's module (after start-up) --------------------

/// Writes `source` as `tests-tmp/<module>.py` and puts the directory on
/// `sys.path`.
fn user_module(module: &str, source: &str) {
    let dir = std::env::temp_dir().join(format!("pim_user_modules_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{module}.py")), source).unwrap();
    py_in_mem::add_sys_path(&dir).unwrap();
}

#[test]
fn a_module_that_raises_on_import_is_an_error_and_the_process_goes_on() {
    user_module(
        "pim_raises_on_import",
        "import numpy as np\n\nraise ValueError('bad configuration in module')\n",
    );
    for _ in 0..2 {
        // Twice: a failed import leaves no half-made module in sys.modules.
        let err = Outliers::new("pim_raises_on_import", "detect").unwrap_err();
        assert!(matches!(err, Error::Import { .. }), "{err:?}");
        assert_eq!(err.py_type(), Some("ValueError"));
        assert_eq!(
            err.to_string(),
            "importing pim_raises_on_import failed: ValueError: bad configuration in module; \
             pim_raises_on_import raised while it was imported: fix it where the traceback \
             (Error::traceback) shows"
        );
        let traceback = err.traceback().unwrap();
        assert!(
            traceback.contains("pim_raises_on_import.py\", line 3"),
            "{traceback}"
        );
    }
    let outliers = Outliers::new("outliers", "detect").unwrap();
    assert_eq!(
        outliers.detect(&article_data(1000, 5)).unwrap(),
        [7, 113, 835]
    );
}

#[test]
fn a_module_with_a_syntax_error_is_an_error_naming_file_and_line() {
    user_module(
        "pim_syntax_error",
        "import numpy as np\n\ndef detect(data)\n    return data\n",
    );
    let err = Outliers::new("pim_syntax_error", "detect").unwrap_err();
    assert!(matches!(err, Error::Import { .. }), "{err:?}");
    assert_eq!(err.py_type(), Some("SyntaxError"));
    let message = err.to_string();
    // "SyntaxError: expected ':' (pim_syntax_error.py, line 3)" on 3.10+,
    // "SyntaxError: invalid syntax (pim_syntax_error.py, line 3)" on 3.9.
    assert!(
        message.starts_with("importing pim_syntax_error failed: SyntaxError: ")
            && message.ends_with(
                "(pim_syntax_error.py, line 3); fix the syntax of pim_syntax_error where the message says"
            ),
        "{message}"
    );
    let outliers = Outliers::new("outliers", "detect").unwrap();
    assert_eq!(
        outliers.detect(&article_data(1000, 6)).unwrap(),
        [7, 113, 835]
    );
}

#[test]
fn a_module_whose_dependency_is_missing_says_what_to_install() {
    user_module(
        "pim_needs_a_dependency",
        "import pim_no_such_dependency.sub\n\ndef detect(data):\n    return data\n",
    );
    let err = Outliers::new("pim_needs_a_dependency", "detect").unwrap_err();
    assert!(matches!(err, Error::Import { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "importing pim_needs_a_dependency failed: ModuleNotFoundError: No module named \
             'pim_no_such_dependency'; pim_needs_a_dependency imports pim_no_such_dependency, \
             which is not installed for "
        ) && message
            .ends_with("-m pip install pim_no_such_dependency`, if that is its name on PyPI)"),
        "{message}"
    );
    // The module itself missing stays the plain Python error.
    let err = Outliers::new("pim_no_such_module.sub", "detect").unwrap_err();
    assert_eq!(
        err.to_string(),
        "ModuleNotFoundError: No module named 'pim_no_such_module'"
    );
}

// ---- Exiting while other threads are inside calls ---------------------------------

const EXIT_CODE: i32 = 7;

#[test]
#[ignore = "child process body"]
fn child_exits_while_threads_call() {
    if !is_child() {
        return;
    }
    let how = std::env::var("PIM_EXIT_HOW").unwrap();
    let outliers = std::sync::Arc::new(Outliers::new("outliers", "detect").unwrap());
    let started = std::sync::Arc::new(std::sync::Barrier::new(5));
    for thread in 0..4u64 {
        let outliers = outliers.clone();
        let started = started.clone();
        std::thread::spawn(move || {
            let data = article_data(100_000 + thread as usize, thread);
            assert_eq!(outliers.detect(&data).unwrap(), [7, 113, 835]);
            started.wait();
            loop {
                // Keep calling until the process ends under us.
                assert_eq!(outliers.detect(&data).unwrap(), [7, 113, 835]);
            }
        });
    }
    started.wait();
    match how.as_str() {
        // exit(3): atexit handlers and library destructors run while the
        // other threads are inside Python.
        "exit" => std::process::exit(EXIT_CODE),
        // Return from the test: the harness prints its summary and main
        // returns with the threads still running.
        "return" => println!("returning with 4 threads inside calls"),
        other => panic!("PIM_EXIT_HOW={other}"),
    }
}

/// Waits up to `limit` for `child`; kills it and panics on a hang.
fn wait_or_kill(child: &mut std::process::Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("child hung for {limit:?} while exiting");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_process_exiting_while_threads_are_inside_calls_exits_cleanly() {
    // 30 s natively (a round takes well under a second); `make memcheck`
    // raises it, since under valgrind one round takes 5 to 30 s.
    let hang_limit = Duration::from_secs(
        std::env::var("PIM_HANG_SECS").map_or(30, |secs| secs.parse().unwrap()),
    );
    for (how, expected_code) in [("exit", EXIT_CODE), ("return", 0)] {
        for round in 0..10 {
            let mut child = child_command("child_exits_while_threads_call")
                .env("PIM_EXIT_HOW", how)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let status = wait_or_kill(&mut child, hang_limit);
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            assert_eq!(status.signal(), None, "{how} round {round}: {stderr}");
            assert_eq!(
                status.code(),
                Some(expected_code),
                "{how} round {round}: {stderr}"
            );
            assert!(!stderr.contains("Fatal Python error"), "{stderr}");
        }
    }
}
