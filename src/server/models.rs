//! embedeval.v1.ModelService.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::AppState;
use crate::proto;
use crate::proto::model_service_server::ModelService;

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
        _request: Request<proto::ListModelsRequest>,
    ) -> Result<Response<proto::ListModelsResponse>, Status> {
        self.state.ensure_ready()?;
        let registry = &self.state.models;
        Ok(Response::new(proto::ListModelsResponse {
            models: registry.list().iter().map(|m| m.info()).collect(),
            skipped: registry
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
        let model = self.state.models.get(&request.get_ref().name)?;
        Ok(Response::new(model.info()))
    }

    async fn register_model(
        &self,
        _request: Request<Streaming<proto::RegisterModelRequest>>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        Err(Status::unimplemented(
            "RegisterModel: uploading models over gRPC is not available in this version; \
             copy <name>/model.onnx and <name>/model.toml into the models dir and restart",
        ))
    }

    async fn delete_model(
        &self,
        _request: Request<proto::DeleteModelRequest>,
    ) -> Result<Response<proto::DeleteModelResponse>, Status> {
        Err(Status::unimplemented(
            "DeleteModel: removing models over gRPC is not available in this version",
        ))
    }
}
