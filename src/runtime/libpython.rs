//! Which libpython this process runs on, checked before Python starts.
//!
//! A binary names libpython by its soname (`libpython3.11.so.1.0`), and the
//! loader maps the first file of that name on its search path. Without an
//! rpath to the build's lib directory that can be another installation's
//! (on Debian, the system's own 3.11), and Python would then run one
//! installation's interpreter on another's standard library and numpy. So
//! before starting Python the crate finds the libpython whose code this
//! process calls, and refuses any but the right one with [`Error::Init`]:
//!
//! - by default, the right one is the libpython build.rs linked (links
//!   resolved on both sides, or the same inode);
//! - with [`PYTHON_ENV`] set to another interpreter, it is a libpython of
//!   that interpreter's installation (under its prefix's `lib` directories,
//!   the prefix found as Python finds it);
//! - with PYTHONHOME set, which decides where Python takes its standard
//!   library from, it is a libpython under PYTHONHOME's `lib` directories;
//! - linked statically (Python's symbols are in the executable), or with
//!   Python already started by the host (a program that embeds Python, or
//!   `python` itself loading an extension built on this crate), there is no
//!   file to compare: the host chose its interpreter, and only the version
//!   (major.minor) must be the one the glue was compiled for.
//!
//! Never a false error: whatever the crate cannot place (no libpython file,
//! no prefix found) is let through to Python's own start-up, which reports a
//! missing standard library itself.

