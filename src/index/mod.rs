//! Nearest-neighbour search over L2-normalised vectors by inner product
//! (cosine similarity). Exact search is the default; faiss's HNSW and IVF
//! indexes are options for large banks, and their recall@k against exact
//! search is measured with the results ([`recall_at_k`]).
//!
//! The exact engine ([`Engine`]) is a low-precision screen whose
//! candidates are re-ranked in float32, so that its answer is the float32
//! one by construction ([`screen`]): in bfloat16 where the processor has
//! AVX-512 BF16, in 8-bit integers where it has AVX-512 VNNI or AVX2, when
//! the search is large enough to gain from it; or BLAS sgemm plus a
//! parallel top-k selection ([`exact`]). The processor's instruction sets
//! give the first guess; each class of searches then runs on the engine
//! measured fastest on this machine ([`measured`]), unless
//! `EMBEDEVAL_KNN_ENGINE` in the server's environment forces one. All give
//! the same neighbours (tested; a near-tie at the k-th place, within the
//! last bits of the summation order, may fall either way). faiss's
//! IndexFlatIP is available as [`IndexKind::FaissFlat`] and
//! gives the same neighbours (tested); it is not the default because,
//! measured here (benches/eval.rs, 10,000 × 50,000, d = 128, k = 200), the
//! faiss built from the crate's vendored source searches about 2× slower
//! than the faiss-cpu wheel, while both exact engines are faster than it.
//! Calls block; run them off the async workers.

pub mod exact;
pub mod measured;
#[cfg(target_arch = "x86_64")]
pub mod screen;

use faiss::index::autotune::ParameterSpace;
use faiss::index::IndexImpl;
use faiss::{index_factory, ConcurrentIndex, FlatIndex, Index, MetricType};

use crate::error::{Error, Result};

/// The k nearest bank rows of each query, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors {
    /// Neighbours per query.
    pub k: usize,
    /// Row-major [queries, k] bank row ids (-1 where the bank has fewer rows).
    pub ids: Vec<i64>,
    /// Row-major [queries, k] inner products.
    pub similarities: Vec<f32>,
}

/// Which index answers the searches.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum IndexKind {
    /// Exact: a low-precision screen with its float32 re-rank, or BLAS
    /// Gram blocks and a top-k selection ([`Engine`]).
    #[default]
    Exact,
    /// Exact: faiss IndexFlatIP.
    FaissFlat,
    /// Approximate: faiss HNSW with `m` links per node, `ef_search` candidates.
    Hnsw {
        /// Links per node.
        m: usize,
        /// Candidates kept during search.
        ef_search: usize,
    },
    /// Approximate: faiss IVF-Flat with `nlist` lists, `nprobe` probed.
    Ivf {
        /// Number of inverted lists (k-means centroids).
        nlist: usize,
        /// Lists visited per query.
        nprobe: usize,
    },
}

impl IndexKind {
    /// Whether the index is exact.
    pub fn is_exact(&self) -> bool {
        matches!(self, IndexKind::Exact | IndexKind::FaissFlat)
    }

    /// A short description, e.g. "hnsw(m=32,ef=128)".
    pub fn describe(&self) -> String {
        match self {
            IndexKind::Exact => "exact".into(),
            IndexKind::FaissFlat => "faiss-flat-ip".into(),
            IndexKind::Hnsw { m, ef_search } => format!("hnsw(m={m},ef_search={ef_search})"),
            IndexKind::Ivf { nlist, nprobe } => format!("ivf(nlist={nlist},nprobe={nprobe})"),
        }
    }
}

enum Store<'a> {
    /// The caller's bank itself, no copy, with each row's scale when the
    /// index is built for cosine similarity ([`VectorIndex::cosine`]).
    Blas(&'a [f32], Option<Vec<f32>>),
    Flat(FlatIndex),
    Factory(std::sync::Mutex<IndexImpl>),
}

/// A searchable bank of vectors. The exact engine searches the caller's
/// bank in place (the bank is borrowed, never copied); the faiss engines
/// hold their own copy.
pub struct VectorIndex<'a> {
    store: Store<'a>,
    kind: IndexKind,
    dim: usize,
    len: usize,
}

impl std::fmt::Debug for VectorIndex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("kind", &self.kind)
            .field("dim", &self.dim)
            .field("len", &self.len)
            .finish()
    }
}

impl<'a> VectorIndex<'a> {
    /// Exact index over `bank`, row-major [n, dim].
    pub fn new(bank: &'a [f32], dim: usize) -> Result<Self> {
        Self::build(bank, dim, IndexKind::Exact)
    }

    /// An index of `kind` over `bank`, row-major [n, dim]. IVF trains its
    /// centroids on the bank (seeded by faiss's fixed default seed).
    pub fn build(bank: &'a [f32], dim: usize, kind: IndexKind) -> Result<Self> {
        Self::build_scaled(bank, dim, kind, None)
    }

