//! embedeval: a gRPC service that evaluates contrastive image encoders.
//!
//! It loads encoders exported to ONNX, runs them with ONNX Runtime and
//! measures the embedding space the way Wang & Liu ("Understanding the
//! Behaviour of Contrastive Loss", CVPR 2021) analyse it. Data flows one way:
//! request → [`registry`] → [`encoder`] → metrics / evaluation → store.
#![warn(missing_docs)]

pub mod blas;
pub mod cancel;
pub mod cli;
pub mod config;
pub mod data;
pub mod database;
pub mod domain;
pub mod encoder;
pub mod error;
pub mod eval;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod index;
pub mod jobs;
pub mod memory;
pub mod metrics;
pub mod object_stores;
pub mod registry;
pub mod report;
pub mod rng;
pub mod runs;
pub mod server;
pub mod suggest;
#[cfg(test)]
mod testutil;
pub mod views;
pub mod vocab;
pub mod volume;

pub use config::ServeConfig;
pub use error::{Error, Result};
pub use server::{run, serve, serve_with_dashboard};

/// Names the TLS crypto provider of the process (ring) before any TLS is
/// set up: two are linked (ring for gRPC, aws-lc for the object stores'
/// HTTP client) and rustls will not choose. Idempotent.
pub fn use_ring_for_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub mod proto {
    //! Code generated from `proto/embedeval/v1`.
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("embedeval.v1");

    /// Encoded descriptor set of the embedeval protos, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("embedeval_descriptor");
}
