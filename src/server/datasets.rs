//! embedeval.v1.DatasetService.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::AppState;
use crate::data::LoadedDataset;
use crate::error::Error;
use crate::proto;
use crate::proto::dataset_service_server::DatasetService;
use crate::proto::register_dataset_request;
use crate::registry::upload::Staging;
use crate::registry::{validate_name, DatasetSettings, StagedFiles};

/// The DatasetService implementation.
#[derive(Debug)]
pub struct DatasetApi {
    state: Arc<AppState>,
}

impl DatasetApi {
    /// Serves the state's dataset registry.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl DatasetService for DatasetApi {
    async fn list_datasets(
        &self,
        _: Request<proto::ListDatasetsRequest>,
    ) -> Result<Response<proto::ListDatasetsResponse>, Status> {
        self.state.ensure_ready()?;
        Ok(Response::new(proto::ListDatasetsResponse {
            datasets: self
                .state
                .registries
                .listing::<LoadedDataset>()
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        }))
    }

    async fn get_dataset(
        &self,
        request: Request<proto::GetDatasetRequest>,
    ) -> Result<Response<proto::DatasetInfo>, Status> {
        self.state.ensure_ready()?;
        Ok(Response::new(
            self.state
                .dataset(&request.get_ref().name)
                .await?
                .info()
                .into(),
        ))
    }

    async fn register_dataset(
        &self,
        request: Request<Streaming<proto::RegisterDatasetRequest>>,
    ) -> Result<Response<proto::DatasetInfo>, Status> {
        self.state.ensure_ready()?;
        Ok(Response::new(self.register(request.into_inner()).await?))
    }

    async fn delete_dataset(
        &self,
        request: Request<proto::DeleteDatasetRequest>,
    ) -> Result<Response<proto::DeleteDatasetResponse>, Status> {
        self.state.ensure_ready()?;
        let name = request.into_inner().name;
        validate_name("dataset", &name)?;
        self.state
            .registries
            .remove_named::<crate::data::LoadedDataset>(&name)
            .await?;
        tracing::info!(dataset = %name, "dataset deleted");
        Ok(Response::new(proto::DeleteDatasetResponse { name }))
    }
}

impl DatasetApi {
    /// Streams the files into a staging folder; the registry opens the
    /// dataset, reads every split and installs it
    /// ([`crate::registry::Registries::install_dataset`]).
    async fn register(
        &self,
        mut stream: Streaming<proto::RegisterDatasetRequest>,
    ) -> Result<proto::DatasetInfo, Error> {
        let interrupted = super::convert::interrupted;
        let Some(proto::RegisterDatasetRequest {
            payload: Some(register_dataset_request::Payload::Header(header)),
        }) = stream.message().await.map_err(interrupted)?
        else {
            return Err(Error::InvalidArgument(
                "the first RegisterDataset message must carry the header".into(),
            ));
        };
        let settings = DatasetSettings {
            format: header.format.clone(),
            channels: header.channels,
            image_size: header.image_size,
            crop_fraction: header.crop_fraction,
            test_split: header.test_split.clone(),
            train_split: header.train_split.clone(),
        };
        let fill = async |staging: &mut Staging| {
            let mut files = StagedFiles::default();
            while let Some(message) = stream.message().await.map_err(interrupted)? {
                let Some(register_dataset_request::Payload::File(chunk)) = message.payload else {
                    return Err(Error::InvalidArgument(
                        "after the header, RegisterDataset messages must carry file chunks".into(),
                    ));
                };
                files.write(staging, &chunk.path, &chunk.data).await?;
            }
            files.finish().await
        };
        let limit = crate::memory::payload_limit(self.state.max_dataset_bytes);
        let dataset = self
            .state
            .registries
            .install_dataset(&header.name, settings, header.replace, limit, fill)
            .await?;
        Ok(dataset.info().into())
    }
}