    /// An index of `kind` for cosine similarity over `bank`, rows of any
    /// norm, row-major [n, dim]: each bank row counts as itself times
    /// `scales[row]` (its inverse norm, [`crate::metrics::inverse_norms`]).
    /// The exact engine applies the scales to each product block and never
    /// copies the bank; the faiss engines are fed the scaled rows a block at
    /// a time (IVF trains on a scaled copy).
    pub fn cosine(bank: &'a [f32], dim: usize, kind: IndexKind, scales: Vec<f32>) -> Result<Self> {
        Self::build_scaled(bank, dim, kind, Some(scales))
    }

    fn build_scaled(
        bank: &'a [f32],
        dim: usize,
        kind: IndexKind,
        scales: Option<Vec<f32>>,
    ) -> Result<Self> {
        if dim == 0 || !bank.len().is_multiple_of(dim) {
            return Err(Error::InvalidArgument(format!(
                "bank of {} values is not a whole number of rows of dimension {dim}",
                bank.len()
            )));
        }
        let len = bank.len() / dim;
        if let Some(s) = &scales {
            if s.len() != len {
                return Err(Error::InvalidArgument(format!(
                    "{} row scales for a bank of {len} rows",
                    s.len()
                )));
            }
        }
        let scales_ref = scales.as_deref();
        let store = match kind {
            IndexKind::Exact => Store::Blas(bank, scales),
            IndexKind::FaissFlat => {
                let mut index = FlatIndex::new_ip(dim as u32)?;
                add_scaled(&mut index, bank, dim, scales_ref)?;
                Store::Flat(index)
            }
            IndexKind::Hnsw { m, ef_search } => {
                let mut index =
                    index_factory(dim as u32, format!("HNSW{m}"), MetricType::InnerProduct)?;
                add_scaled(&mut index, bank, dim, scales_ref)?;
                ParameterSpace::new()?.set_index_parameter(&index, "efSearch", ef_search as f64)?;
                Store::Factory(std::sync::Mutex::new(index))
            }
            IndexKind::Ivf { nlist, nprobe } => {
                if len < nlist {
                    return Err(Error::InvalidArgument(format!(
                        "an IVF index with {nlist} lists needs at least {nlist} bank rows, got {len}"
                    )));
                }
                let mut index = index_factory(
                    dim as u32,
                    format!("IVF{nlist},Flat"),
                    MetricType::InnerProduct,
                )?;
                match scales_ref {
                    None => index.train(bank)?,
                    Some(s) => index.train(&scaled(bank, dim, s))?,
                }
                add_scaled(&mut index, bank, dim, scales_ref)?;
                ParameterSpace::new()?.set_index_parameter(&index, "nprobe", nprobe as f64)?;
                Store::Factory(std::sync::Mutex::new(index))
            }
        };
        Ok(Self {
            store,
            kind,
            dim,
            len,
        })
    }

    /// Rows in the bank.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the bank is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kind of index.
    pub fn kind(&self) -> IndexKind {
        self.kind
    }

    /// Queries per [`VectorIndex::search_stoppable`] call: the exact engine
    /// checks the stop signal between its blocks, so it takes whole blocks
    /// of queries ([`exact_chunk`]: each block streams the bank once and the
    /// product runs at full width); the faiss engines, which cannot be
    /// interrupted, take [`query_chunk`].
    pub fn query_chunk(&self) -> usize {
        match self.store {
            Store::Blas(..) => exact_chunk(self.len, self.dim),
            _ => query_chunk(self.len),
        }
    }

    /// The `k` largest inner products of each query row, best first.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Neighbors> {
        self.search_stoppable(queries, k, &crate::cancel::Stop::never())
    }

    /// [`VectorIndex::search`], the exact engine checking `stop` between
    /// its blocks (a stopped search returns its error).
    pub fn search_stoppable(
        &self,
        queries: &[f32],
        k: usize,
        stop: &crate::cancel::Stop,
    ) -> Result<Neighbors> {
        if !queries.len().is_multiple_of(self.dim) {
            return Err(Error::InvalidArgument(format!(
                "queries of {} values are not rows of dimension {}",
                queries.len(),
                self.dim
            )));
        }
        let result = match &self.store {
            Store::Blas(bank, scales) => {
                return exact_search(bank, scales.as_deref(), queries, self.dim, k, stop)
            }
            Store::Flat(index) => index.search(queries, k)?,
            Store::Factory(index) => index
                .lock()
                .map_err(|_| Error::index("index lock poisoned"))?
                .search(queries, k)?,
        };
        Ok(Neighbors {
            k,
            ids: result
                .labels
                .iter()
                .map(|l| l.get().map_or(-1, |v| v as i64))
                .collect(),
            similarities: result.distances,
        })
    }
}

