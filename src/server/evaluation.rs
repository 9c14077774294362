//! embedeval.v1.EvaluationService, the gRPC edge of the engine
//! ([`crate::jobs`]): each handler translates its request for
//! [`crate::jobs::plan`], submits the job it plans and streams its events
//! back; the conversions live in [`super::convert`]. A client that goes away (or whose deadline
//! passes) stops its job unless it asked to detach.

use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{self, Step};
use super::AppState;
use crate::error::Error;
use crate::jobs::{plan, Deadline, Event, JobSpec, Outcome, SubmitOptions};
use crate::memory::payload_limit;
use crate::proto;
use crate::proto::evaluation_service_server::EvaluationService;
use crate::proto::EvaluationReport;
use crate::report::figures;
use crate::views;

type EventStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send>>;

/// The EvaluationService implementation.
#[derive(Debug)]
pub struct EvaluationApi {
    state: Arc<AppState>,
}

impl EvaluationApi {
    /// Serves evaluations through the state's engine.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

/// How a request submits its job: detached or not, and its deadline.
fn submit_options<T>(request: &Request<T>, detach: bool) -> SubmitOptions {
    SubmitOptions {
        detach,
        deadline: convert::deadline(request.metadata()).map(Deadline::after),
    }
}

/// Streams `events` to the client through `step`, until a step ends the
/// stream or the client goes away (which drops `events`: for a job handle
/// that was not detached, that stops the job).
fn forward<T, S>(mut events: S, step: impl Fn(Event) -> Step<T> + Send + 'static) -> EventStream<T>
where
    T: Send + 'static,
    S: Stream<Item = Event> + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                _ = tx.closed() => break,
            };
            let Some(event) = event else {
                // The job's events ended without its end: never a silent OK.
                let _ = tx
                    .send(Err(Status::unavailable(
                        "the evaluation ended without a result (the server is stopping?)",
                    )))
                    .await;
                break;
            };
            let (message, last) = step(event);
            if let Some(message) = message {
                if tx.send(message).await.is_err() {
                    break;
                }
            }
            if last {
                break;
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// A stream of one message.
fn once<T: Send + 'static>(message: T) -> EventStream<T> {
    Box::pin(futures::stream::iter([Ok(message)]))
}

#[tonic::async_trait]
impl EvaluationService for EvaluationApi {
    type EvaluateStream = EventStream<proto::EvaluateEvent>;
    type CompareStream = EventStream<proto::CompareEvent>;
    type WatchEvaluationStream = EventStream<proto::EvaluateEvent>;

    async fn evaluate(
        &self,
        request: Request<proto::EvaluateRequest>,
    ) -> std::result::Result<Response<Self::EvaluateStream>, Status> {
        self.state.ensure_ready()?;
        let opts = submit_options(&request, request.get_ref().detach);
        let req = request.into_inner();
        let job = plan::evaluate(
            &self.state.registries,
            plan::EvaluateRequest {
                model: req.model,
                dataset: req.dataset,
                test_split: req.test_split,
                train_split: req.train_split,
                spec: req.spec.map(Into::into),
                tags: req.tags,
            },
        )
        .await?;
        let handle = self
            .state
            .engine
            .submit(JobSpec::Model(Box::new(job)), opts)
            .await?;
        if opts.detach {
            let accepted = convert::accepted(handle);
            return Ok(Response::new(once(proto::EvaluateEvent {
                event: Some(proto::evaluate_event::Event::Accepted(accepted)),
            })));
        }
        Ok(Response::new(forward(handle, convert::evaluate_event)))
    }

