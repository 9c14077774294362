//! `embedeval comparisons …`: list, show and remove stored comparisons.

use crate::proto;

use super::super::args::{ComparisonsCommand, Connection};
use super::super::output::{print_message, Format, Listing};
use super::compare::{print_excluded, print_recommendations, print_rows};

/// Runs `embedeval comparisons …`.
pub async fn comparisons(conn: &Connection, cmd: ComparisonsCommand) -> anyhow::Result<()> {
    let mut client = conn.evaluation().await?;
    match cmd {
        ComparisonsCommand::Ls { dataset, limit } => {
            let list = client
                .list_comparisons(proto::ListComparisonsRequest {
                    dataset,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            if conn.output() == Format::Json {
                return print_message("ListComparisonsResponse", &list);
            }
            let rows: Vec<Vec<String>> = list
                .comparisons
                .iter()
                .map(|c| {
                    let models = match c.models.as_slice() {
                        m if m.len() <= 4 => m.join(" "),
                        m => format!("{} … ({} models)", m[..3].join(" "), m.len()),
                    };
                    vec![
                        c.id.clone(),
                        c.dataset.clone(),
                        c.dataset_ids.join(" "),
                        super::super::render::timestamp(c.created_at.as_ref()),
                        c.num_evaluations.to_string(),
                        c.num_excluded.to_string(),
                        models,
                    ]
                })
                .collect();
            print!(
                "{}",
                Listing::new(
                    &[
                        "id",
                        "dataset",
                        "dataset_id",
                        "created",
                        "evaluations",
                        "excluded",
                        "models"
                    ],
                    rows
                )
                .render(conn.output())
            );
            if !list.next_page_token.is_empty() {
                eprintln!(
                    "more comparisons than --limit {limit}: raise it to see them",
                    limit = list.comparisons.len()
                );
            }
            Ok(())
        }
        ComparisonsCommand::Show { id, by, recommend } => {
            let c = client
                .get_comparison(proto::GetComparisonRequest {
                    id,
                    by: by.unwrap_or_default(),
                })
                .await?
                .into_inner();
            if conn.output() == Format::Json {
                return print_message("Comparison", &c);
            }
            print_excluded(&c.excluded);
            let c = super::super::records::comparison(c);
            print_rows(conn, &c);
            if recommend {
                print_recommendations(conn, &c);
            }
            Ok(())
        }
        ComparisonsCommand::Rm { ids } => {
            for id in ids {
                client
                    .delete_comparison(proto::DeleteComparisonRequest { id: id.clone() })
                    .await?;
                println!("removed comparison {id} (its evaluations stay)");
            }
            Ok(())
        }
    }
}
