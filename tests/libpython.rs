//! The start-up check of which libpython the process runs on, in child
//! processes (Python starts once per process): `PY_IN_MEM_PYTHON` naming an
//! installation whose libpython is not the one loaded is an `Error::Init`
//! naming both; a host that started Python itself chose its interpreter, and
//! gets no error. (A binary without an rpath is tests/downstream.rs.)

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{article_data, child_command, is_child, run};
use py_in_mem::{Error, Outliers};

/// The libpython py-in-mem was built against, links resolved.
const EXPECTED: &str = env!("PY_IN_MEM_LIBPYTHON");

/// Calls `Outliers::new` and prints what happened on marked lines.
#[test]
#[ignore = "child process body"]
fn child_starts() {
    if !is_child() {
        return;
    }
    if std::env::var_os("PIM_HOST_STARTS_PYTHON").is_some() {
        // A host embedding Python, as PyO3's prepare_freethreaded_python does.
        // SAFETY: no thread has started Python in this process; 0: without
        // Python's signal handlers.
        unsafe { pyo3_ffi::Py_InitializeEx(0) };
        // SAFETY: this thread holds the GIL since Py_InitializeEx; the saved
        // state is never restored (the host never calls Python again).
        unsafe { pyo3_ffi::PyEval_SaveThread() };
    }
    match Outliers::new("outliers", "detect") {
        Ok(outliers) => {
            assert_eq!(
                outliers.detect(&article_data(1000, 9)).unwrap(),
                [7, 113, 835]
            );
            println!("STARTED");
        }
        Err(err) => {
            assert!(matches!(err, Error::Init { .. }), "{err:?}");
            println!("ERROR-DISPLAY: {err}");
        }
    }
}

