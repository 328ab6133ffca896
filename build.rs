//! Compiles `csrc/` against the headers of the one Python that
//! `pyo3-ffi` links, and bakes that interpreter's path into the crate so the
//! embedded Python finds its own prefix and site-packages at run time. With
//! `DOCS_RS` set (docs.rs), it does neither: the docs need no numpy.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Prints, one a line: Python's version and include directory, then numpy's
/// include directory and version; or, for numpy, a line starting with
/// `missing:` that names what is absent.
const PROBE: &str = r#"
import os, platform, sys, sysconfig
print(platform.python_version())
print(sysconfig.get_paths()["include"])
try:
    import numpy
except Exception as e:
    print("missing:" + type(e).__name__ + ": " + str(e))
else:
    print(numpy.get_include())
    print(numpy.__version__)
    print(os.path.dirname(os.path.dirname(numpy.__file__)))
"#;

fn main() {
    if let Err(message) = build() {
        // One actionable line, not a compiler error. cargo fails the build on
        // it; exiting non-zero as well would add a dump of all our output.
        println!("cargo::error={message}");
    }
}

fn build() -> Result<(), String> {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    // pyo3-build-config picks the interpreter from these; so do we, through it.
    for var in ["PYO3_PYTHON", "VIRTUAL_ENV", "CONDA_PREFIX", "PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    if std::env::var_os("DOCS_RS").is_some() {
        // Only documenting (docs.rs sets DOCS_RS, and its builder has no
        // numpy; it has a Python, which pyo3-ffi's build script still runs):
        // no interpreter probe, no C glue. rustdoc type-checks the
        // crate but links nothing, so the glue's symbols are never needed;
        // the constants the crate reads from the build get a placeholder
        // (the docs show it as their value, not paths of the docs builder).
        for name in [
            "PY_IN_MEM_BUILD_PYTHON",
            "PY_IN_MEM_NUMPY_VERSION",
            "PY_IN_MEM_NUMPY_SITE",
            "PY_IN_MEM_MODULE_DIR",
            "PY_IN_MEM_LIBDIR",
            "PY_IN_MEM_BUILD_PYTHON_VERSION",
            "PY_IN_MEM_LIBPYTHON",
        ] {
            println!("cargo:rustc-env={name}=(not built: documentation only)");
        }
        return Ok(());
    }

    let in_checkout = in_checkout(&manifest_dir);
    if in_checkout {
        // Start-up errors (src/runtime/mod.rs, `startup_hint`) name `make setup` only then.
        println!("cargo:rustc-env=PY_IN_MEM_IN_CHECKOUT=1");
    }
    // What to do about a missing or unsuitable interpreter: in this checkout,
    // its Makefile's set-up; for a dependency's user, the Python in use (or
    // another, through PYO3_PYTHON), as docs/deploying.md says.
    let use_other_python = if in_checkout {
        "run `make setup` (it creates .venv with numpy; .cargo/config.toml points PYO3_PYTHON at it)"
    } else {
        "set PYO3_PYTHON to a Python that has numpy (py-in-mem's docs/deploying.md, \"Your own binary\")"
    };

    let config = pyo3_build_config::get();
    let python = config.executable().map(str::to_owned).ok_or_else(|| {
        format!("pyo3-build-config found no Python executable: {use_other_python}")
    })?;

    if config.is_free_threaded() {
        // The retention check counts references, which a free-threaded
        // build does not keep exactly.
        return Err(format!(
            "{python} is a free-threaded (no-GIL) CPython build, which py-in-mem does not support: set PYO3_PYTHON to a regular build"
        ));
    }
    let output = Command::new(&python)
        .args(["-c", PROBE])
        .output()
        .map_err(|e| format!("could not run the Python interpreter {python}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{python} failed to report its include directories: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = stdout.lines();
    let python_version = lines.next().unwrap_or_default().to_owned();
    // pyo3-ffi's build script ran the interpreter earlier; a venv remade with
    // another Python since then leaves its configuration behind.
    let configured = config.version();
    if !python_version.starts_with(&format!("{}.{}.", configured.major, configured.minor)) {
        return Err(format!(
            "{python} is Python {python_version} but pyo3-ffi was configured for Python {configured}: the interpreter changed since pyo3-ffi's build script ran; run `cargo clean -p pyo3-ffi` and build again"
        ));
    }
    let python_include = PathBuf::from(lines.next().unwrap_or_default());
    let numpy_line = lines.next().unwrap_or_default();
    if let Some(why) = numpy_line.strip_prefix("missing:") {
        return Err(if in_checkout {
            format!(
                "numpy is not installed for the Python interpreter {python} ({why}): run `make setup`, or `{python} -m pip install numpy`"
            )
        } else {
            format!(
                "numpy is not installed for the Python interpreter {python} ({why}): install it with `{python} -m pip install numpy`, or {use_other_python}"
            )
        });
    }
    let numpy_include = PathBuf::from(numpy_line);
    let numpy_version = lines.next().unwrap_or("unknown").to_owned();
    // Where that numpy is installed: for the hint to a host whose own
    // Python lacks numpy.
    let numpy_site = lines.next().unwrap_or_default().to_owned();
    require_header(
        &python_include,
        "Python.h",
        &python,
        "install the interpreter's development headers (Debian: python3-dev)",
    )?;
    require_header(
        &numpy_include,
        "numpy/arrayobject.h",
        &python,
        &format!("reinstall numpy: `{python} -m pip install --force-reinstall numpy`"),
    )?;

    cc::Build::new()
        .files(
            [
                "errors.c",
                "arrays.c",
                "retention.c",
                "call.c",
                "start.c",
                "layout.c",
                "deadline.c",
                "holds.c",
                "guards.c",
            ]
            .map(|f| manifest_dir.join("csrc").join(f)),
        )
        .include(manifest_dir.join("csrc"))
        .include(&python_include)
        .include(&numpy_include)
        // The oldest numpy C API the glue may use, whatever numpy's headers
        // are: 1.25, the C API of numpy 1.26 (python/requirements.txt's
        // floor). Built against numpy 2 headers, the glue then runs on numpy
        // 1.26 too; an older numpy at run time is refused by import_array
        // with a message (see src/runtime/mod.rs), not met with missing functions.
        .define("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION")
        .warnings(true)
        .extra_warnings(true)
        // A C API function missing from one Python's headers must fail the
        // build there, not link against nothing.
        .flag_if_supported("-Werror=implicit-function-declaration")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-missing-field-initializers")
        .try_compile("py_in_mem_glue")
        .map_err(|e| format!("compiling csrc/ against {python} failed: {e}"))?;

    // What the crate reads at run time: the interpreter to take the prefix
    // and site-packages from, and the directory holding `outliers.py`. Not
    // named PY_IN_MEM_PYTHON, the run-time override: cargo also sets these
    // in the environment of what `cargo run` and `cargo test` start, where
    // that name would override the user's choice with the build's.
    println!("cargo:rustc-env=PY_IN_MEM_BUILD_PYTHON={python}");
    println!("cargo:rustc-env=PY_IN_MEM_NUMPY_VERSION={numpy_version}");
    println!("cargo:rustc-env=PY_IN_MEM_NUMPY_SITE={numpy_site}");
    println!(
        "cargo:rustc-env=PY_IN_MEM_MODULE_DIR={}",
        manifest_dir.join("python").display()
    );
    let lib_dir = config.lib_dir().unwrap_or_default();
    println!("cargo:rustc-env=PY_IN_MEM_LIBDIR={lib_dir}");
    // The libpython a binary must load, links resolved (src/runtime/libpython.rs
    // compares it with the one mapped at run time); empty if linked statically.
    println!("cargo:rustc-env=PY_IN_MEM_BUILD_PYTHON_VERSION={python_version}");
    println!(
        "cargo:rustc-env=PY_IN_MEM_LIBPYTHON={}",
        shared_libpython(config).display()
    );
    // Metadata for direct dependents' build scripts (`links`):
    // DEP_PY_IN_MEM_GLUE_*, which bench/ and fuzz/ read. A binary at any
    // depth uses pyo3-build-config instead (README, "Your own binary").
    println!("cargo:python={python}");
    println!("cargo:libdir={lib_dir}");
    // For this package's own tests, examples and binaries: load the libpython
    // that was linked, not another of the same version on the default path.
    // Downstream binaries make the same call in their build.rs (README).
    pyo3_build_config::add_libpython_rpath_link_args();
    Ok(())
}

/// The shared libpython pyo3-ffi linked, links resolved; empty when linked
/// statically (no file to compare at run time).
fn shared_libpython(config: &pyo3_build_config::InterpreterConfig) -> PathBuf {
    let (Some(dir), Some(name), true) = (config.lib_dir(), config.lib_name(), config.shared())
    else {
        return PathBuf::new();
    };
    let extension = match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("macos" | "ios") => "dylib",
        _ => "so",
    };
    let linked = Path::new(dir).join(format!("lib{name}.{extension}"));
    linked.canonicalize().unwrap_or(linked)
}

/// Whether the crate is built in its own checkout, where the Makefile's
/// `make setup` exists and makes the interpreter .cargo/config.toml names.
///
/// A checkout has the Makefile and `.git` (a directory, or a file in a git
/// worktree) beside Cargo.toml. The crate as a dependency has neither:
/// `cargo package` never ships `.git`, and Cargo.toml's `include` list leaves
/// the Makefile out, so a registry download, a vendored copy or an unpacked
/// `.crate` is not a checkout. A git dependency is a clone with both, but
/// cargo keeps it under its home (`$CARGO_HOME/git/checkouts/`), where
/// `make setup` would help nobody: that is not a checkout either. Nor is a
/// checkout that another crate depends on by path: that crate builds into
/// its own target directory, outside the checkout, with an interpreter of
/// its own, which the checkout's `make setup` would not touch.
fn in_checkout(manifest_dir: &Path) -> bool {
    println!("cargo:rerun-if-env-changed=CARGO_HOME");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    let under_cargo_home = cargo_home.is_some_and(|home| {
        let home = home.canonicalize().unwrap_or(home);
        let dir = manifest_dir
            .canonicalize()
            .unwrap_or_else(|_| manifest_dir.into());
        dir.starts_with(home)
    });
    // Cargo's own: the build's output directory.
    let own_build = std::env::var_os("OUT_DIR").is_some_and(|out| {
        let out = PathBuf::from(out);
        let out = out.canonicalize().unwrap_or(out);
        let dir = manifest_dir
            .canonicalize()
            .unwrap_or_else(|_| manifest_dir.into());
        out.starts_with(dir)
    });
    manifest_dir.join("Makefile").is_file()
        && manifest_dir.join(".git").exists()
        && !under_cargo_home
        && own_build
}

fn require_header(dir: &Path, header: &str, python: &str, fix: &str) -> Result<(), String> {
    if dir.join(header).is_file() {
        Ok(())
    } else {
        Err(format!(
            "{header} not found in {} for the Python interpreter {python}: {fix}",
            dir.display()
        ))
    }
}

fn env_var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("cargo did not set {name}"))
}