/// The exact engine [`Engine::choose`] picks for the search; all give the
/// same answer (up to the last bits of the summation order).
fn exact_search(
    bank: &[f32],
    scales: Option<&[f32]>,
    queries: &[f32],
    dim: usize,
    k: usize,
    stop: &crate::cancel::Stop,
) -> Result<Neighbors> {
    let (n, nq) = (bank.len() / dim.max(1), queries.len() / dim.max(1));
    Engine::choose(n, nq, dim, k).search(bank, scales, queries, dim, k, stop)
}

/// Every query's `k_of(query)` best bank rows, (similarity, row) best
/// first (ties: the smaller row), handed to `on_block` a block of queries
/// at a time with the index of the block's first query, as
/// [`exact::search_ranked`] hands them: through a screen where
/// [`Engine::choose`] picks one for the longest list (a block's top k of
/// its longest list, each cut to its own length; blocks sized so that their
/// lists take about `budget` bytes, within [`exact_chunk`]), else through
/// the float32 engine in blocks of `budget` / (16 × longest) queries.
#[allow(clippy::too_many_arguments)]
pub fn search_ranked(
    bank: &[f32],
    scales: Option<&[f32]>,
    queries: &[f32],
    dim: usize,
    k_of: &(dyn Fn(usize) -> usize + Sync),
    budget: usize,
    stop: &crate::cancel::Stop,
    mut on_block: impl FnMut(usize, Vec<Vec<(f32, u32)>>) -> Result<()>,
) -> Result<()> {
    let (n, nq) = (bank.len() / dim.max(1), queries.len() / dim.max(1));
    let longest = (0..nq).map(k_of).max().unwrap_or(0).min(n);
    let block = |bytes: usize| (budget / (bytes * longest.max(1))).max(1);
    let engine = Engine::choose(n, nq.min(exact::QUERY_BLOCK), dim, longest);
    if engine == Engine::F32 {
        // A running top k holds up to 2k + 16 keys of 8 bytes.
        return exact::search_ranked(bank, scales, queries, dim, k_of, block(16), stop, on_block);
    }
    // Neighbours (12 bytes each) and lists (8) of one block.
    let chunk = block(20).clamp(exact::QUERY_BLOCK, exact_chunk(n, dim));
    for q0 in (0..nq).step_by(chunk) {
        let rows = chunk.min(nq - q0);
        let k = (q0..q0 + rows).map(k_of).max().unwrap_or(0).min(n);
        let part = &queries[q0 * dim..(q0 + rows) * dim];
        let found = engine.search(bank, scales, part, dim, k, stop)?;
        let lists = (0..rows)
            .map(|q| {
                let ids = &found.ids[q * k..(q + 1) * k];
                let sims = &found.similarities[q * k..(q + 1) * k];
                ids.iter()
                    .zip(sims)
                    .take(k_of(q0 + q))
                    .take_while(|(&id, _)| id >= 0)
                    .map(|(&id, &s)| (s, id as u32))
                    .collect()
            })
            .collect();
        on_block(q0, lists)?;
    }
    Ok(())
}

/// The exact engines. Each gives the float32 answer (the screens by
/// construction, see [`screen`]); they differ in speed, and in which
/// processors can run them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// BLAS sgemm and a top-k selection ([`exact`]): every processor.
    F32,
    /// The bfloat16 screen ([`screen::bf16`]): AVX-512 BF16.
    Bf16,
    /// The 8-bit integer screen on AVX-512 VNNI ([`screen::vnni`]).
    Vnni,
    /// The 8-bit integer screen on AVX2 ([`screen::int8`]).
    Int8,
}

/// The environment variable that forces an engine.
pub const ENGINE_VARIABLE: &str = "EMBEDEVAL_KNN_ENGINE";

impl Engine {
    /// Every engine, in the order of preference.
    pub const ALL: [Engine; 4] = [Engine::Bf16, Engine::Vnni, Engine::Int8, Engine::F32];

