//! `call_owned`: Python keeps a given buffer past the Rust caller's scope,
//! and the buffer is freed exactly once, when Python lets go (counted by a
//! global allocator that watches the buffer's address and size).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::test_func;
use py_in_mem::Function;

struct WatchingAllocator;

static WATCHED_ADDRESS: AtomicUsize = AtomicUsize::new(0);
static WATCHED_SIZE: AtomicUsize = AtomicUsize::new(0);
static WATCHED_FREES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to System unchanged; the watch only counts.
unsafe impl GlobalAlloc for WatchingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ptr as usize == WATCHED_ADDRESS.load(Ordering::SeqCst)
            && layout.size() == WATCHED_SIZE.load(Ordering::SeqCst)
        {
            WATCHED_FREES.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: WatchingAllocator = WatchingAllocator;

fn function(name: &str) -> Function {
    test_func(name); // puts tests/python on sys.path
    Function::load("pim_testfuncs", name).unwrap()
}

// One test, so nothing else in this binary allocates a buffer of the
// watched size meanwhile.
#[test]
fn python_keeps_given_buffers_and_frees_each_once() {
    // A Vec, handed over writable, kept by Python past this scope.
    let len = 12_345; // an odd size: no other allocation has it
    {
        let data: Vec<i64> = (0..len as i64).collect();
        WATCHED_SIZE.store(len * 8, Ordering::SeqCst);
        WATCHED_ADDRESS.store(data.as_ptr() as usize, Ordering::SeqCst);
        let sums = function("keep_owned")
            .call_owned::<_, Vec<i64>>(data)
            .unwrap();
        assert_eq!(sums.last(), Some(&((len as i64 - 1) * len as i64 / 2)));
    }
    assert_eq!(
        WATCHED_FREES.load(Ordering::SeqCst),
        0,
        "freed while Python holds it"
    );
    let total = function("sum_kept_owned").call::<Vec<i64>>(&[0.0]).unwrap();
    assert_eq!(total, [(len as i64 - 1) * len as i64 / 2]);
    // Python writes its own array freely.
    assert_eq!(
        function("mutate_owned")
            .call_owned::<_, Vec<i32>>(vec![1i32, 2])
            .unwrap(),
        [100, 2]
    );
    // Python lets go (from another thread): freed once, there and then.
    std::thread::spawn(|| function("clear_kept").call::<Vec<i64>>(&[0.0]).unwrap())
        .join()
        .unwrap();
    assert_eq!(WATCHED_FREES.load(Ordering::SeqCst), 1);
    for _ in 0..10 {
        function("keep_owned")
            .call_owned::<_, Vec<f64>>(vec![1.0f64; 7])
            .unwrap();
    }
    function("clear_kept").call::<Vec<i64>>(&[0.0]).unwrap();
    assert_eq!(WATCHED_FREES.load(Ordering::SeqCst), 1, "freed twice");

    // An Arc<[T]>, shared read-only: Python's reference shows in the count.
    let shared: Arc<[f64]> = Arc::from(vec![1.0, 2.0, 3.0]);
    let sums = function("keep_owned")
        .call_owned::<_, Vec<f64>>(Arc::clone(&shared))
        .unwrap();
    assert_eq!(sums, [1.0, 3.0, 6.0]);
    assert_eq!(Arc::strong_count(&shared), 2);
    let err = function("mutate_owned")
        .call_owned::<_, Vec<f64>>(Arc::clone(&shared))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ValueError: assignment destination is read-only"
    );
    function("clear_kept").call::<Vec<i64>>(&[0.0]).unwrap();
    assert_eq!(Arc::strong_count(&shared), 1);
    assert_eq!(&*shared, &[1.0, 2.0, 3.0]);
}

/// Python code that raises as it drops the last array over a given buffer
/// (numpy drops the operands of a failed operation): the buffer is freed in
/// the middle of the raise (trial 29: the free cleared the exception, so
/// `except TypeError` missed it and the call failed with a `SystemError`).
const RAISE_AS_IT_FREES: &str = "\
KEPT = []
def keep(a):
    KEPT.append(a)
def add_text():
    try:
        KEPT.pop() + 'x'
    except TypeError:
        return 'caught'
    return 'missed'
def add_text_uncaught():
    KEPT.pop() + 'x'
";

#[test]
fn an_exception_raised_as_a_given_buffer_is_freed_is_the_one_python_sees() {
    let keep = Function::from_source("pim_owned_raise", RAISE_AS_IT_FREES, "keep").unwrap();
    let add_text = Function::from_source("pim_owned_raise", RAISE_AS_IT_FREES, "add_text").unwrap();
    let uncaught =
        Function::from_source("pim_owned_raise", RAISE_AS_IT_FREES, "add_text_uncaught").unwrap();
    keep.call_owned::<_, ()>(vec![1.0f64, 2.0]).unwrap();
    assert_eq!(add_text.call0::<String>().unwrap(), "caught");
    keep.call_owned::<_, ()>(vec![1.0f64, 2.0]).unwrap();
    let err = uncaught.call0::<()>().unwrap_err();
    assert!(err.is_instance_of("TypeError"), "{err:?}");
    assert!(err.to_string().contains("ufunc 'add'"), "{err}");
}

#[test]
fn numpy_s_refusal_of_a_given_array_is_its_own_error() {
    let f = Function::from_source("pim_owned_refused", "def f(a):\n    return 0\n", "f").unwrap();
    // 65 dimensions: numpy makes at most 64.
    let too_many = py_in_mem::NdVec::new(vec![0u8], vec![1; 65]).unwrap();
    let err = f.call_owned::<_, i64>(too_many).unwrap_err();
    assert_eq!(err.py_type(), Some("ValueError"), "{err:?}");
    assert!(err.to_string().contains("dimensions"), "{err}");
    // And the next call works.
    assert_eq!(f.call_owned::<_, i64>(vec![1.0f64]).unwrap(), 0);
}