use std::ffi::{c_char, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::build_info::{BUILD_PYTHON, BUILD_PYTHON_VERSION, PYTHON_ENV};
use crate::error::{Error, PyException};

/// The shared libpython build.rs linked, links resolved; empty when libpython
/// was linked statically.
const BUILD_LIBPYTHON: &str = env!("PY_IN_MEM_LIBPYTHON");

/// The `pyo3-ffi` requirement in Cargo.toml, for the fix an error names: a
/// binary's own `pyo3-ffi` dependency must unify with the crate's.
const PYO3_FFI_REQUIREMENT: &str = ">=0.26, <0.31";

/// The `pyo3-build-config` build dependency in Cargo.toml: one version, whose
/// API (`add_libpython_rpath_link_args`) the fix an error names uses.
const PYO3_BUILD_CONFIG_REQUIREMENT: &str = "0.30";

/// Starts nothing: checks that the Python this process would start (with
/// `python` as its program, see [`crate::runtime`]) is the one it must run.
pub(super) fn check(python: &str) -> Result<(), Error> {
    let running = running_version();
    if major_minor(&running) != major_minor(BUILD_PYTHON_VERSION) {
        return Err(init_error(
            python,
            format!(
                "this process runs Python {running} ({}), but py-in-mem was built against \
                 Python {BUILD_PYTHON_VERSION}",
                describe(&symbol_object())
            ),
            format!(
                "build the binary against the Python it runs on (PYO3_PYTHON), or run it \
                 with a Python {}",
                major_minor(BUILD_PYTHON_VERSION)
            ),
        ));
    }
    // SAFETY: Py_IsInitialized may be called at any time, from any thread.
    if unsafe { pyo3_ffi::Py_IsInitialized() } != 0 {
        // The host started Python and chose its installation: see the module docs.
        return Ok(());
    }
    missing_interpreter(python)?;
    let SymbolObject::Libpython(mapped) = symbol_object() else {
        // Not in a shared libpython (linked statically into the executable,
        // or the loader cannot say): no file to compare.
        return Ok(());
    };
    // The installation whose standard library Python will take, as Python
    // picks it: PYTHONHOME first, then the program's own prefix.
    let wrong = if let Some(home) = python_home(std::env::var_os("PYTHONHOME").as_deref()) {
        wrong_for_prefix(&mapped, &home, &Named::PythonHome)
    } else if python == BUILD_PYTHON {
        wrong_for_build(&mapped, BUILD_LIBPYTHON)
    } else {
        let build = major_minor(BUILD_PYTHON_VERSION);
        match own_stdlibs(Path::new(python)) {
            // The interpreter's own installation (the directory holding its
            // `bin`) has a standard library of another version only: Python
            // would start anyway, on a prefix farther up or its compiled-in
            // one, without the interpreter's packages.
            Some(found) if !found.iter().any(|(version, _)| version == build) => {
                found.last().map(|(version, stdlib)| Wrong {
                    cause: format!(
                        "{python} ({PYTHON_ENV}) is a Python {version} interpreter (its \
                         standard library is {}), but py-in-mem was built against Python \
                         {BUILD_PYTHON_VERSION}",
                        stdlib.display()
                    ),
                    hint: format!(
                        "set {PYTHON_ENV} to a python {build} (a virtualenv made by one), or \
                         build the binary against this one (PYO3_PYTHON={python})"
                    ),
                })
            }
            // No prefix found: Python cannot find this interpreter's
            // standard library either, and its own start-up error says so.
            _ => installation_prefix(Path::new(python), build)
                .and_then(|prefix| wrong_for_prefix(&mapped, &prefix, &Named::Python(python))),
        }
    };
    match wrong {
        None => Ok(()),
        Some(Wrong { cause, hint }) => Err(init_error(python, cause, hint)),
    }
}

/// Fails if `python`, a path, names no file (a virtualenv moved or deleted
/// since the build, a mistyped [`PYTHON_ENV`]): Python would start anyway,
/// on an installation it finds by itself, without the interpreter's
/// packages, and the error would be numpy's import, with a fix that names
/// the missing interpreter.
fn missing_interpreter(python: &str) -> Result<(), Error> {
    if !python.contains('/') || Path::new(python).is_file() {
        return Ok(());
    }
    let build = major_minor(BUILD_PYTHON_VERSION);
    let (cause, hint) = if python == BUILD_PYTHON {
        (
            format!(
                "{python}, the Python interpreter py-in-mem was built against, does not exist \
                 (was its virtualenv moved or deleted?)"
            ),
            format!(
                "put it back, set {PYTHON_ENV} to a python {build} that has numpy, or build the \
                 binary again against one that exists (PYO3_PYTHON)"
            ),
        )
    } else {
        (
            format!("{python} ({PYTHON_ENV}) does not exist"),
            format!(
                "set {PYTHON_ENV} to the path of a python {build} executable that has numpy, \
                 or unset it to use {BUILD_PYTHON}"
            ),
        )
    };
    Err(init_error(python, cause, hint))
}

fn init_error(python: &str, message: String, hint: String) -> Error {
    Error::Init {
        python: python.to_owned(),
        // Not a Python exception: Python has not started.
        cause: PyException::status(message),
        hint,
    }
}

/// Where the code of Python's C API lives in this process.
#[derive(Debug, PartialEq)]
enum SymbolObject {
    /// A shared libpython, as the loader named it.
    Libpython(PathBuf),
    /// Another object: the executable (libpython linked statically, or a
    /// `python` program that loaded this crate), as the loader named it.
    Other(PathBuf),
    /// The loader could not say.
    Unknown,
}

/// The object holding the `Py_GetVersion` this crate's code calls. In
/// position-independent code (Rust's default on Linux) its address comes
/// through the GOT, so it is the definition the loader bound (a libpython
/// interposed by the host or by LD_PRELOAD included), not a stub in this
/// binary. (A non-PIE executable may give its own PLT stub instead: then
/// [`SymbolObject::Other`], and no file is compared.)
fn symbol_object() -> SymbolObject {
    let symbol =
        pyo3_ffi::Py_GetVersion as unsafe extern "C" fn() -> *const c_char as *const c_void;
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr reads the loader's tables and writes `info`, which is
    // valid for writes; zeroed, it is a valid Dl_info even if not written.
    let found = unsafe { libc::dladdr(symbol, info.as_mut_ptr()) };
    // SAFETY: zero-initialized above, and written by dladdr if at all.
    let info = unsafe { info.assume_init() };
    if found == 0 || info.dli_fname.is_null() {
        return SymbolObject::Unknown;
    }
    // SAFETY: dladdr succeeded: dli_fname is a NUL-terminated string owned by
    // the loader, valid while the object stays mapped (libpython never goes).
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(OsStr::from_bytes(name.to_bytes()));
    let is_libpython = path
        .file_name()
        .is_some_and(|f| f.as_bytes().starts_with(b"libpython"));
    if is_libpython {
        SymbolObject::Libpython(path)
    } else {
        SymbolObject::Other(path)
    }
}

fn describe(object: &SymbolObject) -> String {
    match object {
        SymbolObject::Libpython(path) => format!("from {}", resolved(path).display()),
        SymbolObject::Other(path) => format!("linked into {}", path.display()),
        SymbolObject::Unknown => "from an object the loader could not name".to_owned(),
    }
}

/// `3.11.7` from the libpython this process calls; callable before start-up.
fn running_version() -> String {
    // SAFETY: Py_GetVersion may be called before Py_Initialize; it returns a
    // static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(pyo3_ffi::Py_GetVersion()) };
    let version = version.to_string_lossy();
    version.split_whitespace().next().unwrap_or("").to_owned()
}

/// `3.11` from `3.11.7`.
fn major_minor(version: &str) -> &str {
    match version.match_indices('.').nth(1) {
        Some((end, _)) => &version[..end],
        None => version,
    }
}

/// `path` with links resolved, or as given if it does not exist.
fn resolved(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

/// Why the mapped libpython is the wrong one, and what to do.
#[derive(Debug)]
struct Wrong {
    cause: String,
    hint: String,
}

/// The lines a binary's package needs to load the libpython it was built
/// against, wherever py-in-mem is in its dependencies.
fn rpath_fix() -> String {
    format!(
        "an rpath to the libpython it was built against, from the build script of the \
         package that builds it: `pyo3-ffi = \"{PYO3_FFI_REQUIREMENT}\"` in its [dependencies], \
         `pyo3-build-config = \"{PYO3_BUILD_CONFIG_REQUIREMENT}\"` in its [build-dependencies], and a \
         build.rs with `fn main() {{ pyo3_build_config::add_libpython_rpath_link_args(); }}` \
         (py-in-mem's docs/deploying.md, \"Your own binary\")"
    )
}

/// `mapped` against the libpython build.rs linked (`expected`, empty when
/// linked statically).
fn wrong_for_build(mapped: &Path, expected: &str) -> Option<Wrong> {
    if expected.is_empty() || same_file(mapped, Path::new(expected)) {
        return None;
    }
    let mapped = resolved(mapped);
    let missing = if Path::new(expected).exists() {
        ""
    } else {
        ", which is not on this machine"
    };
    Some(Wrong {
        cause: format!(
            "this process loaded {} (Python {}), not the libpython py-in-mem was built \
             against, {expected} (Python {BUILD_PYTHON_VERSION}){missing}",
            mapped.display(),
            running_version(),
        ),
        hint: format!(
            "give the binary {}; or, to run on {} instead, set {PYTHON_ENV} to a python of \
             its installation",
            rpath_fix(),
            mapped.display()
        ),
    })
}

/// What chose the prefix a libpython is checked against.
enum Named<'a> {
    /// [`PYTHON_ENV`], naming this interpreter.
    Python(&'a str),
    /// PYTHONHOME.
    PythonHome,
}

/// `mapped` against the installation at `prefix` (links resolved): its
/// libpython is under one of the prefix's `lib` directories (`lib`, `lib64`,
/// Debian's `lib/x86_64-linux-gnu`).
fn wrong_for_prefix(mapped: &Path, prefix: &Path, named: &Named) -> Option<Wrong> {
    let mapped = resolved(mapped);
    let in_lib = mapped.strip_prefix(prefix).ok().and_then(|rest| {
        let first = rest.components().next()?;
        Some(first.as_os_str().as_bytes().starts_with(b"lib"))
    });
    if in_lib == Some(true) {
        return None;
    }
    let (whose, change, or_unset) = match named {
        Named::Python(python) => (
            format!("the installation of {python} ({PYTHON_ENV})"),
            format!("set {PYTHON_ENV} to a python of the installation"),
            "",
        ),
        Named::PythonHome => (
            "the prefix PYTHONHOME names".to_owned(),
            "set PYTHONHOME to the prefix of the installation".to_owned(),
            ", or unset PYTHONHOME",
        ),
    };
    Some(Wrong {
        cause: format!(
            "this process loaded {} (Python {}), which is not a libpython of {}, {whose}",
            mapped.display(),
            running_version(),
            prefix.display()
        ),
        hint: format!(
            "{change} {} belongs to{or_unset}; or build the binary against a python of {} \
             (PYO3_PYTHON) and give it {}",
            mapped.display(),
            prefix.display(),
            rpath_fix()
        ),
    })
}

/// The prefix holding libpython that PYTHONHOME (`prefix` or
/// `prefix:exec_prefix`) names, links resolved; `None` when unset, or naming
/// nothing (Python's own start-up then fails, and says PYTHONHOME is wrong).
fn python_home(value: Option<&OsStr>) -> Option<PathBuf> {
    let value = value?.as_bytes();
    // libpython lives under the exec_prefix.
    let exec_prefix = value.rsplit(|&b| b == b':').next()?;
    if exec_prefix.is_empty() {
        return None;
    }
    Path::new(OsStr::from_bytes(exec_prefix))
        .canonicalize()
        .ok()
}

/// The same file, by its links resolved or by its inode (a hard link, as
/// conda makes).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) if a == b => true,
        _ => match (a.metadata(), b.metadata()) {
            (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
            _ => false,
        },
    }
}

/// The prefix (links resolved) of the installation `python` belongs to, found
/// as Python finds it: a virtualenv leads to its base interpreter
/// (`pyvenv.cfg`'s `home`), and the prefix is the nearest directory above the
/// interpreter holding `lib/pythonX.Y/os.py` (or `lib64/...`).
fn installation_prefix(python: &Path, version: &str) -> Option<PathBuf> {
    search_start(python)?.ancestors().find_map(|dir| {
        ["lib", "lib64"]
            .iter()
            .any(|lib| is_stdlib(&dir.join(lib).join(format!("python{version}"))))
            .then(|| dir.to_owned())
    })
}

/// Whether `dir` holds a Python standard library.
fn is_stdlib(dir: &Path) -> bool {
    dir.join("os.py").is_file() || dir.join("os.pyc").is_file()
}

/// The standard libraries (`lib/python3.X/os.py`) of the installation an
/// interpreter is in: beside the directory [`installation_prefix`] starts
/// from (a `bin`), or in it; each with its version (`"3.13"`), in order.
/// None if there is none there (a virtualenv made from a virtualenv, whose
/// `home` is the other's `bin`: Python then finds its prefix farther on).
fn own_stdlibs(python: &Path) -> Option<Vec<(String, PathBuf)>> {
    let start = search_start(python)?;
    let dirs = [start.parent(), Some(start.as_path())];
    let found = dirs.into_iter().flatten().find_map(|dir| {
        let mut found: Vec<(String, PathBuf)> = ["lib", "lib64"]
            .iter()
            .filter_map(|lib| std::fs::read_dir(dir.join(lib)).ok())
            .flatten()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path.file_name()?.to_str()?;
                let version = name.strip_prefix("python")?;
                let (major, minor) = version.split_once('.')?;
                let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                let version = version.to_owned();
                (numeric(major) && numeric(minor) && is_stdlib(&path)).then_some((version, path))
            })
            .collect();
        found.sort();
        (!found.is_empty()).then_some(found)
    });
    found
}

