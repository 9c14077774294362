//! Prometheus metrics on their own port (--metrics-addr): requests by RPC
//! and gRPC status, request latency, evaluations running and queued,
//! per-stage durations, embedding-cache hits and misses. The same layer
//! that counts every RPC keeps its status honest: a request that does not
//! decode is the client's INVALID_ARGUMENT (tonic says INTERNAL), one over
//! the size limit is RESOURCE_EXHAUSTED naming the flag that raises it
//! (tonic says OUT_OF_RANGE), and a handler that panics answers INTERNAL for
//! that request alone.

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

/// Percent-decodes a `grpc-message` header value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok();
        match (bytes[i], hex().and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status tonic should have answered for a request that failed before
/// reaching a handler, if it answered another.
fn corrected(headers: &http::HeaderMap) -> Option<tonic::Status> {
    let code = headers.get("grpc-status")?.to_str().ok()?;
    let message = percent_decode(headers.get("grpc-message")?.to_str().ok()?);
    match code.parse::<i32>().map(tonic::Code::from).ok()? {
        tonic::Code::Internal if message.contains("failed to decode") => Some(
            tonic::Status::invalid_argument(format!("the request does not decode: {message}")),
        ),
        tonic::Code::OutOfRange if message.contains("message length too large") => {
            Some(tonic::Status::resource_exhausted(format!(
                "{message} (the server's --max-message-bytes)"
            )))
        }
        _ => None,
    }
}

impl<S, B, RB> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    RB: Default,
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
            use futures::FutureExt;
            let response = std::panic::AssertUnwindSafe(response)
                .catch_unwind()
                .await
                .unwrap_or_else(|payload| {
                    let err = Error::panicked(rpc.clone(), payload.as_ref());
                    tracing::error!(%err, "request handler panicked");
                    Ok(tonic::Status::from(err).into_http())
                });
            let response = response.map(|mut r| {
                if let Some(status) = corrected(r.headers()) {
                    let _ = status.add_header(r.headers_mut());
                }
                r
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_and_size_failures_get_the_codes_of_the_client_s_mistakes() {
        let headers = |code: tonic::Code, message: &str| {
            let mut h = http::HeaderMap::new();
            tonic::Status::new(code, message)
                .add_header(&mut h)
                .unwrap();
            h
        };
        let decode = headers(
            tonic::Code::Internal,
            "failed to decode Protobuf message: invalid string value: data is not UTF-8 encoded",
        );
        let fixed = corrected(&decode).unwrap();
        assert_eq!(fixed.code(), tonic::Code::InvalidArgument);
        assert!(fixed.message().contains("not UTF-8"), "{}", fixed.message());
        let big = headers(
            tonic::Code::OutOfRange,
            "Error, decoded message length too large: found 70000000 bytes, the limit is: 67108864 bytes",
        );
        let fixed = corrected(&big).unwrap();
        assert_eq!(fixed.code(), tonic::Code::ResourceExhausted);
        assert!(fixed.message().contains("--max-message-bytes"));
        assert!(corrected(&headers(tonic::Code::NotFound, "model not found: x")).is_none());
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
    }
}
