//! The scheduler of the crate's calls (`py_in_mem::scheduler`): many threads
//! get right results, nobody starves or deadlocks, Python's own threads and
//! long calls keep running in parallel, and the life-cycle rules (a host
//! holding the GIL, `fork`) still hold. How fast it makes contended calls is
//! measured by `make bench` (the contention table), not here.
//!
//! The cases that could hang run in a child process with a time limit.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_child_passed, child_command, fork_and_wait, hang_limit, is_child, run_limited, slowdown,
};
use py_in_mem::{scheduler, Error, Function, Outliers, Unavailable};

/// A function of `tests/python/pim_sched.py`.
fn sched(name: &str) -> Function {
    py_in_mem::add_sys_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")).unwrap();
    Function::load("pim_sched", name).unwrap()
}

/// Data of `n` values with one outlier, at `at`.
fn with_outlier(n: usize, at: usize) -> Vec<f64> {
    let mut data: Vec<f64> = (0..n).map(|i| (i % 10) as f64 / 10.0).collect();
    data[at] += 97.0;
    data
}

fn child_passes(name: &str, limit: Duration) -> String {
    assert_child_passed(&run_limited(child_command(name), limit))
}

/// `threads` threads each make `calls` calls of `detect` and of
/// `numpy.mean` on data of their own, checking every result.
fn many_threads_call(threads: usize, calls: usize) {
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let mean = Function::load("numpy", "mean").unwrap();
    let start = Barrier::new(threads);
    thread::scope(|scope| {
        for t in 0..threads {
            let (outliers, mean, start) = (&outliers, &mean, &start);
            scope.spawn(move || {
                let at = 10 + 37 * t;
                let data = with_outlier(1000, at);
                let expected_mean = data.iter().sum::<f64>() / data.len() as f64;
                start.wait();
                for call in 0..calls {
                    assert_eq!(
                        outliers.detect(&data).unwrap(),
                        [at],
                        "thread {t} call {call}"
                    );
                    let m: f64 = mean.call(&data).unwrap();
                    assert!((m - expected_mean).abs() < 1e-9, "thread {t}: {m}");
                }
            });
        }
    });
}

#[test]
fn many_threads_get_their_own_right_results() {
    assert!(scheduler::is_enabled(), "on by default");
    many_threads_call(8, 300);
}

#[test]
#[ignore = "child process body"]
fn child_calls_with_the_scheduler_off_and_switched_while_calling() {
    if !is_child() {
        return;
    }
    scheduler::set_enabled(false);
    many_threads_call(4, 200);
    // Switched off and on while threads wait for the turn: they go on.
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut on = true;
            while !stop.load(Ordering::Relaxed) {
                scheduler::set_enabled(on);
                on = !on;
                thread::sleep(Duration::from_micros(300));
            }
            scheduler::set_enabled(true);
        })
    };
    many_threads_call(6, 300);
    stop.store(true, Ordering::Relaxed);
    toggler.join().unwrap();
}

#[test]
fn the_scheduler_off_and_switched_while_calling_gives_the_same_results() {
    child_passes(
        "child_calls_with_the_scheduler_off_and_switched_while_calling",
        hang_limit(120),
    );
}

#[test]
#[ignore = "child process body"]
fn child_default_interval_is_python_s() {
    if !is_child() {
        return;
    }
    let python_s: f64 = sched("switch_interval").call(&[0.0]).unwrap();
    assert_eq!(
        scheduler::switch_interval(),
        Duration::from_secs_f64(python_s)
    );
    assert_eq!(scheduler::switch_interval(), Duration::from_millis(5));
    scheduler::set_switch_interval(Duration::from_micros(10));
    assert_eq!(
        scheduler::switch_interval(),
        Duration::from_micros(100),
        "at least 100 µs"
    );
}

#[test]
fn the_default_switch_interval_is_python_s() {
    child_passes("child_default_interval_is_python_s", hang_limit(60));
}

