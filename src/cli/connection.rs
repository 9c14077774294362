//! The client's connection: TLS, the bearer token on every call.

use anyhow::Context;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::args::Connection;

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

impl Connection {
    pub(crate) async fn channel(&self) -> anyhow::Result<Authed> {
        let channel = super::endpoint(&self.server, self.ca_cert.as_deref())?
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", self.server))?;
        let token = match &self.token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("read {}", path.display()))?;
                Some(format!("Bearer {}", text.trim()).parse()?)
            }
            None => None,
        };
        Ok(InterceptedService::new(channel, Token(token)))
    }
}
