//! The held-GIL scope (`py_in_mem::hold_gil`): calls under one hold of the
//! GIL give the results calls outside give, arrays lent for the scope follow
//! the retention rule call by call, and the GIL goes back when the scope
//! ends, however it ends. What may not leave the scope is checked by the
//! compile-fail examples on `hold_gil`.

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_child_passed, child_command, hang_limit, is_child, retained_alone, run_limited,
};
use py_in_mem::{hold_gil, Error, Function, NdSlice, Outliers};

/// A function of `tests/python/pim_sched.py`.
fn sched(name: &str) -> Function {
    py_in_mem::add_sys_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")).unwrap();
    Function::load("pim_sched", name).unwrap()
}

fn numpy(name: &str) -> Function {
    Function::load("numpy", name).unwrap()
}

#[test]
fn calls_in_a_scope_give_the_results_calls_outside_give() {
    let (mean, percentile) = (numpy("mean"), numpy("percentile"));
    let outliers = Outliers::new("outliers", "detect").unwrap();
    let rows: Vec<Vec<f64>> = (0..50)
        .map(|r| {
            let mut row: Vec<f64> = (0..200).map(|i| ((i * (r + 3)) % 17) as f64).collect();
            row[r] += 1000.0;
            row
        })
        .collect();
    let outside: Vec<(f64, f64, Vec<usize>)> = rows
        .iter()
        .map(|row| {
            (
                mean.call(row).unwrap(),
                percentile.arg(row).arg(90.0).call().unwrap(),
                outliers.detect(row).unwrap(),
            )
        })
        .collect();
    let inside = hold_gil(|scope| {
        let mut all = Vec::new();
        for row in &rows {
            let lent = scope.lend(row)?;
            all.push((
                mean.call(lent)?,
                percentile.arg(lent).arg(90.0).call()?,
                outliers.detect(row)?,
            ));
        }
        Ok(all)
    })
    .unwrap();
    assert_eq!(inside, outside);
    for (r, (_, _, found)) in inside.iter().enumerate() {
        assert_eq!(found, &[r]);
    }
}

#[test]
fn an_n_d_array_lent_for_the_scope_serves_every_call() {
    let data: Vec<f64> = (0..12).map(f64::from).collect();
    let sum = numpy("sum");
    let (rows, cols): (Vec<f64>, Vec<f64>) = hold_gil(|scope| {
        let m = scope.lend(NdSlice::new(&data, &[3, 4])?)?;
        Ok((
            sum.arg(m).kwarg("axis", 1).call()?,
            sum.arg(m).kwarg("axis", 0).call()?,
        ))
    })
    .unwrap();
    assert_eq!(rows, [6.0, 22.0, 38.0]);
    assert_eq!(cols, [12.0, 15.0, 18.0, 21.0]);
}

#[test]
fn a_kept_scope_array_is_retention_for_that_call_and_lent_anew_after() {
    let (keep, kept_sum, sum) = (sched("keep"), sched("kept_sum"), numpy("sum"));
    let mut data = vec![1.0, 2.0, 3.0];
    hold_gil(|scope| {
        let lent = scope.lend(&data)?;
        let before: f64 = sum.call(lent)?;
        assert_eq!(before, 6.0);
        let err = keep.call::<f64>(lent).unwrap_err();
        assert_eq!(
            retained_alone(&err),
            Some("pim_sched.keep".to_owned()),
            "{err:?}"
        );
        // The next call lends the memory anew, and works.
        let after: f64 = sum.call(lent)?;
        assert_eq!(after, 6.0);
        Ok(())
    })
    .unwrap();
    // The kept array was moved onto a copy: Rust's changes do not reach it.
    data.iter_mut().for_each(|x| *x = -1.0);
    drop(data);
    let kept: f64 = kept_sum.call(&[0.0]).unwrap();
    assert_eq!(kept, 6.0);
}