    /// Its name, as `EMBEDEVAL_KNN_ENGINE` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::F32 => "f32",
            Engine::Bf16 => "bf16",
            Engine::Vnni => "vnni",
            Engine::Int8 => "int8",
        }
    }

    /// What the processor needs to run it.
    pub fn needs(self) -> &'static str {
        match self {
            Engine::F32 => "nothing",
            Engine::Bf16 => "AVX-512 F and BF16",
            Engine::Vnni => "AVX-512 F and VNNI",
            Engine::Int8 => "AVX2 and FMA",
        }
    }

    /// Whether this processor can run it.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use screen::Kernel;
            match self {
                Engine::F32 => true,
                Engine::Bf16 => screen::bf16::Bf16::available(),
                Engine::Vnni => screen::vnni::Vnni::available(),
                Engine::Int8 => screen::int8::Int8::available(),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Engine::F32
        }
    }

    /// The best engine this processor runs.
    pub fn fastest() -> Engine {
        Engine::ALL
            .into_iter()
            .find(|e| e.available())
            .unwrap_or(Engine::F32)
    }

    /// The engine `EMBEDEVAL_KNN_ENGINE` forces (`f32`, `bf16`, `vnni` or
    /// `int8`),
    /// `None` where it is unset or `auto`; an unknown name, or an engine
    /// this processor cannot run, is an error that says which it can run.
    /// `EMBEDEVAL_KNN_BF16=0`, the older setting, still means `f32`.
    pub fn forced() -> Result<Option<Engine>> {
        Engine::parse(
            std::env::var(ENGINE_VARIABLE).ok().as_deref(),
            std::env::var("EMBEDEVAL_KNN_BF16").ok().as_deref(),
        )
    }

    /// [`Engine::forced`] from the values of `EMBEDEVAL_KNN_ENGINE` and
    /// of the older `EMBEDEVAL_KNN_BF16`.
    pub fn parse(value: Option<&str>, legacy: Option<&str>) -> Result<Option<Engine>> {
        let value = match value {
            Some(v) => v,
            None if legacy == Some("0") => return Ok(Some(Engine::F32)),
            None => return Ok(None),
        };
        if value.is_empty() || value == "auto" {
            return Ok(None);
        }
        let engine = Engine::ALL
            .into_iter()
            .find(|e| e.name() == value)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{ENGINE_VARIABLE}={value} names no engine: use auto, f32, bf16, vnni or int8"
                ))
            })?;
        if !engine.available() {
            let runnable: Vec<&str> = Engine::ALL
                .into_iter()
                .filter(|e| e.available())
                .map(Engine::name)
                .collect();
            return Err(Error::InvalidArgument(format!(
                "{ENGINE_VARIABLE}={value}: the {value} engine needs {}, which this processor \
                 lacks; it runs {}",
                engine.needs(),
                runnable.join(", ")
            )));
        }
        Ok(Some(engine))
    }

    /// The engine for an exact search of `queries` rows of dimension `dim`
    /// among `bank` rows for a top `k`: the one `EMBEDEVAL_KNN_ENGINE`
    /// forces (an engine this processor cannot run stops the server at
    /// start), else the fastest of [`Engine::candidates`] as measured on
    /// this process's earlier searches of the same class ([`measured`]).
    pub fn choose(bank: usize, queries: usize, dim: usize, k: usize) -> Engine {
        let candidates = Engine::candidates(Engine::forced().ok().flatten(), bank, queries, dim, k);
        measured::pick(bank, dim, &candidates)
    }

    /// The engines a search may use, the first guess ([`Engine::choose_with`])
    /// first, then every other engine this processor runs for rows of `dim`
    /// dimensions in the order of preference; only the first guess where an
    /// engine is forced or the search is too small for a screen.
    pub fn candidates(
        forced: Option<Engine>,
        bank: usize,
        queries: usize,
        dim: usize,
        k: usize,
    ) -> Vec<Engine> {
        let first = Engine::choose_with(forced, bank, queries, dim, k);
        if forced.is_some() || first == Engine::F32 && !Engine::screens(bank, queries, k) {
            return vec![first];
        }
        std::iter::once(first)
            .chain(
                Engine::ALL
                    .into_iter()
                    .filter(|&e| e != first && e.available() && e.fits(dim)),
            )
            .collect()
    }

    /// Whether a search is large enough for a screen to gain: a bank of at
    /// least 4,096 rows and 32 per neighbour asked for, and at least 12
    /// queries (one register block).
    fn screens(bank: usize, queries: usize, k: usize) -> bool {
        bank >= 4_096 && bank >= 32 * k && queries >= 12
    }

    /// Whether the engine takes rows of `dim` dimensions.
    fn fits(self, dim: usize) -> bool {
        !matches!(self, Engine::Int8 | Engine::Vnni) || dim <= int8_max_dim()
    }

    /// The first guess for a search, before any is measured: the one
    /// `EMBEDEVAL_KNN_ENGINE` forces (where this processor runs it; the
    /// server refuses to start otherwise), else the fastest screen the
    /// processor runs by its instruction sets where the search is large
    /// enough to gain from it ([`Engine::screens`]; the integer screen for
    /// rows of at most [`INT8_WIDEST_AUTO`] dimensions, or
    /// [`screen::int8::MAX_DIM`] forced), else float32. Measured (examples
    /// of 5,000 to 500,000 rows, d = 64 to 2,048, k = 20 and 200, 1,000 to
    /// 10,000 queries), the bfloat16 screen took 0.5 to 0.95 of the float32
    /// engine's time on one Xeon and 1.0 to 2.0 on another, the integer one
    /// 0.7 to 0.85 where it is the first guess (benchmarks:
    /// docs/book/benchmarks.md). `forced` is the engine forced, if any.
    pub fn choose_with(
        forced: Option<Engine>,
        bank: usize,
        queries: usize,
        dim: usize,
        k: usize,
    ) -> Engine {
        if let Some(engine) = forced.filter(|e| e.available()) {
            return if engine.fits(dim) {
                engine
            } else {
                Engine::F32
            };
        }
        if !Engine::screens(bank, queries, k) {
            return Engine::F32;
        }
        // The integer screen's margin is about three times bfloat16's: on
        // wide rows, whose similarities crowd closer together, it passes
        // too many rows on to float32 to gain.
        let pays = |e: Engine| !matches!(e, Engine::Int8 | Engine::Vnni) || dim <= INT8_WIDEST_AUTO;
        Engine::ALL
            .into_iter()
            .find(|&e| e.available() && e.fits(dim) && pays(e))
            .unwrap_or(Engine::F32)
    }

    /// The k best bank rows of each query through this engine (each bank
    /// row's products times its entry of `scales` when given), its time
    /// recorded for [`Engine::choose`] ([`measured::record`]). Call only
    /// where [`Engine::available`] holds.
    pub fn search(
        self,
        bank: &[f32],
        scales: Option<&[f32]>,
        queries: &[f32],
        dim: usize,
        k: usize,
        stop: &crate::cancel::Stop,
    ) -> Result<Neighbors> {
        let (n, nq) = (bank.len() / dim.max(1), queries.len() / dim.max(1));
        let started = std::time::Instant::now();
        let run = || -> Result<Neighbors> {
            #[cfg(target_arch = "x86_64")]
            {
                let screened = match self {
                    Engine::F32 => return exact::search(bank, scales, queries, dim, k, stop),
                    Engine::Bf16 => {
                        screen::search::<screen::bf16::Bf16>(bank, scales, queries, dim, k, stop)?
                    }
                    Engine::Vnni => {
                        screen::search::<screen::vnni::Vnni>(bank, scales, queries, dim, k, stop)?
                    }
                    Engine::Int8 => {
                        screen::search::<screen::int8::Int8>(bank, scales, queries, dim, k, stop)?
                    }
                };
                tracing::debug!(
                    engine = self.name(),
                    queries = nq,
                    reranked = screened.reranked,
                    rechecked = screened.rechecked,
                    "screen: rows re-ranked and queries re-searched in float32"
                );
                Ok(screened.neighbors)
            }
            #[cfg(not(target_arch = "x86_64"))]
            exact::search(bank, scales, queries, dim, k, stop)
        };
        let found = run()?;
        measured::record(self, n, nq, dim, started.elapsed());
        Ok(found)
    }
}

