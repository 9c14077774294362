//! The settings of an evaluation: a MetricSpec with every default filled
//! in, so that each report echoes exactly what it used.

use crate::data::augment::{AugmentParams, Recipe};
use crate::data::LoadedDataset;
use crate::domain::MetricSpec;
use crate::error::{Error, Result};
use crate::eval::Gallery;

/// Which splits of a dataset an evaluation uses: the test split (metrics,
/// kNN queries, probe test set) and the train split (kNN bank, probe
/// training set), when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splits {
    /// The split evaluated.
    pub test: String,
    /// The split the kNN bank and the probe are fitted on.
    pub train: Option<String>,
}

impl Splits {
    /// The splits of `dataset` for a request naming `test` and `train`
    /// (empty: the dataset's own defaults, then the general ones; see
    /// [`Splits::resolve`]).
    pub fn for_dataset(dataset: &LoadedDataset, test: &str, train: &str) -> Result<Self> {
        let m = &dataset.dataset.manifest;
        let or_default = |asked: &'_ str, default: &Option<String>| -> String {
            if asked.is_empty() {
                default.clone().unwrap_or_default()
            } else {
                asked.to_string()
            }
        };
        Self::resolve(
            dataset.dataset.summary.splits.keys(),
            &or_default(test, &m.test_split),
            &or_default(train, &m.train_split),
        )
    }

    /// The splits asked for (empty: the defaults) among `have`: the test
    /// split is `test`, else `val`; the train split is `train` when there is
    /// one. A split asked for that is not there is INVALID_ARGUMENT naming
    /// the flag and the splits there are.
    pub fn resolve<'a>(
        have: impl IntoIterator<Item = &'a String> + Clone,
        test: &str,
        train: &str,
    ) -> Result<Self> {
        let has = |name: &str| have.clone().into_iter().any(|s| s == name);
        let listed = || have.clone().into_iter().cloned().collect::<Vec<_>>();
        let test = if !test.is_empty() {
            if !has(test) {
                return Err(Error::InvalidArgument(format!(
                    "the dataset has no split {test:?} (`test_split`); it has {:?}",
                    listed()
                )));
            }
            test.to_string()
        } else if has("test") {
            "test".into()
        } else if has("val") {
            "val".into()
        } else {
            return Err(Error::InvalidArgument(format!(
                "the dataset has no test or val split; name the one to evaluate with `test_split` (it has {:?})",
                listed()
            )));
        };
        let train = if !train.is_empty() {
            if !has(train) {
                return Err(Error::InvalidArgument(format!(
                    "the dataset has no split {train:?} (`train_split`); it has {:?}",
                    listed()
                )));
            }
            Some(train.to_string())
        } else if has("train") && test != "train" {
            Some("train".into())
        } else {
            None
        };
        Ok(Self { test, train })
    }
}

/// The largest value of each spec field that sets an amount of work: a
/// request beyond one is INVALID_ARGUMENT, naming the field and its bound.
pub const LIMITS: [(&str, u64); 8] = [
    // Pairs drawn by the sampled uniformity: about 1 s per 10^8 on one core.
    ("uniformity_samples", 1_000_000_000),
    // Rows up to which uniformity is exact (quadratic in the rows).
    ("uniformity_exact_max_rows", 200_000),
    // Neighbours of the nearest-negative and penalty profiles.
    ("neighbors_k", 1_000),
    // Neighbours of the kNN vote.
    ("knn_k", 10_000),
    // L-BFGS iterations of the linear probe.
    ("linear_max_iter", 100_000),
    // The largest K of Recall@K (each K asked for).
    ("recall_ks", 10_000),
    // Lloyd iterations of the k-means.
    ("kmeans_iterations", 10_000),
    // Runs of the k-means.
    ("kmeans_restarts", 100),
];

/// The K of Recall@K when the spec names none.
pub const DEFAULT_RECALL_KS: [usize; 4] = [1, 2, 4, 8];

/// The bound of a spec field in [`LIMITS`].
pub fn limit(field: &str) -> u64 {
    LIMITS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, v)| *v)
        .expect("a field with a limit")
}

