//! The services whose capabilities this version does not have yet: each RPC
//! answers UNIMPLEMENTED and names what is missing.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::proto;
use crate::proto::evaluation_service_server::EvaluationService;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn missing(rpc: &str, capability: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc}: {capability} is not available in this version of embedeval"
    ))
}

/// EvaluationService without the metrics engine and jobs.
#[derive(Debug, Default)]
pub struct EvaluationApi;

#[tonic::async_trait]
impl EvaluationService for EvaluationApi {
    type EvaluateStream = BoxStream<proto::EvaluateEvent>;
    type CompareStream = BoxStream<proto::CompareEvent>;

    async fn evaluate(
        &self,
        _: Request<proto::EvaluateRequest>,
    ) -> Result<Response<Self::EvaluateStream>, Status> {
        Err(missing("Evaluate", "model evaluation"))
    }
    async fn evaluate_embeddings(
        &self,
        _: Request<Streaming<proto::EvaluateEmbeddingsRequest>>,
    ) -> Result<Response<proto::EvaluationReport>, Status> {
        Err(missing(
            "EvaluateEmbeddings",
            "evaluation of uploaded embeddings",
        ))
    }
    async fn compare(
        &self,
        _: Request<proto::CompareRequest>,
    ) -> Result<Response<Self::CompareStream>, Status> {
        Err(missing("Compare", "model comparison"))
    }
    async fn get_evaluation(
        &self,
        _: Request<proto::GetEvaluationRequest>,
    ) -> Result<Response<proto::EvaluationReport>, Status> {
        Err(missing("GetEvaluation", "the results store"))
    }
    async fn list_evaluations(
        &self,
        _: Request<proto::ListEvaluationsRequest>,
    ) -> Result<Response<proto::ListEvaluationsResponse>, Status> {
        Err(missing("ListEvaluations", "the results store"))
    }
    async fn cancel_evaluation(
        &self,
        _: Request<proto::CancelEvaluationRequest>,
    ) -> Result<Response<proto::CancelEvaluationResponse>, Status> {
        Err(missing("CancelEvaluation", "evaluation jobs"))
    }
}