/// The widest rows `auto` sends to the integer screen. Measured on an AMD
/// EPYC (AVX2) on the knn_scale benchmark's data (100 overlapping classes,
/// k = 200, 50,000 to 500,000 rows), the screen took of the float32
/// engine's time: 0.82 at d = 64, 0.72 to 0.75 at 128, 0.96 at 256, 0.98
/// at 512, 1.25 at 2,048.
pub const INT8_WIDEST_AUTO: usize = 192;

/// The widest rows the integer screen takes.
fn int8_max_dim() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        screen::int8::MAX_DIM
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// `rows` (row-major, dimension `dim`) each times its scale.
fn scaled(rows: &[f32], dim: usize, scales: &[f32]) -> Vec<f32> {
    let mut out = rows.to_vec();
    out.chunks_exact_mut(dim)
        .zip(scales)
        .for_each(|(row, &s)| row.iter_mut().for_each(|v| *v *= s));
    out
}

/// Adds `bank` to a faiss index, each row times its scale when given, a
/// block of rows at a time (so that no scaled copy of the whole bank is
/// made beside the index's own).
fn add_scaled<I: Index>(
    index: &mut I,
    bank: &[f32],
    dim: usize,
    scales: Option<&[f32]>,
) -> Result<()> {
    const ROWS: usize = 65_536;
    match scales {
        None => index.add(bank)?,
        Some(s) => {
            for (block, s) in bank.chunks(ROWS * dim).zip(s.chunks(ROWS)) {
                index.add(&scaled(block, dim, s))?;
            }
        }
    }
    Ok(())
}

