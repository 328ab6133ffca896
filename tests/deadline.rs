//! Deadlines on calls (`Function::timeout`, `Call::timeout`,
//! `Call::deadline`): Python code running past its deadline is stopped with
//! `Error::Timeout`, a call whose deadline passes while it waits is never
//! made, and the thread, the function and the retention rule are as after
//! any other call.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use common::timeout_fields;
use py_in_mem::{Error, Function, Object};

/// Python code for these tests, one module. `spin(n)` loops while `n` is
/// true, then returns `n`; `calls()` counts the calls of `counted`.
const SOURCE: &str = "\
import ctypes, time

CALLBACK = ctypes.CFUNCTYPE(ctypes.c_double)

CALLS = 0
KEPT = []

def spin(n=1):
    while n:
        pass
    return n

def spin_swallowing(seconds):
    # Were the exception an Exception, the inner loop would be stopped, the
    # outer one would go round again, and the call would return at the end.
    end = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < end:
        rounds += 1  # first: CPython 3.10 never stops a loop whose body starts with try
        try:
            while time.monotonic() < end:
                pass
        except Exception:
            pass
    return rounds

def counted():
    global CALLS
    CALLS += 1
    return CALLS

def calls():
    return CALLS

def keep_then_spin(data):
    KEPT.append(data)
    while True:
        pass

def keep_then_spin_n(data, n):
    KEPT.append(data)
    while n:
        pass

def kept():
    return KEPT[-1].copy()

def total(data, spin_first=0):
    while spin_first:
        pass
    return float(data.sum())

def sleep_then_add(seconds, x):
    time.sleep(seconds)
    return x + 1

def catch_everything():
    try:
        while True:
            pass
    except BaseException as e:
        kind = type(e)
        return f'{kind.__module__}.{kind.__qualname__} {issubclass(kind, Exception)}'

def call_back_then_spin(address, seconds):
    # ctypes gives the GIL up around the callback, which calls the crate.
    CALLBACK(address)()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return 'not stopped'

class Model:
    def __init__(self):
        self.fitted = 0

    def fit(self, data, spin=0):
        while spin:
            pass
        self.fitted = float(data.sum())
        return self.fitted

def busy_python(n):
    return sum(range(n))

STRS = 0

class CountedStr(ValueError):
    def __str__(self):
        global STRS
        STRS += 1
        return 'counted'

class SlowStr(Exception):
    def __str__(self):
        time.sleep(0.3)
        return 'slow'

class EndlessStr(Exception):
    def __str__(self):
        while True:
            pass

def raise_counted_str():
    raise CountedStr()

def raise_slow_str():
    raise SlowStr()

def raise_endless_str():
    raise EndlessStr()

class Lazy:
    # A result whose attribute runs Python code when read: for ever, or
    # for 0.3 s (in C), or at once.
    def __init__(self, how):
        self.how = how

    @property
    def value(self):
        if self.how == 'endless':
            while True:
                pass
        if self.how == 'slow':
            time.sleep(0.3)
        return 41 + 1

def lazy(how):
    return Lazy(how)

def strs():
    return STRS

import sys, threading
from multiprocessing.pool import ThreadPool

# Exceptions that end a thread: in its target (threading.excepthook), or
# before it (sys.unraisablehook: 'Exception ignored in thread started by').
THREAD_DEATHS = []
IGNORED = []
threading.excepthook = lambda args: THREAD_DEATHS.append(repr(args.exc_value))
def _unraisable(u):
    # An exception of a thread that never ran is a thread's death; one a
    # __del__ or a callback raised (SpinsInDel's, a pool's finalizer's) is
    # only ignored, and the caller goes on.
    if 'thread started by' in (u.err_msg or ''):
        THREAD_DEATHS.append(repr(u.exc_value))
    else:
        IGNORED.append(type(u.exc_value).__name__)

sys.unraisablehook = _unraisable

def start_threads_for_ever():
    while True:
        t = threading.Thread(target=int)
        t.start()
        t.join()

def map_on_pools_for_ever():
    while True:
        with ThreadPool(2) as pool:
            pool.map(abs, range(4))

