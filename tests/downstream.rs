//! A user's own binaries (the packages in tests/downstream/), built with
//! cargo as a user builds them and run as a user runs them:
//!
//! - `downstream-app`, with the README's set-up, runs with the environment
//!   cleared (`env -i`);
//! - `downstream-bare`, the same program without the set-up, gets the
//!   libpython the loader finds first: on a machine with another libpython of
//!   the same version on the loader's path (Debian's, here) a clear
//!   `Error::Init` naming both, never a run on the wrong one;
//! - `downstream-deep` (binary -> a library of the user's -> py-in-mem), with
//!   the set-up in the binary's package only, runs with the environment cleared.
//!
//! The fixture is built once, by the first test that needs it, with its own
//! `CARGO_TARGET_DIR` under target/ (a nested cargo must not wait on the
//! target directory the running `cargo test` holds), and with no
//! PYO3_PYTHON, LD_LIBRARY_PATH or PYTHONPATH in its environment: the
//! fixture's `.cargo/config.toml` chooses the interpreter, as a user's does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The libpython py-in-mem was built against, links resolved.
const EXPECTED: &str = env!("PY_IN_MEM_LIBPYTHON");

/// What the fixture's binaries print when they find the outliers.
const FOUND: &str = "outliers at: [7, 113, 835]";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/downstream")
}

/// Builds the fixture's workspace once; returns its binaries' directory.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("downstream");
        let fixture = fixture_dir();
        // The versions py-in-mem is tested with (cargo prunes the rest).
        let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock");
        std::fs::copy(&lock, fixture.join("Cargo.lock")).expect("copy Cargo.lock");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["build", "--workspace", "--quiet"])
            .current_dir(&fixture)
            .env("CARGO_TARGET_DIR", &target)
            .stdin(Stdio::null());
        let checkout_venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        if Path::new(py_in_mem::BUILD_PYTHON) != checkout_venv {
            // These tests were built against another interpreter
            // (scripts/matrix.sh): the fixture follows them, named in cargo
            // configuration as its own .cargo/config.toml names .venv's.
            command
                .arg("--config")
                .arg(format!(
                    "env.PYO3_PYTHON.value='{}'",
                    py_in_mem::BUILD_PYTHON
                ))
                .args(["--config", "env.PYO3_PYTHON.relative=false"]);
        }
        for name in [
            "PYO3_PYTHON",
            "VIRTUAL_ENV",
            "CONDA_PREFIX",
            "LD_LIBRARY_PATH",
            "PYTHONPATH",
            "PYTHONHOME",
            "PY_IN_MEM_PYTHON",
            "CARGO_BUILD_TARGET_DIR",
            // A jobserver of an outer make or cargo is not this cargo's.
            "MAKEFLAGS",
            "MFLAGS",
            "CARGO_MAKEFLAGS",
        ] {
            command.env_remove(name);
        }
        let output = command
            .output()
            .expect("run cargo build in tests/downstream");
        assert!(
            output.status.success(),
            "building tests/downstream failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target.join("debug")
    })
}

/// Runs a fixture binary with the environment cleared, as `env -i` does.
fn run_cleared(binary: &str) -> (Output, String, String) {
    let output = Command::new(built().join(binary))
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {binary}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("{binary} ({}):\n{stdout}{stderr}", output.status);
    (output, stdout, stderr)
}

/// The libpython files the binary reported mapped (from /proc/self/maps).
fn mapped(stdout: &str) -> Vec<PathBuf> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("libpython: "))
        .map(|path| std::fs::canonicalize(path).unwrap_or_else(|_| path.into()))
        .collect()
}

fn assert_runs_on_the_built_libpython(binary: &str) {
    let (output, stdout, stderr) = run_cleared(binary);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.lines().any(|l| l == FOUND), "{stdout}");
    assert_eq!(mapped(&stdout), [PathBuf::from(EXPECTED)], "{stdout}");
}

#[test]
fn a_binary_with_the_documented_set_up_runs_with_the_environment_cleared() {
    assert_runs_on_the_built_libpython("downstream-app");
}

#[test]
fn a_binary_two_levels_down_with_the_set_up_runs_with_the_environment_cleared() {
    assert_runs_on_the_built_libpython("downstream-deep");
}

/// Another file of the built libpython's name in the loader's cache
/// (`ldconfig -p`): what a binary without an rpath loads instead.
fn other_libpython_on_the_loader_path() -> Option<PathBuf> {
    let soname = Path::new(EXPECTED).file_name()?.to_str()?.to_owned();
    let listing = ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .iter()
        .find_map(|ldconfig| Command::new(ldconfig).arg("-p").output().ok())?;
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter(|line| line.trim_start().starts_with(&format!("{soname} ")))
        .filter_map(|line| line.split(" => ").nth(1))
        .map(|path| std::fs::canonicalize(path.trim()).unwrap_or_else(|_| path.trim().into()))
        .find(|path| path != Path::new(EXPECTED))
}

#[test]
fn a_binary_without_the_set_up_gets_a_clear_init_error_not_another_libpython() {
    let (output, stdout, stderr) = run_cleared("downstream-bare");
    let loaded = mapped(&stdout);
    if other_libpython_on_the_loader_path().is_some() {
        // This machine (Debian's libpython3.11 beside pyenv's): the loader
        // takes the other one, and the crate refuses to start Python on it.
        let [other] = &loaded[..] else {
            panic!("not one libpython mapped: {stdout}{stderr}");
        };
        assert_ne!(other, Path::new(EXPECTED), "{stdout}{stderr}");
        assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
        assert!(!stdout.contains(FOUND), "{stdout}");
        let expected_start = format!(
            "error: Python start-up failed ({}): this process loaded {} (Python ",
            py_in_mem::BUILD_PYTHON,
            other.display()
        );
        assert!(stderr.starts_with(&expected_start), "{stderr}");
        for part in [
            &format!(
                "not the libpython py-in-mem was built against, {EXPECTED} (Python {})",
                py_in_mem::BUILD_PYTHON_VERSION
            ),
            "give the binary an rpath to the libpython it was built against",
            "`pyo3-ffi = \"0.30\"` in its [dependencies]",
            "`pyo3-build-config = \"0.30\"` in its [build-dependencies]",
            "`fn main() { pyo3_build_config::add_libpython_rpath_link_args(); }`",
            &format!(
                "to run on {} instead, set PY_IN_MEM_PYTHON",
                other.display()
            ),
        ] {
            assert!(stderr.contains(part), "{part:?} not in {stderr}");
        }
    } else if loaded.is_empty() {
        // No libpython of that name on the loader's path: the loader's own
        // error, before main.
        assert!(!output.status.success(), "{stdout}{stderr}");
        assert!(
            stderr.contains("error while loading shared libraries"),
            "{stderr}"
        );
    } else {
        // The loader's first choice is the built libpython itself.
        assert_eq!(loaded, [PathBuf::from(EXPECTED)], "{stdout}{stderr}");
        assert!(stdout.lines().any(|l| l == FOUND), "{stdout}{stderr}");
    }
}
