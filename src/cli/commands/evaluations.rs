//! `embedeval evaluations …`: list, show, cancel, follow and remove evaluations.

use crate::proto;

use super::super::args::{Connection, EvaluationsCommand};
use super::super::output::{print_message, Format, Listing};
use super::eval::follow_evaluation;

/// Runs `embedeval evaluations …`.
pub async fn evaluations(conn: &Connection, cmd: EvaluationsCommand) -> anyhow::Result<()> {
    let mut client = conn.evaluation().await?;
    match cmd {
        EvaluationsCommand::Ls {
            model,
            dataset,
            limit,
        } => {
            let list = client
                .list_evaluations(proto::ListEvaluationsRequest {
                    model,
                    dataset,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            if conn.output() == Format::Json {
                return print_message("ListEvaluationsResponse", &list);
            }
            let rows: Vec<Vec<String>> = list
                .evaluations
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.model.clone(),
                        r.dataset.clone(),
                        crate::report::short_dataset_id(&r.dataset_id),
                        proto::EvaluationStatus::try_from(r.status)
                            .map(|s| s.as_str_name().to_string())
                            .unwrap_or_default(),
                        r.uniformity.map_or("-".into(), |u| format!("{u:.4}")),
                        r.tolerance.map_or("-".into(), |u| format!("{u:.4}")),
                    ]
                })
                .collect();
            print!(
                "{}",
                Listing::new(
                    &[
                        "id",
                        "model",
                        "dataset",
                        "dataset_id",
                        "status",
                        "uniformity",
                        "tolerance"
                    ],
                    rows,
                )
                .render(conn.output())
            );
        }
        EvaluationsCommand::Show { id } => {
            let r = client
                .get_evaluation(proto::GetEvaluationRequest { id })
                .await?
                .into_inner();
            print_message("EvaluationReport", &r)?;
        }
        EvaluationsCommand::Watch { id } => {
            let mut stream = client
                .watch_evaluation(proto::WatchEvaluationRequest { id })
                .await?
                .into_inner();
            follow_evaluation(conn, &mut stream, false).await?;
        }
        EvaluationsCommand::Rm { ids } => {
            for id in ids {
                client
                    .delete_evaluation(proto::DeleteEvaluationRequest { id: id.clone() })
                    .await?;
                println!("removed evaluation {id}");
            }
        }
        EvaluationsCommand::Cancel { id } => {
            let r = client
                .cancel_evaluation(proto::CancelEvaluationRequest { id: id.clone() })
                .await?
                .into_inner();
            println!(
                "{id}: {}",
                proto::EvaluationStatus::try_from(r.status)
                    .map(|s| s.as_str_name())
                    .unwrap_or("?")
            );
        }
    }
    Ok(())
}