def thread_deaths():
    return list(THREAD_DEATHS)

class SpinsInDel:
    # Its __del__ spins until an exception comes, which Python reports
    # (sys.unraisablehook) and ignores: the caller goes on.
    def __del__(self):
        IGNORED.append('entered')
        while True:
            x = 1

def swallowed_in_del_then_spin():
    SpinsInDel()
    while True:
        pass

def ignored():
    return list(IGNORED)
";

fn function(name: &str) -> Function {
    Function::from_source("pim_deadline_tests", SOURCE, name).unwrap()
}

const MS_10: Duration = Duration::from_millis(10);

/// One test at a time: a test's busy loops and held GIL would make another
/// test's calls wait past their deadlines.
fn serial() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One 10 ms deadline on `while True: pass`: the wall time to the error.
fn one_stopped_spin(spin: &Function) -> Duration {
    let started = Instant::now();
    let outcome = spin.arg(1).timeout(MS_10).call::<i64>();
    let wall = started.elapsed();
    let (name, limit, elapsed, ran) = timeout_fields(outcome);
    assert_eq!(
        (name.as_str(), limit, ran),
        ("pim_deadline_tests.spin", MS_10, true)
    );
    assert!(elapsed >= MS_10 && elapsed <= wall, "{elapsed:?} {wall:?}");
    wall
}

/// Five tries, sorted by wall time.
fn five_stopped_spins(spin: &Function) -> Vec<Duration> {
    let mut walls: Vec<Duration> = (0..5).map(|_| one_stopped_spin(spin)).collect();
    walls.sort();
    walls
}

#[test]
fn a_10_ms_deadline_stops_a_busy_loop_within_20_ms() {
    if std::env::var_os("PIM_MEMCHECK").is_some() {
        // A wall-time bound means nothing under valgrind, which runs the
        // loop tens of times slower; the other tests here still check the
        // mechanism's memory there.
        eprintln!("skipped under make memcheck: it measures wall time");
        return;
    }
    let _serial = serial();
    let spin = function("spin");
    spin.arg(0).call::<i64>().unwrap(); // loaded and warm
    let mut walls = five_stopped_spins(&spin);
    eprintln!("10 ms deadline on a busy loop, wall times: {walls:?}");
    if walls[2] > Duration::from_millis(20) {
        // A machine busy with other work (two cores, shared) can delay the
        // threads: the median of five more tries decides.
        walls = five_stopped_spins(&spin);
        eprintln!("again: {walls:?}");
    }
    assert!(walls[0] >= MS_10, "{walls:?}");
    assert!(
        walls[2] <= Duration::from_millis(20),
        "median {:?} of {walls:?}",
        walls[2]
    );
    // One try may be delayed by the machine's load; none by much.
    assert!(walls[4] <= Duration::from_millis(250), "{walls:?}");
}

#[test]
fn the_error_says_which_function_ran_how_long() {
    let _serial = serial();
    let err = function("spin")
        .timeout(MS_10)
        .arg(1)
        .call::<i64>()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("pim_deadline_tests.spin ran past its deadline of 10 ms (stopped after "),
        "{text}"
    );
    assert!(text.ends_with(" ms)"), "{text}");
    assert!(err.exception().is_none() && !err.is_instance_of("BaseException"));
}

#[test]
fn the_next_call_on_the_thread_and_of_the_function_works() {
    let _serial = serial();
    let spin = function("spin");
    let busy = function("busy_python");
    for _ in 0..3 {
        let (_, _, _, ran) = timeout_fields(spin.arg(1).timeout(MS_10).call());
        assert!(ran);
        // Same function, same thread: runs to its value.
        assert_eq!(spin.arg(0).call::<i64>().unwrap(), 0);
        assert_eq!(spin.arg(0).timeout(MS_10).call::<i64>().unwrap(), 0);
        // Python code that runs a while (bytecode checks on the way): no
        // exception left over for it.
        assert_eq!(busy.call::<i64>(200_000).unwrap(), 199_999 * 100_000);
    }
}

