//! The load generator: `concurrency` keep-alive HTTP/1.1 connections (hyper
//! 1), each sending its next request as soon as its previous answer is in,
//! until N requests are answered; every request's latency recorded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;

/// One point: N requests at one concurrency.
pub struct Point {
    pub requests: usize,
    pub elapsed: Duration,
    /// Every request's latency, sorted.
    pub latencies: Vec<Duration>,
}

/// A connection to the service on 127.0.0.1:`port`.
pub async fn connect(port: u16) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// `POST /predict` with `body`: the status and the answer's body.
pub async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    port: u16,
    body: Bytes,
) -> anyhow::Result<(u16, Bytes)> {
    sender.ready().await?;
    let request = Request::post("/predict")
        .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// `requests` requests over `concurrency` connections, cycling through
/// `bodies`; every answer must be a 200 (its JSON was checked before).
pub async fn run(
    port: u16,
    bodies: Arc<Vec<Bytes>>,
    concurrency: usize,
    requests: usize,
) -> anyhow::Result<Point> {
    let mut senders = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        senders.push(
            connect(port)
                .await
                .with_context(|| format!("connecting to 127.0.0.1:{port}"))?,
        );
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for mut sender in senders {
        let next = Arc::clone(&next);
        let bodies = Arc::clone(&bodies);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(requests / concurrency + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let body = bodies[i % bodies.len()].clone();
                let sent = Instant::now();
                let (status, answer) = post(&mut sender, port, body).await?;
                latencies.push(sent.elapsed());
                if status != 200 {
                    bail!(
                        "request {i} answered {status}: {:?}",
                        String::from_utf8_lossy(&answer)
                    );
                }
            }
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Point {
        requests,
        elapsed,
        latencies,
    })
}
