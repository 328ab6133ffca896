//! The "Serving over HTTP" section's py-in-mem async service: the same as
//! `http_inmem` (see there), each request's call awaited with
//! `Call::call_async` instead of run on tokio's blocking pool.
//!
//! Built only with the bench's `async-service` feature, which needs
//! py-in-mem's `call_async`: `cargo run --release -p py-in-mem-bench
//! --features async-service`. Without it the bench skips this service and
//! says so in its report.

#[path = "../http/serve.rs"]
mod serve;

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use py_in_mem::{Function, NdVec, Object};

const BENCH_DIR: &str = env!("CARGO_MANIFEST_DIR");

struct Model {
    /// Held for as long as the service runs (`predict` is its method).
    _model: Object,
    predict: Function,
}

fn main() -> anyhow::Result<()> {
    py_in_mem::add_sys_path(&Path::new(BENCH_DIR).join("python"))?;
    let model = Function::load("http_model", "Model")?.call0::<Object>()?;
    let predict = model.method("predict")?;
    let state = Arc::new(Model {
        _model: model,
        predict,
    });
    serve::run(
        Router::new()
            .route("/predict", post(predict_rows))
            .with_state(state),
    )
}

async fn predict_rows(State(model): State<Arc<Model>>, Json(body): Json<serve::Rows>) -> Response {
    let (values, shape) = match serve::flatten(body.rows) {
        Ok(flat) => flat,
        Err(message) => return serve::unprocessable(message),
    };
    let rows = match NdVec::new(values, shape) {
        Ok(rows) => rows,
        Err(error) => return serve::internal(error.to_string()),
    };
    match model
        .predict
        .arg_owned(rows)
        .call_async::<(Vec<i64>, Vec<f64>)>()
        .await
    {
        Ok((labels, scores)) => serve::answer(labels, scores),
        Err(error) => python_error(error),
    }
}

/// A ValueError (the model's refusal of a shape) is the request's fault:
/// 422 with its message; anything else is a 500.
fn python_error(error: py_in_mem::Error) -> Response {
    match error.exception() {
        Some(e) if e.type_name == "ValueError" => serve::unprocessable(e.message.clone()),
        _ => serve::internal(error.to_string()),
    }
}
