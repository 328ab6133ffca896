//! Serving threads waiting in C code (`serve/waiting.rs`): long calls that
//! wait (for an event, as a socket read without a timeout does) on every
//! thread for long calls do not keep a further long call from running, and
//! once they return, CPU-bound long calls run on no more threads than
//! cores. Alone in its test binary: the threads it leaves waiting, and
//! those it starts, would move other tests' counts.

use std::time::{Duration, Instant};

use py_in_mem::{scheduler, serve, Function};

/// `wait` blocks on an event (no CPU time), or sleeps when given a negative
/// time (to be timed long); `work` hashes without the GIL (CPU time, as
/// numpy's loops use), counting the calls at work at once.
const SOURCE: &str = "import hashlib, os, threading, time\n\
event = threading.Event()\n\
lock = threading.Lock()\n\
begun = [0]\n\
running = [0, 0]\n\
BLOCK = bytes(1 << 20)\n\
def wait(limit):\n\
\x20   if limit < 0:\n\
\x20       time.sleep(-limit)\n\
\x20       return 0\n\
\x20   with lock:\n\
\x20       begun[0] += 1\n\
\x20   assert event.wait(limit), 'never released'\n\
\x20   return 1\n\
def nap(t):\n\
\x20   time.sleep(t)\n\
\x20   return 0\n\
def work(t):\n\
\x20   with lock:\n\
\x20       running[0] += 1\n\
\x20       running[1] = max(running[1], running[0])\n\
\x20   end = time.monotonic() + t\n\
\x20   while time.monotonic() < end:\n\
\x20       hashlib.sha256(BLOCK).digest()\n\
\x20   with lock:\n\
\x20       running[0] -= 1\n\
\x20   return 0\n\
def starved(t):\n\
\x20   tid = threading.get_native_id()\n\
\x20   os.setpriority(os.PRIO_PROCESS, tid, 19)\n\
\x20   try:\n\
\x20       return work(t)\n\
\x20   finally:\n\
\x20       try:\n\
\x20           os.setpriority(os.PRIO_PROCESS, tid, 0)\n\
\x20       except PermissionError:\n\
\x20           pass\n\
def phase(s, t):\n\
\x20   time.sleep(s)\n\
\x20   return work(t)\n\
def computing():\n\
\x20   return running[0]\n\
def started():\n\
\x20   return begun[0]\n\
def release():\n\
\x20   event.set()\n\
def most():\n\
\x20   return running[1]\n\
def reset():\n\
\x20   event.clear()\n\
\x20   begun[0] = 0\n\
\x20   running[1] = 0\n";

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Functions {
    wait: Function,
    work: Function,
    nap: Function,
    started: Function,
    release: Function,
    most: Function,
    reset: Function,
    phase: Function,
    computing: Function,
    starved: Function,
}

/// The functions, `wait` and `work` known long (timed in calls of 50 ms,
/// with the long-call threshold at 20 ms).
async fn functions() -> Functions {
    let m = "pim_serve_waiting";
    let wait = Function::from_source(m, SOURCE, "wait").unwrap();
    let load = |name: &str| Function::load(m, name).unwrap();
    let f = Functions {
        work: load("work"),
        nap: load("nap"),
        started: load("started"),
        release: load("release"),
        most: load("most"),
        reset: load("reset"),
        phase: load("phase"),
        computing: load("computing"),
        starved: load("starved"),
        wait,
    };
    scheduler::set_long_call(Duration::from_millis(20));
    for _ in 0..8 {
        f.wait.call_async::<i64>(-0.05).await.unwrap();
        f.work.call_async::<i64>(0.05).await.unwrap();
        f.starved.call_async::<i64>(0.05).await.unwrap();
        f.phase
            .arg(0.0)
            .arg(0.05)
            .call_async::<i64>()
            .await
            .unwrap();
    }
    f.reset.call0::<()>().unwrap();
    f
}

