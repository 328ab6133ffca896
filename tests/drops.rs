//! What a call leaves in Rust's hands may be dropped on any thread without
//! waiting for the GIL: a `ResultView`'s array and a function's cached
//! keyword names (trial 22: a `ResultView` dropped on another thread inside
//! a `hold_gil` scope that joined it deadlocked, 3 of 3 runs; dropped on a
//! tokio worker while another thread held a scope, it blocked the worker
//! for as long as the scope lasted). Objects and functions are tested in
//! `tests/object.rs`.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_child_passed, child_command, hang_limit, is_child, run_limited, vm_rss_kib, write_raw,
};
use py_in_mem::{hold_gil, Function, ResultView};

fn module(name: &str) -> Function {
    Function::from_source(
        "pim_drops",
        "import numpy as np\n\
         def double(x):\n    return np.asarray(x) * 2.0\n\
         def zeros(n):\n    return np.ones(n)\n\
         def scaled(x, factor=1.0, offset=0.0):\n    return float(np.sum(x) * factor + offset)\n",
        name,
    )
    .unwrap()
}

/// Runs `drop_it` on this thread while another thread holds the GIL in a
/// `hold_gil` scope that waits (up to 10 s) for the drop to return: true
/// if it returned while the scope still held the GIL.
fn dropped_during_another_scope(drop_it: impl FnOnce()) -> bool {
    let (in_scope_tx, in_scope_rx) = mpsc::channel();
    let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
    let scope = thread::spawn(move || {
        hold_gil(|_scope| {
            in_scope_tx.send(()).unwrap();
            Ok(dropped_rx.recv_timeout(Duration::from_secs(10)).is_ok())
        })
        .unwrap()
    });
    in_scope_rx.recv().unwrap();
    drop_it();
    let _ = dropped_tx.send(()); // gone if the scope gave up waiting
    scope.join().unwrap()
}

#[test]
fn a_result_view_dropped_while_another_thread_holds_the_gil_does_not_wait() {
    let view: ResultView<f64> = module("double").call_view(&[1.0, 2.0, 3.0]).unwrap();
    assert_eq!(&*view, &[2.0, 4.0, 6.0]);
    assert!(
        dropped_during_another_scope(move || drop(view)),
        "the drop waited for the scope's GIL"
    );
    // And the crate goes on: the next call works (and frees the array).
    assert_eq!(&*module("double").call_view::<f64>(&[4.0]).unwrap(), &[8.0]);
}

#[test]
fn a_function_called_with_keywords_dropped_while_another_thread_holds_the_gil_does_not_wait() {
    let scaled = module("scaled");
    // The keyword names' tuple is kept for the next call with the same.
    let sum: f64 = scaled
        .arg(&[1.0, 2.0])
        .kwarg("factor", 2.0)
        .kwarg("offset", 1.0)
        .call()
        .unwrap();
    assert_eq!(sum, 7.0);
    assert!(
        dropped_during_another_scope(move || drop(scaled)),
        "the drop waited for the scope's GIL"
    );
}

#[test]
#[ignore = "child process body"]
fn child_drops_a_view_on_a_thread_its_scope_joins() {
    if !is_child() {
        return;
    }
    let double = module("double");
    let sums = hold_gil(|_scope| {
        let view: ResultView<f64> = double.call_view(&[1.0, 2.0])?;
        let sum: f64 = view.iter().sum();
        // The scope holds the GIL and waits for this thread, whose drop
        // waited for the GIL.
        thread::spawn(move || drop(view)).join().unwrap();
        Ok(sum)
    })
    .unwrap();
    assert_eq!(sums, 6.0);
    write_raw("JOINED\n");
}

#[test]
fn a_view_dropped_on_a_thread_a_scope_joins_does_not_deadlock() {
    let output = run_limited(
        child_command("child_drops_a_view_on_a_thread_its_scope_joins"),
        hang_limit(30),
    );
    let stdout = assert_child_passed(&output);
    assert!(stdout.contains("JOINED"), "{stdout}");
}

#[test]
#[ignore = "child process body"]
fn child_frees_a_view_dropped_last() {
    if !is_child() {
        return;
    }
    const MIB: usize = 256;
    let before = vm_rss_kib();
    let view: ResultView<f64> = module("zeros").call_view(MIB << 17).unwrap();
    assert!(view.iter().all(|&x| x == 1.0)); // every page touched
    let held = vm_rss_kib();
    assert!(
        held > before + (MIB as u64 - 16) * 1024,
        "{before} -> {held} KiB"
    );
    // Dropped on a thread without the GIL, and no call after it: the
    // releasing thread frees it, and the process gives back at least half
    // of it (valgrind, under make memcheck, keeps more of what is freed
    // than the C allocator: 72 -> 520 -> 194 MiB there).
    thread::spawn(move || drop(view)).join().unwrap();
    let start = Instant::now();
    while vm_rss_kib() > held - (MIB as u64 / 2) * 1024 {
        assert!(
            start.elapsed() < Duration::from_secs(5) * common::slowdown(),
            "not freed: {before} -> {held} -> {} KiB",
            vm_rss_kib()
        );
        thread::sleep(Duration::from_millis(5));
    }
    write_raw(&format!("FREED in {:?}\n", start.elapsed()));
}

#[test]
fn a_view_dropped_last_is_freed_without_another_call() {
    let output = run_limited(
        child_command("child_frees_a_view_dropped_last"),
        hang_limit(60),
    );
    let stdout = assert_child_passed(&output);
    assert!(stdout.contains("FREED"), "{stdout}");
}
