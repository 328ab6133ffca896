//! What an async call's caller allocated is freed by the caller, never by
//! the serving thread (`py_in_mem::serve`): a free into another thread's
//! allocator arena can wait for that arena's lock, and the serving thread
//! holds the GIL for the whole queue. So the arguments' own memory (the
//! positional arguments past the first, the keyword arguments, a `Value`'s
//! lists and strings, the boxes that make a `Value` or an `Object` into its
//! Python object) goes back to the future with the result, as an owned
//! array does.
//!
//! A global allocator of this test binary's counts it: each block records
//! whether a watched thread (the test's, which makes the calls and polls
//! the futures) allocated it, and a free of such a block on any other
//! thread is counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use py_in_mem::serve::CallFuture;
use py_in_mem::{Arg, Function, Object, Value};

/// The system's allocator, with a header before each block saying whether
/// a watched thread allocated it.
struct Watching;

/// The system's block for a block of `layout`, and where the caller's
/// part starts in it: after a header with room for the flag, its size a
/// multiple of the caller's alignment. None if too large.
fn with_header(layout: Layout) -> Option<(Layout, usize)> {
    let skip = layout.align().max(16);
    let outer = Layout::from_size_align(layout.size().checked_add(skip)?, skip).ok()?;
    Some((outer, skip))
}

thread_local! {
    /// Set on the threads whose blocks are watched.
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

/// Frees, on an unwatched thread, of blocks a watched thread allocated.
static FOREIGN_FREES: AtomicUsize = AtomicUsize::new(0);

fn watched() -> bool {
    WATCHED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every block is the system's, `with_header`'s skip further on, with the
// caller's alignment (the header is a multiple of it); the flag is written
// in the header's first byte, which is the system block's and aligned.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((outer, skip)) = with_header(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `outer` has a non-zero size (the header).
        let block = unsafe { System.alloc(outer) };
        if block.is_null() {
            return block;
        }
        // SAFETY: the header is inside the block just allocated.
        unsafe {
            block.write(u8::from(watched()));
            block.add(skip)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout, for which
        // `with_header` gave this very block layout (so it is Some), and the
        // system's block starts `skip` bytes before `ptr`, with its flag.
        unsafe {
            let (outer, skip) = with_header(layout).unwrap_unchecked();
            let block = ptr.sub(skip);
            if block.read() == 1 && !watched() {
                FOREIGN_FREES.fetch_add(1, Ordering::SeqCst);
            }
            System.dealloc(block, outer);
        }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

fn source(module: &str, source: &str, name: &str) -> Function {
    Function::from_source(module, source, name).unwrap()
}

/// Makes [`CALLS`] async calls with `call` on this (watched) thread, each
/// awaited here and its result checked against `expected`; asserts that no
/// other thread freed a block of this thread's meanwhile.
fn assert_freed_here(
    what: &str,
    call: impl Fn(usize) -> CallFuture<f64>,
    expected: impl Fn(usize) -> f64,
) {
    // One waker for all the calls, made before the count: the serving
    // thread drops the clone it wakes, and that drop must not be the last
    // (an executor's waker is its own business, not the crate's).
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    WATCHED.with(|w| w.set(true));
    let before = FOREIGN_FREES.load(Ordering::SeqCst);
    for i in 0..CALLS {
        assert_eq!(
            block_on(call(i), &waker).unwrap(),
            expected(i),
            "{what}, call {i}"
        );
    }
    let frees = FOREIGN_FREES.load(Ordering::SeqCst) - before;
    WATCHED.with(|w| w.set(false));
    assert_eq!(
        frees, 0,
        "{what}: {frees} frees by another thread in {CALLS} calls"
    );
}

/// Wakes the thread that awaits.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(future: F, waker: &Waker) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(waker);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Calls of each kind.
const CALLS: usize = 200;

const SOURCE: &str = "def total(*args, **kwargs):\n\
\x20   import numpy as np\n\
\x20   out = 0.0\n\
\x20   for a in list(args) + list(kwargs.values()):\n\
\x20       if isinstance(a, np.ndarray):\n\
\x20           out += float(a.sum())\n\
\x20       elif isinstance(a, (list, tuple)):\n\
\x20           out += float(sum(a))\n\
\x20       elif isinstance(a, str):\n\
\x20           out += len(a)\n\
\x20       elif hasattr(a, 'k'):\n\
\x20           out += a.k\n\
\x20       else:\n\
\x20           out += float(a)\n\
\x20   return out\n\
class M:\n\
\x20   k = 7\n";

// One test, so that no other test's thread frees a watched block (or
// watches its own) meanwhile.
#[test]
fn an_async_calls_arguments_are_freed_by_the_thread_that_polls_its_future() {
    let total = source("pim_async_frees", SOURCE, "total");
    let model: Object = source("pim_async_frees", SOURCE, "M").call0().unwrap();
    // Warm up: the serving thread started, Python's and numpy's caches.
    for _ in 0..10 {
        let sum: f64 = pollster::block_on(total.call_async(Arg::owned(vec![1.0, 2.0]))).unwrap();
        assert_eq!(sum, 3.0);
    }
    // And the crate's timer thread (`pim-serve-timer`), which a call with a
    // deadline starts: started later, by a call the loop below makes, its
    // start would free blocks of the watched thread's on the timer thread
    // (the thread's start-up box: 1 to 3 frees in about 1 run in 100).
    let sum: f64 = pollster::block_on(
        total
            .timeout(std::time::Duration::from_secs(60))
            .arg_owned(vec![1.0, 2.0])
            .call_async(),
    )
    .unwrap();
    assert_eq!(sum, 3.0);

    assert_freed_here(
        "one owned array (the path `make bench` measures)",
        |i| total.call_async(Arg::owned(vec![1.0, i as f64])),
        |i| 1.0 + i as f64,
    );
    assert_freed_here(
        "two positional arguments and a keyword argument",
        |i| {
            total
                .arg_owned(vec![1.0, 2.0])
                .arg_owned(vec![i as f64])
                .kwarg("k", 10)
                .call_async()
        },
        |i| 13.0 + i as f64,
    );
    assert_freed_here(
        "values: a list and a string",
        |i| {
            let list = (0..40).map(|j| Value::Float((i + j) as f64)).collect();
            total
                .arg(Value::List(list))
                .arg(Value::Str("x".repeat(300)))
                .call_async()
        },
        |i| (40 * i + 780 + 300) as f64,
    );
    assert_freed_here(
        "an object by value",
        |_| total.call_async(model.clone()),
        |_| 7.0,
    );
}
