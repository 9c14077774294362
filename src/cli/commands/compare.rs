//! `embedeval compare …`: several models evaluated and compared, their table, recommendations and figures.

use super::super::flags::as_flags;
use anyhow::bail;

use crate::proto;

use super::super::args::{CompareArgs, Connection, FigureKind};
use super::super::output::{print_message, Format};
use super::super::register;
use super::super::render::{print_accepted, StageBar};
use super::eval::next_event;
use super::plot::write_figure;

/// Runs `embedeval compare …`.
pub async fn compare(conn: &Connection, args: CompareArgs) -> anyhow::Result<()> {
    if args.all != args.models.is_empty() {
        bail!("name the models to compare, or pass --all (not both)");
    }
    let mut models = Vec::with_capacity(args.models.len());
    for model in &args.models {
        models.push(register::model_name(conn, model, &args.card, None).await?);
    }
    let mut stream = conn
        .evaluation()
        .await?
        .compare(proto::CompareRequest {
            models,
            dataset: args.dataset,
            detach: args.detach,
            test_split: args.splits.test_split,
            train_split: args.splits.train_split,
            spec: Some(args.spec.spec()),
            tags: super::super::args::tag_map(&args.where_tags)?,
            by: args.by.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    let mut bar = StageBar::new();
    while let Some(event) = next_event(conn, &mut stream, &bar).await? {
        match event.event {
            Some(proto::compare_event::Event::Progress(p)) => bar.update(&p),
            Some(proto::compare_event::Event::Accepted(a)) => {
                bar.bar.finish_and_clear();
                eprintln!("comparison {}", a.comparison_id);
                print_excluded(&a.excluded);
                return print_accepted(conn, &a);
            }
            Some(proto::compare_event::Event::Comparison(c)) => {
                bar.bar.finish_and_clear();
                if conn.output() == Format::Json {
                    print_message("Comparison", &c)?;
                } else {
                    let domain = super::super::records::comparison(c.clone());
                    print_rows(conn, &domain);
                    if args.recommend {
                        print_recommendations(conn, &domain);
                    }
                }
                print_excluded(&c.excluded);
                let mut warned = std::collections::BTreeSet::new();
                for r in &c.rows {
                    for warning in &r.warnings {
                        if warned.insert((r.model.clone(), warning.clone())) {
                            eprintln!("warning: {}: {}", r.model, as_flags(warning));
                        }
                    }
                }
                // A figure that cannot be drawn (nothing completed, a
                // metric skipped) does not hide the table.
                let ut = args
                    .plot
                    .iter()
                    .map(|path| (FigureKind::UniformityTolerance, path));
                for (kind, path) in ut.chain(args.figures.iter().map(|(k, p)| (*k, p))) {
                    if let Err(err) = write_figure(conn, &c.id, kind, path, &args.figure).await {
                        eprintln!("{}: not drawn: {err:#}", path.display());
                    }
                }
                eprintln!(
                    "comparison {0} (draw it again: embedeval plot {0} --kind ut -o ut.png)",
                    c.id
                );
                return Ok(());
            }
            None => {}
        }
    }
    bail!("the server ended the stream without a comparison")
}

/// Prints the models a comparison left out, each with why.
pub(super) fn print_excluded(excluded: &[proto::ExcludedModel]) {
    if excluded.is_empty() {
        return;
    }
    let (dups, unfit): (Vec<_>, Vec<_>) = excluded.iter().partition(|e| e.kind == "duplicate");
    if !unfit.is_empty() {
        eprintln!("left out, they do not take the dataset's images:");
        for e in unfit {
            eprintln!("  {}: {}", e.model, e.reason);
        }
    }
    for e in dups {
        eprintln!("left out {}: {}", e.model, e.reason);
    }
}

/// A comparison's rows in the connection's format: one per model, or one
/// per group when it is aggregated along a tag (`--by`).
pub(super) fn print_rows(conn: &Connection, c: &crate::domain::Comparison) {
    let listing = if c.by.is_empty() {
        crate::report::listing(&c.rows)
    } else {
        let csv = conn.output() == Format::Csv;
        crate::report::groups::group_listing(&c.groups, &c.by, csv)
    };
    print!("{}", listing.render(conn.output()));
}

/// Prints a comparison's recommendations: per loss its table, the reason
/// (and the tie-break when one decided), and the classes whose tolerance
/// falls most.
pub(super) fn print_recommendations(conn: &Connection, c: &crate::domain::Comparison) {
    for r in &c.recommendations {
        match conn.output() {
            Format::Table => println!("\nloss {}:", r.loss),
            Format::Markdown => println!("\n**loss {}**\n", r.loss),
            _ => {}
        }
        let listing = crate::report::recommendation_listing(r, &c.rows);
        print!("{}", listing.render(conn.output()));
        let falls: Vec<String> = r
            .tolerance_falls
            .iter()
            .take(5)
            .map(|c| {
                format!(
                    "{} ({:.3} → {:.3})",
                    crate::report::classes::name_or_label(&c.name, c.label),
                    c.at_largest_tau,
                    c.at_smallest_tau
                )
            })
            .collect();
        let falls = (!falls.is_empty()).then(|| {
            format!(
                "tolerance falls most, largest τ → smallest, for classes {}",
                falls.join(", ")
            )
        });
        // Text for people in a table or Markdown; stdout
        // stays the data in CSV and JSON.
        if conn.output() == Format::Table {
            println!("recommended: {}", r.reason);
            if let Some(f) = &falls {
                println!("{f}");
            }
        } else if conn.output() == Format::Markdown {
            println!("\nRecommended: {}.", r.reason);
            if let Some(f) = &falls {
                println!("\nThe {f}.");
            }
        } else {
            eprintln!("recommended ({}): {}", r.loss, r.reason);
            if let Some(f) = &falls {
                eprintln!("{f}");
            }
        }
    }
    if c.recommendations.is_empty() {
        eprintln!("no recommendation: no completed model has both uniformity and tolerance");
    }
}
