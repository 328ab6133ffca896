//! A Python model served over HTTP by an axum service, in this process: each
//! request's rows go to the model's `predict` method with
//! [`Call::call_async`](py_in_mem::Call::call_async), with a deadline, and
//! Python's errors become HTTP statuses by exception class.
//!
//! ```text
//! cargo run --example service                     # listening on 127.0.0.1:3000
//! cargo run --example service -- --port 8080 --deadline-ms 250
//!
//! curl -s 127.0.0.1:3000/predict -H 'content-type: application/json' \
//!     -d '{"rows": [[1, 0, 0, 0], [0, 1, 0, 0]]}'
//! # {"labels":[1,0],"scores":[0.5621765008857981,0.18242552380635635]}
//! curl -si 127.0.0.1:3000/predict -H 'content-type: application/json' \
//!     -d '{"rows": [[1, 2, 3]]}'
//! # 422 {"error":"ValueError","message":"expected rows of 4 features, got an array of shape (1, 3)"}
//! curl -si 127.0.0.1:3000/spin -H 'content-type: application/json' -d '{"seconds": 10}'
//! # 504 {"error":"Timeout","message":"Model.spin ran past its deadline of 1 s (stopped after 1.001 s)"}
//! ```
//!
//! What it shows:
//!
//! - **The model is a Python object** (`python/service_model.py`'s `Model`),
//!   made once and held in Rust as an [`Object`]; its methods are
//!   [`Function`]s, cheap to clone into the handlers' state. The module is
//!   found in the crate's `python/` directory ([`py_in_mem::MODULE_DIR`],
//!   on `sys.path` from start-up): no `PYTHONPATH`.
//! - **Async calls**: the handler awaits the call; Python runs on the crate's
//!   serving threads, never on tokio's, and the request's rows go to numpy
//!   as an owned 2-D array ([`NdVec`]) without another copy.
//! - **Deadlines**: every call carries `--deadline-ms` (default 1000). Python
//!   code still running at the deadline is stopped by the crate's watchdog,
//!   and the request answers 504; the service goes on serving.
//! - **A client that disconnects stops its call**: axum drops the handler's
//!   future, and the call, made with
//!   [`stop_on_drop`](py_in_mem::Call::stop_on_drop), is stopped by the
//!   same watchdog instead of running on to its deadline in a serving
//!   thread.
//! - **Errors by exception class**: `ValueError` and `TypeError` (the model
//!   refusing its input) are the request's fault, 422 with Python's message;
//!   [`Error::Timeout`] is 504; anything else is 500. A body that is not
//!   JSON is axum's 400 before Python is involved.
//!
//! Endpoints (JSON in and out):
//!
//! - `POST /predict` `{"rows": [[f64; 4], ...]}` → `{"labels": [i64, ...],
//!   "scores": [f64, ...]}`.
//! - `POST /spin` `{"seconds": f64}` → `{"rounds": u64}`: a pure-Python
//!   loop for that long, for seeing the deadline work.
//!
//! Options: `--port N` (or the `PORT` environment variable; 3000 by
//! default, 0 for any free port) and `--deadline-ms N`. It listens on
//! 127.0.0.1 only, and prints `listening on 127.0.0.1:PORT` on stdout once
//! it does (tests/service.rs reads the port from that line). Ctrl-C or
//! SIGTERM stops it after the requests in flight.

use std::io::Write;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use py_in_mem::{Error, Function, NdVec, Object};
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{signal, SignalKind};

/// What the handlers share: the model's methods and the deadline of a call.
#[derive(Clone)]
struct Service {
    /// `Model.predict`, bound to the model (a bound method holds its
    /// object, so the model lives as long as this does).
    predict: Function,
    /// `Model.spin`.
    spin: Function,
    /// How long each call may take, from when the handler makes it.
    deadline: Duration,
}

/// `POST /predict`'s body.
#[derive(Deserialize)]
struct Rows {
    rows: Vec<Vec<f64>>,
}

/// `POST /predict`'s answer.
#[derive(Serialize)]
struct Prediction {
    labels: Vec<i64>,
    scores: Vec<f64>,
}