#[test]
fn a_call_that_changes_its_scope_array_in_place_leaves_the_next_call_the_array_as_lent() {
    let describe = sched("describe");
    let vector: Vec<f64> = (1..=6).map(f64::from).collect();
    let matrix: Vec<f64> = (0..12).map(f64::from).collect();
    for change in [
        "reshape_in_place",
        "retype_in_place",
        "swap_byte_order_in_place",
        "restride_in_place",
        "unalign_in_place",
    ] {
        let change_it = sched(change);
        let (before, after, again): (Vec<f64>, Vec<f64>, Vec<f64>) = hold_gil(|scope| {
            let v = scope.lend(&vector)?;
            let m = scope.lend(NdSlice::new(&matrix, &[3, 4])?)?;
            let before = describe.call(v)?;
            change_it.call::<f64>(v)?;
            change_it.call::<f64>(m)?;
            Ok((before, describe.call(v)?, describe.call(m)?))
        })
        .unwrap();
        assert_eq!(before, [6.0, 21.0, 1.0]);
        // Python changed how its array reads the memory; the next call gets
        // the memory as Rust lent it, not what the last call left.
        assert_eq!(after, before, "the 1-D lend after {change}");
        assert_eq!(again, [3.0, 4.0, 66.0, 1.0], "the 2-D lend after {change}");
    }
}

#[test]
fn a_scope_array_reached_by_a_weak_reference_is_not_changed_for_later_calls() {
    let (take, retype, describe) = (
        sched("take_weak_reference"),
        sched("retype_through_weak_reference"),
        sched("describe"),
    );
    let (vector, other) = (vec![1.0, 2.0, 3.0], vec![0.0]);
    let seen: Vec<f64> = hold_gil(|scope| {
        let (v, o) = (scope.lend(&vector)?, scope.lend(&other)?);
        take.call::<f64>(v)?;
        // A call not given `v` reaches it through the weak reference.
        retype.call::<f64>(o)?;
        describe.call(v)
    })
    .unwrap();
    assert_eq!(seen, [3.0, 6.0, 1.0]);
}

#[test]
#[ignore = "child process body"]
fn child_keeps_a_view_of_a_scope_array() {
    if !is_child() {
        return;
    }
    let (keep_view, kept_sum, sum) = (sched("keep_view"), sched("kept_sum"), numpy("sum"));
    let mut data = vec![1.0, 2.0, 3.0];
    hold_gil(|scope| {
        let lent = scope.lend(&data)?;
        let err = keep_view.call::<f64>(lent).unwrap_err();
        assert_eq!(
            retained_alone(&err),
            Some("pim_sched.keep_view".to_owned()),
            "{err:?}"
        );
        // The next call lends the memory anew, and works.
        assert_eq!(sum.call::<f64>(lent)?, 6.0);
        Ok(())
    })
    .unwrap();
    // The kept view was moved onto the copy with the array.
    data.iter_mut().for_each(|x| *x = -1.0);
    drop(data);
    assert_eq!(kept_sum.call::<f64>(&[0.0]).unwrap(), 5.0);
}

#[test]
fn a_kept_view_of_a_scope_array_is_moved_like_the_array() {
    // In a child process: before views were moved, this aborted.
    let command = child_command("child_keeps_a_view_of_a_scope_array");
    assert_child_passed(&run_limited(command, hang_limit(60)));
}