#[test]
fn a_deadline_that_does_not_fire_gives_the_normal_value() {
    let _serial = serial();
    let data: Vec<f64> = (1..=100).map(f64::from).collect();
    let total = function("total");
    let long = Duration::from_secs(10);
    assert_eq!(
        total.arg(&data).timeout(long).call::<f64>().unwrap(),
        5050.0
    );
    assert_eq!(
        total
            .timeout(long)
            .arg(&data)
            .kwarg("spin_first", 0)
            .call::<f64>()
            .unwrap(),
        5050.0
    );
    let at = Instant::now() + long;
    assert_eq!(total.arg(&data).deadline(at).call::<f64>().unwrap(), 5050.0);
    // A zero-argument call with a timeout.
    let counted = function("counted");
    let before = function("calls").call0::<i64>().unwrap();
    assert_eq!(counted.timeout(long).call::<i64>().unwrap(), before + 1);
    // A timeout too long for an Instant never passes.
    assert_eq!(
        total
            .arg(&data)
            .timeout(Duration::MAX)
            .call::<f64>()
            .unwrap(),
        5050.0
    );
    // Many calls in time, after which the watchdog has nothing to fire.
    for k in 0..300 {
        assert_eq!(
            total
                .arg(&data[..k % 100])
                .timeout(long)
                .call::<f64>()
                .unwrap(),
            ((k % 100) * (k % 100 + 1) / 2) as f64
        );
    }
}

#[test]
fn a_method_of_an_object_takes_a_deadline_as_a_function_does() {
    let _serial = serial();
    let model: Object = function("Model").call0().unwrap();
    let fit = model.method("fit").unwrap();
    let data = [1.0, 2.0, 4.0];
    let outcome = fit.timeout(MS_10).arg(&data).kwarg("spin", 1).call::<i64>();
    let (name, limit, _, ran) = timeout_fields(outcome);
    assert_eq!((name.as_str(), limit, ran), (fit.name(), MS_10, true));
    assert_eq!(model.getattr::<f64>("fitted").unwrap(), 0.0);
    let fitted: f64 = fit
        .arg(&data)
        .timeout(Duration::from_secs(10))
        .call()
        .unwrap();
    assert_eq!(
        (fitted, model.getattr::<f64>("fitted").unwrap()),
        (7.0, 7.0)
    );
}