/// A MetricSpec with its defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// t of the uniformity loss.
    pub uniformity_t: f64,
    /// k of the neighbour and penalty profiles.
    pub neighbors_k: usize,
    /// Seed of the positive views.
    pub augmentation_seed: u64,
    /// How the positive views are made.
    pub augmentation: AugmentParams,
    /// The split of the user's own positive views, when given (instead of
    /// augmenting).
    pub positives_split: Option<String>,
    /// τ of the penalty profile.
    pub penalty_temperature: f64,
    /// k of the kNN vote.
    pub knn_k: usize,
    /// T of the kNN vote.
    pub knn_temperature: f64,
    /// C of the linear probe.
    pub linear_c: f64,
    /// Most L-BFGS iterations.
    pub linear_max_iter: usize,
    /// Gradient tolerance of the probe.
    pub linear_tol: f64,
    /// Fraction of the train rows the probe is fitted on (stratified).
    pub linear_train_fraction: f64,
    /// Seed of the probe's train subset.
    pub linear_train_seed: u64,
    /// α of the alignment.
    pub alignment_alpha: f64,
    /// Above this many test rows uniformity is sampled.
    pub uniformity_exact_max_rows: u64,
    /// Pairs of the sampled uniformity.
    pub uniformity_samples: u64,
    /// The K of Recall@K.
    pub recall_ks: Vec<usize>,
    /// The retrieval gallery (None: the train split where there is one,
    /// else the test split).
    pub retrieval_gallery: Option<Gallery>,
    /// Lloyd iterations of the k-means.
    pub kmeans_iterations: u32,
    /// Runs of the k-means.
    pub kmeans_restarts: u32,
    /// Seed of the k-means.
    pub kmeans_seed: u64,
    /// The switches, as given.
    pub skip: Skip,
}

/// Parts to leave out.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[allow(missing_docs)]
pub struct Skip {
    pub uniformity: bool,
    pub alignment: bool,
    pub tolerance: bool,
    pub nearest_negatives: bool,
    pub penalty: bool,
    pub effective_rank: bool,
    pub knn: bool,
    pub linear: bool,
    pub per_class: bool,
    pub retrieval: bool,
    pub clustering: bool,
}

