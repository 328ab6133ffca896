//! The "Serving over HTTP" section's py-in-mem async service: the same as
//! `http_inmem` (see there), each request's call awaited with
//! `Call::call_async` instead of run on tokio's blocking pool.
//!
//! Built only with the bench's `async-service` feature, which needs
//! py-in-mem's `call_async`: `cargo run --release -p py-in-mem-bench
//! --features async-service`. Without it the bench skips this service and
//! says so in its report.

#[path = "../http/inmem.rs"]
mod inmem;
#[path = "../http/serve.rs"]
mod serve;

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use inmem::{python_error, Model};
use py_in_mem::NdVec;

fn main() -> anyhow::Result<()> {
    serve::run(
        Router::new()
            .route("/predict", post(predict_rows))
            .with_state(inmem::load()?),
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