#[test]
fn except_exception_around_the_loop_does_not_swallow_the_deadline() {
    let _serial = serial();
    let swallowing = function("spin_swallowing");
    let (name, limit, elapsed, ran) = timeout_fields(swallowing.arg(2.0).timeout(MS_10).call());
    assert_eq!(
        (name.as_str(), limit, ran),
        ("pim_deadline_tests.spin_swallowing", MS_10, true)
    );
    assert!(
        elapsed >= MS_10 && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(swallowing.arg(0.0).call::<i64>().unwrap(), 0);
}

#[test]
fn the_exception_is_a_base_exception_that_a_bare_except_may_catch() {
    let _serial = serial();
    // Caught: the call returns what the function returns.
    let caught: String = function("catch_everything").timeout(MS_10).call().unwrap();
    assert_eq!(caught, "py_in_mem.DeadlineExceeded False");
}

#[test]
fn a_call_whose_deadline_passes_while_another_thread_holds_the_gil_never_runs() {
    let _serial = serial();
    let counted = function("counted");
    let calls = function("calls");
    let before = calls.call0::<i64>().unwrap();
    let held = Arc::new(Barrier::new(2));
    let holder = {
        let held = Arc::clone(&held);
        thread::spawn(move || {
            py_in_mem::hold_gil(|_scope| {
                held.wait();
                thread::sleep(Duration::from_millis(50)); // Rust, holding the GIL
                Ok(())
            })
            .unwrap();
        })
    };
    held.wait();
    let started = Instant::now();
    let outcome = counted.timeout(MS_10).call::<i64>();
    let waited = started.elapsed();
    holder.join().unwrap();
    let (name, limit, elapsed, ran) = timeout_fields(outcome);
    assert_eq!(
        (name.as_str(), limit, ran),
        ("pim_deadline_tests.counted", MS_10, false)
    );
    assert!(
        elapsed >= MS_10 && elapsed <= waited,
        "{elapsed:?} {waited:?}"
    );
    assert_eq!(
        calls.call0::<i64>().unwrap(),
        before,
        "the refused call ran"
    );
    let refused = "pim_deadline_tests.counted was not called: its deadline had passed when the \
                   call was made (a timeout of zero, or a deadline in the past)";
    let err = counted.timeout(Duration::ZERO).call::<i64>().unwrap_err();
    assert_eq!(err.to_string(), refused);
    // A deadline in the past refuses the call as well, and says so (it
    // said "its deadline of 0 ms passed while the call waited 0 ms").
    let passed = Instant::now() - Duration::from_secs(1);
    let outcome = counted.deadline(passed).call::<i64>();
    assert_eq!(outcome.as_ref().unwrap_err().to_string(), refused);
    let (_, _, _, ran) = timeout_fields(outcome);
    assert!(!ran);
    assert_eq!(calls.call0::<i64>().unwrap(), before);
    // And the function runs when given time.
    assert_eq!(
        counted
            .timeout(Duration::from_secs(10))
            .call::<i64>()
            .unwrap(),
        before + 1
    );
}

#[test]
fn an_interrupted_call_that_kept_its_input_follows_the_retention_rule() {
    let _serial = serial();
    let keep = function("keep_then_spin");
    // Long enough that the function keeps its input before the deadline
    // stops it, however loaded the machine (`make matrix` once saw 10 ms
    // pass before the first line ran: nothing kept, a plain timeout).
    let limit_given = Duration::from_millis(200);
    let mut data = vec![1.5, 2.5, 3.5];
    let err = keep
        .arg(&data)
        .timeout(limit_given)
        .call::<i64>()
        .unwrap_err();
    // As for any call that kept its input (tests/retention.rs,
    // keeping_then_raising_reports_the_retention): the retention wins, the
    // timeout kept inside it.
    let Error::InputRetained {
        function: name,
        error,
        ..
    } = err
    else {
        panic!("{err:?}");
    };
    assert_eq!(name, "pim_deadline_tests.keep_then_spin");
    assert!(
        matches!(error.as_deref(), Some(Error::Timeout { ran: true, limit, .. }) if *limit == limit_given),
        "{error:?}"
    );
    data.iter_mut().for_each(|x| *x = -9.0);
    drop(data);
    let churn: Vec<Vec<f64>> = (0..64).map(|i| vec![f64::from(i); 3]).collect();
    assert_eq!(
        function("kept").call0::<Vec<f64>>().unwrap(),
        [1.5, 2.5, 3.5],
        "the kept array lost the call's values"
    );
    drop(churn);
    // The same through a call of several arguments.
    let mut more = vec![4.0, 5.0];
    let err = function("keep_then_spin_n")
        .timeout(limit_given)
        .arg(&more)
        .kwarg("n", 1)
        .call::<i64>()
        .unwrap_err();
    assert!(matches!(err, Error::InputRetained { .. }), "{err:?}");
    more.fill(-9.0);
    drop(more);
    assert_eq!(function("kept").call0::<Vec<f64>>().unwrap(), [4.0, 5.0]);
    assert_eq!(function("spin").arg(0).call::<i64>().unwrap(), 0);
}

#[test]
fn a_call_that_returns_from_c_before_python_raises_returns_its_result() {
    let _serial = serial();
    // time.sleep is C: the watchdog fires during it, and nothing of the
    // function's runs after it to raise the exception, so the call returns
    // its value and the exception is taken back.
    // Under make memcheck valgrind runs everything tens of times slower: a
    // 10 ms deadline may pass before the call even starts, so the times
    // there are 20 times longer (the same order of events).
    let slow = if std::env::var_os("PIM_MEMCHECK").is_some() {
        20
    } else {
        1
    };
    let (limit, nap) = (MS_10 * slow, 0.05 * f64::from(slow));
    let sleep = Function::load("time", "sleep").unwrap();
    sleep.arg(nap).timeout(limit).call::<()>().unwrap();
    assert_eq!(
        function("busy_python").call::<i64>(200_000).unwrap(),
        199_999 * 100_000
    );
    // Python code after the C call raises it: the C call finishes first.
    let sleep_then_add = function("sleep_then_add");
    let outcome = sleep_then_add.arg(nap).arg(1).timeout(limit).call::<i64>();
    let (_, _, elapsed, ran) = timeout_fields(outcome);
    assert!(
        ran && elapsed >= Duration::from_secs_f64(nap),
        "{elapsed:?}"
    );
    assert_eq!(sleep_then_add.arg(0.0).arg(1).call::<i64>().unwrap(), 2);
}

#[test]
fn eight_threads_with_deadlines_some_firing_some_not() {
    let _serial = serial();
    let spin = Arc::new(function("spin"));
    let total = Arc::new(function("total"));
    let start = Arc::new(Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let (spin, total, start) = (Arc::clone(&spin), Arc::clone(&total), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let data: Vec<f64> = (0..=t * 10).map(|x| x as f64).collect();
                let expected = (t * 10 * (t * 10 + 1) / 2) as f64;
                for round in 0..3 {
                    if (t + round) % 2 == 0 {
                        let limit = Duration::from_millis(5 + 5 * t as u64);
                        let outcome = spin.arg(1).timeout(limit).call::<i64>();
                        // Waiting for the GIL behind seven others can pass
                        // the deadline before the call runs: either way a
                        // timeout of this call.
                        let (name, got_limit, elapsed, _ran) = timeout_fields(outcome);
                        assert_eq!(
                            (name.as_str(), got_limit),
                            ("pim_deadline_tests.spin", limit)
                        );
                        assert!(elapsed >= limit, "{elapsed:?} {limit:?}");
                    } else {
                        let value = total
                            .arg(&data)
                            .timeout(Duration::from_secs(30))
                            .call::<f64>()
                            .unwrap();
                        assert_eq!(value, expected, "thread {t}");
                    }
                }
                t
            })
        })
        .collect();
    let mut done: Vec<usize> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    done.sort();
    assert_eq!(done, (0..8).collect::<Vec<_>>());
    assert_eq!(spin.arg(0).call::<i64>().unwrap(), 0);
}