impl Settings {
    /// Resolves `spec` (absent fields take their defaults; the penalty τ
    /// defaults to the model's training τ, or 1 for losses without one) and
    /// checks the values.
    pub fn resolve(spec: Option<&MetricSpec>, training_tau: f64) -> Result<Self> {
        let s = spec.cloned().unwrap_or_default();
        let augmentation = match &s.augmentation {
            None => AugmentParams::default(),
            Some(a) => {
                let recipe = Recipe::parse(&a.recipe).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "spec.augmentation.recipe {:?} is not a recipe (one of {}){}",
                        a.recipe,
                        Recipe::NAMES.join(", "),
                        crate::suggest::did_you_mean(&a.recipe, &Recipe::NAMES)
                    ))
                })?;
                let d = AugmentParams::of(recipe);
                AugmentParams {
                    recipe,
                    crop_scale: (
                        a.crop_scale_min.unwrap_or(d.crop_scale.0),
                        a.crop_scale_max.unwrap_or(d.crop_scale.1),
                    ),
                    jitter: a.jitter.unwrap_or(d.jitter),
                    grayscale: a.grayscale.unwrap_or(d.grayscale),
                    flip: a.flip.unwrap_or(d.flip),
                    blur: a.blur.unwrap_or(d.blur),
                }
            }
        };
        augmentation.check().map_err(Error::InvalidArgument)?;
        let retrieval_gallery = match s.retrieval_gallery.as_str() {
            "" => None,
            "train" => Some(Gallery::Train),
            "test" => Some(Gallery::Test),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "spec.retrieval_gallery {other:?} is not a gallery (\"train\" or \"test\"){}",
                    crate::suggest::did_you_mean(other, &["train", "test"])
                )))
            }
        };
        let settings = Self {
            recall_ks: if s.recall_ks.is_empty() {
                DEFAULT_RECALL_KS.to_vec()
            } else {
                s.recall_ks.iter().map(|&k| k as usize).collect()
            },
            retrieval_gallery,
            kmeans_iterations: s.kmeans_iterations.unwrap_or(20),
            kmeans_restarts: s.kmeans_restarts.unwrap_or(1),
            kmeans_seed: s.kmeans_seed.unwrap_or(1234),
            augmentation,
            positives_split: Some(s.positives_split.clone()).filter(|p| !p.is_empty()),
            uniformity_t: s.uniformity_t.unwrap_or(2.0),
            neighbors_k: s.neighbors_k.unwrap_or(10) as usize,
            augmentation_seed: s.augmentation_seed.unwrap_or(0),
            penalty_temperature: s.penalty_temperature.unwrap_or(if training_tau > 0.0 {
                training_tau
            } else {
                1.0
            }),
            knn_k: s.knn_k.unwrap_or(200) as usize,
            knn_temperature: s.knn_temperature.unwrap_or(0.1),
            linear_c: s.linear_c.unwrap_or(1.0),
            linear_max_iter: s.linear_max_iter.unwrap_or(1000) as usize,
            linear_tol: s.linear_tol.unwrap_or(1e-4),
            linear_train_fraction: s.linear_train_fraction.unwrap_or(1.0),
            linear_train_seed: s.linear_train_seed.unwrap_or(0),
            alignment_alpha: s.alignment_alpha.unwrap_or(2.0),
            uniformity_exact_max_rows: s.uniformity_exact_max_rows.unwrap_or(50_000),
            uniformity_samples: s.uniformity_samples.unwrap_or(1_000_000),
            skip: Skip {
                uniformity: s.skip_uniformity,
                alignment: s.skip_alignment,
                tolerance: s.skip_tolerance,
                nearest_negatives: s.skip_nearest_negatives,
                penalty: s.skip_penalty,
                effective_rank: s.skip_effective_rank,
                knn: s.skip_knn,
                linear: s.skip_linear,
                per_class: s.skip_per_class,
                retrieval: s.skip_retrieval,
                clustering: s.skip_clustering,
            },
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<()> {
        let positive = [
            ("uniformity_t", self.uniformity_t),
            ("penalty_temperature", self.penalty_temperature),
            ("knn_temperature", self.knn_temperature),
            ("linear_c", self.linear_c),
            ("linear_tol", self.linear_tol),
            ("alignment_alpha", self.alignment_alpha),
        ];
        if let Some((name, v)) = positive.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            return Err(Error::InvalidArgument(format!(
                "spec.{name} must be > 0, got {v}"
            )));
        }
        for (name, v) in [
            ("neighbors_k", self.neighbors_k),
            ("knn_k", self.knn_k),
            ("linear_max_iter", self.linear_max_iter),
            (
                "recall_ks",
                self.recall_ks.iter().copied().min().unwrap_or(1),
            ),
            ("kmeans_iterations", self.kmeans_iterations as usize),
            ("kmeans_restarts", self.kmeans_restarts as usize),
        ] {
            if v == 0 {
                return Err(Error::InvalidArgument(format!(
                    "spec.{name} must be at least 1"
                )));
            }
        }
        if self.kmeans_seed > i32::MAX as u64 {
            return Err(Error::InvalidArgument(format!(
                "spec.kmeans_seed must be at most {} (faiss's seed is an int), got {}",
                i32::MAX,
                self.kmeans_seed
            )));
        }
        let f = self.linear_train_fraction;
        if !(f.is_finite() && f > 0.0 && f <= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "spec.linear_train_fraction must be in (0, 1], got {f}"
            )));
        }
        if self.uniformity_samples < 2 {
            return Err(Error::InvalidArgument(
                "spec.uniformity_samples must be at least 2".into(),
            ));
        }
        for (name, v) in [
            ("uniformity_samples", self.uniformity_samples),
            ("uniformity_exact_max_rows", self.uniformity_exact_max_rows),
            ("neighbors_k", self.neighbors_k as u64),
            ("knn_k", self.knn_k as u64),
            ("linear_max_iter", self.linear_max_iter as u64),
            (
                "recall_ks",
                self.recall_ks.iter().copied().max().unwrap_or(1) as u64,
            ),
            ("kmeans_iterations", u64::from(self.kmeans_iterations)),
            ("kmeans_restarts", u64::from(self.kmeans_restarts)),
        ] {
            let max = limit(name);
            if v > max {
                return Err(Error::InvalidArgument(format!(
                    "spec.{name} must be at most {max}, got {v}"
                )));
            }
        }
        Ok(())
    }

    /// Whether anything asked for reads the train split: the kNN, the
    /// probe, or the retrieval metrics with the train split as gallery.
    pub fn uses_train(&self) -> bool {
        !(self.skip.knn && self.skip.linear)
            || (!self.skip.retrieval && self.retrieval_gallery != Some(Gallery::Test))
    }

    /// Checks that the positives split, when given, is a split of `dataset`
    /// with as many images as `test` (INVALID_ARGUMENT naming the field).
    pub fn check_positives(&self, dataset: &LoadedDataset, test: &str) -> Result<()> {
        let Some(name) = &self.positives_split else {
            return Ok(());
        };
        let sizes = &dataset.dataset.summary.splits;
        let Some(&n) = sizes.get(name) else {
            return Err(Error::InvalidArgument(format!(
                "spec.positives_split: the dataset has no split {name:?}; it has {:?}",
                sizes.keys().collect::<Vec<_>>()
            )));
        };
        let want = sizes.get(test).copied().unwrap_or(0);
        if n != want {
            return Err(Error::InvalidArgument(format!(
                "spec.positives_split: split {name:?} has {n} images but the test split {test:?} \
                 has {want}: its rows must be positive views of the test images, row for row"
            )));
        }
        Ok(())
    }

    /// The settings as a MetricSpec with every field set.
    pub fn to_spec(&self) -> MetricSpec {
        MetricSpec {
            uniformity_t: Some(self.uniformity_t),
            neighbors_k: Some(self.neighbors_k as u32),
            augmentation_seed: Some(self.augmentation_seed),
            augmentation: Some(crate::domain::Augmentation {
                recipe: self.augmentation.recipe.as_str().to_string(),
                crop_scale_min: Some(self.augmentation.crop_scale.0),
                crop_scale_max: Some(self.augmentation.crop_scale.1),
                jitter: Some(self.augmentation.jitter),
                grayscale: Some(self.augmentation.grayscale),
                flip: Some(self.augmentation.flip),
                blur: Some(self.augmentation.blur),
            }),
            positives_split: self.positives_split.clone().unwrap_or_default(),
            penalty_temperature: Some(self.penalty_temperature),
            knn_k: Some(self.knn_k as u32),
            knn_temperature: Some(self.knn_temperature),
            linear_c: Some(self.linear_c),
            linear_max_iter: Some(self.linear_max_iter as u32),
            linear_tol: Some(self.linear_tol),
            linear_train_fraction: Some(self.linear_train_fraction),
            linear_train_seed: Some(self.linear_train_seed),
            alignment_alpha: Some(self.alignment_alpha),
            uniformity_exact_max_rows: Some(self.uniformity_exact_max_rows),
            uniformity_samples: Some(self.uniformity_samples),
            skip_uniformity: self.skip.uniformity,
            skip_alignment: self.skip.alignment,
            skip_tolerance: self.skip.tolerance,
            skip_nearest_negatives: self.skip.nearest_negatives,
            skip_penalty: self.skip.penalty,
            skip_effective_rank: self.skip.effective_rank,
            skip_knn: self.skip.knn,
            skip_linear: self.skip.linear,
            skip_per_class: self.skip.per_class,
            recall_ks: self.recall_ks.iter().map(|&k| k as u32).collect(),
            retrieval_gallery: self
                .retrieval_gallery
                .map_or("", Gallery::as_str)
                .to_string(),
            kmeans_iterations: Some(self.kmeans_iterations),
            kmeans_restarts: Some(self.kmeans_restarts),
            kmeans_seed: Some(self.kmeans_seed),
            skip_retrieval: self.skip.retrieval,
            skip_clustering: self.skip.clustering,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_filled_and_echoed() {
        let s = Settings::resolve(None, 0.2).unwrap();
        assert_eq!(
            (s.uniformity_t, s.neighbors_k, s.knn_k, s.knn_temperature),
            (2.0, 10, 200, 0.1)
        );
        assert_eq!(s.penalty_temperature, 0.2, "the model's training tau");
        assert_eq!(
            Settings::resolve(None, 0.0).unwrap().penalty_temperature,
            1.0
        );
        let spec = s.to_spec();
        assert_eq!(
            Settings::resolve(Some(&spec), 0.7).unwrap(),
            s,
            "a resolved spec resolves to itself"
        );
    }

    #[test]
    fn splits_default_to_test_then_val_and_name_the_flag_when_missing() {
        let have = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let s = Splits::resolve(&have(&["test", "train"]), "", "").unwrap();
        assert_eq!(
            (s.test.as_str(), s.train.as_deref()),
            ("test", Some("train"))
        );
        let s = Splits::resolve(&have(&["train", "val"]), "", "").unwrap();
        assert_eq!(
            (s.test.as_str(), s.train.as_deref()),
            ("val", Some("train"))
        );
        let s = Splits::resolve(&have(&["a", "b"]), "b", "a").unwrap();
        assert_eq!((s.test.as_str(), s.train.as_deref()), ("b", Some("a")));
        let err = Splits::resolve(&have(&["a"]), "", "")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`test_split`") && err.contains("\"a\""),
            "{err}"
        );
        let err = Splits::resolve(&have(&["test"]), "", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`train_split`"), "{err}");
        assert_eq!(
            Splits::resolve(&have(&["test"]), "", "").unwrap().train,
            None
        );
    }

    #[test]
    fn bad_values_are_named() {
        let spec = MetricSpec {
            knn_temperature: Some(0.0),
            ..Default::default()
        };
        let err = Settings::resolve(Some(&spec), 0.1).unwrap_err().to_string();
        assert!(err.contains("knn_temperature"), "{err}");
        let spec = MetricSpec {
            knn_k: Some(0),
            ..Default::default()
        };
        assert!(Settings::resolve(Some(&spec), 0.1)
            .unwrap_err()
            .to_string()
            .contains("knn_k"));
        let spec = MetricSpec {
            retrieval_gallery: "tset".into(),
            ..Default::default()
        };
        let err = Settings::resolve(Some(&spec), 0.1).unwrap_err().to_string();
        assert!(
            err.contains("retrieval_gallery") && err.contains("\"test\""),
            "{err}"
        );
        let spec = MetricSpec {
            recall_ks: vec![4, 0],
            ..Default::default()
        };
        let err = Settings::resolve(Some(&spec), 0.1).unwrap_err().to_string();
        assert!(err.contains("recall_ks must be at least 1"), "{err}");
    }

    #[test]
    fn the_probe_fraction_is_in_zero_one_and_echoed() {
        for bad in [0.0, -0.1, 1.5, f64::NAN] {
            let spec = MetricSpec {
                linear_train_fraction: Some(bad),
                ..Default::default()
            };
            let err = Settings::resolve(Some(&spec), 0.1).unwrap_err().to_string();
            assert!(err.contains("linear_train_fraction"), "{err}");
        }
        let spec = MetricSpec {
            linear_train_fraction: Some(0.1),
            linear_train_seed: Some(4),
            ..Default::default()
        };
        let echoed = Settings::resolve(Some(&spec), 0.1).unwrap().to_spec();
        assert_eq!(echoed.linear_train_fraction, Some(0.1));
        assert_eq!(echoed.linear_train_seed, Some(4));
        let defaults = Settings::resolve(None, 0.1).unwrap().to_spec();
        assert_eq!(defaults.linear_train_fraction, Some(1.0));
    }

    #[test]
    fn every_value_that_sets_work_is_bounded_and_the_bound_is_named() {
        let at = |field: &str, v: u64| {
            let mut spec = MetricSpec::default();
            match field {
                "uniformity_samples" => spec.uniformity_samples = Some(v),
                "uniformity_exact_max_rows" => spec.uniformity_exact_max_rows = Some(v),
                "neighbors_k" => spec.neighbors_k = Some(v as u32),
                "knn_k" => spec.knn_k = Some(v as u32),
                "linear_max_iter" => spec.linear_max_iter = Some(v as u32),
                "recall_ks" => spec.recall_ks = vec![1, v as u32],
                "kmeans_iterations" => spec.kmeans_iterations = Some(v as u32),
                "kmeans_restarts" => spec.kmeans_restarts = Some(v as u32),
                other => panic!("{other}"),
            }
            Settings::resolve(Some(&spec), 0.1)
        };
        for (field, max) in LIMITS {
            assert!(at(field, max).is_ok(), "{field} at its bound");
            let err = at(field, max + 1).unwrap_err().to_string();
            assert!(
                err.contains(field) && err.contains(&max.to_string()),
                "{err}"
            );
        }
    }
}
