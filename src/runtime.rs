//! The process-wide Python: started once, on first use, and never shut down
//! (numpy cannot be initialized twice in one process).

use std::ffi::CString;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Error, PyException};
use crate::glue::{self, Python};

/// The interpreter build.rs compiled against: Python takes its prefix and
/// site-packages (a virtualenv's too) from this path.
///
/// ```
/// assert!(std::path::Path::new(py_in_mem::BUILD_PYTHON).exists());
/// ```
pub const BUILD_PYTHON: &str = env!("PY_IN_MEM_PYTHON");

/// The crate's `python/` directory, appended to `sys.path` so `outliers`
/// imports; a user's `PYTHONPATH` comes before it.
///
/// ```
/// assert!(std::path::Path::new(py_in_mem::MODULE_DIR).join("outliers.py").is_file());
/// ```
pub const MODULE_DIR: &str = env!("PY_IN_MEM_MODULE_DIR");

static PYTHON: OnceLock<Result<Python, Error>> = OnceLock::new();

/// Starts Python and numpy on first call; later calls return the first result.
pub(crate) fn python() -> Result<Python, Error> {
    PYTHON.get_or_init(start).clone()
}

fn start() -> Result<Python, Error> {
    let init_error = |cause: PyException| {
        let hint = if cause.message.contains("numpy") {
            format!("install numpy for this interpreter: run `make setup`, or `{BUILD_PYTHON} -m pip install numpy`")
        } else {
            format!("check that {BUILD_PYTHON} runs, and PYTHONHOME and PYTHONPATH if set")
        };
        Error::Init {
            python: BUILD_PYTHON.to_owned(),
            cause,
            hint,
        }
    };
    let program =
        CString::new(BUILD_PYTHON).map_err(|_| Error::InvalidName(BUILD_PYTHON.into()))?;
    let module_dir = CString::new(MODULE_DIR).map_err(|_| Error::InvalidName(MODULE_DIR.into()))?;
    // SAFETY: OnceLock runs this once per process. If we start Python, no
    // thread can hold the GIL yet; if the host did, init_python only takes
    // the GIL with PyGILState_Ensure, which nests.
    unsafe { glue::init_python(&program, &module_dir) }.map_err(init_error)
}

/// Puts `dir` first on Python's `sys.path`, starting Python if needed, so
/// modules in it can be loaded with [`crate::Outliers::new`].
///
/// Idempotent: a directory already on the path is left where it is.
///
/// ```
/// let dir = std::env::temp_dir().join("py_in_mem_doc_add_sys_path");
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("doc_mod.py"), "def detect(data):\n    return (data > 1).nonzero()[0]\n").unwrap();
/// py_in_mem::add_sys_path(&dir).unwrap();
/// let found = py_in_mem::Outliers::new("doc_mod", "detect").unwrap();
/// assert_eq!(found.detect(&[0.5, 3.0]).unwrap(), vec![1]);
/// ```
pub fn add_sys_path(dir: &Path) -> Result<(), Error> {
    let python = python()?;
    let text = dir
        .to_str()
        .ok_or_else(|| Error::InvalidName(dir.display().to_string()))?;
    let dir = CString::new(text).map_err(|_| Error::InvalidName(text.to_owned()))?;
    let gil = python.gil();
    glue::add_sys_path(&gil, &dir).map_err(Error::Python)
}