    async fn evaluate_embeddings(
        &self,
        request: Request<Streaming<proto::EvaluateEmbeddingsRequest>>,
    ) -> std::result::Result<Response<EvaluationReport>, Status> {
        self.state.ensure_ready()?;
        let deadline = convert::deadline(request.metadata()).map(Deadline::after);
        let mut stream = request.into_inner();
        let (header, data) =
            convert::embeddings_upload(&mut stream, &payload_limit(self.state.max_dataset_bytes))
                .await?;
        let opts = SubmitOptions {
            detach: header.detach,
            deadline,
        };
        let job = plan::embeddings(plan::EmbeddingsRequest {
            name: header.name,
            dataset: header.dataset,
            loss: header.loss,
            loss_name: header.loss_name,
            temperature: header.temperature,
            spec: header.spec.map(Into::into),
            data,
        })?;
        let mut handle = self
            .state
            .engine
            .submit(JobSpec::Embeddings(Box::new(job)), opts)
            .await?;
        if opts.detach {
            let id = handle.detach().remove(0);
            return Ok(Response::new(
                self.state.engine.reports().get(&id).await?.into(),
            ));
        }
        // Dropping the handle (the client left) stops the job.
        while let Some(event) = handle.next().await {
            match event {
                Event::Done(Ok(Outcome::Report(report))) => {
                    return Ok(Response::new((*report).into()))
                }
                Event::Done(Err(err)) => return Err(convert::status(&err)),
                _ => {}
            }
        }
        Err(Error::Internal {
            task: "EvaluateEmbeddings".into(),
            message: "the job ended without a report".into(),
        }
        .into())
    }

    async fn compare(
        &self,
        request: Request<proto::CompareRequest>,
    ) -> std::result::Result<Response<Self::CompareStream>, Status> {
        self.state.ensure_ready()?;
        let opts = submit_options(&request, request.get_ref().detach);
        let req = request.into_inner();
        let job = plan::compare(
            &self.state.registries,
            plan::CompareRequest {
                models: req.models,
                dataset: req.dataset,
                test_split: req.test_split,
                train_split: req.train_split,
                spec: req.spec.map(Into::into),
                tags: req.tags,
            },
        )
        .await?;
        let by = req.by;
        let comparison_id = job.id.clone();
        let excluded = job.excluded.clone();
        let handle = self
            .state
            .engine
            .submit(JobSpec::Compare(job), opts)
            .await?;
        if opts.detach {
            let accepted = proto::Accepted {
                comparison_id,
                excluded: excluded.into_iter().map(Into::into).collect(),
                ..convert::accepted(handle)
            };
            return Ok(Response::new(once(proto::CompareEvent {
                event: Some(proto::compare_event::Event::Accepted(accepted)),
            })));
        }
        Ok(Response::new(forward(handle, move |event| {
            convert::compare_event(event, &by)
        })))
    }

    async fn watch_evaluation(
        &self,
        request: Request<proto::WatchEvaluationRequest>,
    ) -> std::result::Result<Response<Self::WatchEvaluationStream>, Status> {
        let id = request.into_inner().id;
        let events = self.state.engine.watch(&id).await?;
        Ok(Response::new(forward(events, move |event| {
            convert::watch_event(&id, event)
        })))
    }

    async fn get_evaluation(
        &self,
        request: Request<proto::GetEvaluationRequest>,
    ) -> std::result::Result<Response<EvaluationReport>, Status> {
        let reports = self.state.engine.reports();
        Ok(Response::new(
            reports.get(&request.get_ref().id).await?.into(),
        ))
    }