#[test]
fn a_deadline_inside_hold_gil() {
    let _serial = serial();
    let spin = function("spin");
    let total = function("total");
    let data = [1.0, 2.0, 3.0];
    let (first, after, value) = py_in_mem::hold_gil(|scope| {
        let lent = scope.lend(&data[..])?;
        let first = spin.arg(1).timeout(MS_10).call::<i64>();
        let after = spin.arg(0).timeout(MS_10).call::<i64>()?;
        let refused = spin.arg(0).deadline(Instant::now()).call::<i64>();
        assert!(
            matches!(refused, Err(Error::Timeout { ran: false, .. })),
            "{refused:?}"
        );
        let value = total
            .arg(lent)
            .timeout(Duration::from_secs(10))
            .call::<f64>()?;
        Ok((first, after, value))
    })
    .unwrap();
    let (name, limit, elapsed, ran) = timeout_fields(first);
    assert_eq!(
        (name.as_str(), limit, ran),
        ("pim_deadline_tests.spin", MS_10, true)
    );
    assert!(
        elapsed >= MS_10 && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!((after, value), (0, 6.0));
}

/// What [`inner_call`] got: 1 its result, -1 a timeout, -2 another error.
static INNER: AtomicI64 = AtomicI64::new(0);

/// A callback from Python (through ctypes) that makes a call of its own,
/// with a deadline: `time.sleep(0.05)`, C code, given 10 ms.
extern "C" fn inner_call() -> f64 {
    let outcome = Function::load("time", "sleep")
        .and_then(|sleep| sleep.arg(0.05).timeout(MS_10).call::<()>());
    let code = match outcome {
        Ok(()) => 1,
        Err(Error::Timeout { .. }) => -1,
        Err(_) => -2,
    };
    INNER.store(code, Ordering::SeqCst);
    0.0
}

#[test]
fn a_nested_call_does_not_take_away_the_outer_calls_exception() {
    let _serial = serial();
    // The outer call is given 20 ms; inside it, Python calls back into Rust,
    // whose inner call (10 ms) sleeps in C for 50 ms: both deadlines pass
    // during the sleep, and both fire into the thread's one slot. The inner
    // call returns from C with its result, taking its exception back, and
    // must leave the outer call's: the outer Python code is stopped at its
    // next bytecode, not after its 2 s loop.
    INNER.store(0, Ordering::SeqCst);
    let outer = function("call_back_then_spin");
    let address = inner_call as extern "C" fn() -> f64 as usize;
    let started = Instant::now();
    let outcome = outer
        .arg(address)
        .arg(2.0)
        .timeout(Duration::from_millis(20))
        .call::<String>();
    let wall = started.elapsed();
    assert_eq!(INNER.load(Ordering::SeqCst), 1, "the inner call's outcome");
    match outcome {
        Err(Error::Timeout {
            function,
            ran: true,
            ..
        }) => assert_eq!(function, "pim_deadline_tests.call_back_then_spin"),
        other => panic!("expected the outer call's timeout, got {other:?}"),
    }
    assert!(
        wall >= Duration::from_millis(50) && wall < Duration::from_secs(1),
        "{wall:?}"
    );
    // Both calls are over: nothing is raised in later code.
    assert_eq!(
        function("busy_python").call::<i64>(200_000).unwrap(),
        199_999 * 100_000
    );
}

#[test]
fn an_exception_is_formatted_once_with_its_message_in_the_traceback() {
    let _serial = serial();
    let raise = function("raise_counted_str");
    let strs = function("strs");
    for limit in [None, Some(Duration::from_secs(10))] {
        let before = strs.call0::<i64>().unwrap();
        let outcome = match limit {
            None => raise.call0::<i64>(),
            Some(limit) => raise.timeout(limit).call::<i64>(),
        };
        let Err(Error::Python(exception)) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(
            (exception.type_name.as_str(), exception.message.as_str()),
            ("pim_deadline_tests.CountedStr", "counted")
        );
        let traceback = exception.traceback().unwrap();
        assert!(
            traceback.starts_with("Traceback (most recent call last):\n")
                && traceback.contains("raise CountedStr()")
                && traceback.ends_with("pim_deadline_tests.CountedStr: counted\n"),
            "{traceback}"
        );
        assert!(exception.is_instance_of("ValueError"));
        // The message and the traceback's last line from one __str__.
        assert_eq!(strs.call0::<i64>().unwrap(), before + 1, "{limit:?}");
    }
}

#[test]
fn a_deadline_covers_the_formatting_of_the_exception_the_function_raised() {
    let _serial = serial();
    let limit = Duration::from_millis(50);
    // An endless __str__: stopped as the function's own code is.
    let started = Instant::now();
    let outcome = function("raise_endless_str").timeout(limit).call::<i64>();
    let (name, got, elapsed, ran) = timeout_fields(outcome);
    assert_eq!(
        (name.as_str(), got, ran),
        ("pim_deadline_tests.raise_endless_str", limit, true)
    );
    assert!(elapsed >= limit && started.elapsed() < Duration::from_secs(10));
    // A __str__ in C (time.sleep) past the deadline finishes first, and the
    // call is a timeout, not the exception with what its formatting gave.
    let slow = function("raise_slow_str");
    let (_, _, elapsed, ran) = timeout_fields(slow.timeout(limit).call::<i64>());
    assert!(ran && elapsed >= Duration::from_millis(300), "{elapsed:?}");
    // Async calls go the same way: the serving thread started first, and
    // time enough to start the call before its deadline (under valgrind a
    // cold start took more than 50 ms, and the call expired in the queue).
    let add = function("sleep_then_add").arg(0).arg(1).call_async::<i64>();
    assert_eq!(pollster::block_on(add).unwrap(), 2);
    let endless = function("raise_endless_str");
    let outcome = pollster::block_on(
        endless
            .timeout(Duration::from_millis(300))
            .call_async::<i64>(),
    );
    let (_, _, _, ran) = timeout_fields(outcome);
    assert!(ran);
    // Given time, the exception comes whole; the thread goes on.
    let err = slow
        .timeout(Duration::from_secs(10))
        .call::<i64>()
        .unwrap_err();
    assert_eq!(err.to_string(), "pim_deadline_tests.SlowStr: slow");
    assert_eq!(
        function("sleep_then_add")
            .timeout(Duration::from_secs(10))
            .arg(0)
            .arg(1)
            .call::<i64>()
            .unwrap(),
        2
    );
}

/// A result read through its `value` attribute, which runs Python code.
#[derive(Debug)]
struct Valued(i64);

impl py_in_mem::FromResult for Valued {
    fn expected() -> String {
        "an object with an int 'value'".into()
    }

    fn from_result(result: py_in_mem::Reader<'_>) -> Result<Self, py_in_mem::Mismatch> {
        result.getattr("value").map(Valued)
    }
}

#[test]
fn an_async_call_waiting_in_c_resolves_at_its_deadline_and_the_queue_goes_on() {
    let _serial = serial();
    let sleep = function("sleep_then_add");
    let limit = Duration::from_millis(100);
    // time.sleep runs no bytecode for 1.5 s: the watchdog's exception waits
    // for it. A synchronous caller waits with its thread.
    let started = Instant::now();
    let (_, _, elapsed, ran) = timeout_fields(sleep.timeout(limit).arg(1.5).arg(1).call::<i64>());
    assert!(
        ran && started.elapsed() >= Duration::from_millis(1500),
        "{elapsed:?}"
    );
    // An async caller gets its Timeout one switch interval after the
    // deadline, while the call sleeps on in its serving thread.
    let started = Instant::now();
    let outcome = pollster::block_on(sleep.timeout(limit).arg(1.5).arg(1).call_async::<i64>());
    let waited = started.elapsed();
    let (name, got, elapsed, ran) = timeout_fields(outcome);
    assert_eq!(
        (name.as_str(), got, ran),
        ("pim_deadline_tests.sleep_then_add", limit, true)
    );
    assert!(elapsed >= limit, "{elapsed:?}");
    assert!(
        waited < Duration::from_millis(1000),
        "resolved after {waited:?}"
    );
    // Meanwhile other async calls are served (by another thread, once the
    // sleeping one has stalled the queue for its limit), and answer.
    let next = pollster::block_on(sleep.arg(0).arg(41).call_async::<i64>()).unwrap();
    assert_eq!(next, 42);
    // A call that returns in time is not resolved early, and one whose
    // deadline passes while Python code runs is stopped as before.
    let quick = pollster::block_on(
        sleep
            .timeout(Duration::from_secs(10))
            .arg(0.05)
            .arg(1)
            .call_async::<i64>(),
    );
    assert_eq!(quick.unwrap(), 2);
    let spin = function("spin");
    let (_, _, _, ran) = timeout_fields(pollster::block_on(
        spin.timeout(limit).arg(1).call_async::<i64>(),
    ));
    assert!(ran);
    // The sleeping call's end (its result dropped) leaves nothing behind.
    thread::sleep(Duration::from_millis(1500));
    let after = pollster::block_on(sleep.arg(0).arg(1).call_async::<i64>()).unwrap();
    assert_eq!(after, 2);
}

#[test]
fn a_deadline_covers_the_conversion_of_the_result() {
    let _serial = serial();
    let lazy = function("lazy");
    let limit = Duration::from_millis(100);
    // A property that never ends, read by the result's conversion: stopped
    // as the function's own code is, sync and async.
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let outcome = function("lazy")
            .timeout(limit)
            .arg("endless")
            .call::<Valued>()
            .map(|v| v.0);
        let _ = tx.send(outcome);
    });
    let outcome = rx
        .recv_timeout(common::hang_limit(20))
        .expect("the deadline never stopped the conversion");
    let (name, got, elapsed, ran) = timeout_fields(outcome);
    assert_eq!(
        (name.as_str(), got, ran),
        ("pim_deadline_tests.lazy", limit, true)
    );
    assert!(elapsed >= limit);
    let add = function("sleep_then_add").arg(0).arg(1).call_async::<i64>();
    assert_eq!(pollster::block_on(add).unwrap(), 2);
    let outcome = pollster::block_on(
        lazy.timeout(Duration::from_millis(300))
            .arg("endless")
            .call_async::<Valued>(),
    )
    .map(|v| v.0);
    let (_, _, _, ran) = timeout_fields(outcome);
    assert!(ran);
    // In C past the deadline (time.sleep): the reading finishes, and the
    // call, over its deadline, is a timeout.
    let (_, _, elapsed, ran) = timeout_fields(
        lazy.timeout(limit)
            .arg("slow")
            .call::<Valued>()
            .map(|v| v.0),
    );
    assert!(ran && elapsed >= Duration::from_millis(300), "{elapsed:?}");
    // Given time, the value; the thread goes on.
    let long = Duration::from_secs(10);
    assert_eq!(
        lazy.timeout(long).arg("slow").call::<Valued>().unwrap().0,
        42
    );
    assert_eq!(
        lazy.timeout(long).arg("now").call::<Valued>().unwrap().0,
        42
    );
    // A mismatch within the deadline is still a mismatch.
    let err = lazy.timeout(long).arg("now").call::<String>().unwrap_err();
    assert!(matches!(err, Error::BadResult { .. }), "{err:?}");
}