/// Where the search for an interpreter's standard library starts: the
/// `home` of its virtualenv, or its own directory.
fn search_start(python: &Path) -> Option<PathBuf> {
    let bin = python.parent()?;
    let venv_home = [bin.join("pyvenv.cfg"), bin.join("../pyvenv.cfg")]
        .iter()
        .find_map(|cfg| std::fs::read_to_string(cfg).ok())
        .and_then(|cfg| {
            cfg.lines().find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "home").then(|| PathBuf::from(value.trim()))
            })
        });
    match venv_home {
        Some(home) => home.canonicalize().ok(),
        // Python needs only the path, not the file: a deployment may ship
        // the prefix without the interpreter.
        None => match python.canonicalize() {
            Ok(real) => Some(real.parent()?.to_owned()),
            Err(_) => bin.canonicalize().ok(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory, emptied first.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pim_libpython_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A fake installation under `prefix`: `bin/python3.X`, the standard
    /// library's landmark, and `lib/libpython3.X.so.1.0`, all empty files.
    fn fake_installation(prefix: &Path) -> (PathBuf, PathBuf) {
        let version = major_minor(BUILD_PYTHON_VERSION);
        let stdlib = prefix.join("lib").join(format!("python{version}"));
        std::fs::create_dir_all(&stdlib).unwrap();
        std::fs::create_dir_all(prefix.join("bin")).unwrap();
        std::fs::write(stdlib.join("os.py"), "").unwrap();
        let python = prefix.join("bin").join(format!("python{version}"));
        std::fs::write(&python, "").unwrap();
        let lib = prefix
            .join("lib")
            .join(format!("libpython{version}.so.1.0"));
        std::fs::write(&lib, "").unwrap();
        (python, lib)
    }

    #[test]
    fn this_test_binary_calls_the_libpython_build_rs_linked() {
        let SymbolObject::Libpython(mapped) = symbol_object() else {
            panic!(
                "Python's symbols are not in a libpython: {:?}",
                symbol_object()
            );
        };
        assert_eq!(resolved(&mapped), Path::new(BUILD_LIBPYTHON));
        assert!(wrong_for_build(&mapped, BUILD_LIBPYTHON).is_none());
        assert_eq!(running_version(), BUILD_PYTHON_VERSION);
        assert!(check(BUILD_PYTHON).is_ok());
    }

    #[test]
    fn another_file_of_the_same_name_is_wrong_and_the_error_names_both_and_the_fix() {
        let dir = scratch("other");
        let (_, other) = fake_installation(&dir.join("other"));
        let wrong = wrong_for_build(&other, BUILD_LIBPYTHON).expect("a different file");
        let other = other.canonicalize().unwrap();
        assert!(
            wrong.cause.starts_with(&format!(
                "this process loaded {} (Python {}), not the libpython py-in-mem was built \
                 against, {BUILD_LIBPYTHON} (Python {BUILD_PYTHON_VERSION})",
                other.display(),
                running_version()
            )),
            "{}",
            wrong.cause
        );
        assert!(
            !wrong.cause.contains("not on this machine"),
            "{}",
            wrong.cause
        );
        for part in [
            "`pyo3-ffi = \">=0.26, <0.31\"` in its [dependencies]",
            "`pyo3-build-config = \"0.30\"` in its [build-dependencies]",
            "pyo3_build_config::add_libpython_rpath_link_args()",
            &format!(
                "to run on {} instead, set PY_IN_MEM_PYTHON",
                other.display()
            ),
        ] {
            assert!(wrong.hint.contains(part), "{part:?} not in {}", wrong.hint);
        }
        // The libpython built against gone from this machine: said so.
        let gone = dir.join("gone/libpython.so");
        let wrong = wrong_for_build(&other, gone.to_str().unwrap()).unwrap();
        assert!(
            wrong.cause.ends_with(", which is not on this machine"),
            "{}",
            wrong.cause
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_link_or_a_hard_link_to_the_built_libpython_is_the_same_file() {
        let dir = scratch("links");
        let symlink = dir.join("libpython-symlink.so");
        std::os::unix::fs::symlink(BUILD_LIBPYTHON, &symlink).unwrap();
        assert!(wrong_for_build(&symlink, BUILD_LIBPYTHON).is_none());
        let (_, lib) = fake_installation(&dir.join("inst"));
        let hard = dir.join("hard.so");
        std::fs::hard_link(&lib, &hard).unwrap();
        assert!(same_file(&hard, &lib));
        assert!(!same_file(&hard, Path::new(BUILD_LIBPYTHON)));
        // Linked statically: nothing to compare.
        assert!(wrong_for_build(&lib, "").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_interpreters_own_standard_library_and_a_virtualenv_of_a_virtualenv() {
        let version = major_minor(BUILD_PYTHON_VERSION);
        let dir = scratch("own");
        let (python, _) = fake_installation(&dir.join("inst"));
        let found = own_stdlibs(&python).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, version);
        // A virtualenv whose home is another virtualenv's bin (Python 3.9
        // and 3.10 make one so from inside a virtualenv): its lib holds
        // site-packages, no standard library, so nothing is said of it.
        let outer = dir.join("outer");
        std::fs::create_dir_all(outer.join("bin")).unwrap();
        std::fs::create_dir_all(outer.join(format!("lib/python{version}/site-packages"))).unwrap();
        let inner = dir.join("inner");
        std::fs::create_dir_all(inner.join("bin")).unwrap();
        std::fs::write(
            inner.join("pyvenv.cfg"),
            format!("home = {}\n", outer.join("bin").display()),
        )
        .unwrap();
        assert_eq!(own_stdlibs(&inner.join("bin/python")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_prefix_of_an_interpreter_a_link_to_one_and_a_virtualenv() {
        let version = major_minor(BUILD_PYTHON_VERSION);
        let dir = scratch("prefix");
        let prefix = dir.join("opt/py");
        let (python, _) = fake_installation(&prefix);
        let prefix = prefix.canonicalize().unwrap();
        assert_eq!(installation_prefix(&python, version), Some(prefix.clone()));
        // A link elsewhere (Debian's /usr/bin/python3 -> python3.11).
        let link = dir.join("python3");
        std::os::unix::fs::symlink(&python, &link).unwrap();
        assert_eq!(installation_prefix(&link, version), Some(prefix.clone()));
        // A virtualenv copied from it (`--copies`): its pyvenv.cfg leads back.
        let venv = dir.join("venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(venv.join("bin/python"), "").unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!(
                "home = {}\ninclude-system-site-packages = false\n",
                prefix.join("bin").display()
            ),
        )
        .unwrap();
        assert_eq!(
            installation_prefix(&venv.join("bin/python"), version),
            Some(prefix)
        );
        // No standard library in the scratch directory: the search goes on
        // up, as Python's does (to `/` on a merged-/usr system: /lib/python3.X).
        std::fs::create_dir_all(dir.join("bare/bin")).unwrap();
        std::fs::write(dir.join("bare/bin/python"), "").unwrap();
        let found = installation_prefix(&dir.join("bare/bin/python"), version);
        let scratch = dir.canonicalize().unwrap();
        assert!(
            found.as_ref().is_none_or(|p| !p.starts_with(&scratch)),
            "{found:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_libpython_belongs_to_an_installation_only_under_its_lib_directories() {
        let dir = scratch("installation");
        // /usr and /usr/local: a prefix inside another.
        let (usr_python, usr_lib) = fake_installation(&dir.join("usr"));
        let (local_python, local_lib) = fake_installation(&dir.join("usr/local"));
        let multiarch = dir.join("usr/lib/x86_64-linux-gnu/libpython3.so.1.0");
        std::fs::create_dir_all(multiarch.parent().unwrap()).unwrap();
        std::fs::write(&multiarch, "").unwrap();
        let usr = usr_python.to_str().unwrap();
        let local = local_python.to_str().unwrap();
        let wrong_for_installation = |lib: &Path, python: &str| {
            let prefix =
                installation_prefix(Path::new(python), major_minor(BUILD_PYTHON_VERSION)).unwrap();
            wrong_for_prefix(lib, &prefix, &Named::Python(python))
        };
        assert!(wrong_for_installation(&usr_lib, usr).is_none());
        assert!(wrong_for_installation(&multiarch, usr).is_none());
        assert!(wrong_for_installation(&local_lib, local).is_none());
        let wrong = wrong_for_installation(&local_lib, usr).expect("/usr/local is not /usr/lib");
        assert!(
            wrong.cause.contains(&format!(
                "which is not a libpython of {}, the installation of {usr} (PY_IN_MEM_PYTHON)",
                dir.join("usr").canonicalize().unwrap().display()
            )),
            "{}",
            wrong.cause
        );
        assert!(wrong
            .hint
            .contains("set PY_IN_MEM_PYTHON to a python of the installation"));
        assert!(wrong_for_installation(&usr_lib, local).is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pythonhome_names_the_prefix_a_libpython_is_checked_against() {
        let dir = scratch("home");
        let (_, lib) = fake_installation(&dir.join("opt/py"));
        let (_, other_lib) = fake_installation(&dir.join("other"));
        let home = dir.join("opt/py").canonicalize().unwrap();
        assert_eq!(python_home(Some(home.as_os_str())), Some(home.clone()));
        // prefix:exec_prefix: libpython is under the exec_prefix.
        let both = format!("/nonexistent:{}", home.display());
        assert_eq!(python_home(Some(OsStr::new(&both))), Some(home.clone()));
        // Unset, empty, or naming nothing: Python's own start-up says so.
        assert_eq!(python_home(None), None);
        assert_eq!(python_home(Some(OsStr::new(""))), None);
        assert_eq!(python_home(Some(OsStr::new("/nonexistent/pim"))), None);
        assert!(wrong_for_prefix(&lib, &home, &Named::PythonHome).is_none());
        let wrong = wrong_for_prefix(&other_lib, &home, &Named::PythonHome).unwrap();
        assert!(
            wrong.cause.ends_with(&format!(
                "which is not a libpython of {}, the prefix PYTHONHOME names",
                home.display()
            )),
            "{}",
            wrong.cause
        );
        assert!(
            wrong.hint.starts_with(&format!(
                "set PYTHONHOME to the prefix of the installation {} belongs to, or unset \
                 PYTHONHOME; ",
                other_lib.canonicalize().unwrap().display()
            )),
            "{}",
            wrong.hint
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_prefix_shipped_without_its_interpreter_is_still_found() {
        let dir = scratch("no_interpreter");
        let (python, _) = fake_installation(&dir.join("opt/py"));
        std::fs::remove_file(&python).unwrap();
        assert_eq!(
            installation_prefix(&python, major_minor(BUILD_PYTHON_VERSION)),
            Some(dir.join("opt/py").canonicalize().unwrap())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(major_minor("3.11.7"), "3.11");
        assert_eq!(major_minor("3.13.0rc1"), "3.13");
        assert_eq!(major_minor("3.9"), "3.9");
    }

    #[test]
    fn the_pyo3_ffi_requirement_named_in_errors_is_the_one_in_cargo_toml() {
        let manifest = include_str!("../../Cargo.toml");
        for line in [
            format!("pyo3-ffi = \"{PYO3_FFI_REQUIREMENT}\""),
            format!("pyo3-build-config = \"{PYO3_BUILD_CONFIG_REQUIREMENT}\""),
        ] {
            assert!(
                manifest.lines().any(|l| l.trim() == line),
                "no {line:?} in Cargo.toml"
            );
        }
    }
}
