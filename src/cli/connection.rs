//! The client's connection: TLS, the bearer token on every call.

use anyhow::Context;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::args::Connection;
use crate::proto::dataset_service_client::DatasetServiceClient;
use crate::proto::embedding_service_client::EmbeddingServiceClient;
use crate::proto::evaluation_service_client::EvaluationServiceClient;
use crate::proto::model_service_client::ModelServiceClient;

/// Adds the bearer token, when there is one, to every call.
#[derive(Clone)]
pub(crate) struct Token(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// A channel that carries the token.
pub(crate) type Authed = InterceptedService<Channel, Token>;

/// Largest message the client accepts: the server decides what it sends.
const MAX_RECEIVE: usize = 1 << 30;

impl Connection {
    /// The output format asked for (`--json` is `--format json`).
    pub(crate) fn output(&self) -> super::output::Format {
        if self.json {
            super::output::Format::Json
        } else {
            self.format
        }
    }

    /// A ModelService client.
    pub(crate) async fn models(&self) -> anyhow::Result<ModelServiceClient<Authed>> {
        Ok(ModelServiceClient::new(self.channel().await?).max_decoding_message_size(MAX_RECEIVE))
    }

    /// A DatasetService client.
    pub(crate) async fn datasets(&self) -> anyhow::Result<DatasetServiceClient<Authed>> {
        Ok(DatasetServiceClient::new(self.channel().await?).max_decoding_message_size(MAX_RECEIVE))
    }

    /// An EmbeddingService client.
    pub(crate) async fn embedding(&self) -> anyhow::Result<EmbeddingServiceClient<Authed>> {
        Ok(EmbeddingServiceClient::new(self.channel().await?)
            .max_decoding_message_size(MAX_RECEIVE))
    }

    /// An EvaluationService client.
    pub(crate) async fn evaluation(&self) -> anyhow::Result<EvaluationServiceClient<Authed>> {
        Ok(EvaluationServiceClient::new(self.channel().await?)
            .max_decoding_message_size(MAX_RECEIVE))
    }

    pub(crate) async fn channel(&self) -> anyhow::Result<Authed> {
        let channel = super::endpoint(&self.server, self.ca_cert.as_deref())?
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", self.server))?;
        Ok(InterceptedService::new(channel, self.token()?))
    }

    /// A channel that carries the token, whose connection and every call
    /// give up after `timeout`.
    pub(crate) async fn channel_within(
        &self,
        timeout: std::time::Duration,
    ) -> anyhow::Result<Authed> {
        let channel = super::endpoint(&self.server, self.ca_cert.as_deref())?
            .connect_timeout(timeout)
            .timeout(timeout)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", self.server))?;
        Ok(InterceptedService::new(channel, self.token()?))
    }

    /// The bearer token of `--token-file`, if one was given.
    fn token(&self) -> anyhow::Result<Token> {
        let token = match &self.token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("read {}", path.display()))?;
                Some(format!("Bearer {}", text.trim()).parse()?)
            }
            None => None,
        };
        Ok(Token(token))
    }
}
