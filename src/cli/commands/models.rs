//! `embedeval models …`: list, show, upload, remove and rename models.

use super::super::flags::as_flags;
use crate::proto;

use super::super::args::{Connection, ModelsCommand};
use super::super::output::{print_message, Format, Listing};
use super::super::register;

/// Runs `embedeval models …`.
pub async fn models(conn: &Connection, cmd: ModelsCommand) -> anyhow::Result<()> {
    let mut client = conn.models().await?;
    match cmd {
        ModelsCommand::Ls { tags } => {
            let list = client
                .list_models(proto::ListModelsRequest {
                    tags: super::super::args::tag_map(&tags)?,
                })
                .await?
                .into_inner();
            if conn.output() == Format::Json {
                return print_message("ListModelsResponse", &list);
            }
            let rows: Vec<Vec<String>> = list
                .models
                .iter()
                .map(|m| {
                    let t = m.training.clone().unwrap_or_default();
                    let i = m.input.clone().unwrap_or_default();
                    let dim = m
                        .outputs
                        .iter()
                        .find(|o| o.name == m.embedding_output)
                        .map_or(0, |o| o.dim);
                    vec![
                        m.name.clone(),
                        if t.loss_name.is_empty() {
                            t.loss
                        } else {
                            format!("{} ({})", t.loss, t.loss_name)
                        },
                        format!("{}", t.temperature),
                        t.dataset,
                        format!("{:?}", i.shape),
                        dim.to_string(),
                        m.execution_provider.clone(),
                        m.sha256[..12.min(m.sha256.len())].to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                Listing::new(
                    &[
                        "name",
                        "loss",
                        "temperature",
                        "dataset",
                        "input",
                        "embedding_dim",
                        "execution_provider",
                        "sha256",
                    ],
                    rows,
                )
                .render(conn.output())
            );
            for s in &list.skipped {
                eprintln!("skipped {}: {}", s.name, s.reason);
            }
        }
        ModelsCommand::Show { name } => {
            let m = client
                .get_model(proto::GetModelRequest { name })
                .await?
                .into_inner();
            print_message("ModelInfo", &m)?;
        }
        ModelsCommand::Add {
            name,
            onnx,
            card,
            replace,
        } => {
            let info =
                register::upload(conn, &name, &onnx, register::card_toml(&card)?, replace).await?;
            print_message("ModelInfo", &info)?;
            for warning in &info.warnings {
                eprintln!("warning: {}", as_flags(warning));
            }
        }
        ModelsCommand::Rm { name } => {
            client
                .delete_model(proto::DeleteModelRequest { name: name.clone() })
                .await?;
            println!("removed model {name}");
        }
        ModelsCommand::Rename { name, new_name } => {
            let info = client
                .rename_model(proto::RenameModelRequest {
                    name: name.clone(),
                    new_name,
                })
                .await?
                .into_inner();
            println!("renamed model {name} to {}", info.name);
        }
    }
    Ok(())
}
