//! What build.rs found and baked in: the interpreter and numpy the crate
//! was compiled against, and where the crate's own Python module lives.

/// The interpreter build.rs compiled against: Python takes its prefix and
/// site-packages (a virtualenv's too) from this path.
///
/// ```
/// assert!(std::path::Path::new(py_in_mem::BUILD_PYTHON).exists());
/// ```
pub const BUILD_PYTHON: &str = env!("PY_IN_MEM_BUILD_PYTHON");

/// The crate's `python/` directory, appended to `sys.path` so `outliers`
/// imports; a user's `PYTHONPATH` comes before it.
///
/// ```
/// assert!(std::path::Path::new(py_in_mem::MODULE_DIR).join("outliers.py").is_file());
/// ```
pub const MODULE_DIR: &str = env!("PY_IN_MEM_MODULE_DIR");

/// The version of the numpy whose headers the glue was compiled against.
pub const BUILD_NUMPY: &str = env!("PY_IN_MEM_NUMPY_VERSION");

/// The site-packages directory that numpy ([`BUILD_NUMPY`]) is installed
/// in: for the hint to a host whose own Python lacks numpy.
pub(crate) const BUILD_NUMPY_SITE: &str = env!("PY_IN_MEM_NUMPY_SITE");

/// Environment variable naming another interpreter to take the prefix and
/// site-packages from at run time (a virtualenv made from the same Python,
/// say), instead of [`BUILD_PYTHON`]. It must be the same Python version as
/// the libpython the binary is linked with.
pub const PYTHON_ENV: &str = "PY_IN_MEM_PYTHON";

/// The version of the Python the crate was built against, such as `3.11.7`.
///
/// ```
/// assert!(py_in_mem::BUILD_PYTHON_VERSION.starts_with("3."));
/// ```
pub const BUILD_PYTHON_VERSION: &str = env!("PY_IN_MEM_BUILD_PYTHON_VERSION");
