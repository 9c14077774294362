//! The embedding space as a picture: a stratified, seeded sample of a
//! split's rows, each model's embeddings of them (on the unit sphere, as
//! every metric sees them) projected to two
//! dimensions, and the models drawn side by side with one colour per class
//! — where a small τ spreads the classes uniformly over the sphere and a
//! large τ keeps similar samples together (Wang & Liu 2021, Sec. 4).
//!
//! PCA is exact: the two leading eigenvectors of the covariance (LAPACK
//! dsyev), each signed so that its largest entry is positive, as
//! scikit-learn's `PCA` signs them. t-SNE is Barnes–Hut t-SNE (van der
//! Maaten 2014, the `bhtsne` crate, θ = 0.5) started from the PCA scaled to
//! a standard deviation of 1e-4 (scikit-learn's `init="pca"`) and run on
//! one thread, so that the same request draws the same picture.

use std::fmt::Write as _;

use crate::domain::{Projection, Projections};
use crate::error::{Error, Result};

/// The most rows a projection takes.
pub const MAX_ROWS: usize = 5000;
/// The rows a projection takes unless asked otherwise.
pub const DEFAULT_ROWS: usize = 2000;
/// t-SNE's perplexity unless asked otherwise.
pub const DEFAULT_PERPLEXITY: f64 = 30.0;
/// t-SNE's iterations.
const TSNE_EPOCHS: usize = 1000;

/// How rows are projected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Principal components.
    Pca,
    /// Barnes–Hut t-SNE.
    Tsne,
}

impl Method {
    /// Its name in reports and requests.
    pub fn name(self) -> &'static str {
        match self {
            Method::Pca => "pca",
            Method::Tsne => "tsne",
        }
    }
}

/// Up to `max_rows` rows of a split with these labels, each class in
/// proportion to its size (largest remainders get the rows left), chosen
/// within the class by a seeded shuffle; ascending.
pub fn sample(labels: &[i64], max_rows: usize, seed: u64) -> Vec<usize> {
    if labels.len() <= max_rows {
        return (0..labels.len()).collect();
    }
    let mut by_class: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (row, &label) in labels.iter().enumerate() {
        by_class.entry(label).or_default().push(row);
    }
    let n = labels.len() as f64;
    let mut quota: Vec<(i64, usize, f64)> = by_class
        .iter()
        .map(|(&label, rows)| {
            let exact = rows.len() as f64 * max_rows as f64 / n;
            (label, exact.floor() as usize, exact - exact.floor())
        })
        .collect();
    let mut left = max_rows - quota.iter().map(|q| q.1).sum::<usize>();
    let mut order: Vec<usize> = (0..quota.len()).collect();
    order.sort_by(|&a, &b| quota[b].2.total_cmp(&quota[a].2).then(a.cmp(&b)));
    for i in order {
        if left == 0 {
            break;
        }
        quota[i].1 += 1;
        left -= 1;
    }
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut chosen = Vec::with_capacity(max_rows);
    for (label, take, _) in quota {
        let mut rows = by_class.remove(&label).unwrap_or_default();
        // Fisher–Yates, the first `take` of the shuffle.
        for i in 0..take.min(rows.len()) {
            let j = i + rng.below((rows.len() - i) as u64) as usize;
            rows.swap(i, j);
        }
        chosen.extend_from_slice(&rows[..take.min(rows.len())]);
    }
    chosen.sort_unstable();
    chosen
}