/// Queries per exact search against `bank_rows` rows of dimension `dim`:
/// whole blocks of [`exact::QUERY_BLOCK`] queries, about 2^36 multiply-adds
/// per search for the float32 engine (so that progress is reported about
/// every second) and 2^38 for the screens (which multiply two to three times
/// as fast and pack the bank once per search), but at least one
/// block and at most 16 (8,192 queries, whose neighbours take
/// 8,192 × k × 12 bytes: 19 MiB at k = 200). The budget follows the bank
/// alone (k is not known here): a search that [`Engine::choose`] then
/// sends to float32 for its k (a bank under 32 rows per neighbour) takes
/// the larger chunks too, and reports its progress less often.
pub fn exact_chunk(bank_rows: usize, dim: usize) -> usize {
    let budget = if Engine::choose_with(
        Engine::forced().ok().flatten(),
        bank_rows,
        exact::QUERY_BLOCK,
        dim,
        1,
    ) != Engine::F32
    {
        1usize << 38
    } else {
        1 << 36
    };
    let blocks = budget / (exact::QUERY_BLOCK * bank_rows.max(1) * dim.max(1));
    blocks.clamp(1, 16) * exact::QUERY_BLOCK
}

/// Queries per search of a faiss index against a bank of `bank_rows`: about
/// 8M similarities per search (16 to 4,096 queries), so that the time
/// between two checks of a job's stop signal stays short whatever the
/// bank's size.
pub fn query_chunk(bank_rows: usize) -> usize {
    (8 * 1024 * 1024 / bank_rows.max(1)).clamp(16, 4096)
}