/// `POST /spin`'s body.
#[derive(Deserialize)]
struct Spin {
    seconds: f64,
}

/// `POST /spin`'s answer.
#[derive(Serialize)]
struct Spun {
    rounds: u64,
}

/// Every error's body: the exception class (or `Timeout`) and the message.
#[derive(Serialize)]
struct Failure {
    error: String,
    message: String,
}

async fn predict(State(service): State<Service>, Json(body): Json<Rows>) -> Response {
    // The rows as one C-order buffer of shape (n, d); the model checks d.
    let (n, d) = (body.rows.len(), body.rows.first().map_or(0, Vec::len));
    if body.rows.iter().any(|row| row.len() != d) {
        return failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ValueError",
            "rows of different lengths",
        );
    }
    let rows = match NdVec::new(body.rows.concat(), vec![n, d]) {
        Ok(rows) => rows,
        Err(error) => return python_error(error),
    };
    let call = service
        .predict
        .arg_owned(rows)
        .timeout(service.deadline)
        .stop_on_drop();
    match call.call_async::<(Vec<i64>, Vec<f64>)>().await {
        Ok((labels, scores)) => Json(Prediction { labels, scores }).into_response(),
        Err(error) => python_error(error),
    }
}

async fn spin(State(service): State<Service>, Json(body): Json<Spin>) -> Response {
    let call = service
        .spin
        .arg(body.seconds)
        .timeout(service.deadline)
        .stop_on_drop();
    match call.call_async::<u64>().await {
        Ok(rounds) => Json(Spun { rounds }).into_response(),
        Err(error) => python_error(error),
    }
}

/// The status for a failed call, by what failed: the model refusing its
/// input (`ValueError`, `TypeError`, subclasses included) is 422, the
/// deadline 504, anything else 500.
fn python_error(error: Error) -> Response {
    if let Error::Timeout { .. } = error {
        return failure(StatusCode::GATEWAY_TIMEOUT, "Timeout", &error.to_string());
    }
    match error.exception() {
        Some(e) if error.is_instance_of("ValueError") || error.is_instance_of("TypeError") => {
            failure(StatusCode::UNPROCESSABLE_ENTITY, &e.type_name, &e.message)
        }
        Some(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, &e.type_name, &e.message),
        None => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            &error.to_string(),
        ),
    }
}

fn failure(status: StatusCode, error: &str, message: &str) -> Response {
    let body = Failure {
        error: error.to_owned(),
        message: message.to_owned(),
    };
    (status, Json(body)).into_response()
}

/// `--port N` (else `PORT`, else 3000) and `--deadline-ms N` (else 1000).
fn options() -> Result<(u16, Duration), String> {
    let mut port = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port}: not a port"))?,
        Err(_) => 3000,
    };
    let mut deadline_ms = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--port" => {
                port = value
                    .parse()
                    .map_err(|_| format!("--port {value}: not a port"))?
            }
            "--deadline-ms" => {
                deadline_ms = value
                    .parse()
                    .map_err(|_| format!("--deadline-ms {value}: not a number"))?;
            }
            _ => return Err(format!("unknown option {arg} (--port N, --deadline-ms N)")),
        }
    }
    Ok((port, Duration::from_millis(deadline_ms)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (port, deadline) = options()?;
    // Python starts here, once; python/service_model.py is on sys.path.
    let model: Object = Function::load("service_model", "Model")?.call0()?;
    let service = Service {
        predict: model.method("predict")?,
        spin: model.method("spin")?,
        deadline,
    };
    let app = Router::new()
        .route("/predict", post(predict))
        .route("/spin", post(spin))
        .with_state(service);

    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", listener.local_addr()?)?;
    stdout.flush()?;
    drop(stdout);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// A future that resolves on Ctrl-C (SIGINT) or SIGTERM: the service then
/// stops accepting connections, finishes the requests in flight and exits.
/// The handlers are installed now, before the service says it listens, so a
/// signal sent as soon as it does is not missed. (Python installs no signal
/// handler of its own in a process py-in-mem starts it in.)
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