/// One waiting long call per core, each started before the next.
async fn wait_on_every_core(
    f: &Functions,
) -> Vec<tokio::task::JoinHandle<Result<i64, py_in_mem::Error>>> {
    let cores = serve::max_threads() - 1;
    let mut waits = Vec::new();
    for k in 1..=cores {
        waits.push(tokio::spawn(f.wait.call_async::<i64>(60.0)));
        let begun = Instant::now();
        while f.started.call0::<i64>().unwrap() < i64::try_from(k).unwrap() {
            assert!(
                begun.elapsed() < Duration::from_secs(20),
                "waiting call {k} never started"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    waits
}

/// Before, the further long call was set aside until one of the waiting
/// ones returned (never, here: 10 s, 4 of 4 runs in trial 16).
#[tokio::test(flavor = "multi_thread")]
async fn a_long_call_runs_beside_long_calls_waiting_in_c_code() {
    let _serial = SERIAL.lock().await;
    let f = functions().await;
    let waits = wait_on_every_core(&f).await;
    let began = Instant::now();
    let served =
        tokio::time::timeout(Duration::from_secs(20), f.work.call_async::<i64>(0.01)).await;
    eprintln!(
        "long call beside waiting ones: served after {:?}",
        began.elapsed()
    );
    f.release.call0::<()>().unwrap();
    for wait in waits {
        assert_eq!(wait.await.unwrap().unwrap(), 1);
    }
    assert_eq!(served.expect("served beside the waiting calls").unwrap(), 0);
    f.reset.call0::<()>().unwrap();
}

/// Before, threads counted waiting at the timer's last look were still
/// counted so once their calls had returned, and a burst of CPU-bound long
/// calls ran on more threads than cores (5 at once on 2, 3 of 3 runs in
/// trial 16).
#[tokio::test(flavor = "multi_thread")]
async fn cpu_bound_long_calls_run_on_no_more_threads_than_cores_after_waiting_ones() {
    let _serial = SERIAL.lock().await;
    let f = functions().await;
    let cores = serve::max_threads() - 1;
    let waits = wait_on_every_core(&f).await;
    // Short calls queued meanwhile have the timer look at the threads (and
    // find those that wait).
    let naps: Vec<_> = (0..4)
        .map(|_| tokio::spawn(f.nap.call_async::<i64>(0.5)))
        .collect();
    for nap in naps {
        nap.await.unwrap().unwrap();
    }
    f.release.call0::<()>().unwrap();
    for wait in waits {
        assert_eq!(wait.await.unwrap().unwrap(), 1);
    }
    f.reset.call0::<()>().unwrap();
    let burst: Vec<_> = (0..8)
        .map(|_| tokio::spawn(f.work.call_async::<i64>(0.3)))
        .collect();
    for call in burst {
        assert_eq!(call.await.unwrap().unwrap(), 0);
    }
    let at_once = f.most.call0::<usize>().unwrap();
    eprintln!("CPU-bound long calls at once: {at_once} on {cores} cores");
    assert!(at_once <= cores, "{at_once} at once on {cores} cores");
}

/// Calls that wait, then compute ("fetch, then compute"): counted waiting
/// while they waited, they count as busy again once they work, though no
/// look at the threads runs then (no call queued, none set aside). Before,
/// they stayed counted waiting while they computed, and a burst of
/// CPU-bound long calls ran beside them: 4, 4 and 3 at once on 2 cores in
/// trial 20.
#[tokio::test(flavor = "multi_thread")]
async fn calls_counted_waiting_that_compute_again_count_as_busy() {
    let _serial = SERIAL.lock().await;
    let f = functions().await;
    let cores = serve::max_threads() - 1;
    let phases: Vec<_> = (0..cores)
        .map(|_| tokio::spawn(f.phase.arg(0.8).arg(1.5).call_async::<i64>()))
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A long call set aside beside them: the leader looks at the threads,
    // finds the phases waiting, and runs it.
    f.wait.call_async::<i64>(-0.3).await.unwrap();
    let begun = Instant::now();
    while f.computing.call0::<usize>().unwrap() < cores {
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "the phases never computed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A moment at work: what tells a working thread from a waiting one.
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.reset.call0::<()>().unwrap();
    let mut burst = Vec::new();
    for _ in 0..4 {
        burst.push(tokio::spawn(f.work.call_async::<i64>(0.5)));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for call in burst {
        assert_eq!(call.await.unwrap().unwrap(), 0);
    }
    for phase in phases {
        assert_eq!(phase.await.unwrap().unwrap(), 0);
    }
    let at_once = f.most.call0::<usize>().unwrap();
    eprintln!("CPU-bound calls at once, the phases included: {at_once} on {cores} cores");
    assert!(at_once <= cores, "{at_once} at once on {cores} cores");
    f.reset.call0::<()>().unwrap();
}

/// Processes that spin for as long as they live, killed (by PID) and
/// reaped when dropped.
struct Spinners(Vec<std::process::Child>);

impl Spinners {
    fn start(count: usize) -> Self {
        Self(
            (0..count)
                .map(|_| {
                    std::process::Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("sh runs")
                })
                .collect(),
        )
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU-bound long calls that other load keeps from their cores: here each
/// thread lowers its own priority (nice 19) while two spinning processes a
/// core run beside it, so it gets about 1% of a core, though it is ready
/// to run all the time. Judged by their CPU time alone, they looked
/// waiting, and more of them started: 6 at once on 2 cores, 2 of 2 runs
/// (`make matrix` beside `make memcheck` saw 3 at once, in 1 cell of 20).
/// Now a thread ready to run is not waiting, and the time it waited for a
/// core counts as wanted (Linux's `/proc/self/task/<tid>/stat` and
/// `schedstat`). Threads that keep nice 19 (a user without the right to
/// raise it back to 0) only lose out while other load runs.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn cpu_bound_long_calls_kept_from_their_cores_by_other_load_count_as_busy() {
    if std::env::var_os("PIM_MEMCHECK").is_some() {
        // valgrind runs one thread at a time: a thread at nice 19 that holds
        // its lock stalls the whole process, and no thread is ever kept from
        // a core while others run, which is what this tests.
        eprintln!("skipped under make memcheck");
        return;
    }
    let _serial = SERIAL.lock().await;
    let f = functions().await;
    let cores = serve::max_threads() - 1;
    let spinners = Spinners::start(2 * cores);
    let burst: Vec<_> = (0..2 * cores + 2)
        .map(|_| tokio::spawn(f.starved.call_async::<i64>(0.6)))
        .collect();
    let mut results = Vec::new();
    for call in burst {
        results.push(call.await.unwrap());
    }
    drop(spinners);
    for result in results {
        assert_eq!(result.unwrap(), 0);
    }
    let at_once = f.most.call0::<usize>().unwrap();
    eprintln!("CPU-bound long calls kept from their cores, at once: {at_once} on {cores} cores");
    assert!(at_once <= cores, "{at_once} at once on {cores} cores");
    f.reset.call0::<()>().unwrap();
}

/// CPU-bound long calls queued with calls that sleep: a thread whose
/// sleep ends (counted waiting meanwhile, its place taken by another) went
/// on to the next long call set aside, beside those computing already
/// (trial 21: up to 9 at once on 2 cores, 15 of 15 runs).
#[tokio::test(flavor = "multi_thread")]
async fn threads_whose_waits_end_take_no_long_call_beyond_the_cores() {
    let _serial = SERIAL.lock().await;
    let f = functions().await;
    let cores = serve::max_threads() - 1;
    let mut peaks = Vec::new();
    for _ in 0..3 {
        f.reset.call0::<()>().unwrap();
        let mut calls = Vec::new();
        for _ in 0..2 * cores {
            calls.push(tokio::spawn(f.wait.call_async::<i64>(-0.6)));
        }
        for _ in 0..6 * cores {
            calls.push(tokio::spawn(f.work.call_async::<i64>(0.1)));
        }
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), 0);
        }
        peaks.push(f.most.call0::<usize>().unwrap());
    }
    eprintln!(
        "CPU-bound long calls at once beside sleeping ones, by round: {peaks:?} on {cores} cores"
    );
    assert!(
        peaks.iter().all(|&p| p <= cores),
        "{peaks:?} at once on {cores} cores"
    );
    f.reset.call0::<()>().unwrap();
}