#[test]
fn errors_and_panics_in_a_scope_give_the_gil_back() {
    let fail = sched("fail");
    let sum = numpy("sum");
    let data = vec![1.0; 10];
    let err = hold_gil(|scope| {
        let lent = scope.lend(&data)?;
        let _: f64 = sum.call(lent)?;
        fail.call::<f64>(lent)
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "ValueError: failed on purpose");
    let panicked = std::panic::catch_unwind(|| {
        hold_gil(|scope| {
            let lent = scope.lend(&data)?;
            let _: f64 = sum.call(lent)?;
            panic!("in the scope");
            #[allow(unreachable_code)]
            Ok(())
        })
    });
    assert!(panicked.is_err());
    // Another thread gets the GIL: the scope gave it back.
    let other = thread::spawn(move || -> f64 { numpy("sum").call(&[2.0, 3.0]).unwrap() });
    assert_eq!(other.join().unwrap(), 5.0);
}

#[test]
fn without_gil_lets_other_threads_call() {
    let sum = numpy("sum");
    let data = vec![1.0; 4];
    let (tx, rx) = mpsc::channel();
    let other = thread::spawn(move || {
        // Waits for the scope to be held, then calls.
        rx.recv().unwrap();
        let total: f64 = numpy("sum").call(&[1.0, 1.0]).unwrap();
        total
    });
    let (first, seen) = hold_gil(|scope| {
        let first: f64 = sum.call(&data)?;
        // Without the GIL, the other thread's call completes (it could not
        // while the scope holds the GIL in Rust code).
        let seen = scope.without_gil(|| {
            tx.send(()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !other.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(1));
            }
            assert!(other.is_finished(), "the other thread never got the GIL");
            other.join().unwrap()
        });
        // And the scope's calls go on after.
        let again: f64 = sum.call(&data)?;
        assert_eq!(again, first);
        Ok((first, seen))
    })
    .unwrap();
    assert_eq!((first, seen), (4.0, 2.0));
}

#[test]
fn scopes_nest() {
    let sum = numpy("sum");
    let data = vec![2.0; 5];
    let total: f64 = hold_gil(|outer| {
        let a = outer.lend(&data)?;
        let inner: f64 = hold_gil(|inner| {
            let b = inner.lend(&data)?;
            let x: f64 = sum.call(a)?;
            let y: f64 = sum.call(b)?;
            Ok(x + y)
        })?;
        let z: f64 = sum.call(a)?;
        Ok(inner + z)
    })
    .unwrap();
    assert_eq!(total, 30.0);
}

#[test]
fn lend_takes_arrays_only() {
    let err = hold_gil(|scope| scope.lend(2.5).map(drop)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[test]
#[ignore = "child process body"]
fn child_other_threads_call_while_a_scope_runs() {
    if !is_child() {
        return;
    }
    let busy = sched("busy_python");
    let data = vec![1.0; 100];
    let (tx, rx) = mpsc::channel();
    let other = thread::spawn(move || {
        rx.recv().unwrap();
        let busy = sched("busy_python");
        (0..20)
            .map(|_| busy.call::<f64>(&[1.0, 2.0]).unwrap())
            .sum::<f64>()
    });
    let total: f64 = hold_gil(|scope| {
        let lent = scope.lend(&data)?;
        let mut total = 0.0;
        tx.send(()).unwrap();
        // Python bytecode runs in each call, so CPython hands the GIL to the
        // other thread now and then even though the scope holds it.
        while !other.is_finished() {
            total += busy.call::<f64>(lent)?;
        }
        Ok(total)
    })
    .unwrap();
    assert!(total >= 100.0);
    assert_eq!(other.join().unwrap(), 60.0);
}

#[test]
fn other_threads_call_while_a_scope_runs_python() {
    assert_child_passed(&run_limited(
        child_command("child_other_threads_call_while_a_scope_runs"),
        hang_limit(60),
    ));
}

/// What `lend` refuses says why: a number is no array, and an array that
/// cannot be made (a shape that does not fit its slice) gives its own
/// reason. Before, the second said only that `lend` takes arrays.
#[test]
fn lend_refuses_what_is_no_array_and_says_why() {
    let values = [1.0, 2.0, 3.0];
    hold_gil(|scope| {
        match scope.lend(2.5) {
            Err(Error::InvalidArgument(why)) => assert!(why.contains("takes arrays"), "{why}"),
            other => panic!("{other:?}"),
        }
        match scope.lend(NdSlice::new(&values, &[2, 2])) {
            Err(Error::InvalidArgument(why)) => {
                assert_eq!(why, "a 2 × 2 array needs 4 values, the slice has 3")
            }
            other => panic!("{other:?}"),
        }
        let lent = scope.lend(NdSlice::new(&values, &[3]))?;
        assert_eq!(numpy("sum").call::<f64>(lent)?, 6.0);
        Ok(())
    })
    .unwrap();
}
