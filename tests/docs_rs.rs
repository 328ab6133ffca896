//! The packaged crate documents as docs.rs builds it: `DOCS_RS` set, every
//! feature, `--cfg docsrs` (Cargo.toml's `[package.metadata.docs.rs]`), and
//! a Python without numpy (docs.rs has an interpreter for pyo3-ffi's build
//! script, not numpy). The same package, built for real with that Python,
//! fails with the one line a dependency's user gets.
//!
//! A crate of a user's that depends on this checkout by path (and builds
//! into a target directory of its own, outside it) gets that line too, not
//! the checkout's `make setup`, which would not touch the user's Python.
//!
//! Everything runs under target/ with its own target directories: the
//! package unpacked (tests/common/package.rs), a virtualenv made from the
//! build's interpreter without pip or numpy, and the docs; the dependent
//! crate's target directory alone is outside, in the system's temporary
//! directory.

#[path = "common/package.rs"]
mod package;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A virtualenv without numpy (nor pip), made once from the interpreter the
/// tests were built with; a virtualenv never sees its base's site-packages,
/// so this holds whatever the base interpreter has installed.
fn python_without_numpy(work: &Path) -> PathBuf {
    let venv = work.join("venv-without-numpy");
    let python = venv.join("bin/python");
    if !python.exists() {
        let made = Command::new(py_in_mem::BUILD_PYTHON)
            .args(["-m", "venv", "--without-pip"])
            .arg(&venv)
            .status()
            .expect("run python -m venv");
        assert!(made.success(), "could not make a virtualenv: {made:?}");
    }
    let import = Command::new(&python)
        .args(["-c", "import numpy"])
        .output()
        .expect("run the virtualenv's python");
    assert!(
        !import.status.success(),
        "{} imports numpy: not a Python without numpy",
        python.display()
    );
    python
}

/// `cargo doc` on the unpacked package, with `python` as PYO3_PYTHON and
/// DOCS_RS set or not.
fn doc(work: &Path, crate_dir: &Path, python: &Path, docs_rs: bool) -> Output {
    let mut command = package::cargo();
    command
        .args(["doc", "--no-deps", "--all-features"])
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", work.join("target"))
        .env("PYO3_PYTHON", python)
        // docs.rs documents with nightly and its rustdoc-args; stable's
        // rustdoc takes `feature(doc_cfg)` with RUSTC_BOOTSTRAP.
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTDOCFLAGS", "--cfg docsrs");
    if docs_rs {
        command.env("DOCS_RS", "1");
    }
    command.output().expect("run cargo doc")
}

#[test]
fn the_package_documents_with_docs_rs_settings_and_no_numpy_and_names_the_fix_without_it() {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-rs");
    let crate_dir = package::unpacked(&work.join("package"));
    let python = python_without_numpy(&work);

    let output = doc(&work, &crate_dir, &python, true);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cargo doc with DOCS_RS=1 failed:\n{stderr}"
    );
    let pages = work.join("target/doc/py_in_mem");
    for page in [
        "struct.Function.html",
        "trait.FromResult.html",
        "trait.IntoArg.html",
    ] {
        assert!(
            pages.join(page).is_file(),
            "no {page} in {}",
            pages.display()
        );
    }
    // The `ndarray` feature's impls carry their badge (cfg(docsrs)).
    let into_arg = std::fs::read_to_string(pages.join("trait.IntoArg.html")).unwrap();
    assert!(
        into_arg.contains("crate feature <code>ndarray</code>"),
        "no ndarray feature badge in trait.IntoArg.html"
    );

    // Not documenting: the build needs numpy and says so, in the words for a
    // dependency's user (the package is not a checkout: no `make setup`).
    let output = doc(&work, &crate_dir, &python, false);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(!output.status.success(), "built without numpy:\n{stderr}");
    let python = python.display().to_string();
    let line = stderr
        .lines()
        .find(|line| line.contains("numpy is not installed"))
        .unwrap_or_else(|| panic!("no numpy message in:\n{stderr}"));
    for part in [
        &format!("error: py-in-mem@{}: ", env!("CARGO_PKG_VERSION")),
        &format!("numpy is not installed for the Python interpreter {python} "),
        &format!("install it with `{python} -m pip install numpy`"),
        "set PYO3_PYTHON to a Python that has numpy",
        "docs/deploying.md, \"Your own binary\"",
    ] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }
    assert!(!stderr.contains("make setup"), "{stderr}");
}

/// Before, a checkout was told apart by its Makefile and `.git` alone, so a
/// user's crate with `py-in-mem = { path = ... }` on a checkout was told to
/// `make setup` (the checkout's `.venv`), never to set its own PYO3_PYTHON.
#[test]
fn a_crate_that_depends_on_the_checkout_by_path_is_told_the_fix_for_a_dependent() {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dependent");
    let python = python_without_numpy(&work);
    let app = work.join("app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    package::write_if_changed(
        &app.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"pim-dependent\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\npy-in-mem = {{ path = {:?} }}\n\n[workspace]\n",
            package::checkout().display().to_string()
        ),
    );
    package::write_if_changed(&app.join("src/main.rs"), "fn main() {}\n");
    // Outside the checkout, as a user's crate builds; kept between runs,
    // named after the checkout, so that the build stays incremental.
    let checkout_name = package::checkout()
        .to_string_lossy()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let target = std::env::temp_dir().join(format!("py-in-mem-dependent-{checkout_name}"));
    let output = package::cargo()
        .args(["check", "--quiet"])
        .current_dir(&app)
        .env("CARGO_TARGET_DIR", &target)
        .env("PYO3_PYTHON", &python)
        .output()
        .expect("run cargo check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "built without numpy:\n{stderr}");
    let line = stderr
        .lines()
        .find(|line| line.contains("numpy is not installed"))
        .unwrap_or_else(|| panic!("no numpy message in:\n{stderr}"));
    assert!(
        line.contains("set PYO3_PYTHON to a Python that has numpy"),
        "{line}"
    );
    assert!(!stderr.contains("make setup"), "{stderr}");
}
