//! embedeval.v1.DatasetService.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::AppState;
use crate::proto;
use crate::proto::dataset_service_server::DatasetService;

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
                .datasets
                .list()
                .iter()
                .map(|d| d.info())
                .collect(),
        }))
    }

    async fn get_dataset(
        &self,
        request: Request<proto::GetDatasetRequest>,
    ) -> Result<Response<proto::DatasetInfo>, Status> {
        self.state.ensure_ready()?;
        Ok(Response::new(
            self.state.datasets.get(&request.get_ref().name)?.info(),
        ))
    }

    async fn register_dataset(
        &self,
        _: Request<Streaming<proto::RegisterDatasetRequest>>,
    ) -> Result<Response<proto::DatasetInfo>, Status> {
        Err(Status::unimplemented(
            "RegisterDataset: dataset upload is not available in this version; \
             copy the dataset folder into the datasets dir and restart",
        ))
    }

    async fn delete_dataset(
        &self,
        _: Request<proto::DeleteDatasetRequest>,
    ) -> Result<Response<proto::DeleteDatasetResponse>, Status> {
        Err(Status::unimplemented(
            "DeleteDataset: removing datasets over gRPC is not available in this version",
        ))
    }
}
