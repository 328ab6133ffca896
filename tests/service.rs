//! examples/service.rs as a client sees it: the example's binary, started
//! on 127.0.0.1 with `--port 0`, asked over real HTTP (ureq) for
//! predictions, checked against the same logistic regression computed here;
//! Python's errors as statuses by exception class (a ValueError is 422 with
//! Python's message, a deadline passed is 504) and axum's 400 for a body
//! that is not JSON; the service answering correctly after a stopped call
//! and to 16 clients at once, and exiting 0 on SIGTERM.
//!
//! The binary is `target/<profile>/examples/service`, beside this test's
//! `deps/`; the tests bring it up to date first (`service_binary`). Under
//! `make memcheck` the service runs under valgrind too, and the time
//! bounds scale with `common::slowdown()`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use common::rng::Rng;
use serde_json::{json, Value};

/// python/service_model.py's weights and bias.
const WEIGHTS: [f64; 4] = [0.5, -1.25, 2.0, 0.75];
const BIAS: f64 = -0.25;

/// The model's scores and labels for `rows`, computed in Rust.
fn expected(rows: &[Vec<f64>]) -> (Vec<i64>, Vec<f64>) {
    let scores: Vec<f64> = rows
        .iter()
        .map(|row| {
            let z: f64 = row.iter().zip(WEIGHTS).map(|(x, w)| x * w).sum::<f64>() + BIAS;
            1.0 / (1.0 + (-z).exp())
        })
        .collect();
    let labels = scores.iter().map(|&s| i64::from(s >= 0.5)).collect();
    (labels, scores)
}

/// `n` rows of 4 values uniform in [-2, 2) from `seed`.
fn rows(n: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| (0..4).map(|_| rng.unit() * 4.0 - 2.0).collect())
        .collect()
}

/// The example's binary, `target/<profile>/examples/service`, found from
/// this test's own `target/<profile>/deps/service-<hash>`, and brought up to
/// date first (once per run of this binary). A plain `cargo test` builds
/// the examples before it runs the integration tests, but
/// `cargo test --test service` does not, and would otherwise test a binary
/// left from an older build of the example, or none.
fn service_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test binary is in target/<profile>/deps/");
        if std::env::var_os("PIM_MEMCHECK").is_none() {
            build_example(profile_dir);
        } // else make memcheck's `cargo test --no-run` built it, and cargo
          // must not run under valgrind (--trace-children).
        let binary = profile_dir
            .join("examples")
            .join(format!("service{}", std::env::consts::EXE_SUFFIX));
        assert!(
            binary.is_file(),
            "the example binary {} does not exist: build it with `cargo build --example service` \
             (a plain `cargo test` builds the examples before the integration tests)",
            binary.display()
        );
        binary
    })
}

