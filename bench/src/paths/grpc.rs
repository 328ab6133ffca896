//! gRPC: a Rust `tonic` client calling the Python `grpcio` server (see
//! `crate::server`) over one channel on 127.0.0.1.

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tonic::transport::Channel;

use super::Path;

pub mod proto {
    tonic::include_proto!("pyinmem.bench");
}

use proto::outliers_client::OutliersClient;
use proto::{Indices, Values};

/// The largest message either side accepts: 1,000,000 doubles are 8 MB.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Which of the service's methods to call.
#[derive(Clone, Copy)]
pub enum Method {
    Detect,
    Const,
}

pub struct Grpc<'a> {
    pub rt: &'a Runtime,
    /// A clone of the one client: clones share its channel.
    pub client: OutliersClient<Channel>,
    pub data: &'a [f64],
    pub method: Method,
}

/// Connects one client to the server on 127.0.0.1:`port`.
pub fn connect(rt: &Runtime, port: u16) -> anyhow::Result<OutliersClient<Channel>> {
    let channel =
        rt.block_on(Channel::from_shared(format!("http://127.0.0.1:{port}"))?.connect())?;
    Ok(OutliersClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

impl Grpc<'_> {
    async fn call_async(&mut self) -> anyhow::Result<Vec<usize>> {
        // The request owns its values: the copy is part of the gRPC path.
        let request = Values {
            values: self.data.to_vec(),
        };
        let response: Indices = match self.method {
            Method::Detect => self.client.detect(request).await?,
            Method::Const => self.client.r#const(request).await?,
        }
        .into_inner();
        response
            .indices
            .into_iter()
            .map(|i| usize::try_from(i).map_err(|_| anyhow::anyhow!("negative index {i}")))
            .collect()
    }
}

impl Path for Grpc<'_> {
    fn call(&mut self) -> anyhow::Result<Vec<usize>> {
        let rt = self.rt;
        rt.block_on(self.call_async())
    }

    fn time(&mut self, calls: u64) -> anyhow::Result<Duration> {
        let rt = self.rt;
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(self.call_async().await?);
            }
            Ok(start.elapsed())
        })
    }
}
