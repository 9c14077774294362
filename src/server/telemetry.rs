//! Prometheus metrics on their own port (--metrics-addr): requests by RPC
//! and gRPC status, request latency, evaluations running and queued,
//! per-stage durations, embedding-cache hits and misses.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use metrics::{counter, histogram};
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::error::{Error, Result};

static INSTALLED: OnceLock<SocketAddr> = OnceLock::new();

/// Starts the exporter on `addr` (once per process).
pub fn install(addr: SocketAddr) -> Result<()> {
    if let Some(existing) = INSTALLED.get() {
        return if *existing == addr {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "metrics are already served on {existing} in this process"
            )))
        };
    }
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(&[
            0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
        ])
        .map_err(|e| Error::Config(format!("metrics buckets: {e}")))?
        .install()
        .map_err(|e| Error::Config(format!("cannot serve metrics on {addr}: {e}")))?;
    let _ = INSTALLED.set(addr);
    tracing::info!(%addr, "prometheus metrics served at /metrics");
    Ok(())
}

/// The gRPC status name of a numeric code.
fn code_name(code: &str) -> &'static str {
    match code.parse::<i32>().map(tonic::Code::from) {
        Ok(tonic::Code::Ok) => "OK",
        Ok(tonic::Code::Cancelled) => "CANCELLED",
        Ok(tonic::Code::InvalidArgument) => "INVALID_ARGUMENT",
        Ok(tonic::Code::DeadlineExceeded) => "DEADLINE_EXCEEDED",
        Ok(tonic::Code::NotFound) => "NOT_FOUND",
        Ok(tonic::Code::AlreadyExists) => "ALREADY_EXISTS",
        Ok(tonic::Code::ResourceExhausted) => "RESOURCE_EXHAUSTED",
        Ok(tonic::Code::Unimplemented) => "UNIMPLEMENTED",
        Ok(tonic::Code::Unavailable) => "UNAVAILABLE",
        Ok(tonic::Code::Unauthenticated) => "UNAUTHENTICATED",
        Ok(tonic::Code::Internal) => "INTERNAL",
        _ => "OTHER",
    }
}

/// Tower layer that counts and times every RPC.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner }
    }
}

/// The service of [`RpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<std::result::Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc = request.uri().path().to_string();
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            // Errors answered at once carry grpc-status in the headers; a
            // stream's final status comes later in its trailers.
            let status = match &response {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map_or("OK", code_name),
                Err(_) => "TRANSPORT_ERROR",
            };
            counter!("embedeval_requests_total", "rpc" => rpc.clone(), "status" => status)
                .increment(1);
            histogram!("embedeval_request_seconds", "rpc" => rpc).record(started.elapsed());
            response
        })
    }
}