/// Mean recall@k of approximate neighbours against exact ones: the fraction
/// of each query's exact top-k ids that the approximate top-k also holds.
pub fn recall_at_k(approx: &Neighbors, exact: &Neighbors) -> f64 {
    let k = exact.k.min(approx.k);
    if k == 0 || exact.ids.is_empty() {
        return 1.0;
    }
    let queries = exact.ids.len() / exact.k;
    let mut hits = 0usize;
    let mut total = 0usize;
    for q in 0..queries {
        let truth: Vec<i64> = exact.ids[q * exact.k..q * exact.k + k]
            .iter()
            .copied()
            .filter(|&i| i >= 0)
            .collect();
        let found = &approx.ids[q * approx.k..q * approx.k + k];
        hits += truth.iter().filter(|id| found.contains(id)).count();
        total += truth.len();
    }
    if total == 0 {
        1.0
    } else {
        hits as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// Normalised Gaussian rows.
    fn rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        let mut v: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
        for row in v.chunks_exact_mut(d) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }

    fn brute(bank: &[f32], queries: &[f32], d: usize, k: usize) -> Vec<Vec<(i64, f32)>> {
        queries
            .chunks_exact(d)
            .map(|q| {
                let mut dots: Vec<(i64, f32)> = bank
                    .chunks_exact(d)
                    .enumerate()
                    .map(|(j, b)| (j as i64, q.iter().zip(b).map(|(x, y)| x * y).sum()))
                    .collect();
                dots.sort_by(|a, b| b.1.total_cmp(&a.1));
                dots.truncate(k);
                dots
            })
            .collect()
    }

    #[test]
    fn exact_engines_equal_brute_force() {
        let (n, q, d, k) = (700, 37, 16, 9);
        let bank = rows(n, d, 1);
        let queries = rows(q, d, 2);
        let want = brute(&bank, &queries, d, k);
        for kind in [IndexKind::Exact, IndexKind::FaissFlat] {
            let index = VectorIndex::build(&bank, d, kind).unwrap();
            assert_eq!(index.len(), n);
            let found = index.search(&queries, k).unwrap();
            for (i, w) in want.iter().enumerate() {
                for (r, (id, s)) in w.iter().enumerate() {
                    assert_eq!(found.ids[i * k + r], *id, "{kind:?} query {i} rank {r}");
                    assert!((found.similarities[i * k + r] - s).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn ranked_lists_of_every_length_equal_brute_force_through_either_engine() {
        // Large enough for the bfloat16 screen where the processor has it.
        let (n, q, d) = (6_000, 40, 24);
        let bank = rows(n, d, 3);
        let queries = rows(q, d, 4);
        let k_of = |i: usize| 1 + (i * 37) % 150;
        let want = brute(&bank, &queries, d, 150);
        eprintln!(
            "ranked lists through the {} engine",
            Engine::choose(n, q, d, 150).name()
        );
        let mut seen = 0;
        search_ranked(
            &bank,
            None,
            &queries,
            d,
            &k_of,
            1 << 20,
            &crate::cancel::Stop::never(),
            |q0, lists| {
                assert_eq!(q0, seen);
                for (i, list) in lists.iter().enumerate() {
                    let q = q0 + i;
                    assert_eq!(list.len(), k_of(q));
                    for (r, ((s, id), (want_id, want_s))) in list.iter().zip(&want[q]).enumerate() {
                        assert_eq!(i64::from(*id), *want_id, "query {q} rank {r}");
                        assert!((s - want_s).abs() < 1e-5);
                    }
                }
                seen += lists.len();
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, q);
    }

    #[test]
    fn cosine_indexes_over_rows_of_any_norm_equal_brute_force_on_the_normalised_bank() {
        let (n, q, d, k) = (700, 37, 16, 9);
        let unit = rows(n, d, 1);
        // The same directions at norms from 0.5 to 20.
        let mut bank = unit.clone();
        let scales: Vec<f32> = bank
            .chunks_exact_mut(d)
            .enumerate()
            .map(|(i, row)| {
                let norm = 0.5 + (i % 40) as f32 / 2.0;
                row.iter_mut().for_each(|v| *v *= norm);
                1.0 / norm
            })
            .collect();
        let queries = rows(q, d, 2);
        let want = brute(&unit, &queries, d, k);
        let kinds = [
            IndexKind::Exact,
            IndexKind::FaissFlat,
            IndexKind::Ivf {
                nlist: 4,
                nprobe: 4,
            },
        ];
        for kind in kinds {
            let index = VectorIndex::cosine(&bank, d, kind, scales.clone()).unwrap();
            let found = index.search(&queries, k).unwrap();
            for (i, w) in want.iter().enumerate() {
                for (r, (id, s)) in w.iter().enumerate() {
                    assert_eq!(found.ids[i * k + r], *id, "{kind:?} query {i} rank {r}");
                    assert!((found.similarities[i * k + r] - s).abs() < 1e-5);
                }
            }
        }
        let err = VectorIndex::cosine(&bank, d, IndexKind::Exact, vec![1.0; 3]).unwrap_err();
        assert!(err.to_string().contains("3 row scales"), "{err}");
    }

    #[test]
    fn exact_searches_take_whole_blocks_and_stop_when_asked() {
        // Small banks: 16 blocks of queries; ImageNet-sized: one.
        assert_eq!(exact_chunk(540, 64), 16 * exact::QUERY_BLOCK);
        // 500,000 x 128: 2^36 / 512 / 500,000 / 128 = 2.1 blocks, or 8.6
        // with a screen's budget of 2^38.
        let blocks = if Engine::choose(500_000, exact::QUERY_BLOCK, 128, 1) != Engine::F32 {
            8
        } else {
            2
        };
        assert_eq!(exact_chunk(500_000, 128), blocks * exact::QUERY_BLOCK);
        assert_eq!(exact_chunk(1_281_167, 2048), exact::QUERY_BLOCK);
        let bank = rows(50, 4, 5);
        let index = VectorIndex::new(&bank, 4).unwrap();
        assert_eq!(index.query_chunk(), 16 * exact::QUERY_BLOCK);
        let token = tokio_util::sync::CancellationToken::new();
        token.cancel();
        let stopped = crate::cancel::Stop::new(token);
        assert!(index.search_stoppable(&rows(3, 4, 6), 5, &stopped).is_err());
    }

    #[test]
    fn engines_are_chosen_by_the_processor_the_size_and_the_setting() {
        let fastest = Engine::fastest();
        assert!(fastest.available());
        eprintln!("this processor's fastest exact engine: {}", fastest.name());
        for e in Engine::ALL {
            if !e.available() {
                eprintln!("SKIPPED {}: this processor lacks {}", e.name(), e.needs());
            }
        }
        let choose = |bank, queries, dim, k| Engine::choose_with(None, bank, queries, dim, k);
        assert_eq!(choose(500_000, 512, 128, 200), fastest);
        // Small searches: float32.
        assert_eq!(choose(4_000, 512, 128, 20), Engine::F32);
        assert_eq!(choose(500_000, 11, 128, 20), Engine::F32);
        assert_eq!(choose(100_000, 512, 128, 4_000), Engine::F32);
        // Rows too wide for the integer screen to pay, or for its sums.
        assert!(!matches!(
            choose(500_000, 512, 2_048, 200),
            Engine::Int8 | Engine::Vnni
        ));
        if Engine::Int8.available() {
            let forced = |dim| Engine::choose_with(Some(Engine::Int8), 500_000, 512, dim, 200);
            assert_eq!(forced(2_048), Engine::Int8);
            assert_eq!(forced(70_000), Engine::F32);
        }
        // What the measurement chooses among: the first guess first, then
        // every other engine this processor runs for the width; one only
        // where forced or small.
        let runs: Vec<Engine> = Engine::ALL.into_iter().filter(|e| e.available()).collect();
        let tried = Engine::candidates(None, 500_000, 512, 128, 200);
        assert_eq!(tried[0], fastest);
        assert_eq!(tried.len(), runs.len());
        assert!(runs.iter().all(|e| tried.contains(e)));
        let wide = Engine::candidates(None, 500_000, 512, 70_000, 200);
        assert!(!wide.contains(&Engine::Int8) && !wide.contains(&Engine::Vnni));
        assert_eq!(Engine::candidates(None, 4_000, 512, 128, 20), [Engine::F32]);
        assert_eq!(
            Engine::candidates(Some(Engine::F32), 500_000, 512, 128, 200),
            [Engine::F32]
        );
        // A forced engine runs whatever the size (where it can).
        assert_eq!(
            Engine::choose_with(Some(Engine::F32), 500_000, 512, 128, 200),
            Engine::F32
        );
        for e in Engine::ALL.into_iter().filter(|e| e.available()) {
            assert_eq!(Engine::choose_with(Some(e), 100, 1, 8, 50), e);
        }
        // The setting: names, auto, the older variable, and errors that
        // say what this processor runs.
        assert_eq!(Engine::parse(None, None).unwrap(), None);
        assert_eq!(Engine::parse(Some("auto"), Some("0")).unwrap(), None);
        assert_eq!(Engine::parse(None, Some("0")).unwrap(), Some(Engine::F32));
        assert_eq!(Engine::parse(None, Some("1")).unwrap(), None);
        assert_eq!(Engine::parse(Some("f32"), None).unwrap(), Some(Engine::F32));
        let unknown = Engine::parse(Some("fp16"), None).unwrap_err().to_string();
        assert!(
            unknown.contains("EMBEDEVAL_KNN_ENGINE=fp16 names no engine"),
            "{unknown}"
        );
        for e in Engine::ALL {
            match Engine::parse(Some(e.name()), None) {
                Ok(got) => assert_eq!(got, Some(e)),
                Err(err) => {
                    assert!(!e.available());
                    let text = err.to_string();
                    assert!(
                        text.contains(e.needs()) && text.contains(fastest.name()),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_engine_this_processor_runs_gives_the_float32_neighbours() {
        let (n, d, k) = (6_000, 40, 25);
        let bank = rows(n, d, 11);
        let queries = rows(30, d, 12);
        let want = brute(&bank, &queries, d, k);
        for e in Engine::ALL.into_iter().filter(|e| e.available()) {
            let got = e
                .search(&bank, None, &queries, d, k, &crate::cancel::Stop::never())
                .unwrap();
            for (q, truth) in want.iter().enumerate() {
                let ids: Vec<i64> = truth.iter().map(|t| t.0).collect();
                assert_eq!(&got.ids[q * k..(q + 1) * k], &ids[..], "{}", e.name());
            }
        }
    }

    #[test]
    fn k_beyond_the_bank_pads_with_minus_one() {
        for kind in [IndexKind::Exact, IndexKind::FaissFlat] {
            let bank = rows(3, 4, 3);
            let index = VectorIndex::build(&bank, 4, kind).unwrap();
            let found = index.search(&rows(1, 4, 4), 5).unwrap();
            assert_eq!(&found.ids[3..], &[-1, -1], "{kind:?}");
        }
    }

    #[test]
    fn approximate_indexes_report_their_recall() {
        let (n, q, d, k) = (4000, 200, 32, 10);
        let bank = rows(n, d, 5);
        let queries = rows(q, d, 6);
        let exact = VectorIndex::new(&bank, d)
            .unwrap()
            .search(&queries, k)
            .unwrap();
        assert_eq!(recall_at_k(&exact, &exact), 1.0);
        let hnsw = VectorIndex::build(
            &bank,
            d,
            IndexKind::Hnsw {
                m: 16,
                ef_search: 128,
            },
        )
        .unwrap();
        let r = recall_at_k(&hnsw.search(&queries, k).unwrap(), &exact);
        assert!(r > 0.8 && r <= 1.0, "hnsw recall {r}");
        let ivf_all = VectorIndex::build(
            &bank,
            d,
            IndexKind::Ivf {
                nlist: 16,
                nprobe: 16,
            },
        )
        .unwrap();
        let r_all = recall_at_k(&ivf_all.search(&queries, k).unwrap(), &exact);
        assert!(r_all > 0.999, "probing every list is exact: {r_all}");
        let ivf_one = VectorIndex::build(
            &bank,
            d,
            IndexKind::Ivf {
                nlist: 16,
                nprobe: 1,
            },
        )
        .unwrap();
        let r_one = recall_at_k(&ivf_one.search(&queries, k).unwrap(), &exact);
        assert!(r_one < r_all, "one list of 16 misses neighbours: {r_one}");
        assert!(VectorIndex::build(
            &bank[..d * 8],
            d,
            IndexKind::Ivf {
                nlist: 16,
                nprobe: 1
            }
        )
        .is_err());
    }

    #[test]
    fn ragged_input_is_rejected() {
        assert!(VectorIndex::new(&[1.0; 7], 4).is_err());
    }
}
