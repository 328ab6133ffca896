//! The "Serving over HTTP" section's PyO3 service: axum, and each request's
//! call made with PyO3 0.30 + rust-numpy on tokio's blocking pool:
//! `Python::attach`, the rows moved into a numpy array
//! (`PyArray2::from_owned_array`, no copy), `call_method1("predict",
//! (array,))` on the model (`Py<PyAny>`, made once), the result extracted as
//! two `PyReadonlyArray1`s and copied out. `POST /predict` (see
//! `src/http/serve.rs`); started by the bench, which reads the port it
//! prints.
//!
//! Python is started by py-in-mem (`add_sys_path`), as in the bench binary,
//! so that this service runs the same interpreter, from the same venv, as
//! the py-in-mem ones; every call is PyO3's.

#[path = "../http/serve.rs"]
mod serve;

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use numpy::ndarray::Array2;
use numpy::{PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

const BENCH_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn main() -> anyhow::Result<()> {
    py_in_mem::add_sys_path(&Path::new(BENCH_DIR).join("python"))?;
    let model: Py<PyAny> = Python::attach(|py| -> PyResult<Py<PyAny>> {
        Ok(py.import("http_model")?.getattr("Model")?.call0()?.unbind())
    })?;
    serve::run(
        Router::new()
            .route("/predict", post(predict_rows))
            .with_state(Arc::new(model)),
    )
}

/// The model's answer, or the message of its ValueError.
type Predicted = Result<(Vec<i64>, Vec<f64>), String>;

async fn predict_rows(
    State(model): State<Arc<Py<PyAny>>>,
    Json(body): Json<serve::Rows>,
) -> Response {
    let (values, shape) = match serve::flatten(body.rows) {
        Ok(flat) => flat,
        Err(message) => return serve::unprocessable(message),
    };
    let called = tokio::task::spawn_blocking(move || -> anyhow::Result<Predicted> {
        let rows = Array2::from_shape_vec((shape[0], shape[1]), values)?;
        Ok(Python::attach(|py| -> PyResult<Predicted> {
            let array = PyArray2::from_owned_array(py, rows);
            match model.call_method1(py, "predict", (array,)) {
                Ok(result) => {
                    let (labels, scores): (PyReadonlyArray1<'_, i64>, PyReadonlyArray1<'_, f64>) =
                        result.bind(py).extract()?;
                    Ok(Ok((labels.to_vec()?, scores.to_vec()?)))
                }
                Err(e) if e.is_instance_of::<PyValueError>(py) => Ok(Err(e.value(py).to_string())),
                Err(e) => Err(e),
            }
        })?)
    })
    .await;
    match called {
        Ok(Ok(Ok((labels, scores)))) => serve::answer(labels, scores),
        Ok(Ok(Err(message))) => serve::unprocessable(message),
        Ok(Err(error)) => serve::internal(error.to_string()),
        Err(join) => serve::internal(join.to_string()),
    }
}