/// `cargo build --example service` with this test's profile and features,
/// so that it is the build the running `cargo test` would make (nothing to
/// do after a plain `cargo test` built it). The running `cargo test` no
/// longer holds the target directory while tests run.
fn build_example(profile_dir: &Path) {
    let profile = profile_dir.file_name().unwrap().to_str().unwrap();
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(["build", "--quiet", "--example", "service", "--profile"])
        .arg(if profile == "debug" { "dev" } else { profile })
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null());
    let features: Vec<&str> = [
        ("ndarray", cfg!(feature = "ndarray")),
        ("serde", cfg!(feature = "serde")),
        ("bytes", cfg!(feature = "bytes")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let output = command.output().expect("run cargo build --example service");
    assert!(
        output.status.success(),
        "cargo build --example service failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The running service, killed and reaped when dropped (a failed assert
/// included).
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    agent: ureq::Agent,
}

impl Server {
    /// SIGTERM, which the service answers by finishing what is in flight
    /// and exiting: its exit status, or `None` if it is still running after
    /// a while, when it is SIGKILLed instead. Both by the child's PID; the
    /// child is reaped either way.
    fn terminate(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the PID of our own child, not yet reaped (so
        // the PID is still its); no memory involved.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let limit = Instant::now() + common::hang_limit(10);
        while Instant::now() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Server {
    /// Never leaves the service running, whatever failed (under
    /// `make memcheck`, the SIGTERM lets valgrind write its summary).
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Starts the service with calls given `deadline`, on a free port, and
/// waits for its `listening on 127.0.0.1:PORT` line.
fn start(deadline: Duration) -> Server {
    let mut child = Command::new(service_binary())
        .args(["--port", "0", "--deadline-ms"])
        .arg(deadline.as_millis().to_string())
        .env_remove("PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the service example");
    let stdout = child.stdout.take().unwrap();
    // The first line, read on a thread so that a service that hangs before
    // listening fails the test instead of hanging it; the thread then
    // drains stdout until the service exits.
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = line_tx.send(lines.next());
        lines.for_each(drop);
    });
    let mut server = Server {
        child,
        base: String::new(),
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None) // 127.0.0.1 is never proxied
            .timeout_global(Some(common::hang_limit(60)))
            .build()
            .into(),
    };
    let line = match line_rx.recv_timeout(common::hang_limit(60)) {
        Ok(Some(Ok(line))) => line,
        Ok(other) => panic!(
            "the service exited or failed before listening ({other:?}; exit: {:?}); its stderr is above",
            server.child.try_wait()
        ),
        Err(_) => panic!("the service did not print its listening line in time"),
    };
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the service's first line is {line:?}"));
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    server.base = format!("http://{addr}");
    server
}

impl Server {
    /// POSTs `body` (sent as is, JSON or not) to `path`: the status, and
    /// the body as text.
    fn post(&self, path: &str, body: &str) -> (u16, String) {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (status, text)
    }

    /// POSTs `body` to `path` and reads the answer as JSON: the status and
    /// the JSON.
    fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = self.post(path, &body.to_string());
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} answered {status} with {text:?}, not JSON: {e}"));
        (status, json)
    }

    /// POST /predict with `rows`, which must answer 200: labels and scores.
    fn predict(&self, rows: &[Vec<f64>]) -> (Vec<i64>, Vec<f64>) {
        let (status, answer) = self.post_json("/predict", &json!({ "rows": rows }));
        assert_eq!(status, 200, "{answer}");
        serde_json::from_value::<(Vec<i64>, Vec<f64>)>(json!([answer["labels"], answer["scores"]]))
            .unwrap_or_else(|e| panic!("{answer}: {e}"))
    }
}

/// `actual` is `expected` computed in Rust, the labels exactly and the
/// scores to within rounding (numpy's `exp` and dot product may round
/// differently from Rust's in the last bits).
fn assert_matches(rows: &[Vec<f64>], (labels, scores): (Vec<i64>, Vec<f64>)) {
    let (want_labels, want_scores) = expected(rows);
    assert_eq!(labels, want_labels);
    assert_eq!(scores.len(), want_scores.len());
    for (i, (got, want)) in scores.iter().zip(&want_scores).enumerate() {
        assert!((got - want).abs() <= 1e-12, "row {i}: {got} != {want}");
    }
}

/// Deadlines for the services that must not time out: far beyond any call.
const GENEROUS: Duration = Duration::from_secs(30);

#[test]
fn predictions_are_the_models_computed_here() {
    let server = start(GENEROUS);
    // Two rows worked out by hand: sigmoid(0.5 - 0.25), sigmoid(-1.25 - 0.25).
    let unit = vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 1.0, 0.0, 0.0]];
    let (labels, scores) = server.predict(&unit);
    assert_eq!(labels, [1, 0]);
    assert!(
        (scores[0] - 0.562_176_500_885_798_1).abs() <= 1e-15,
        "{}",
        scores[0]
    );
    assert!(
        (scores[1] - 0.182_425_523_806_356_35).abs() <= 1e-15,
        "{}",
        scores[1]
    );

    for (n, seed) in [(1, 1), (7, 2), (500, 3)] {
        let rows = rows(n, seed);
        assert_matches(&rows, server.predict(&rows));
    }
    // Both labels occur in the 500 rows, so the labels are really checked.
    let (labels, _) = expected(&rows(500, 3));
    assert!(labels.contains(&0) && labels.contains(&1));
}

#[test]
fn a_row_of_the_wrong_width_is_422_with_pythons_message() {
    let server = start(GENEROUS);
    let (status, answer) = server.post_json("/predict", &json!({ "rows": [[1.0, 2.0, 3.0]] }));
    assert_eq!(status, 422);
    assert_eq!(
        answer,
        json!({
            "error": "ValueError",
            "message": "expected rows of 4 features, got an array of shape (1, 3)",
        })
    );
    // Python's refusal of the spin's argument, by the same class.
    let (status, answer) = server.post_json("/spin", &json!({ "seconds": -1.0 }));
    assert_eq!(status, 422);
    assert_eq!(
        answer,
        json!({ "error": "ValueError", "message": "seconds must be a finite number >= 0, got -1.0" })
    );
    // Rows of different lengths are refused before Python.
    let (status, answer) = server.post_json(
        "/predict",
        &json!({ "rows": [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0]] }),
    );
    assert_eq!(status, 422);
    assert_eq!(
        answer,
        json!({ "error": "ValueError", "message": "rows of different lengths" })
    );
    // The service is fine afterwards.
    let rows = rows(3, 4);
    assert_matches(&rows, server.predict(&rows));
}