    async fn list_evaluations(
        &self,
        request: Request<proto::ListEvaluationsRequest>,
    ) -> std::result::Result<Response<proto::ListEvaluationsResponse>, Status> {
        let r = request.into_inner();
        let (evaluations, next_page_token) = self
            .state
            .engine
            .reports()
            .list(&r.model, &r.dataset, r.page_size as usize, &r.page_token)
            .await?;
        Ok(Response::new(proto::ListEvaluationsResponse {
            evaluations: evaluations.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn get_comparison(
        &self,
        request: Request<proto::GetComparisonRequest>,
    ) -> std::result::Result<Response<proto::Comparison>, Status> {
        let proto::GetComparisonRequest { id, by } = request.into_inner();
        let comparison = views::comparison(&self.state.engine.reports(), &id, &by).await?;
        Ok(Response::new(comparison.into()))
    }

    async fn list_comparisons(
        &self,
        request: Request<proto::ListComparisonsRequest>,
    ) -> std::result::Result<Response<proto::ListComparisonsResponse>, Status> {
        let r = request.into_inner();
        let (comparisons, next_page_token) = views::comparisons(
            &self.state.engine.reports(),
            &r.dataset,
            r.page_size as usize,
            &r.page_token,
        )
        .await?;
        Ok(Response::new(proto::ListComparisonsResponse {
            comparisons: comparisons.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn delete_comparison(
        &self,
        request: Request<proto::DeleteComparisonRequest>,
    ) -> std::result::Result<Response<proto::DeleteComparisonResponse>, Status> {
        let id = request.into_inner().id;
        self.state.engine.recorder().delete_comparison(&id).await?;
        tracing::info!(comparison = %id, "comparison deleted");
        Ok(Response::new(proto::DeleteComparisonResponse { id }))
    }

    async fn delete_evaluation(
        &self,
        request: Request<proto::DeleteEvaluationRequest>,
    ) -> std::result::Result<Response<proto::DeleteEvaluationResponse>, Status> {
        let id = request.into_inner().id;
        self.state.engine.recorder().delete_evaluation(&id).await?;
        tracing::info!(evaluation = %id, "evaluation deleted");
        Ok(Response::new(proto::DeleteEvaluationResponse { id }))
    }

    async fn render_figure(
        &self,
        request: Request<proto::RenderFigureRequest>,
    ) -> std::result::Result<Response<proto::Figure>, Status> {
        let req = request.into_inner();
        let (kind, format, size, axes) = convert::figure_request(&req)?;
        let reports = self.state.engine.reports().reports_of(&req.id).await?;
        // Drawing is CPU work: off the async threads.
        let figure = tokio::task::spawn_blocking(move || {
            figures::render_along(kind, &reports, format, size, &axes).map(|f| (f, reports))
        })
        .await
        .map_err(|e| Error::join("RenderFigure", e))??;
        Ok(Response::new(convert::figure(figure.0, &figure.1)))
    }

    async fn list_runs(
        &self,
        _request: Request<proto::ListRunsRequest>,
    ) -> std::result::Result<Response<proto::ListRunsResponse>, Status> {
        let runs = views::runs(&self.state.registries).await?;
        Ok(Response::new(proto::ListRunsResponse {
            runs: runs.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_run(
        &self,
        request: Request<proto::GetRunRequest>,
    ) -> std::result::Result<Response<proto::Run>, Status> {
        let req = request.into_inner();
        let run = views::run(
            &self.state.registries,
            &self.state.engine.reports(),
            &req.name,
            &req.dataset,
        )
        .await?;
        Ok(Response::new(run.into()))
    }

    async fn project_embeddings(
        &self,
        request: Request<proto::ProjectEmbeddingsRequest>,
    ) -> std::result::Result<Response<proto::Projections>, Status> {
        self.state.ensure_ready()?;
        let req = convert::projection_request(request.into_inner())?;
        let projections = views::project(&self.state.engine, &self.state.registries, req).await?;
        Ok(Response::new(projections.into()))
    }

    async fn nearest_images(
        &self,
        request: Request<proto::NearestImagesRequest>,
    ) -> std::result::Result<Response<proto::NearestImagesResponse>, Status> {
        self.state.ensure_ready()?;
        let req = convert::nearest_request(request.into_inner());
        let found = views::nearest_images(&self.state.engine, &self.state.registries, req).await?;
        Ok(Response::new(found.into()))
    }

    async fn cancel_evaluation(
        &self,
        request: Request<proto::CancelEvaluationRequest>,
    ) -> std::result::Result<Response<proto::CancelEvaluationResponse>, Status> {
        let id = request.into_inner().id;
        let status = self.state.engine.cancel(&id).await?;
        Ok(Response::new(proto::CancelEvaluationResponse {
            id,
            status: status as i32,
        }))
    }
}
