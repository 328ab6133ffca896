//! What the two py-in-mem services (`http_inmem`, `http_inmem_async`)
//! share: the model, `http_model.Model()` (bench/python/http_model.py), made
//! once and held as a `py_in_mem::Object`, its method `predict` kept as a
//! `Function`; and Python's errors as statuses.

use std::path::Path;
use std::sync::Arc;

use axum::response::Response;
use py_in_mem::{Function, Object};

use crate::serve;

const BENCH_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The app's state.
pub struct Model {
    /// Held for as long as the service runs (`predict` is its method).
    _model: Object,
    pub predict: Function,
}

/// Makes the model (bench/python on `sys.path` first).
pub fn load() -> anyhow::Result<Arc<Model>> {
    py_in_mem::add_sys_path(&Path::new(BENCH_DIR).join("python"))?;
    let model = Function::load("http_model", "Model")?.call0::<Object>()?;
    let predict = model.method("predict")?;
    Ok(Arc::new(Model {
        _model: model,
        predict,
    }))
}

/// A ValueError (the model's refusal of a shape, or a subclass) is the
/// request's fault: 422 with its message; anything else is a 500.
pub fn python_error(error: py_in_mem::Error) -> Response {
    match error.exception() {
        Some(e) if error.is_instance_of("ValueError") => serve::unprocessable(e.message.clone()),
        _ => serve::internal(error.to_string()),
    }
}
