//! `Object`: a Python object held by Rust. A class loaded as a function
//! makes instances; their methods are called with every arity, their
//! attributes read; objects go in and out of calls as themselves; they are
//! shared by threads, and dropped anywhere without waiting for the GIL and
//! without a leak. Also `call0`, and `from_source` with a module name used
//! again.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use common::{
    assert_child_passed, child_command, fork_and_wait, hang_limit, is_child, run_limited, write_raw,
};
use py_in_mem::{hold_gil, Error, Function, NdSlice, NdVec, Object, Value};

/// A function (or class) of `tests/python/pim_model.py`.
fn model_fn(name: &str) -> Function {
    py_in_mem::add_sys_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")).unwrap();
    Function::load("pim_model", name).unwrap()
}

/// Tags of the `Tracked` objects finalized so far.
fn finalized() -> Vec<String> {
    model_fn("finalized").call0().unwrap()
}

/// Whether the `Tracked` object tagged `tag` is finalized within the
/// hang limit: a reference dropped without the GIL is released by the
/// crate's `pim-release` thread, soon after the drop.
fn finalized_soon(tag: &str) -> bool {
    let until = std::time::Instant::now() + hang_limit(20);
    loop {
        if finalized().iter().any(|t| t == tag) {
            return true;
        }
        if std::time::Instant::now() > until {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// A `Tracked` object tagged `tag`.
fn tracked(tag: &str) -> Object {
    model_fn("Tracked").call(tag).unwrap()
}

/// 2-D points whose label is 1 when their first coordinate is past 0.5.
fn training_data() -> (Vec<f64>, Vec<f64>, usize, usize) {
    let (n, d) = (40, 2);
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let a = i as f64 / n as f64;
        x.extend([a, 1.0]);
        y.push(if a > 0.5 { 1.0 } else { 0.0 });
    }
    (x, y, n, d)
}

#[test]
fn the_issue_lines_fit_predict_and_read_a_model() -> Result<(), Error> {
    model_fn("Model");
    let (x, y, n, d) = training_data();
    let model: Object = Function::load("pim_model", "Model")?
        .kwarg("alpha", 0.5)
        .call()?; // a class is a callable
    let fitted: Object = model
        .method("fit")?
        .arg(NdSlice::new(&x, &[n, d])?)
        .arg(&y)
        .call()?;
    assert!(fitted.is(&model), "fit returns self");
    let labels: Vec<i64> = model.method("predict")?.call(NdSlice::new(&x, &[n, d])?)?;
    let coef: NdVec<f64> = model.getattr("coef_")?;

    assert_eq!(coef.shape(), &[2]);
    assert!(coef.as_slice()[0] > 0.5, "{coef:?}");
    let expected: Vec<i64> = y.iter().map(|&v| v as i64).collect();
    let right = labels.iter().zip(&expected).filter(|(a, b)| a == b).count();
    assert!(right >= n - 4, "{labels:?}");
    assert_eq!(model.getattr::<f64>("alpha")?, 0.5);
    assert_eq!(model.type_name(), "Model");

    // A result of unknown shape, with no argument.
    let info: HashMap<String, Value> = Function::load("pim_model", "info")?.call0()?;
    assert_eq!(info["name"], Value::from("digits"));
    assert_eq!(info["n"], Value::Int(64));
    assert_eq!(info["classes"], Value::list([0, 1, 2]));
    assert_eq!(info["scale"].as_f64(), Some(0.5));
    assert_eq!(info["fitted"], Value::Bool(true));
    assert_eq!(info["shape"], Value::tuple([8, 8]));
    assert_eq!(info["raw"], Value::Bytes(vec![0, 1]));
    assert!(info["none"].is_none());
    let weights = info["weights"].as_array::<f32>().expect("a float32 array");
    assert_eq!(weights.shape(), &[2, 3]);
    assert_eq!(weights.as_slice(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(info.len(), 9);

    // An owned 2-D input that the model keeps: no retention rule applies.
    let (rows, d) = (3, 2);
    let batch: Vec<f64> = (0..rows * d).map(|i| i as f64).collect();
    let n: usize = model
        .method("count")?
        .arg_owned(NdVec::new(batch, vec![rows, d])?)
        .call()?;
    assert_eq!(n, 3);
    let n: usize = model
        .method("count")?
        .arg_owned(NdVec::new(vec![1.0; 4], vec![2, 2])?)
        .call()?;
    assert_eq!(n, 5);
    // Both batches are still there, intact, after the calls returned.
    let sums: Vec<f64> = model.method("batch_sums")?.call0()?;
    assert_eq!(sums, [15.0, 4.0]);
    Ok(())
}

#[test]
fn functions_and_methods_take_every_arity() -> Result<(), Error> {
    let model: Object = model_fn("Model").call0()?;
    // Zero arguments.
    assert_eq!(
        model.method("describe")?.call0::<String>()?,
        "Model(alpha=1.0)"
    );
    // Keyword-only.
    assert_eq!(
        model
            .method("configure")?
            .kwarg("alpha", 2.0)
            .call::<f64>()?,
        2.0
    );
    assert_eq!(model.getattr::<f64>("alpha")?, 2.0);
    // One, then several positional, then with a keyword.
    let weighted = model.method("weighted")?;
    assert_eq!(
        weighted.arg(&[1.0, 2.0]).arg(&[3.0, 4.0]).call::<f64>()?,
        11.0
    );
    assert_eq!(
        weighted
            .arg(&[1.0, 2.0])
            .arg(2.0)
            .kwarg("bias", 0.5)
            .call::<f64>()?,
        6.5
    );
    let err = weighted.call::<f64>(&[1.0]).unwrap_err();
    assert_eq!(err.py_type(), Some("TypeError"));

    // The same on plain functions.
    let ident = model_fn("ident");
    assert_eq!(ident.call::<Vec<f64>>(&[1.5])?, [1.5]);
    let same = model_fn("same");
    assert!(!same.arg(1).arg(2.5).call::<bool>()?);
    let arange = Function::load("numpy", "arange")?;
    assert_eq!(arange.kwarg("stop", 3).call::<Vec<i64>>()?, [0, 1, 2]);
    let info = Function::from_source(
        "pim_obj_call0",
        "def info():\n    return {'n': 64, 'm': 2}\n",
        "info",
    )?;
    let map: std::collections::HashMap<String, i64> = info.call0()?;
    assert_eq!((map["n"], map["m"]), (64, 2));
    Ok(())
}

#[test]
fn load_takes_any_callable_and_refuses_the_rest() {
    let class = model_fn("Counter");
    let counter: Object = class.call(3).unwrap();
    assert_eq!(counter.getattr::<i64>("step").unwrap(), 3);
    let err = Function::load("pim_model", "NOT_CALLABLE").unwrap_err();
    assert_eq!(err.py_type(), Some("TypeError"));
    assert!(
        err.to_string()
            .contains("pim_model.NOT_CALLABLE is a int, which is not callable"),
        "{err}"
    );
    // A method is looked up when it is called, as Python's counter.step()
    // is: the errors come from the call.
    let step = counter.method("step").unwrap();
    let err = step.call0::<i64>().unwrap_err();
    assert_eq!(err.py_type(), Some("TypeError"));
    assert!(
        err.to_string().contains("'int' object is not callable"),
        "{err}"
    );
    let err = counter.method("nope").unwrap().call0::<i64>().unwrap_err();
    assert_eq!(err.py_type(), Some("AttributeError"));
    assert!(err.to_string().contains("'nope'"), "{err}");
    let err = counter.method("no\0pe").unwrap_err();
    assert!(matches!(err, Error::InvalidName(_)), "{err}");
    assert_eq!(
        counter.getattr::<i64>("nope").unwrap_err().py_type(),
        Some("AttributeError")
    );
    let err = counter.getattr::<String>("step").unwrap_err();
    assert!(matches!(err, Error::BadResult { .. }), "{err}");
    assert!(
        err.to_string().starts_with("Counter.step returned"),
        "{err}"
    );
}

#[test]
fn objects_go_into_calls_as_themselves() -> Result<(), Error> {
    let a = tracked("identity-a");
    let b = tracked("identity-b");
    let same = model_fn("same");
    assert!(same.arg(&a).arg(&a).call::<bool>()?);
    assert!(!same.arg(&a).arg(&b).call::<bool>()?);
    let back: Object = model_fn("ident").call(&a)?;
    assert!(back.is(&a) && !back.is(&b));
    assert!(same.arg(&back).arg(&a).call::<bool>()?);
    let clone = a.clone();
    assert!(clone.is(&a));
    assert_eq!(clone.getattr::<String>("tag")?, "identity-a");
    // As a keyword argument, and as an attribute read as an Object.
    assert!(same.arg(&a).kwarg("b", &back).call::<bool>()?);
    let tag: Object = a.getattr("tag")?;
    assert_eq!(tag.type_name(), "str");
    Ok(())
}

#[test]
fn two_stateful_instances_called_from_eight_threads() -> Result<(), Error> {
    let class = model_fn("Counter");
    let ones: Object = class.call(1)?;
    let tens: Object = class.call(10)?;
    let calls = 50;
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let counter = if t % 2 == 0 {
                ones.clone()
            } else {
                tens.clone()
            };
            thread::spawn(move || -> Result<i64, Error> {
                let add = counter.method("add")?;
                let data = [1i64, 2, 3]; // 6 a call
                let mut last = 0;
                for _ in 0..calls {
                    let total: i64 = add.call(&data)?;
                    assert!(total > last, "a running total only grows");
                    last = total;
                }
                Ok(last)
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap()?;
    }
    // 4 threads each, 50 calls of 6.
    assert_eq!(ones.getattr::<i64>("total")?, 4 * 50 * 6);
    assert_eq!(tens.getattr::<i64>("total")?, 10 * 4 * 50 * 6);
    Ok(())
}

#[test]
fn dropped_on_a_thread_that_never_called_python_without_a_leak() {
    let obj = tracked("never-called");
    let clone = obj.clone();
    thread::spawn(move || drop(obj)).join().unwrap();
    // A clone still holds it.
    assert!(!finalized().contains(&"never-called".to_owned()));
    thread::spawn(move || drop(clone)).join().unwrap();
    // Released by the crate's releasing thread, soon.
    assert!(finalized_soon("never-called"), "never-called");
}

/// What `SlowDel` finalizers have recorded: "started", "ended".
fn slow_dels(timeout: Duration) -> Result<Vec<String>, Error> {
    model_fn("slow_dels").timeout(timeout).call::<Vec<String>>()
}

/// Waits until a `SlowDel` finalizer has started.
fn wait_for_a_slow_finalizer() {
    let until = std::time::Instant::now() + hang_limit(20);
    while !slow_dels(hang_limit(20))
        .unwrap()
        .contains(&"started".to_owned())
    {
        assert!(
            std::time::Instant::now() < until,
            "the finalizer never started"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_slow_finalizer_of_an_object_dropped_elsewhere_runs_in_no_call() -> Result<(), Error> {
    let slow: Object = model_fn("SlowDel").call(1.0)?;
    thread::spawn(move || drop(slow)).join().unwrap();
    // The finalizer runs on the crate's releasing thread, asleep for 1 s:
    // meanwhile calls with a deadline of 200 ms go on (they ran it first,
    // for 1 s, and a deadline was said to have passed before the call).
    wait_for_a_slow_finalizer();
    // Under valgrind (make memcheck) a call takes about 50 times as long
    // (one of 200 ms waited 244 ms for its start there): the bounds grow
    // with it, and only say that the calls go on.
    let slowdown = common::slowdown();
    let started = std::time::Instant::now();
    let seen = slow_dels(Duration::from_millis(200) * slowdown)?;
    assert_eq!(seen, ["started"]);
    let seen = pollster::block_on(
        model_fn("slow_dels")
            .timeout(Duration::from_millis(200) * slowdown)
            .call_async::<Vec<String>>(),
    )?;
    assert_eq!(seen, ["started"]);
    assert!(
        started.elapsed() < Duration::from_millis(900) * slowdown,
        "{:?}",
        started.elapsed()
    );
    // And it ends.
    let until = std::time::Instant::now() + hang_limit(20);
    while slow_dels(hang_limit(20))? != ["started", "ended"] {
        assert!(
            std::time::Instant::now() < until,
            "the finalizer never ended"
        );
        thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

#[test]
#[ignore = "child process body"]
fn child_a_finalizer_that_never_ends_stops_no_call() {
    if !is_child() {
        return;
    }
    let endless: Object = model_fn("SlowDel").call(-0.01).unwrap();
    thread::spawn(move || drop(endless)).join().unwrap();
    wait_for_a_slow_finalizer();
    let add = Function::from_source("pim_after_endless", "def f(a, b):\n    return a + b\n", "f")
        .unwrap();
    for i in 0..20_i64 {
        let sum = add
            .timeout(Duration::from_secs(5))
            .arg(i)
            .arg(1)
            .call::<i64>()
            .unwrap();
        assert_eq!(sum, i + 1);
        let sum = pollster::block_on(
            add.timeout(Duration::from_secs(5))
                .arg(i)
                .arg(2)
                .call_async::<i64>(),
        )
        .unwrap();
        assert_eq!(sum, i + 2);
    }
    write_raw("CALLS-WENT-ON\n");
}

#[test]
fn a_finalizer_that_never_ends_stops_no_call() {
    let output = run_limited(
        child_command("child_a_finalizer_that_never_ends_stops_no_call"),
        hang_limit(60),
    );
    let stdout = assert_child_passed(&output);
    assert!(stdout.contains("CALLS-WENT-ON"), "{stdout}");
}

#[test]
fn dropped_while_another_thread_holds_the_gil_without_waiting() {
    let obj = tracked("during-scope");
    let (in_scope_tx, in_scope_rx) = mpsc::channel();
    let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
    let scope = thread::spawn(move || {
        hold_gil(|_scope| {
            in_scope_tx.send(()).unwrap();
            // Holds the GIL until the drop on the other thread returns.
            let returned = dropped_rx.recv_timeout(Duration::from_secs(30)).is_ok();
            Ok(returned)
        })
        .unwrap()
    });
    in_scope_rx.recv().unwrap();
    drop(obj); // the other thread holds the GIL: must not wait for it
    dropped_tx.send(()).unwrap();
    assert!(
        scope.join().unwrap(),
        "the drop returned while the scope held the GIL"
    );
    assert!(finalized_soon("during-scope"), "during-scope");
}

#[test]
fn dropped_inside_a_scope_is_released_at_once() {
    let obj = tracked("in-scope");
    let finalized_fn = model_fn("finalized");
    let seen = hold_gil(|_scope| {
        drop(obj);
        finalized_fn.call0::<Vec<String>>()
    })
    .unwrap();
    assert!(seen.contains(&"in-scope".to_owned()));
}

#[test]
fn objects_are_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Object>();
    let shared = Arc::new(tracked("shared"));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || shared.getattr::<String>("tag").unwrap())
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), "shared");
    }
}

#[test]
fn methods_in_a_scope_with_a_lent_input() -> Result<(), Error> {
    let (x, y, n, d) = training_data();
    let model: Object = model_fn("Model").kwarg("alpha", 0.5).call()?;
    let _: Object = model
        .method("fit")?
        .arg(NdSlice::new(&x, &[n, d])?)
        .arg(&y)
        .call()?;
    let outside: Vec<i64> = model.method("predict")?.call(NdSlice::new(&x, &[n, d])?)?;
    let (inside, again) = hold_gil(|scope| {
        let lent = scope.lend(NdSlice::new(&x, &[n, d])?)?;
        let predict = model.method("predict")?;
        let inside: Vec<i64> = predict.call(lent)?;
        let again: Vec<i64> = predict.call(lent)?;
        Ok((inside, again))
    })?;
    assert_eq!(inside, outside);
    assert_eq!(again, outside);
    Ok(())
}

#[test]
fn a_method_that_keeps_its_lent_input_is_input_retained() {
    let keeper: Object = model_fn("Keeper").call0().unwrap();
    let data = vec![1.0, 2.0, 3.0];
    let err = keeper
        .method("keep")
        .unwrap()
        .call::<i64>(&data)
        .unwrap_err();
    assert!(matches!(err, Error::InputRetained { .. }), "{err}");
    assert!(err.to_string().contains("Keeper.keep"), "{err}");
    let err = hold_gil(|scope| {
        let lent = scope.lend(&data)?;
        keeper.method("keep")?.call::<i64>(lent)
    })
    .unwrap_err();
    assert!(matches!(err, Error::InputRetained { .. }), "{err}");
}

#[test]
fn from_source_again_with_the_same_source_is_the_same_module() -> Result<(), Error> {
    let source = "import numpy as np\nSEED = float(np.random.random())\ndef seed():\n    return SEED\ndef twice():\n    return 2 * SEED\n";
    let first = Function::from_source("pim_obj_reuse", source, "seed")?;
    let seed: f64 = first.call0()?;
    // Its body is not run again: SEED keeps its value, for both.
    let second = Function::from_source("pim_obj_reuse", source, "seed")?;
    assert_eq!(second.call0::<f64>()?, seed);
    assert_eq!(first.call0::<f64>()?, seed);
    let twice = Function::from_source("pim_obj_reuse", source, "twice")?;
    assert_eq!(twice.call0::<f64>()?, 2.0 * seed);
    assert_eq!(
        Function::load("pim_obj_reuse", "seed")?.call0::<f64>()?,
        seed
    );
    Ok(())
}

#[test]
fn from_source_with_a_name_in_use_is_an_error_naming_it() {
    let source = "def f():\n    return 1\n";
    Function::from_source("pim_obj_taken", source, "f").unwrap();
    let err = Function::from_source("pim_obj_taken", "def f():\n    return 2\n", "f").unwrap_err();
    assert_eq!(err.py_type(), Some("ValueError"));
    let text = err.to_string();
    assert!(
        text.contains("'pim_obj_taken'") && text.contains("pick another name"),
        "{text}"
    );
    // The module made first is untouched.
    assert_eq!(
        Function::from_source("pim_obj_taken", source, "f")
            .unwrap()
            .call0::<i64>()
            .unwrap(),
        1
    );

    // A module from_source did not make is never replaced.
    let err = Function::from_source("numpy", source, "f").unwrap_err();
    assert!(
        err.to_string().contains("'numpy'") && err.to_string().contains("did not make"),
        "{err}"
    );
    assert_eq!(
        Function::load("numpy", "mean")
            .unwrap()
            .call::<f64>(&[1.0, 3.0])
            .unwrap(),
        2.0
    );
}

#[test]
fn from_source_whose_body_failed_may_be_fixed_under_its_name() {
    let err =
        Function::from_source("pim_obj_retry", "raise ValueError('not yet')\n", "f").unwrap_err();
    assert!(matches!(err, Error::Import { .. }), "{err}");
    let f = Function::from_source("pim_obj_retry", "def f():\n    return 7\n", "f").unwrap();
    assert_eq!(f.call0::<i64>().unwrap(), 7);
}

/// `load` on `n` threads started together at a barrier; what each returned.
fn at_once<T: Send + 'static>(n: usize, load: impl Fn() -> T + Send + Sync + 'static) -> Vec<T> {
    let start = Arc::new(std::sync::Barrier::new(n));
    let load = Arc::new(load);
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (start, load) = (Arc::clone(&start), Arc::clone(&load));
            thread::spawn(move || {
                start.wait();
                load()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Threads that load one source at once, while the first runs its body
/// (which gives the GIL up in `time.sleep`), wait for the body: each gets
/// the function it defines, from one run of it.
#[test]
fn threads_loading_one_source_at_once_wait_for_its_body() {
    let source = "import time\nRUNS = []\nRUNS.append(1)\ntime.sleep(0.05)\n\
                  def runs():\n    return len(RUNS)\n";
    let runs = at_once(8, move || {
        Function::from_source("pim_obj_concurrent", source, "runs")?.call0::<i64>()
    });
    for run in runs {
        assert_eq!(run.unwrap(), 1, "one run of the body");
    }
}

/// The same with a body that fails after giving the GIL up: every thread
/// gets the import error, and no half-made module is left.
#[test]
fn threads_loading_one_failing_source_at_once_all_get_its_error() {
    let source = "import time\ntime.sleep(0.05)\nraise ValueError('no model')\n";
    let errors = at_once(4, move || {
        Function::from_source("pim_obj_concurrent_fails", source, "f").unwrap_err()
    });
    for err in errors {
        assert!(matches!(err, Error::Import { .. }), "{err:?}");
        assert_eq!(err.exception().unwrap().to_string(), "ValueError: no model");
    }
    let gone = Object::import("pim_obj_concurrent_fails").unwrap_err();
    assert_eq!(gone.py_type(), Some("ModuleNotFoundError"), "{gone}");
}

#[test]
fn a_module_and_its_globals_as_objects() -> Result<(), Error> {
    model_fn("Model"); // puts tests/python on sys.path
    let module = Object::import("pim_model")?;
    assert_eq!(module.type_name(), "module");
    let default: Object = module.getattr("DEFAULT")?;
    assert_eq!(default.getattr::<f64>("alpha")?, 3.0);
    assert_eq!(
        default.method("describe")?.call0::<String>()?,
        "Model(alpha=3.0)"
    );
    let again: Object = Object::import("pim_model")?.getattr("DEFAULT")?;
    assert!(again.is(&default));
    let err = Object::import("pim_no_such_module").unwrap_err();
    assert_eq!(err.py_type(), Some("ModuleNotFoundError"));
    Ok(())
}

#[test]
fn a_method_function_dropped_while_another_thread_holds_the_gil_does_not_wait() {
    let obj = tracked("method-during-scope");
    let method = obj.method("__repr__").unwrap();
    drop(obj); // the bound method keeps the object alive
    let (in_scope_tx, in_scope_rx) = mpsc::channel();
    let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
    let scope = thread::spawn(move || {
        hold_gil(|_scope| {
            in_scope_tx.send(()).unwrap();
            Ok(dropped_rx.recv_timeout(Duration::from_secs(30)).is_ok())
        })
        .unwrap()
    });
    in_scope_rx.recv().unwrap();
    drop(method);
    dropped_tx.send(()).unwrap();
    assert!(
        scope.join().unwrap(),
        "the drop returned while the scope held the GIL"
    );
    assert!(finalized_soon("method-during-scope"), "method-during-scope");
}

#[test]
#[ignore = "child process body"]
fn child_forks_while_another_thread_holds_the_gil_and_drops_in_the_child() {
    if !is_child() {
        return;
    }
    let obj = tracked("forked");
    let method = obj.method("__repr__").unwrap();
    let (in_scope_tx, in_scope_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let scope = thread::spawn(move || {
        hold_gil(|_scope| {
            in_scope_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            Ok(())
        })
        .unwrap()
    });
    in_scope_rx.recv().unwrap();
    // The child has the GIL held by a thread that does not exist in it: a
    // drop that took the GIL would hang; one that touched Python, crash.
    let status = fork_and_wait(
        move || {
            drop(obj);
            drop(method);
            write_raw("CHILD-DROPPED\n");
        },
        hang_limit(20),
    );
    go_tx.send(()).unwrap();
    scope.join().unwrap();
    let status = status.expect("the forked child hung");
    // Under make memcheck, the child's "CHILD-DROPPED" line (checked by the
    // parent test) is its verdict.
    assert!(common::exited_cleanly(status), "{status}");
    // The parent's own drops (the closure's, unrun here) are released.
    assert!(finalized_soon("forked"), "forked");
}

#[test]
fn objects_dropped_in_a_forked_child_are_left_alone() {
    let output = run_limited(
        child_command("child_forks_while_another_thread_holds_the_gil_and_drops_in_the_child"),
        hang_limit(60),
    );
    let stdout = assert_child_passed(&output);
    assert!(stdout.contains("CHILD-DROPPED"), "{stdout}");
}

#[test]
fn load_follows_a_dotted_name_to_a_method_of_a_module_global() -> Result<(), Error> {
    model_fn("Model"); // puts tests/python on sys.path
    let describe = Function::load("pim_model", "DEFAULT.describe")?;
    assert_eq!(describe.name(), "pim_model.DEFAULT.describe");
    assert_eq!(describe.call0::<String>()?, "Model(alpha=3.0)");
    let err = Function::load("pim_model", "DEFAULT.nope").unwrap_err();
    assert_eq!(err.py_type(), Some("AttributeError"));
    let err = Function::load("pim_model", "DEFAULT.alpha").unwrap_err();
    assert!(
        err.to_string()
            .contains("DEFAULT.alpha is a float, which is not callable"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_kept_method_is_looked_up_at_each_call_as_python_does() -> Result<(), Error> {
    let source = "class Greeter:\n\
        \x20   def hello(self, name):\n\
        \x20       return 'hello ' + name\n\
        def shout(name):\n\
        \x20   return name.upper()\n\
        def rebind(g):\n\
        \x20   g.hello = shout\n\
        def unbind(g):\n\
        \x20   del g.hello\n";
    let module = Function::from_source("pim_rebind", source, "Greeter")?;
    let greeter: Object = module.call0()?;
    let hello = greeter.method("hello")?;
    assert_eq!(hello.call::<String>("ada")?, "hello ada");
    // An instance attribute now shadows the class's method: the kept
    // Function sees it, as greeter.hello(...) in Python would.
    Function::from_source("pim_rebind", source, "rebind")?.call::<()>(&greeter)?;
    assert_eq!(hello.call::<String>("ada")?, "ADA");
    Function::from_source("pim_rebind", source, "unbind")?.call::<()>(&greeter)?;
    assert_eq!(hello.call::<String>("ada")?, "hello ada");
    // Every way of calling goes through the lookup.
    assert_eq!(hello.arg("bo").call::<String>()?, "hello bo");
    assert_eq!(hello.kwarg("name", "cy").call::<String>()?, "hello cy");
    Ok(())
}

#[test]
fn methods_asked_for_again_call_the_right_one_and_keep_nothing_alive() -> Result<(), Error> {
    // The object keeps the Functions of the first 8 names asked for, shared
    // by its clones; the rest are made anew. Either way, each name calls its
    // own method, in any order, from any clone.
    let source = "class Many:\n    pass\n\
        for i in range(12):\n\
        \x20   setattr(Many, f'm{i}', lambda self, k=0, i=i: 100 * i + k)\n";
    let many: Object = Function::from_source("pim_kept_methods", source, "Many")?.call0()?;
    let clone = many.clone();
    for round in 0..3 {
        for i in (0..12).rev().chain(0..12) {
            let obj = if round == 1 { &clone } else { &many };
            let m = obj.method(&format!("m{i}"))?;
            assert_eq!(m.name(), format!("Many.m{i}"));
            assert_eq!(m.call0::<i64>()?, 100 * i);
            assert_eq!(m.call::<i64>(round)?, 100 * i + round);
        }
    }
    assert!(matches!(
        many.method("m\0"),
        Err(Error::InvalidName(name)) if name == "m\0"
    ));

    // The kept methods hold the object, not the other way round: it goes
    // when its last clone and its last method Function are gone.
    let obj = tracked("kept-methods");
    let m = obj.method("__repr__")?;
    let _ = obj.method("__str__")?;
    drop(obj);
    assert!(m.call0::<String>()?.contains("Tracked"));
    assert!(!finalized().contains(&"kept-methods".to_owned()));
    drop(m);
    assert!(finalized_soon("kept-methods"), "kept-methods");
    let obj = tracked("kept-methods-only");
    let _ = obj.method("__repr__")?.call0::<String>()?;
    drop(obj);
    assert!(finalized_soon("kept-methods-only"), "kept-methods-only");
    Ok(())
}

#[test]
fn methods_past_the_kept_names_are_called_all_the_same() -> Result<(), Error> {
    // More distinct names than the crate keeps as Python strs (1,024): the
    // ones past it are made at each call.
    let source = "class Many:\n    pass\n\
        for i in range(1500):\n\
        \x20   setattr(Many, f'm{i}', lambda self, k=0, i=i: i + k)\n";
    let many: Object = Function::from_source("pim_many_methods", source, "Many")?.call0()?;
    for i in 0..1500 {
        let m = many.method(&format!("m{i}"))?;
        assert_eq!(m.call0::<i64>()?, i);
        assert_eq!(m.kwarg("k", 2).call::<i64>()?, i + 2);
    }
    Ok(())
}

#[test]
fn hasattr_setattr_and_is_instance_of_as_python_has_them() -> Result<(), Error> {
    let source = "\
class Base:
    pass

class Model(Base):
    @property
    def broken(self):
        raise ValueError('broken property')

    @property
    def missing(self):
        raise AttributeError('computed and absent')
";
    let model: Object = Function::from_source("pim_object_attrs", source, "Model")?.call0()?;
    // hasattr: only AttributeError means no.
    assert!(model.hasattr("__class__")?);
    assert!(!model.hasattr("alpha")?);
    assert!(!model.hasattr("missing")?);
    let err = model.hasattr("broken").unwrap_err();
    assert_eq!(
        (err.py_type(), err.to_string().as_str()),
        (Some("ValueError"), "ValueError: broken property")
    );
    assert!(matches!(model.hasattr("a\0b"), Err(Error::InvalidName(_))));
    // setattr of values, an Object and an owned array.
    model.setattr("alpha", 0.5)?;
    model.setattr("name", "ridge")?;
    model.setattr("weights", py_in_mem::Arg::owned(vec![1.0, 2.0]))?;
    let other: Object = Function::from_source("pim_object_attrs", source, "Base")?.call0()?;
    model.setattr("base", &other)?;
    assert!(model.hasattr("alpha")?);
    assert_eq!(model.getattr::<f64>("alpha")?, 0.5);
    assert_eq!(model.getattr::<String>("name")?, "ridge");
    assert_eq!(model.getattr::<Vec<f64>>("weights")?, [1.0, 2.0]);
    assert!(model.getattr::<Object>("base")?.is(&other));
    // A lent array is kept: moved onto a copy, and reported.
    let mut lent = vec![3.0, 4.0];
    let err = model.setattr("kept", &lent).unwrap_err();
    let Error::InputRetained {
        function,
        arguments,
        error,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(function, "Object::setattr(\"kept\")");
    assert_eq!(arguments, &["the value"]);
    assert!(error.is_none(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("Object::setattr(\"kept\") retained its input array (the value) after"),
        "{err}"
    );
    lent.iter_mut().for_each(|v| *v = -1.0);
    drop(lent);
    assert_eq!(model.getattr::<Vec<f64>>("kept")?, [3.0, 4.0]);
    // A read-only property cannot be set: Python's error.
    let err = model.setattr("broken", 1).unwrap_err();
    assert_eq!(err.py_type(), Some("AttributeError"));
    // is_instance_of: by qualified or plain name, through the MRO.
    assert!(model.is_instance_of("pim_object_attrs.Model")?);
    assert!(model.is_instance_of("Model")?);
    assert!(model.is_instance_of("pim_object_attrs.Base")?);
    assert!(model.is_instance_of("builtins.object")?);
    assert!(!model.is_instance_of("other.Model")?);
    assert!(!other.is_instance_of("Model")?);
    Ok(())
}

/// `is_instance` is Python's `isinstance`: abstract base classes by
/// registration or structure, tuples of classes, and a class that is not
/// one raising TypeError; names along the MRO (`is_instance_of`) see none
/// of the ABCs.
#[test]
fn is_instance_asks_python_s_isinstance_abstract_classes_included() -> Result<(), Error> {
    let class = |module: &str, name: &str| -> Result<Object, Error> {
        Object::import(module)?.getattr(name)
    };
    let build = Function::from_source(
        "pim_object_isinstance",
        "import collections\n\
         def one():\n    return 1\n\
         def a_list():\n    return [1, 2]\n\
         def counter():\n    return collections.Counter('abca')\n\
         def pair(a, b):\n    return (a, b)\n",
        "one",
    )?;
    let load = |name: &str| Function::load("pim_object_isinstance", name);
    let one: Object = build.call0()?;
    let list: Object = load("a_list")?.call0()?;
    let counter: Object = load("counter")?.call0()?;
    let number = class("numbers", "Number")?;
    let sequence = class("collections.abc", "Sequence")?;
    let mapping = class("collections.abc", "Mapping")?;
    assert!(one.is_instance(&number)?);
    assert!(!one.is_instance_of("numbers.Number")?);
    assert!(list.is_instance(&sequence)?);
    assert!(!list.is_instance_of("collections.abc.Sequence")?);
    assert!(counter.is_instance(&mapping)?);
    assert!(!one.is_instance(&sequence)?);
    assert!(!list.is_instance(&number)?);
    let either: Object = load("pair")?.arg(&sequence).arg(&number).call()?;
    assert!(one.is_instance(&either)?);
    assert!(!counter.is_instance(&either)?);
    let err = one.is_instance(&one).unwrap_err();
    assert_eq!(err.py_type(), Some("TypeError"));
    Ok(())
}

#[test]
fn an_object_goes_to_c_code_by_pointer_and_comes_back_with_its_own_reference() -> Result<(), Error>
{
    let refcount = Function::from_source(
        "pim_object_pointer",
        "import sys\ndef refcount(x):\n    return sys.getrefcount(x)\n",
        "refcount",
    )?;
    let original = tracked("by pointer");
    let before: i64 = refcount.call(&original)?;
    let ptr = original.as_ptr();
    assert!(!ptr.is_null());
    // SAFETY: `original` keeps the object alive.
    let again = unsafe { Object::from_borrowed_ptr(ptr) }?;
    assert!(again.is(&original));
    assert_eq!(again.as_ptr(), ptr);
    assert_eq!(again.type_name(), "Tracked");
    assert_eq!(again.getattr::<String>("tag")?, "by pointer");
    // A reference of its own: one more than before.
    assert_eq!(refcount.call::<i64>(&original)?, before + 1);
    // Inside a held-GIL scope too (the thread holds the GIL already).
    let third = hold_gil(|_| {
        // SAFETY: as above.
        unsafe { Object::from_borrowed_ptr(ptr) }
    })?;
    assert_eq!(refcount.call::<i64>(&original)?, before + 2);
    drop((original, again, third));
    assert!(finalized_soon("by pointer"), "the three references went");
    // SAFETY: null is checked before anything is read.
    let err = unsafe { Object::from_borrowed_ptr(std::ptr::null_mut()) }.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument: Object::from_borrowed_ptr was given a null pointer"
    );
    Ok(())
}

#[test]
fn a_module_s_functions_are_named_after_the_module_not_its_type() -> Result<(), Error> {
    Function::from_source(
        "pim_object_named",
        "def fails(x):\n    raise ValueError('no')\nLIMIT = 'high'\n",
        "fails",
    )?;
    let module = Object::import("pim_object_named")?;
    assert_eq!(module.type_name(), "module");
    let fails = module.method("fails")?;
    assert_eq!(fails.name(), "pim_object_named.fails");
    let err = module.getattr::<f64>("LIMIT").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pim_object_named.LIMIT returned "),
        "{err}"
    );
    // A package's submodule by its dotted name; a class's methods by the class.
    let linalg = Object::import("numpy.linalg")?;
    assert_eq!(linalg.method("norm")?.name(), "numpy.linalg.norm");
    let obj: Object = Function::load("builtins", "dict")?.call0()?;
    assert_eq!(obj.method("keys")?.name(), "dict.keys");
    Ok(())
}