#[test]
fn a_body_that_is_not_json_is_axums_400() {
    let server = start(GENEROUS);
    let (status, text) = server.post("/predict", r#"{"rows": [[1, 2"#);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.starts_with("Failed to parse the request body as JSON"),
        "{text}"
    );
    // JSON of the wrong shape is axum's 422, before Python too.
    let (status, text) = server.post("/predict", r#"{"rows": "none"}"#);
    assert_eq!(status, 422, "{text}");
    assert!(
        text.starts_with("Failed to deserialize the JSON body"),
        "{text}"
    );
}

#[test]
fn a_call_past_its_deadline_is_504_and_the_service_goes_on() {
    // Under make memcheck, valgrind runs the service tens of times slower.
    let slow = common::slowdown();
    let deadline = Duration::from_millis(200) * slow;
    let server = start(deadline);
    let rows = rows(20, 5);
    assert_matches(&rows, server.predict(&rows)); // warm: within the deadline

    // A pure-Python loop of 60 s, stopped at the deadline.
    let started = Instant::now();
    let (status, answer) = server.post_json("/spin", &json!({ "seconds": 60.0 }));
    let took = started.elapsed();
    assert_eq!(status, 504, "{answer}");
    assert_eq!(answer["error"], "Timeout");
    let message = answer["message"].as_str().unwrap();
    // 200 ms, or 10 s under make memcheck (a second and up is shown in s).
    let limit = if deadline < Duration::from_secs(1) {
        format!(
            "Model.spin ran past its deadline of {} ms",
            deadline.as_millis()
        )
    } else {
        format!(
            "Model.spin ran past its deadline of {} s",
            deadline.as_secs_f64()
        )
    };
    assert!(message.starts_with(&limit), "{message}");
    assert!(took >= deadline, "{took:?}");
    assert!(
        took < Duration::from_secs(5) * slow,
        "the 504 came after {took:?}"
    );

    // A short spin finishes within it, and predictions are still right.
    let (status, answer) = server.post_json("/spin", &json!({ "seconds": 0.001 }));
    assert_eq!(status, 200, "{answer}");
    assert!(answer["rounds"].as_u64().unwrap() >= 1, "{answer}");
    assert_matches(&rows, server.predict(&rows));
}

/// The CPU time the service has used so far (`/proc/PID/stat`: user and
/// system, in clock ticks).
fn cpu_ticks(server: &Server) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.child.id())).unwrap();
    // The fields after the command's name, which ends at the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 here.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_client_that_disconnects_stops_its_call() {
    use std::io::{Read, Write};
    let slow = common::slowdown();
    // A deadline that never comes in this test: only the drop stops it.
    let server = start(Duration::from_secs(3600));
    let rows = rows(3, 7);
    assert_matches(&rows, server.predict(&rows));
    // A pure-Python loop of an hour, its client gone after 300 ms.
    let addr = server.base.strip_prefix("http://").unwrap();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    let body = json!({ "seconds": 3600.0 }).to_string();
    write!(
        client,
        "POST /spin HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let ticks = cpu_ticks(&server);
    std::thread::sleep(Duration::from_millis(300) * slow);
    assert!(cpu_ticks(&server) > ticks, "the spin is not running");
    client.set_nonblocking(true).unwrap();
    let mut answer = [0u8; 1];
    assert!(
        client.read(&mut answer).is_err(),
        "the service answered already"
    );
    drop(client);
    // Stopped: its CPU time stays put over half a second, soon.
    // SAFETY: sysconf reads a constant of the system; no memory involved.
    let ticks_per_s = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap();
    let limit = Instant::now() + Duration::from_secs(10) * slow;
    loop {
        let before = cpu_ticks(&server);
        std::thread::sleep(Duration::from_millis(500));
        let used = cpu_ticks(&server) - before;
        if used * 10 < ticks_per_s {
            break; // under a tenth of a core
        }
        assert!(
            Instant::now() < limit,
            "the spin still runs after its client left ({used} ticks in 0.5 s)"
        );
    }
    // The service goes on.
    assert_matches(&rows, server.predict(&rows));
}

#[test]
fn sixteen_clients_at_once_each_get_their_own_answer() {
    let server = start(GENEROUS);
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..16u64)
            .map(|client| {
                let server = &server;
                scope.spawn(move || {
                    for round in 0..10 {
                        let rows = rows(
                            1 + (client as usize * 7 + round) % 50,
                            client * 100 + round as u64,
                        );
                        assert_matches(&rows, server.predict(&rows));
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    });
}

#[test]
fn sigterm_stops_the_service_and_it_exits_0() {
    let mut server = start(GENEROUS);
    let rows = rows(2, 6);
    assert_matches(&rows, server.predict(&rows));
    let status = server
        .terminate()
        .expect("the service did not exit on SIGTERM");
    assert!(status.success(), "{status:?}");
}