/// The first two principal components of `x` [n, d] (row-major): the
/// coordinates [n, 2] and the share of the variance along each.
pub fn pca(x: &[f32], n: usize, d: usize) -> Result<(Vec<f32>, [f64; 2])> {
    if n < 2 || d < 2 {
        return Err(Error::FailedPrecondition(format!(
            "a projection needs 2 rows of 2 dimensions or more, got {n} of {d}"
        )));
    }
    let mut mean = vec![0f64; d];
    for row in x.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred: Vec<f64> = x
        .chunks_exact(d)
        .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| f64::from(v) - m))
        .collect();
    let mut cov = crate::blas::syrk_ata(&centred, n, d);
    cov.iter_mut().for_each(|c| *c /= (n - 1) as f64);
    let total: f64 = (0..d).map(|i| cov[i * d + i]).sum();
    let (values, vectors) = crate::blas::symmetric_eigen(cov, d).map_err(|e| Error::Internal {
        task: "PCA".into(),
        message: e,
    })?;
    // Ascending: the last two are the leading components.
    let axes: Vec<Vec<f64>> = [d - 1, d - 2]
        .iter()
        .map(|&j| {
            let mut v = vectors[j * d..(j + 1) * d].to_vec();
            let largest = v
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(0.0);
            if largest < 0.0 {
                v.iter_mut().for_each(|e| *e = -*e);
            }
            v
        })
        .collect();
    let mut out = Vec::with_capacity(2 * n);
    for row in centred.chunks_exact(d) {
        for axis in &axes {
            out.push(row.iter().zip(axis).map(|(a, b)| a * b).sum::<f64>() as f32);
        }
    }
    let share = |v: f64| if total > 0.0 { v.max(0.0) / total } else { 0.0 };
    Ok((out, [share(values[d - 1]), share(values[d - 2])]))
}

/// t-SNE of `x` [n, d] to [n, 2] with `perplexity` (lowered to what `n`
/// rows allow), and the fit's Kullback–Leibler divergence.
pub fn tsne(x: &[f32], n: usize, d: usize, perplexity: f64) -> Result<(Vec<f32>, Option<f64>)> {
    let (start, _) = pca(x, n, d)?;
    // scikit-learn's init="pca": the PCA scaled to a std of 1e-4 along x.
    let mean = start.iter().step_by(2).map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let var = start
        .iter()
        .step_by(2)
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n as f64;
    let scale = if var > 0.0 { 1e-4 / var.sqrt() } else { 1.0 };
    let start: Vec<f32> = start
        .iter()
        .map(|&v| (f64::from(v) * scale) as f32)
        .collect();
    // Each row needs 3 × perplexity neighbours.
    let perplexity = perplexity.min(((n - 1) as f64 / 3.0).floor()).max(1.0) as f32;
    let rows: Vec<&[f32]> = x.chunks_exact(d).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| Error::Internal {
            task: "t-SNE".into(),
            message: e.to_string(),
        })?;
    let (embedding, kl) = pool.install(|| {
        let mut fit: bhtsne::tSNE<f32, &[f32]> = bhtsne::tSNE::new(&rows);
        fit.perplexity(perplexity)
            .epochs(TSNE_EPOCHS)
            .initial_embedding(start)
            .barnes_hut(0.5, |a, b| {
                a.iter()
                    .zip(b.iter())
                    .map(|(p, q)| (p - q) * (p - q))
                    .sum::<f32>()
                    .sqrt()
            });
        (fit.embedding(), fit.kl_divergence())
    });
    Ok((embedding, kl.map(f64::from)))
}

/// One model's projection of its embeddings `x` [n, d] by `method`, each
/// row first scaled to unit length (the sphere every metric works on; a
/// zero row stays zero).
pub fn project(
    model: &str,
    temperature: f64,
    x: &[f32],
    d: usize,
    method: Method,
    perplexity: f64,
) -> Result<Projection> {
    let n = x.len() / d.max(1);
    let unit = super::neighbours::unit_rows(x, d);
    let x = unit.as_slice();
    let mut p = Projection {
        model: model.to_string(),
        temperature,
        ..Default::default()
    };
    match method {
        Method::Pca => {
            let (coords, shares) = pca(x, n, d)?;
            p.coordinates = coords;
            p.explained_variance = shares.to_vec();
        }
        Method::Tsne => {
            let (coords, kl) = tsne(x, n, d, perplexity)?;
            p.coordinates = coords;
            p.kl_divergence = kl;
        }
    }
    Ok(p)
}

/// The categorical colour of class `i` of `n`: Tableau's ten, then hues
/// spaced by the golden angle.
fn colour(i: usize) -> String {
    const TEN: [&str; 10] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf",
    ];
    match TEN.get(i) {
        Some(c) => (*c).to_string(),
        None => format!("hsl({:.0}, 65%, 45%)", (i as f64 * 137.508) % 360.0),
    }
}

