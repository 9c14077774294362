//! embedeval.v1.ModelService.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::AppState;
use crate::error::Error;
use crate::proto;
use crate::proto::model_service_server::ModelService;
use crate::proto::register_model_request;
use crate::registry::upload::{StagedFile, Staging};
use crate::registry::{card::CardFile, validate_name, LoadedModel, ModelUpload};

/// The ModelService implementation.
#[derive(Debug)]
pub struct ModelApi {
    state: Arc<AppState>,
}

impl ModelApi {
    /// Serves the state's model registry.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl ModelService for ModelApi {
    async fn list_models(
        &self,
        request: Request<proto::ListModelsRequest>,
    ) -> Result<Response<proto::ListModelsResponse>, Status> {
        self.state.ensure_ready()?;
        let wanted = &request.get_ref().tags;
        crate::registry::card::check_tags(wanted)?;
        let mut models = self.state.registries.listing::<LoadedModel>().await?;
        models.retain(|m| crate::registry::has_tags(&m.tags, wanted));
        Ok(Response::new(proto::ListModelsResponse {
            models: models.into_iter().map(Into::into).collect(),
            skipped: self
                .state
                .models
                .skipped()
                .into_iter()
                .map(|s| proto::SkippedModel {
                    name: s.name,
                    reason: s.reason,
                })
                .collect(),
        }))
    }

    async fn get_model(
        &self,
        request: Request<proto::GetModelRequest>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        self.state.ensure_ready()?;
        let model = self.state.model(&request.get_ref().name).await?;
        Ok(Response::new(model.info().into()))
    }

    async fn register_model(
        &self,
        request: Request<Streaming<proto::RegisterModelRequest>>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        self.state.ensure_ready()?;
        let info = self.register(request.into_inner()).await?;
        Ok(Response::new(info))
    }

    async fn delete_model(
        &self,
        request: Request<proto::DeleteModelRequest>,
    ) -> Result<Response<proto::DeleteModelResponse>, Status> {
        self.state.ensure_ready()?;
        let name = request.into_inner().name;
        validate_name("model", &name)?;
        self.state
            .registries
            .remove_named::<crate::registry::LoadedModel>(&name)
            .await?;
        tracing::info!(model = %name, "model deleted");
        Ok(Response::new(proto::DeleteModelResponse { name }))
    }

    async fn rename_model(
        &self,
        request: Request<proto::RenameModelRequest>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        self.state.ensure_ready()?;
        let req = request.into_inner();
        let renamed = self
            .state
            .registries
            .rename_model(&req.name, &req.new_name, self.state.max_model_bytes)
            .await?;
        Ok(Response::new(renamed.info().into()))
    }
}

impl ModelApi {
    /// Streams an upload into a staging folder; the registry checks it
    /// against its session, installs and shares it
    /// ([`crate::registry::Registries::install_model`]).
    async fn register(
        &self,
        mut stream: Streaming<proto::RegisterModelRequest>,
    ) -> Result<proto::ModelInfo, Error> {
        let first = stream
            .message()
            .await
            .map_err(|s| Error::InvalidArgument(format!("upload stream: {}", s.message())))?;
        let Some(proto::RegisterModelRequest {
            payload: Some(register_model_request::Payload::Card(upload)),
        }) = first
        else {
            return Err(Error::InvalidArgument(
                "the first RegisterModel message must carry the card".into(),
            ));
        };
        validate_name("model", &upload.name)?;
        let card = CardFile::parse(&upload.card_toml)?;
        let limit = self.state.max_model_bytes;
        if upload.size_bytes > limit {
            return Err(Error::ResourceExhausted(format!(
                "model upload of {} bytes exceeds the limit of {limit} bytes",
                upload.size_bytes
            )));
        }
        let fill = async |staging: &mut Staging| {
            let mut file = StagedFile::create(&staging.dir().join("model.onnx"))
                .await?
                .expecting(upload.size_bytes);
            while let Some(message) = stream
                .message()
                .await
                .map_err(super::convert::interrupted)?
            {
                match message.payload {
                    Some(register_model_request::Payload::Chunk(bytes)) => {
                        staging.charge(bytes.len() as u64)?;
                        file.write(&bytes).await?;
                    }
                    _ => {
                        return Err(Error::InvalidArgument(
                            "after the card, RegisterModel messages must carry ONNX chunks".into(),
                        ))
                    }
                }
            }
            let (len, sha256) = file.finish().await?;
            if len == 0 {
                return Err(Error::InvalidArgument(
                    "the upload holds no ONNX bytes".into(),
                ));
            }
            if upload.size_bytes != 0 && upload.size_bytes != len {
                return Err(Error::InvalidArgument(format!(
                    "the upload declared {} bytes but sent {len}",
                    upload.size_bytes
                )));
            }
            if !upload.sha256.is_empty() && !upload.sha256.eq_ignore_ascii_case(&sha256) {
                return Err(Error::InvalidArgument(format!(
                    "the upload declared sha256 {} but the bytes hash to {sha256}",
                    upload.sha256
                )));
            }
            Ok(())
        };
        let model = self
            .state
            .registries
            .install_model(
                ModelUpload {
                    name: &upload.name,
                    card,
                    card_text: upload.card_toml.clone(),
                    replace: upload.replace,
                    sha256: &upload.sha256,
                },
                limit,
                fill,
            )
            .await?;
        Ok(model.info().into())
    }
}