/// Calls `name` with a 20 ms timeout on a thread of its own, and waits for
/// the timeout for at most [`common::hang_limit`]: a stopped call, its wall
/// time. Under `make memcheck` the timeout is 50 times longer, so that the
/// call starts before it (valgrind once took more than 20 ms to start one).
fn stopped_on_a_thread(name: &'static str, asynchronously: bool) -> Duration {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let f = function(name);
        let call = f.timeout(Duration::from_millis(20) * common::slowdown());
        let started = Instant::now();
        let outcome = if asynchronously {
            pollster::block_on(call.call_async::<i64>())
        } else {
            call.call::<i64>()
        };
        let _ = tx.send((outcome, started.elapsed()));
    });
    let (outcome, wall) = rx
        .recv_timeout(common::hang_limit(20))
        .unwrap_or_else(|_| panic!("{name}: the deadline never stopped the call"));
    let (_, _, _, ran) = timeout_fields(outcome);
    assert!(ran, "{name}");
    wall
}

#[test]
fn a_deadline_stops_a_call_that_starts_threads_and_no_thread_it_starts() {
    let _serial = serial();
    let deaths = function("thread_deaths");
    // On CPython 3.11 and earlier a thread being started carries its
    // starter's ident until it runs: raised by ident alone, the exception
    // went to it, it died before it ran, and its starter waited for it for
    // ever (threading.Thread.start waits for the thread to run).
    for _ in 0..10 {
        stopped_on_a_thread("start_threads_for_ever", false);
    }
    stopped_on_a_thread("start_threads_for_ever", true);
    stopped_on_a_thread("map_on_pools_for_ever", false);
    assert_eq!(deaths.call0::<Vec<String>>().unwrap(), Vec::<String>::new());
    the_next_call_works();
}

#[test]
fn a_deadline_swallowed_in_a_del_is_raised_again() {
    let _serial = serial();
    // The first exception lands in a __del__, which Python reports and
    // ignores: only a second one, at least 100 ms later, stops the loop
    // after it.
    let ignored = || function("ignored").call0::<Vec<String>>().unwrap();
    let before = ignored().len();
    let wall = stopped_on_a_thread("swallowed_in_del_then_spin", false);
    assert!(wall >= Duration::from_millis(120), "{wall:?}");
    assert_eq!(ignored()[before..], ["entered", "DeadlineExceeded"]);
    the_next_call_works();
}

/// A call after a stopped one returns its value.
fn the_next_call_works() {
    assert_eq!(
        function("sleep_then_add")
            .arg(0)
            .arg(2)
            .call::<i64>()
            .unwrap(),
        3
    );
}
