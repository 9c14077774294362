//! embedeval.v1.ModelService.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::AppState;
use crate::error::Error;
use crate::proto;
use crate::proto::model_service_server::ModelService;
use crate::proto::register_model_request;
use crate::registry::upload::{StagedFile, Staging};
use crate::registry::{card, card::CardFile, validate_name, LoadedModel};

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
            models,
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
        Ok(Response::new(model.info()))
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
        validate_name("model", &req.name)?;
        validate_name("model", &req.new_name)?;
        let info = self.rename(&req.name, &req.new_name).await?;
        Ok(Response::new(info))
    }
}

impl ModelApi {
    /// Streams an upload into a staging folder, validates it by building a
    /// session and checking the card, then installs and shares it
    /// ([`crate::registry::Registries::register`]).
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
            let mut file = StagedFile::create(&staging.dir().join("model.onnx")).await?;
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
        let registered = self
            .install(
                &upload.name,
                card.clone(),
                upload.card_toml.clone(),
                upload.replace,
                fill,
            )
            .await;
        match registered {
            Err(Error::AlreadyExists { kind, name, detail }) if detail.is_empty() => {
                let detail = self.taken(&name, &upload.sha256, &card).await;
                Err(Error::AlreadyExists { kind, name, detail })
            }
            other => other.map(|model| model.info()),
        }
    }

    /// What the message of a name already taken adds: whether the model
    /// under it has the same ONNX file, and then which card keys differ.
    async fn taken(&self, name: &str, sha256: &str, given: &CardFile) -> String {
        let Ok(model) = self.state.model(name).await else {
            return String::new();
        };
        let choose = "give another name, or replace it (--replace, replace=True)";
        if sha256.is_empty() {
            format!(": {choose}")
        } else if !sha256.eq_ignore_ascii_case(&model.sha256) {
            format!(
                " with another ONNX file (sha256 {}…): {choose}",
                &model.sha256[..12]
            )
        } else {
            let diff = card::differences(&model.card, given);
            if diff.is_empty() {
                " with the same ONNX file and card: it is already registered".into()
            } else {
                format!(
                    " with the same ONNX file and another card ({}): {choose}",
                    diff.join("; ")
                )
            }
        }
    }

    /// Gives uploaded model `name` the name `new_name`: its files are
    /// registered under the new name (all or nothing, shared like any
    /// upload), then the old name is removed.
    async fn rename(&self, name: &str, new_name: &str) -> Result<proto::ModelInfo, Error> {
        let models = &self.state.models;
        let model = self.state.model(name).await?;
        models.check_writable(name)?;
        let card_text = tokio::fs::read_to_string(model.dir.join("model.toml"))
            .await
            .map_err(|e| Error::io(format!("read the card of model {name}"), e))?;
        let card = CardFile::parse(&card_text)?;
        let onnx = model.dir.join("model.onnx");
        let fill = async |staging: &mut Staging| {
            tokio::fs::copy(&onnx, staging.dir().join("model.onnx"))
                .await
                .map(drop)
                .map_err(|e| Error::io(format!("copy the ONNX file of model {name}"), e))
        };
        let renamed = self.install(new_name, card, card_text, false, fill).await?;
        drop(model);
        self.state.registries.remove(models, name).await?;
        tracing::info!(model = %name, to = %new_name, "model renamed");
        Ok(renamed.info())
    }

    /// Registers model `name` from the ONNX file `fill` puts in the staging
    /// folder and `card`: its session is built and the card checked against
    /// it before it is installed and shared.
    async fn install(
        &self,
        name: &str,
        card: CardFile,
        card_text: String,
        replace: bool,
        fill: impl AsyncFnOnce(&mut Staging) -> Result<(), Error>,
    ) -> Result<Arc<LoadedModel>, Error> {
        let runtime = self.state.runtime.clone();
        let model_name = name.to_string();
        let open = move |dir: &std::path::Path, at: std::path::PathBuf| {
            let onnx_path = dir.join("model.onnx");
            let onnx = std::fs::read(&onnx_path)
                .map_err(|e| Error::io(format!("read {}", onnx_path.display()), e))?;
            let model = LoadedModel::from_parts(&runtime, model_name, at, card, &card_text, &onnx)?;
            std::fs::write(dir.join("model.toml"), &card_text)
                .map_err(|e| Error::io("write model.toml", e))?;
            Ok(model)
        };
        let (model, old) = self
            .state
            .registries
            .register(name, replace, self.state.max_model_bytes, fill, open)
            .await?;
        match old {
            Some(old) => tracing::info!(
                model = %model.name, sha256 = %model.sha256, replaced = %old.sha256, "model replaced"
            ),
            None => tracing::info!(model = %model.name, sha256 = %model.sha256, "model registered"),
        }
        Ok(model)
    }
}
