//! `embedeval eval …`: one evaluation followed to its report (and what the other commands share of following one: its events, Ctrl-C).

use super::super::flags::as_flags;
use anyhow::bail;

use crate::proto;

use super::super::args::{Connection, EvalArgs};
use super::super::output::{print_message, Format};
use super::super::register;
use super::super::render::{print_accepted, StageBar};

/// Runs `embedeval eval …`.
pub async fn eval(conn: &Connection, args: EvalArgs) -> anyhow::Result<()> {
    let mut stream = conn
        .evaluation()
        .await?
        .evaluate(proto::EvaluateRequest {
            model: register::model_name(conn, &args.model, &args.card, args.name.as_deref())
                .await?,
            dataset: args.dataset,
            detach: args.detach,
            test_split: args.splits.test_split,
            train_split: args.splits.train_split,
            spec: Some(args.spec.spec()),
            tags: super::super::args::tag_map(&args.card.tags)?,
        })
        .await?
        .into_inner();
    follow_evaluation(conn, &mut stream, args.per_class).await
}

/// Shows an Evaluate or WatchEvaluation stream: progress, then the report
/// (and its per-class table when `per_class`).
pub(super) async fn follow_evaluation(
    conn: &Connection,
    stream: &mut tonic::Streaming<proto::EvaluateEvent>,
    per_class: bool,
) -> anyhow::Result<()> {
    let mut bar = StageBar::new();
    while let Some(event) = next_event(conn, stream, &bar).await? {
        match event.event {
            Some(proto::evaluate_event::Event::Progress(p)) => bar.update(&p),
            Some(proto::evaluate_event::Event::Accepted(a)) => {
                bar.bar.finish_and_clear();
                return print_accepted(conn, &a);
            }
            Some(proto::evaluate_event::Event::Report(r)) => {
                bar.bar.finish_and_clear();
                if conn.output() == Format::Json {
                    print_message("EvaluationReport", &r)?;
                } else {
                    let domain = crate::domain::Report::from(r.clone());
                    print!(
                        "{}",
                        crate::report::listing(std::slice::from_ref(&domain)).render(conn.output())
                    );
                    if per_class {
                        match &domain.per_class {
                            Some(p) => {
                                if conn.output() == Format::Table {
                                    println!();
                                }
                                print!(
                                    "{}",
                                    crate::report::per_class_listing(p).render(conn.output())
                                );
                            }
                            None => eprintln!(
                                "no per-class diagnostics in evaluation {} (skipped, or stored before they existed)",
                                r.id
                            ),
                        }
                    }
                }
                for warning in &r.warnings {
                    eprintln!("warning: {}", as_flags(warning));
                }
                let status = proto::EvaluationStatus::try_from(r.status)
                    .unwrap_or(proto::EvaluationStatus::Unspecified);
                if status != proto::EvaluationStatus::Completed {
                    bail!("evaluation {} {}: {}", r.id, status.as_str_name(), r.error);
                }
                if conn.output() != Format::Table {
                    return Ok(());
                }
                println!(
                    "evaluation {} ({:.2} s)",
                    r.id,
                    r.timings.get("total").copied().unwrap_or(0.0)
                );
                return Ok(());
            }
            None => {}
        }
    }
    bail!("the server ended the stream without a report")
}

/// The next message of an attached job's stream (None at its end); at
/// Ctrl-C the job is cancelled and the error names it ([`interrupted`]).
pub(super) async fn next_event<T>(
    conn: &Connection,
    stream: &mut tonic::Streaming<T>,
    bar: &StageBar,
) -> anyhow::Result<Option<T>> {
    tokio::select! {
        event = stream.message() => Ok(event?),
        _ = tokio::signal::ctrl_c() => {
            bar.bar.finish_and_clear();
            interrupted(conn, &bar.evaluation_id).await.map(|()| None)
        }
    }
}

/// Ctrl-C on an attached evaluation: cancels it (the server would on the
/// stream's end too, but this waits until it is recorded) and says which.
pub(super) async fn interrupted(conn: &Connection, id: &str) -> anyhow::Result<()> {
    if id.is_empty() {
        bail!("interrupted before the server named the evaluation: nothing was evaluated");
    }
    let status = match conn.evaluation().await {
        Ok(mut client) => client
            .cancel_evaluation(proto::CancelEvaluationRequest { id: id.to_string() })
            .await
            .ok()
            .and_then(|r| proto::EvaluationStatus::try_from(r.into_inner().status).ok()),
        Err(_) => None,
    };
    match status {
        Some(proto::EvaluationStatus::Cancelled) | None => {
            bail!("interrupted: evaluation {id} cancelled, with the rest of its job (Ctrl-C)")
        }
        Some(other) => bail!(
            "interrupted: evaluation {id} had already ended ({})",
            other.as_str_name()
        ),
    }
}
