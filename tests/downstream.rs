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
//! The fixture is built once, by the first test that needs it, against the
//! crate as `cargo package` makes it (what crates.io would serve), unpacked
//! under target/ (tests/common/package.rs): a file the package leaves out
//! (`python/`, `csrc/`) fails these tests. The fixture is copied beside it,
//! its `path = "../../.."` dependencies pointed at the unpacked package and
//! its `.cargo/config.toml` at the interpreter these tests were built with,
//! and built with its own `CARGO_TARGET_DIR` under target/ (a nested cargo
//! must not wait on the target directory the running `cargo test` holds),
//! with no PYO3_PYTHON, LD_LIBRARY_PATH or PYTHONPATH in its environment:
//! the fixture's `.cargo/config.toml` chooses the interpreter, as a user's
//! does.

#[path = "common/package.rs"]
mod package;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The libpython py-in-mem was built against, links resolved.
const EXPECTED: &str = env!("PY_IN_MEM_LIBPYTHON");

/// What the fixture's binaries print when they find the outliers.
const FOUND: &str = "outliers at: [7, 113, 835]";

/// How the fixture's packages name py-in-mem: the checkout, three levels up.
const CHECKOUT_DEPENDENCY: &str = r#"py-in-mem = { path = "../../.." }"#;

/// Copies tests/downstream/ to `copy`, depending on the package unpacked in
/// `crate_dir` instead of the checkout; files unchanged since the last copy
/// are left alone, so the build stays incremental.
fn copy_fixture(copy: &Path, crate_dir: &Path) {
    let fixture = package::checkout().join("tests/downstream");
    let mut pointed = 0;
    for file in fixture_files(&fixture, Path::new("")) {
        let text = std::fs::read_to_string(fixture.join(&file))
            .unwrap_or_else(|e| panic!("read tests/downstream/{}: {e}", file.display()));
        let text = if text.contains(CHECKOUT_DEPENDENCY) {
            pointed += 1;
            text.replace(
                CHECKOUT_DEPENDENCY,
                &format!(
                    "py-in-mem = {{ path = {:?} }}",
                    crate_dir.display().to_string()
                ),
            )
        } else {
            text
        };
        package::write_if_changed(&copy.join(&file), &text);
    }
    // app, bare, lib and beside-pyo3 depend on py-in-mem (deep through lib).
    assert_eq!(
        pointed, 4,
        "tests/downstream's packages no longer say {CHECKOUT_DEPENDENCY}"
    );
    // The interpreter to build against, as a user's .cargo/config.toml names
    // it: the one these tests were built with (.venv's, or scripts/matrix.sh's).
    package::write_if_changed(
        &copy.join(".cargo/config.toml"),
        &format!(
            "[env]\nPYO3_PYTHON = {{ value = {:?}, relative = false }}\n",
            py_in_mem::BUILD_PYTHON
        ),
    );
    // The versions py-in-mem is tested with (cargo prunes the rest).
    let lock =
        std::fs::read_to_string(package::checkout().join("Cargo.lock")).expect("read Cargo.lock");
    package::write_if_changed(&copy.join("Cargo.lock"), &lock);
}

/// The fixture's files under `dir` (relative to `root`), but for what the
/// copy gets from elsewhere: `.cargo/` and `Cargo.lock`.
fn fixture_files(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join(dir)).expect("read tests/downstream") {
        let entry = entry.expect("read tests/downstream");
        let relative = dir.join(entry.file_name());
        if [".cargo", "Cargo.lock", "target"].contains(&&*entry.file_name().to_string_lossy()) {
            continue;
        }
        if entry.file_type().expect("file type").is_dir() {
            files.extend(fixture_files(root, &relative));
        } else {
            files.push(relative);
        }
    }
    files
}

/// Packages the crate, copies the fixture beside it and builds the fixture's
/// workspace, once; returns its binaries' directory.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let work = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let target = work.join("downstream");
        let output = package::cargo()
            .args(["build", "--workspace", "--quiet"])
            .current_dir(copied())
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("run cargo build in the copy of tests/downstream");
        assert!(
            output.status.success(),
            "building tests/downstream against the package failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target.join("debug")
    })
}

