//! `BytesArray` (feature `bytes`): a `bytes::Bytes` given to Python as a
//! read-only numpy array, in place when aligned, copied once when not, and
//! released when Python lets it go.
#![cfg(feature = "bytes")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use py_in_mem::{BytesArray, Error, Function};

/// f64s as bytes, in memory aligned for f64; counts its drops.
struct Aligned {
    values: Vec<f64>,
    drops: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: any f64 is 8 initialized bytes; the slice borrows `self`.
        unsafe {
            std::slice::from_raw_parts(self.values.as_ptr().cast::<u8>(), self.values.len() * 8)
        }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn aligned(values: Vec<f64>) -> (Bytes, Arc<AtomicUsize>) {
    let drops = Arc::new(AtomicUsize::new(0));
    let bytes = Bytes::from_owner(Aligned {
        values,
        drops: Arc::clone(&drops),
    });
    (bytes, drops)
}

fn functions() -> (Function, Function) {
    let source = "KEPT = []\n\
                  def f(a, keep=False):\n\
                  \x20   if keep:\n\
                  \x20       KEPT.append(a)\n\
                  \x20   return a.ctypes.data, a.flags.writeable, a.shape, a.tolist()\n\
                  def release():\n\
                  \x20   KEPT.clear()\n";
    let f = Function::from_source("pim_bytes", source, "f").unwrap();
    let release = Function::load("pim_bytes", "release").unwrap();
    (f, release)
}

type Seen = (usize, bool, Vec<usize>, Vec<Vec<f64>>);

#[test]
fn aligned_bytes_are_read_in_place_and_released_when_python_lets_go() -> Result<(), Error> {
    let (f, release) = functions();
    let (bytes, drops) = aligned(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let address = bytes.as_ptr() as usize;
    let array = BytesArray::<f64>::with_shape(bytes, vec![2, 3])?;
    assert!(array.is_zero_copy());
    let (data, writeable, shape, rows): Seen = f.arg_owned(array).kwarg("keep", true).call()?;
    assert_eq!(data, address, "numpy reads the Bytes' own memory");
    assert!(!writeable, "a Bytes is shared: read-only in Python");
    assert_eq!(shape, [2, 3]);
    assert_eq!(rows, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    // Python keeps it: not released until Python lets it go.
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    release.call0::<()>()?;
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    Ok(())
}

#[test]
fn misaligned_bytes_are_copied_once() -> Result<(), Error> {
    let (f, _) = functions();
    let (bytes, drops) = aligned(vec![0.0; 3]);
    // Four f32s starting one byte into the buffer.
    let mut raw = vec![0u8];
    for x in [1.5f32, -2.0, 3.25, 0.0] {
        raw.extend(x.to_ne_bytes());
    }
    drop(bytes);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    let odd = Bytes::from(raw).slice(1..);
    let address = odd.as_ptr() as usize;
    let array = BytesArray::<f32>::new(odd)?;
    if array.is_zero_copy() {
        // The allocator put the Vec at an odd address: nothing to test.
        return Ok(());
    }
    let (data, writeable, shape, _): (usize, bool, Vec<usize>, Vec<f64>) =
        f.arg_owned(array).call()?;
    assert_ne!(data, address, "copied into an aligned buffer");
    assert_eq!(data % std::mem::align_of::<f32>(), 0);
    assert!(!writeable);
    assert_eq!(shape, [4]);
    let values: Vec<f32> = Function::load("numpy", "copy")?
        .arg_owned(BytesArray::<f32>::new(
            Bytes::from(vec![0u8; 9]).slice(1..),
        )?)
        .call()?;
    assert_eq!(values, [0.0, 0.0]);
    Ok(())
}

#[test]
fn bytes_that_are_not_whole_elements_are_refused() {
    let err = BytesArray::<f64>::new(Bytes::from(vec![0u8; 12])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument: 12 bytes are not a whole number of 8-byte elements"
    );
    assert!(BytesArray::<u16>::with_shape(Bytes::from(vec![0u8; 12]), vec![2, 2]).is_err());
    assert!(BytesArray::<u16>::with_shape(Bytes::from(vec![0u8; 8]), vec![2, 2]).is_ok());
    // A bool must be 0 or 1, as Rust's is.
    assert!(BytesArray::<bool>::new(Bytes::from(vec![0u8, 1, 2])).is_err());
    assert!(BytesArray::<bool>::new(Bytes::from(vec![0u8, 1, 1])).is_ok());
    // A shape whose byte count overflows.
    assert!(BytesArray::<u64>::with_shape(Bytes::new(), vec![usize::MAX, 2]).is_err());
}
