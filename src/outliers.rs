//! The safe API of the article: `Outliers`, a Python outlier-detection
//! function called on a Rust slice in place.

use std::ffi::CString;
use std::fmt;

use crate::borrow::BorrowedArray;
use crate::error::Error;
use crate::glue::{self, DetectError, PyRef, Python};
use crate::indices::to_indices;
use crate::runtime;

/// What a detect function must return.
const EXPECTED_RESULT: &str = "a 1-D numpy array of integer indices";

/// A Python function `f(data) -> indices`, such as `outliers.detect`, called
/// on Rust data without a copy.
///
/// `Outliers` is `Send + Sync`: any thread may call it, at the same time as
/// others (each call takes the GIL). The input is lent to Python as a
/// read-only numpy array for the duration of the call only; a function that
/// keeps it (in a global, say) aborts the process, since Python would
/// otherwise read Rust memory after it is freed.
///
/// ```
/// use py_in_mem::Outliers;
///
/// let outliers = Outliers::new("outliers", "detect")?;
/// let mut data = vec![0.5; 100];
/// data[42] = 1000.0;
/// assert_eq!(outliers.detect(&data)?, vec![42]);
/// # Ok::<(), py_in_mem::Error>(())
/// ```
pub struct Outliers {
    func: PyRef,
    /// `module.function`, for messages.
    name: String,
    python: Python,
}

impl Outliers {
    /// Starts Python once per process, imports `module` and gets `func` from it.
    ///
    /// `module` is found on `sys.path`: the user's `PYTHONPATH`, the
    /// site-packages of the interpreter the crate was built against, then the
    /// crate's own `python/` directory (which holds `outliers`).
    ///
    /// ```
    /// let err = py_in_mem::Outliers::new("nope", "detect").unwrap_err();
    /// assert_eq!(err.to_string(), "ModuleNotFoundError: No module named 'nope'");
    /// ```
    pub fn new(module: &str, func: &str) -> Result<Outliers, Error> {
        let c_module = CString::new(module).map_err(|_| Error::InvalidName(module.into()))?;
        let c_func = CString::new(func).map_err(|_| Error::InvalidName(func.into()))?;
        let python = runtime::python()?;
        let gil = python.gil();
        let func_ref = glue::load_func(&gil, &c_module, &c_func).map_err(Error::Python)?;
        drop(gil);
        Ok(Outliers {
            func: func_ref,
            name: format!("{module}.{func}"),
            python,
        })
    }

    /// Calls the function on `data`, shared with Python as a read-only numpy
    /// `float64` array (no copy), and returns the indices it found.
    ///
    /// Empty input returns an empty `Vec` without calling Python. The result
    /// must be a 1-D numpy array of any integer dtype, byte order and stride,
    /// with every value in `0..data.len()`; anything else is
    /// [`Error::BadResult`]. An exception is [`Error::Python`].
    ///
    /// # Aborts
    /// If the function keeps a reference to its input array, or to a view or
    /// buffer of it, after returning (see the type's docs).
    pub fn detect(&self, data: &[f64]) -> Result<Vec<usize>, Error> {
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let gil = self.python.gil();
        let input = BorrowedArray::new(&gil, data, &self.name).map_err(Error::Python)?;
        // SAFETY: `input` owns a live reference to the array until it drops.
        let indices = match unsafe { glue::detect(&gil, &self.func, input.as_ptr()) } {
            Ok(view) => to_indices(&view, data.len()).map_err(|found| Error::BadResult {
                function: self.name.clone(),
                expected: "indices into the input",
                found,
            }),
            Err(DetectError::Python(exception)) => Err(Error::Python(exception)),
            Err(DetectError::BadResult(found)) => Err(Error::BadResult {
                function: self.name.clone(),
                expected: EXPECTED_RESULT,
                found,
            }),
        };
        // The result and any exception are released by now, so the count of
        // references to the input is exact: release it and check for retention.
        drop(input);
        drop(gil);
        indices
    }

    /// Releases the Python function. Dropping does the same; after either,
    /// the value is gone, so use after close does not compile.
    pub fn close(self) {}

    /// `module.function`, as given to [`Outliers::new`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Outliers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outliers")
            .field("name", &self.name)
            .finish()
    }
}
