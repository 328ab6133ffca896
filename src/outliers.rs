//! The safe API of the article: `Outliers`, a Python outlier-detection
//! function called on a Rust slice in place. A thin user of [`Function`].

use std::fmt;

use crate::array::borrow::RustArray;
use crate::convert::from_result::indices;
use crate::convert::into_arg::{Arg, ArgKind};
use crate::error::Error;
use crate::function::Function;

/// A Python function `f(data) -> indices`, such as `outliers.detect`, called
/// on Rust data without a copy.
///
/// `Outliers` is `Send + Sync`: any thread may call it, at the same time as
/// others (each call takes the GIL). The input is lent to Python as a
/// read-only numpy array for the duration of the call only; a function that
/// keeps it breaks [the retention rule](crate::Function#the-retention-rule).
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
    function: Function,
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
        Function::load(module, func).map(|function| Outliers { function })
    }

    /// Calls the function on `data`, shared with Python as a read-only numpy
    /// `float64` array (no copy), and returns the indices it found.
    ///
    /// Empty input returns an empty `Vec` without calling Python. The result
    /// must be a 1-D numpy array of any integer dtype, byte order and stride,
    /// with every value in `0..data.len()`; anything else is
    /// [`Error::BadResult`]. An exception is [`Error::Python`]; a function
    /// that kept its input is [`Error::InputRetained`] (or an abort, for a
    /// kept view).
    ///
    /// ```
    /// let outliers = py_in_mem::Outliers::new("outliers", "detect")?;
    /// assert!(outliers.detect(&[]).unwrap().is_empty());
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn detect(&self, data: &[f64]) -> Result<Vec<usize>, Error> {
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let function = &self.function;
        function.invoke(
            &[Arg(ArgKind::Array(RustArray::vector(data)))],
            &[],
            |gil, result| {
                indices(gil, result, data.len())
                    .map_err(|mismatch| mismatch.into_error(function.name()))
            },
        )
    }

    /// Releases the Python function. Dropping does the same; after either,
    /// the value is gone, so use after close does not compile.
    ///
    /// ```
    /// let outliers = py_in_mem::Outliers::new("outliers", "detect")?;
    /// outliers.close();
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn close(self) {}

    /// `module.function`, as given to [`Outliers::new`].
    ///
    /// ```
    /// let outliers = py_in_mem::Outliers::new("outliers", "detect")?;
    /// assert_eq!(outliers.name(), "outliers.detect");
    /// # Ok::<(), py_in_mem::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.function.name()
    }
}

impl fmt::Debug for Outliers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outliers")
            .field("name", &self.name())
            .finish()
    }
}