/// The copy of tests/downstream/, made once per test run.
fn copied() -> &'static Path {
    static COPIED: OnceLock<PathBuf> = OnceLock::new();
    COPIED.get_or_init(|| {
        let work = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let crate_dir = package::unpacked(&work.join("downstream-package"));
        let fixture = work.join("downstream-src");
        copy_fixture(&fixture, &crate_dir);
        fixture
    })
}

/// Builds `beside-pyo3` (its own workspace, its own target directory), once;
/// returns its binary's directory and the versions of pyo3-ffi it locked.
fn built_beside_pyo3() -> &'static (PathBuf, Vec<String>) {
    static BUILT: OnceLock<(PathBuf, Vec<String>)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let package_dir = copied().join("beside-pyo3");
        // py-in-mem's Cargo.lock, for the versions it is tested with; cargo
        // then moves pyo3-ffi down to PyO3's. Given again only when the
        // checkout's lock changed, so cargo's own changes stay and the build
        // stays incremental.
        let lock = std::fs::read(package::checkout().join("Cargo.lock")).expect("read Cargo.lock");
        let given = package_dir.join("Cargo.lock.given");
        if std::fs::read(&given).ok().as_ref() != Some(&lock) {
            std::fs::write(package_dir.join("Cargo.lock"), &lock).expect("write Cargo.lock");
            std::fs::write(&given, &lock).expect("write Cargo.lock.given");
        }
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("downstream-beside-pyo3");
        let output = package::cargo()
            .args(["build", "--quiet"])
            .current_dir(&package_dir)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("run cargo build in the copy of tests/downstream/beside-pyo3");
        assert!(
            output.status.success(),
            "building tests/downstream/beside-pyo3 against the package failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let locked = std::fs::read_to_string(package_dir.join("Cargo.lock")).expect("read lock");
        let pyo3_ffi = locked
            .split("[[package]]")
            .filter(|entry| entry.contains("\nname = \"pyo3-ffi\"\n"))
            .filter_map(|entry| entry.lines().find_map(|l| l.strip_prefix("version = ")))
            .map(|version| version.trim_matches('"').to_owned())
            .collect();
        (target.join("debug"), pyo3_ffi)
    })
}

/// Runs a fixture binary with the environment cleared, as `env -i` does.
fn run_cleared(binary: &str) -> (Output, String, String) {
    run_cleared_in(built(), binary)
}

fn run_cleared_in(dir: &Path, binary: &str) -> (Output, String, String) {
    let output = Command::new(dir.join(binary))
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
            "`pyo3-ffi = \">=0.26, <0.31\"` in its [dependencies]",
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

/// The lowest pyo3-ffi py-in-mem's Cargo.toml accepts: `0.26` of
/// `pyo3-ffi = ">=0.26, <0.31"`.
fn lowest_pyo3_ffi() -> String {
    let manifest =
        std::fs::read_to_string(package::checkout().join("Cargo.toml")).expect("read Cargo.toml");
    let requirement = manifest
        .lines()
        .find_map(|l| l.strip_prefix("pyo3-ffi = \">="))
        .expect("a `pyo3-ffi = \">=...` line in Cargo.toml");
    requirement.split(',').next().unwrap().to_owned()
}

#[test]
fn pyo3_of_the_lowest_version_and_py_in_mem_share_one_python() {
    let (dir, pyo3_ffi) = built_beside_pyo3();
    // One pyo3-ffi in the build, the lowest py-in-mem accepts.
    let lowest = lowest_pyo3_ffi();
    assert_eq!(pyo3_ffi.len(), 1, "{pyo3_ffi:?}");
    assert!(
        pyo3_ffi[0].starts_with(&format!("{lowest}.")),
        "pyo3-ffi {} locked, not the lowest of py-in-mem's range, {lowest}",
        pyo3_ffi[0]
    );
    let (output, stdout, stderr) = run_cleared_in(dir, "downstream-beside-pyo3");
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            FOUND,
            "pyo3: numpy.arange(10).sum() = 45, beside_pyo3.total = 4",
            "py-in-mem: total = 6",
            "py-in-mem: beside_pyo3.Negative: negative input; a ValueError: true",
            "by pointer: py-in-mem reads PyO3's n = 3, PyO3 reads py-in-mem's k = 7",
        ],
        "{stderr}"
    );
}