#[test]
fn a_thread_that_errors_or_dies_holding_the_turn_stalls_nobody() {
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let fail = sched("fail");
    let data = with_outlier(500, 7);
    // A thread that takes the turn with a call, then panics in Rust code:
    // it dies owning the turn.
    let died = thread::spawn({
        let data = data.clone();
        move || {
            let outliers = Outliers::new("outliers", "detect").unwrap();
            assert_eq!(outliers.detect(&data).unwrap(), [7]);
            panic!("dies owning the turn");
        }
    })
    .join();
    assert!(died.is_err());
    let started = Instant::now();
    thread::scope(|scope| {
        // A thread whose calls raise, over and over.
        scope.spawn(|| {
            for _ in 0..300 {
                let err = fail.call::<f64>(&data).unwrap_err();
                assert_eq!(err.to_string(), "ValueError: failed on purpose");
            }
        });
        for _ in 0..3 {
            scope.spawn(|| {
                for _ in 0..300 {
                    assert_eq!(outliers.detect(&data).unwrap(), [7]);
                }
            });
        }
    });
    // 1,200 calls of about 15 µs: well under a second, unless a thread
    // waited for a turn nobody gives back (each wait is cut off at four
    // switch intervals, so even then it ends; this bound only catches a
    // scheduler that stopped handing the turn on).
    assert!(
        started.elapsed() < Duration::from_secs(20) * slowdown(),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn no_caller_waits_without_bound_under_contention() {
    // The longest single call among 4 contending threads: a waiting thread
    // is served after about one switch interval (5 ms), plus the call in
    // progress. A loose bound, far above that, so that only starvation
    // (a thread left waiting) fails it on a busy machine.
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let data = with_outlier(1000, 3);
    let longest = thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut longest = Duration::ZERO;
                    for _ in 0..1500 {
                        let began = Instant::now();
                        assert_eq!(outliers.detect(&data).unwrap(), [3]);
                        longest = longest.max(began.elapsed());
                    }
                    longest
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .max()
            .unwrap()
    });
    eprintln!("longest call under contention: {longest:?}");
    assert!(longest < Duration::from_secs(1) * slowdown(), "{longest:?}");
}

/// A thread new to Python makes its first call while another loops over
/// held-GIL scopes, taking the GIL back to back: the first call waits in
/// the turn like any other, about an interval. Before, the new thread took
/// its first GIL (to make its thread state) outside the turn, and waited
/// for CPython to hand it over, which it did not while the loop re-took
/// the GIL at once: 0.7 to 17 s in four of four runs of a trial (one
/// async call in 17 s).
#[test]
fn a_new_thread_s_first_call_is_not_starved_by_a_loop_of_held_scopes() {
    let spin = Function::from_source(
        "pim_sched_first_call",
        "import time\n\
         def spin(us):\n\
         \x20   end = time.perf_counter() + us * 1e-6\n\
         \x20   while time.perf_counter() < end:\n\
         \x20       pass\n\
         \x20   return 1\n",
        "spin",
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let longest = thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                py_in_mem::hold_gil(|_| {
                    for _ in 0..5 {
                        assert_eq!(spin.call::<i64>(50.0)?, 1);
                    }
                    Ok(())
                })
                .unwrap();
            }
        });
        thread::sleep(Duration::from_millis(50));
        // Each a thread Python has not seen.
        let longest = (0..8)
            .map(|_| {
                scope
                    .spawn(|| {
                        let began = Instant::now();
                        assert_eq!(spin.call::<i64>(50.0).unwrap(), 1);
                        began.elapsed()
                    })
                    .join()
                    .unwrap()
            })
            .max()
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        longest
    });
    eprintln!("longest first call beside a loop of scopes: {longest:?}");
    assert!(longest < Duration::from_secs(1) * slowdown(), "{longest:?}");
}

#[test]
fn python_threads_keep_running_beside_scheduled_calls() {
    let spins = sched("spins");
    let count = || -> i64 { spins.call::<Vec<i64>>(&[0.0]).unwrap()[0] };
    sched("start_spinning").call::<Vec<i64>>(&[0.0]).unwrap();
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let data = with_outlier(1000, 5);
    let before = count();
    let until = Instant::now() + Duration::from_millis(600);
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while Instant::now() < until {
                    assert_eq!(outliers.detect(&data).unwrap(), [5]);
                }
            });
        }
    });
    let after = count();
    sched("stop_spinning").call::<Vec<i64>>(&[0.0]).unwrap();
    // The Python thread counts millions a second when it has the GIL; it
    // must have had it for a fair part of the 0.6 s (CPython's own switch
    // interval gives it a turn every 5 ms at worst). Under valgrind, which
    // runs one thread at a time and every one ~50 times slower, it counted
    // 3,843 in one run: there, that it counted at all is the check.
    let needed = 10_000 / i64::from(slowdown());
    assert!(
        after - before > needed,
        "the Python thread counted {}",
        after - before
    );
}

#[test]
fn long_calls_of_two_threads_run_at_the_same_time() {
    let sleepy = sched("sleepy");
    let overlapping = sched("overlapping_calls");
    overlapping.call::<Vec<i64>>(&[0.0]).unwrap(); // clear the record
    let start = Barrier::new(2);
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                start.wait();
                for _ in 0..40 {
                    sleepy
                        .arg(&[0.0])
                        .kwarg("seconds", 0.003)
                        .call::<Vec<i64>>()
                        .unwrap();
                }
            });
        }
    });
    let result: Vec<i64> = overlapping.call(&[0.0]).unwrap();
    let (pairs, calls) = (result[0], result[1]);
    eprintln!("{pairs} pairs of 80 calls of 3 ms overlapped");
    assert_eq!(calls, 80);
    // A 3 ms call is long (over 100 µs): it bypasses the turn, so the two
    // threads' calls overlap (one in 32 still runs under the turn, to be
    // measured again). Serialized, no two calls would overlap.
    assert!(
        pairs >= 40,
        "only {pairs} of 80 calls overlapped another thread's"
    );
}