fn child_stdout(env: &[(&str, &Path)]) -> String {
    let mut command = child_command("child_starts");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = run(command);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// An installation as Python recognizes one (`bin/python3.X` and the
/// standard library's landmark `lib/python3.X/os.py`), empty files, without
/// the libpython this process loads.
fn other_installation(name: &str) -> (PathBuf, PathBuf) {
    let version =
        &py_in_mem::BUILD_PYTHON_VERSION[..py_in_mem::BUILD_PYTHON_VERSION.rfind('.').unwrap()];
    installation_of(name, version)
}

/// [`other_installation`] of Python `version` (`"3.99"`).
fn installation_of(name: &str, version: &str) -> (PathBuf, PathBuf) {
    let prefix = std::env::temp_dir().join(format!("pim_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    let stdlib = prefix.join(format!("lib/python{version}"));
    std::fs::create_dir_all(&stdlib).unwrap();
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::write(stdlib.join("os.py"), "").unwrap();
    let python = prefix.join(format!("bin/python{version}"));
    std::fs::write(&python, "").unwrap();
    (prefix, python)
}

#[test]
fn py_in_mem_python_of_another_installation_is_an_init_error_naming_both() {
    let (prefix, python) = other_installation("other_installation");
    let stdout = child_stdout(&[(py_in_mem::PYTHON_ENV, &python)]);
    let expected = format!(
        "ERROR-DISPLAY: Python start-up failed ({python}): this process loaded {EXPECTED} \
         (Python {version}), which is not a libpython of {prefix}, the installation of \
         {python} (PY_IN_MEM_PYTHON); set PY_IN_MEM_PYTHON to a python of the installation \
         {EXPECTED} belongs to; or build the binary against a python of {prefix} \
         (PYO3_PYTHON) and give it an rpath to the libpython it was built against",
        python = python.display(),
        prefix = prefix.canonicalize().unwrap().display(),
        version = py_in_mem::BUILD_PYTHON_VERSION,
    );
    std::fs::remove_dir_all(&prefix).unwrap();
    assert!(stdout.contains(&expected), "{expected}\nnot in\n{stdout}");
}

#[test]
fn py_in_mem_python_of_another_version_is_an_init_error_saying_so() {
    // Python would start anyway, on its compiled-in prefix, without the
    // interpreter's packages: "numpy is not installed" was the error.
    let (prefix, python) = installation_of("other_version", "3.99");
    let build =
        &py_in_mem::BUILD_PYTHON_VERSION[..py_in_mem::BUILD_PYTHON_VERSION.rfind('.').unwrap()];
    let stdlib = prefix.canonicalize().unwrap().join("lib/python3.99");
    let expected = |python: &Path| {
        format!(
            "ERROR-DISPLAY: Python start-up failed ({python}): {python} (PY_IN_MEM_PYTHON) is a \
             Python 3.99 interpreter (its standard library is {stdlib}), but py-in-mem was built \
             against Python {version}; set PY_IN_MEM_PYTHON to a python {build} (a virtualenv \
             made by one), or build the binary against this one (PYO3_PYTHON={python})",
            python = python.display(),
            stdlib = stdlib.display(),
            version = py_in_mem::BUILD_PYTHON_VERSION,
        )
    };
    let stdout = child_stdout(&[(py_in_mem::PYTHON_ENV, &python)]);
    assert!(
        stdout.contains(&expected(&python)),
        "{}\nnot in\n{stdout}",
        expected(&python)
    );
    // A virtualenv made by it, as trial 7 had one of 3.13.
    let venv = prefix.join("venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::fs::write(
        venv.join("pyvenv.cfg"),
        format!(
            "home = {}\nversion = 3.99.0\n",
            prefix.join("bin").display()
        ),
    )
    .unwrap();
    let venv_python = venv.join("bin/python");
    std::fs::write(&venv_python, "").unwrap();
    let stdout = child_stdout(&[(py_in_mem::PYTHON_ENV, &venv_python)]);
    std::fs::remove_dir_all(&prefix).unwrap();
    assert!(
        stdout.contains(&expected(&venv_python)),
        "{}\nnot in\n{stdout}",
        expected(&venv_python)
    );
}

/// `sys.base_prefix` and the site-packages of the interpreter built against.
fn build_python_paths() -> (PathBuf, PathBuf) {
    let output = Command::new(py_in_mem::BUILD_PYTHON)
        .args([
            "-c",
            "import sys, sysconfig; print(sys.base_prefix); print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut lines = stdout.lines().map(PathBuf::from);
    (lines.next().unwrap(), lines.next().unwrap())
}

#[test]
fn a_host_that_started_python_itself_is_not_checked_against_py_in_mem_python() {
    // The host's Python finds its prefix and numpy from PYTHONHOME and
    // PYTHONPATH; PY_IN_MEM_PYTHON names another installation, which would be
    // an error had py-in-mem started Python (the test above).
    let (home, site_packages) = build_python_paths();
    let (prefix, python) = other_installation("host_started");
    let stdout = child_stdout(&[
        ("PIM_HOST_STARTS_PYTHON", Path::new("1")),
        ("PYTHONHOME", &home),
        ("PYTHONPATH", &site_packages),
        (py_in_mem::PYTHON_ENV, &python),
    ]);
    std::fs::remove_dir_all(&prefix).unwrap();
    assert!(stdout.contains("STARTED"), "{stdout}");
}

#[test]
fn a_virtualenv_of_the_installation_built_against_passes_the_check() {
    // A virtualenv made from the interpreter built against: its pyvenv.cfg
    // leads to the same installation, whose libpython this process loads.
    let dir = std::env::temp_dir().join(format!("pim_same_installation_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let made = Command::new(py_in_mem::BUILD_PYTHON)
        .args(["-m", "venv", "--without-pip"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(made.success());
    // The new virtualenv has no numpy: PYTHONPATH lends it the built one's.
    let (_, site_packages) = build_python_paths();
    let stdout = child_stdout(&[
        (py_in_mem::PYTHON_ENV, &dir.join("bin/python")),
        ("PYTHONPATH", &site_packages),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(stdout.contains("STARTED"), "{stdout}");
}
