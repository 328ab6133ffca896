//! The "Serving over HTTP" section's py-in-mem service with spawn_blocking:
//! axum, and each request's call to the model made synchronously on tokio's
//! blocking pool. `POST /predict` (see `src/http/serve.rs`); started by the
//! bench, which reads the port it prints.
//!
//! The model is `http_model.Model()` (bench/python/http_model.py), made once
//! as a `py_in_mem::Object`; its method `predict` is a `Function` kept in
//! the app's state, called with the rows given to Python without a copy
//! (`arg_owned`) and read as `(Vec<i64>, Vec<f64>)`.

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
    let called = tokio::task::spawn_blocking(move || {
        model
            .predict
            .arg_owned(NdVec::new(values, shape)?)
            .call::<(Vec<i64>, Vec<f64>)>()
    })
    .await;
    match called {
        Ok(Ok((labels, scores))) => serve::answer(labels, scores),
        Ok(Err(error)) => python_error(error),
        Err(join) => serve::internal(join.to_string()),
    }
}