#[test]
#[ignore = "child process body"]
fn child_a_call_waits_for_another_thread_s_call() {
    if !is_child() {
        return;
    }
    let wait = sched("wait_for_other_call");
    let set = sched("set_event");
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let data = with_outlier(1000, 9);
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        // Other threads keep the turn busy meanwhile.
        let busy: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        assert_eq!(outliers.detect(&data).unwrap(), [9]);
                    }
                })
            })
            .collect();
        let waiter = scope.spawn(|| {
            wait.arg(&[0.0])
                .kwarg("timeout", 60.0)
                .call::<Vec<bool>>()
                .unwrap()
        });
        thread::sleep(Duration::from_millis(50));
        // This call must get in while the waiter's call is still running.
        set.call::<Vec<i64>>(&[0.0]).unwrap();
        assert_eq!(waiter.join().unwrap(), [true]);
        stop.store(true, Ordering::Relaxed);
        for b in busy {
            b.join().unwrap();
        }
    });
}

#[test]
fn a_call_that_waits_for_another_thread_s_call_never_deadlocks() {
    child_passes(
        "child_a_call_waits_for_another_thread_s_call",
        hang_limit(60),
    );
}

#[test]
#[ignore = "child process body"]
fn child_host_thread_holding_the_gil_calls_while_others_contend() {
    if !is_child() {
        return;
    }
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let data = with_outlier(1000, 11);
    let done = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                for _ in 0..400 {
                    assert_eq!(outliers.detect(&data).unwrap(), [11]);
                }
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
        // A host thread (as PyO3's attach) holding the GIL calls the crate
        // while the others contend for the turn.
        scope.spawn(|| {
            for _ in 0..20 {
                // SAFETY: Python runs (the crate started it above); Ensure
                // and Release pair up on this thread.
                let state = unsafe { pyo3_ffi::PyGILState_Ensure() };
                for _ in 0..20 {
                    assert_eq!(outliers.detect(&data).unwrap(), [11]);
                }
                // SAFETY: as above.
                unsafe { pyo3_ffi::PyGILState_Release(state) };
            }
            done.fetch_add(1, Ordering::Relaxed);
        });
    });
    assert_eq!(done.load(Ordering::Relaxed), 4);
}

#[test]
fn a_host_thread_holding_the_gil_and_contending_threads_never_deadlock() {
    child_passes(
        "child_host_thread_holding_the_gil_calls_while_others_contend",
        hang_limit(60),
    );
}

#[test]
#[ignore = "child process body"]
fn child_forks_while_threads_wait_for_the_turn() {
    if !is_child() {
        return;
    }
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let data = with_outlier(1000, 13);
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(outliers.detect(&data).unwrap(), [13]);
                }
            });
        }
        thread::sleep(Duration::from_millis(100));
        // The verdict comes back through a pipe, not the exit code: under
        // `make memcheck` valgrind exits the forked copy with its own code
        // (the copy leaks what the parent's other threads held).
        // Under valgrind each forked copy's leak check takes seconds: fewer rounds.
        let rounds = if slowdown() > 1 { 3 } else { 10 };
        let verdict = (0..rounds).try_for_each(|round| fork_and_call(round, &outliers, &data));
        // Stop the callers before failing, or the scope would wait forever.
        stop.store(true, Ordering::Relaxed);
        if let Err(why) = verdict {
            panic!("{why}");
        }
    });
}

/// Forks; the child makes one call and writes `F` into a pipe if it was
/// `Unavailable::Forked`, `X` if not. Returns why the round failed, if it did.
fn fork_and_call(round: usize, outliers: &Outliers, data: &[f64]) -> Result<(), String> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let status = fork_and_wait(
        || {
            let byte: u8 = match outliers.detect(data) {
                Err(Error::Unavailable(Unavailable::Forked)) => b'F',
                _ => b'X',
            };
            // SAFETY: writes one byte from a live local to the pipe's write end.
            unsafe { libc::write(fds[1], (&byte as *const u8).cast(), 1) };
        },
        Duration::from_secs(20) * slowdown(),
    );
    let mut byte = 0u8;
    // SAFETY: closes our copy of the write end, then reads at most one byte
    // into a live local: the child has exited or been killed, so the read
    // does not block; then closes the read end.
    let read = unsafe {
        libc::close(fds[1]);
        let read = libc::read(fds[0], (&mut byte as *mut u8).cast(), 1);
        libc::close(fds[0]);
        read
    };
    match status {
        None => Err(format!("round {round}: the forked child hung")),
        Some(_) if read == 1 && byte == b'F' => Ok(()),
        Some(status) => Err(format!(
            "round {round}: the forked child's call did not return Unavailable::Forked \
             (it wrote {:?}, status {status})",
            (read == 1).then_some(byte as char)
        )),
    }
}

#[test]
fn a_fork_while_threads_wait_for_the_turn_gives_the_child_an_error_at_once() {
    child_passes(
        "child_forks_while_threads_wait_for_the_turn",
        hang_limit(120),
    );
}