/// Text for SVG: `&`, `<`, `>` and quotes escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The picture of `p`: one square panel per model, side by side, each
/// point a sampled row in its class's colour (its class and row as its
/// title), the class names as the legend.
pub fn draw(p: &Projections) -> String {
    const PANEL: f64 = 420.0;
    const PAD: f64 = 30.0;
    let panels = p.projections.len().max(1) as f64;
    let classes: Vec<i64> = {
        let mut c: Vec<i64> = p.labels.clone();
        c.sort_unstable();
        c.dedup();
        c
    };
    let name = |label: i64| crate::domain::class_name(&p.class_names, label);
    let legend_rows = classes.len().div_ceil(5) as f64;
    let (width, height) = (
        panels * (PANEL + PAD) + PAD,
        PANEL + 2.0 * PAD + 24.0 + 20.0 * legend_rows,
    );
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="13"><rect width="100%" height="100%" fill="white"/>"#
    );
    for (k, proj) in p.projections.iter().enumerate() {
        let x0 = PAD + k as f64 * (PANEL + PAD);
        let y0 = PAD + 24.0;
        let title = if proj.temperature > 0.0 {
            format!("{} (τ = {})", proj.model, proj.temperature)
        } else {
            proj.model.clone()
        };
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="15">{}</text><rect x="{x0:.1}" y="{y0:.1}" width="{PANEL}" height="{PANEL}" fill="none" stroke="#999"/>"##,
            x0 + PANEL / 2.0,
            PAD + 10.0,
            escape(&title)
        );
        let xs: Vec<f64> = proj
            .coordinates
            .iter()
            .step_by(2)
            .map(|&v| f64::from(v))
            .collect();
        let ys: Vec<f64> = proj
            .coordinates
            .iter()
            .skip(1)
            .step_by(2)
            .map(|&v| f64::from(v))
            .collect();
        let span = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, (hi - lo).max(1e-12))
        };
        let ((xl, xw), (yl, yw)) = (span(&xs), span(&ys));
        let w = xw.max(yw);
        let inner = PANEL - 16.0;
        svg.push_str(r#"<g class="points">"#);
        for (i, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
            let label = p.labels.get(i).copied().unwrap_or(0);
            let c = classes.binary_search(&label).unwrap_or(0);
            let px = x0 + 8.0 + (x - xl) / w * inner + (w - xw) / w * inner / 2.0;
            let py = y0 + 8.0 + inner - ((y - yl) / w * inner + (w - yw) / w * inner / 2.0);
            let _ = write!(
                svg,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="2.2" fill="{}" fill-opacity="0.8"><title>{} · row {}</title></circle>"#,
                colour(c),
                escape(&name(label)),
                p.rows.get(i).copied().unwrap_or(i as u64)
            );
        }
        svg.push_str("</g>");
    }
    let ly = PAD + 24.0 + PANEL + 22.0;
    for (i, &label) in classes.iter().enumerate() {
        let (col, row) = ((i % 5) as f64, (i / 5) as f64);
        let (lx, y) = (PAD + col * 160.0, ly + row * 20.0);
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="5" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 5.0,
            y - 4.0,
            colour(i),
            lx + 14.0,
            y,
            escape(&name(label))
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_keeps_each_class_in_proportion_and_follows_its_seed() {
        // 600 of class 0, 300 of 1, 100 of 2.
        let labels: Vec<i64> = (0..1000)
            .map(|i| {
                if i < 600 {
                    0
                } else if i < 900 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let rows = sample(&labels, 100, 7);
        assert_eq!(rows.len(), 100);
        let count = |c| rows.iter().filter(|&&r| labels[r] == c).count();
        assert_eq!((count(0), count(1), count(2)), (60, 30, 10));
        assert!(
            rows.windows(2).all(|w| w[0] < w[1]),
            "ascending, no repeats"
        );
        assert_eq!(
            rows,
            sample(&labels, 100, 7),
            "the same seed, the same rows"
        );
        assert_ne!(rows, sample(&labels, 100, 8));
        assert_eq!(sample(&labels, 5000, 1).len(), 1000, "all rows when fewer");
        // Largest remainders: 7 rows of 3 equal classes of 10 → 3, 2, 2.
        let three: Vec<i64> = (0..30).map(|i| i / 10).collect();
        assert_eq!(sample(&three, 7, 0).len(), 7);
    }

    #[test]
    fn pca_equals_scikit_learn() {
        // sklearn.decomposition.PCA(n_components=2, svd_solver="full")
        // .fit_transform of these rows, scikit-learn 1.9.1 (which signs each
        // axis so that its largest entry is positive).
        let x: [f32; 24] = [
            2., 0., 1., 0., 1., 3., 4., 2., 0., 1., 5., 2., 3., 3., 3., 0., 0., 1., 5., 1., 4., 2.,
            4., 0.,
        ];
        let want = [
            -1.8095051038,
            0.4082482905,
            -1.9027283799,
            -0.8164965809,
            0.915725596,
            0.8164965809,
            2.1385060318,
            -2.0412414523,
            1.2508120821,
            0.8164965809,
            -2.7282734789,
            -1.2247448714,
            0.3631181324,
            3.6742346142,
            1.7723451203,
            -1.6329931619,
        ];
        let (coords, shares) = pca(&x, 8, 3).unwrap();
        for (got, want) in coords.iter().zip(want) {
            assert!((f64::from(*got) - want).abs() < 1e-5, "{coords:?}");
        }
        assert!((shares[0] - 0.3941886086985686).abs() < 1e-9, "{shares:?}");
        assert!((shares[1] - 0.3847695390781563).abs() < 1e-9, "{shares:?}");
    }

    #[test]
    fn tsne_is_the_same_for_the_same_rows_and_keeps_clusters_apart() {
        // Three tight clusters in 8 dimensions.
        let mut rng = crate::rng::SplitMix64::new(3);
        let mut x = Vec::new();
        let mut labels = Vec::new();
        for i in 0..150 {
            let c = i % 3;
            labels.push(c);
            for j in 0..8 {
                x.push(if j == c * 2 { 10.0 } else { 0.0 } + rng.normal() as f32 * 0.1);
            }
        }
        let (a, kl) = tsne(&x, 150, 8, 30.0).unwrap();
        let (b, _) = tsne(&x, 150, 8, 30.0).unwrap();
        assert_eq!(a, b, "bit for bit");
        assert!(kl.is_some());
        // Each point's nearest other point is of its own cluster.
        for i in 0..150 {
            let nearest = (0..150)
                .filter(|&j| j != i)
                .min_by(|&p, &q| {
                    let dist = |j: usize| {
                        (a[2 * i] - a[2 * j]).powi(2) + (a[2 * i + 1] - a[2 * j + 1]).powi(2)
                    };
                    dist(p).total_cmp(&dist(q))
                })
                .unwrap();
            assert_eq!(labels[i], labels[nearest]);
        }
    }

    #[test]
    fn the_picture_escapes_class_names_and_has_a_point_per_row_and_model() {
        let p = Projections {
            labels: vec![0, 1, 1],
            rows: vec![0, 4, 9],
            class_names: vec!["<b>".into(), "x&y".into()],
            projections: vec![
                Projection {
                    model: "a".into(),
                    coordinates: vec![0.0, 0.0, 1.0, 1.0, 2.0, 0.5],
                    ..Default::default()
                },
                Projection {
                    model: "b".into(),
                    temperature: 0.2,
                    coordinates: vec![0.0, 1.0, 1.0, 0.0, 0.5, 0.5],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let svg = draw(&p);
        assert_eq!(
            svg.matches("<circle cx").count(),
            6 + 2,
            "6 points and 2 legend marks"
        );
        assert!(svg.contains("&lt;b&gt;") && svg.contains("x&amp;y") && !svg.contains("<b>"));
        assert!(svg.contains("b (τ = 0.2)"));
    }
}
