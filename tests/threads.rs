//! One `Outliers` shared by 8 threads, none of them the one that started
//! Python: every call takes the GIL itself and every result is right.

mod common;

use std::sync::Arc;
use std::thread;

use common::article_data;
use py_in_mem::Outliers;

#[test]
fn outliers_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Outliers>();
}

#[test]
fn eight_threads_by_a_thousand_calls_on_one_outliers() {
    // Created on a thread that ends before the calls start.
    let outliers = Arc::new(
        thread::spawn(|| Outliers::new("outliers", "detect").unwrap())
            .join()
            .unwrap(),
    );
    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            let outliers = Arc::clone(&outliers);
            thread::spawn(move || {
                // Each thread has its own data, so a mix-up would show.
                let data = article_data(1000, worker);
                let mut short = article_data(200, worker);
                short[150] = -500.0;
                for call in 0..1000 {
                    if call % 2 == 0 {
                        assert_eq!(outliers.detect(&data).unwrap(), vec![7, 113, 835]);
                    } else {
                        assert_eq!(outliers.detect(&short).unwrap(), vec![7, 113, 150]);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker thread panicked");
    }
}

#[test]
fn dropped_on_another_thread() {
    let outliers = Outliers::new("outliers", "detect").unwrap();
    thread::spawn(move || drop(outliers)).join().unwrap();
}

#[test]
fn one_threads_retention_error_leaves_the_others_unharmed() {
    common::test_func("keep_in_list"); // puts tests/python on sys.path
    let outliers = Arc::new(Outliers::new("outliers", "detect").unwrap());
    let keeping = Arc::new(py_in_mem::Function::load("pim_testfuncs", "keep_in_list").unwrap());
    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            let outliers = Arc::clone(&outliers);
            let keeping = Arc::clone(&keeping);
            thread::spawn(move || {
                let data = article_data(1000, worker);
                for _ in 0..200 {
                    if worker == 0 {
                        let err = keeping.call::<Vec<i64>>(&data).unwrap_err();
                        assert!(
                            matches!(err, py_in_mem::Error::InputRetained { .. }),
                            "{err:?}"
                        );
                    } else {
                        assert_eq!(outliers.detect(&data).unwrap(), vec![7, 113, 835]);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker thread panicked");
    }
}
