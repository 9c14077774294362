//! Warnings about a run's path, each with the step where it began:
//!
//! - complete collapse: every image maps to (nearly) the same embedding:
//!   uniformity −L_uniformity (Wang & Isola 2020, Eq. 1) below
//!   [`COLLAPSED_UNIFORMITY`] and the positive similarity above
//!   [`COLLAPSED_POSITIVE`];
//! - dimensional collapse (Jing et al. 2022): the effective rank (RankMe,
//!   Garrido et al. 2023) below [`RANK_FRACTION`] of its peak over the
//!   earlier checkpoints, or below 2;
//! - the small-τ regime (Wang & Liu 2021, §4 and Eq. 6): the penalty's
//!   entropy below [`SMALL_TAU_ENTROPY`] nats, i.e. the hardest one or two
//!   negatives take all the penalty, while uniformity has stopped rising
//!   (it rose less than [`PLATEAU`] since the previous checkpoint).

use crate::domain::{Report, RunWarning};

pub use crate::report::{collapsed, COLLAPSED_POSITIVE, COLLAPSED_UNIFORMITY};
/// Fraction of the peak effective rank below which dimensions collapsed.
pub const RANK_FRACTION: f64 = 0.5;
/// Penalty entropy, in nats, below which the hardest negatives take all.
pub const SMALL_TAU_ENTROPY: f64 = 1.0;
/// Least rise of uniformity between checkpoints that counts as rising.
pub const PLATEAU: f64 = 0.01;

/// The warnings of `path` ((step, report) in step order), the first step
/// of each kind.
pub fn detect(path: &[(u64, &Report)]) -> Vec<RunWarning> {
    let mut out: Vec<RunWarning> = Vec::new();
    let mut warn = |kind: &str, step: u64, message: String| {
        if !out.iter().any(|w| w.kind == kind) {
            out.push(RunWarning {
                kind: kind.into(),
                step,
                message,
            });
        }
    };
    let mut peak_rank: Option<(u64, f64)> = None;
    for (i, (step, r)) in path.iter().enumerate() {
        if let (true, Some(u), Some(p)) = (collapsed(r), r.uniformity, r.positive_similarity) {
            warn(
                "complete_collapse",
                *step,
                format!(
                    "complete collapse at step {step}: uniformity {u:.4}, positive similarity {p:.4}: every image has nearly the same embedding"
                ),
            );
        }
        if let Some(rank) = r.effective_rank {
            match peak_rank {
                Some((peak_step, peak)) if rank < RANK_FRACTION * peak => warn(
                    "dimensional_collapse",
                    *step,
                    format!(
                        "dimensional collapse at step {step}: effective rank {rank:.1}, under {:.0}% of its peak {peak:.1} at step {peak_step}",
                        RANK_FRACTION * 100.0
                    ),
                ),
                _ if rank < 2.0 => warn(
                    "dimensional_collapse",
                    *step,
                    format!(
                        "dimensional collapse at step {step}: effective rank {rank:.2} of {} dimensions",
                        r.embedding_dim
                    ),
                ),
                _ => {}
            }
            if peak_rank.is_none_or(|(_, p)| rank > p) {
                peak_rank = Some((*step, rank));
            }
        }
        if i > 0 && r.temperature > 0.0 {
            let previous = path[i - 1].1;
            if let (Some(h), Some(u), Some(u0)) =
                (r.penalty_entropy, r.uniformity, previous.uniformity)
            {
                if h < SMALL_TAU_ENTROPY && u - u0 < PLATEAU {
                    warn(
                        "small_tau",
                        *step,
                        format!(
                            "small-τ regime at step {step}: uniformity stopped rising ({u0:.4} → {u:.4}) while the penalty entropy is {h:.2} nats (about {:.1} negatives take the penalty) at τ = {}",
                            h.exp(),
                            r.temperature
                        ),
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(u: f64, pos: f64, rank: f64, h: f64) -> Report {
        Report {
            temperature: 0.1,
            uniformity: Some(u),
            positive_similarity: Some(pos),
            effective_rank: Some(rank),
            penalty_entropy: Some(h),
            embedding_dim: 16,
            ..Default::default()
        }
    }

    fn kinds(path: &[(u64, Report)]) -> Vec<(String, u64)> {
        let refs: Vec<(u64, &Report)> = path.iter().map(|(s, r)| (*s, r)).collect();
        detect(&refs)
            .into_iter()
            .map(|w| (w.kind, w.step))
            .collect()
    }

    #[test]
    fn a_healthy_run_raises_nothing() {
        let path = vec![
            (1, report(2.0, 0.8, 8.0, 3.0)),
            (2, report(3.0, 0.85, 10.0, 3.5)),
            (3, report(3.5, 0.9, 11.0, 4.0)),
            (4, report(3.505, 0.9, 11.0, 4.0)),
        ];
        assert!(kinds(&path).is_empty(), "{:?}", kinds(&path));
    }

    #[test]
    fn each_warning_fires_at_the_step_it_began() {
        let path = vec![
            (10, report(2.0, 0.8, 12.0, 3.0)),
            (20, report(3.0, 0.85, 10.0, 0.8)),
            (30, report(3.004, 0.9, 5.0, 0.5)),
            (40, report(0.01, 0.999, 1.0, 6.0)),
        ];
        assert_eq!(
            kinds(&path),
            [
                ("dimensional_collapse".to_string(), 30),
                ("small_tau".to_string(), 30),
                ("complete_collapse".to_string(), 40),
            ]
        );
        // A lone collapsed checkpoint: both collapses at once.
        let lone = vec![(5, report(0.0, 1.0, 1.0, 6.0))];
        assert_eq!(
            kinds(&lone),
            [
                ("complete_collapse".to_string(), 5),
                ("dimensional_collapse".to_string(), 5)
            ]
        );
    }
}
