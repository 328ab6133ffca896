//! What the Rust HTTP services (`src/bin/http_*.rs`) share: the request and
//! answer JSON, the 422 answer, and serving an axum app on 127.0.0.1.
//!
//! Each service binds a port the system picks, prints `port=N` on stdout
//! once it listens, and exits when its standard input closes (the bench
//! ended, however it ended), so it never outlives the bench. Included by
//! each service with `#[path]`, not part of the bench binary.

use std::io::{Read, Write};

use anyhow::Context;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// `{"rows": [[f64; 16], ...]}`.
#[derive(Deserialize)]
pub struct Rows {
    pub rows: Vec<Vec<f64>>,
}

/// `{"labels": [...], "scores": [...]}`.
#[derive(Serialize)]
pub struct Answer {
    pub labels: Vec<i64>,
    pub scores: Vec<f64>,
}

/// `rows` as one C-order buffer and its shape `[n, k]`, k the first row's
/// length (0 without rows); rows of different lengths are refused with the
/// FastAPI service's message. Any other shape goes to the model, which
/// refuses it with its ValueError.
pub fn flatten(rows: Vec<Vec<f64>>) -> Result<(Vec<f64>, Vec<usize>), String> {
    let k = rows.first().map_or(0, Vec::len);
    if rows.iter().any(|row| row.len() != k) {
        return Err("rows of different lengths".to_owned());
    }
    let n = rows.len();
    let mut values = Vec::with_capacity(n * k);
    for row in rows {
        values.extend_from_slice(&row);
    }
    Ok((values, vec![n, k]))
}

/// 422 with `{"detail": message}`, as FastAPI answers a ValueError here.
pub fn unprocessable(message: String) -> Response {
    detail(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// 500 with `{"detail": message}`: a failure that is not the request's.
pub fn internal(message: String) -> Response {
    detail(StatusCode::INTERNAL_SERVER_ERROR, message)
}

fn detail(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "detail": message }))).into_response()
}

/// The model's answer as JSON.
pub fn answer(labels: Vec<i64>, scores: Vec<f64>) -> Response {
    Json(Answer { labels, scores }).into_response()
}

/// Serves `app` on 127.0.0.1 (a port the system picks) on a tokio
/// multi-thread runtime (one worker per core), until stdin closes.
pub fn run(app: Router) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "port={port}")?;
        stdout.flush()?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}
