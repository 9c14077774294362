//! Which exact engine answers a search, by measurement on the searches
//! themselves. The engines ([`Engine`]) give the same answer; which is
//! fastest depends on the processor model (its vector units, its clock
//! under AVX-512, its caches), not only on its instruction sets: measured,
//! the bfloat16 screen took 0.75 of one sgemm's time on one Xeon with
//! AVX-512 BF16 and 1.0 to 2.0 on another, where the integer screen and
//! the float32 engine both beat it. So flags only give the first guess.
//!
//! Searches are grouped by class: the power of two above their row
//! dimension and the power of two below their bank's rows. In each class,
//! every engine the search can use is tried once, in the order of
//! preference ([`Engine::candidates`]), on a real search of the class; from
//! then on the engine with the least time per multiply-add (a moving
//! average of its searches, so that it follows the machine's load) runs.
//! An engine that loses keeps its last time; when the winner's average
//! rises above it, the other runs again and is measured afresh. The cost of
//! learning is one search per other engine and class, once per process.
//!
//! Searches too small to time well (under 2^26 multiply-adds) are not
//! recorded, and use the first guess.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::Engine;

/// Multiply-adds below which a search is not timed.
pub const SMALLEST_TIMED: f64 = (1u64 << 26) as f64;

/// Weight of the newest search in an engine's running average.
const NEWEST: f64 = 0.5;

/// A class of searches: ⌈log2 d⌉ and ⌊log2 bank rows⌋.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Class {
    dim: u32,
    bank: u32,
}

impl Class {
    /// The class of a search of rows of dimension `dim` among `bank` rows.
    pub fn of(bank: usize, dim: usize) -> Class {
        Class {
            dim: dim.max(1).next_power_of_two().ilog2(),
            bank: bank.max(1).ilog2(),
        }
    }
}

/// Seconds per multiply-add of each engine in each class.
#[derive(Debug, Default)]
pub struct Timings {
    seconds: HashMap<(Class, Engine), f64>,
}

impl Timings {
    /// The engine to run among `candidates` (non-empty, in the order of
    /// preference): the first never timed in `class`, else the one with
    /// the least time per multiply-add (the earlier on a tie).
    pub fn pick(&self, class: Class, candidates: &[Engine]) -> Engine {
        let mut best: Option<(Engine, f64)> = None;
        for &engine in candidates {
            match self.seconds.get(&(class, engine)) {
                None => return engine,
                Some(&s) if best.is_none_or(|(_, b)| s < b) => best = Some((engine, s)),
                Some(_) => {}
            }
        }
        best.map_or(candidates[0], |(engine, _)| engine)
    }

    /// Records that `engine` took `elapsed` for `macs` multiply-adds in
    /// `class`.
    pub fn record(&mut self, class: Class, engine: Engine, macs: f64, elapsed: Duration) {
        let newest = elapsed.as_secs_f64() / macs.max(1.0);
        self.seconds
            .entry((class, engine))
            .and_modify(|s| *s = (1.0 - NEWEST) * *s + NEWEST * newest)
            .or_insert(newest);
    }

    /// The average seconds per multiply-add of `engine` in `class`, once
    /// timed.
    pub fn seconds(&self, class: Class, engine: Engine) -> Option<f64> {
        self.seconds.get(&(class, engine)).copied()
    }
}

/// This process's timings.
fn timings() -> &'static Mutex<Timings> {
    static TIMINGS: OnceLock<Mutex<Timings>> = OnceLock::new();
    TIMINGS.get_or_init(Default::default)
}

/// [`Timings::pick`] on this process's timings.
pub fn pick(bank: usize, dim: usize, candidates: &[Engine]) -> Engine {
    if candidates.len() == 1 {
        return candidates[0];
    }
    timings()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .pick(Class::of(bank, dim), candidates)
}

/// Records a finished search of `queries` rows among `bank` of dimension
/// `dim` by `engine` in this process's timings, where it is large enough
/// to time.
pub fn record(engine: Engine, bank: usize, queries: usize, dim: usize, elapsed: Duration) {
    let macs = bank as f64 * queries as f64 * dim as f64;
    if macs < SMALLEST_TIMED {
        return;
    }
    timings()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .record(Class::of(bank, dim), engine, macs, elapsed);
    tracing::debug!(
        engine = engine.name(),
        bank,
        queries,
        dim,
        seconds = elapsed.as_secs_f64(),
        "exact search timed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_is_tried_once_then_the_fastest_runs_and_a_slower_winner_is_left() {
        let mut t = Timings::default();
        let class = Class::of(500_000, 128);
        let all = [Engine::Bf16, Engine::Int8, Engine::F32];
        let ms = |v: u64| Duration::from_millis(v);
        assert_eq!(t.pick(class, &all), Engine::Bf16);
        t.record(class, Engine::Bf16, 1e9, ms(900));
        assert_eq!(t.pick(class, &all), Engine::Int8);
        t.record(class, Engine::Int8, 1e9, ms(700));
        assert_eq!(t.pick(class, &all), Engine::F32);
        t.record(class, Engine::F32, 1e9, ms(800));
        assert_eq!(t.pick(class, &all), Engine::Int8);
        // Another class learns on its own.
        assert_eq!(t.pick(Class::of(500_000, 2_048), &all), Engine::Bf16);
        // The winner slows (the machine is loaded): its average passes the
        // float32 engine's last time, which runs again.
        t.record(class, Engine::Int8, 1e9, ms(1_000));
        assert!((t.seconds(class, Engine::Int8).unwrap() - 0.85e-9).abs() < 1e-15);
        assert_eq!(t.pick(class, &all), Engine::F32);
        // Among the candidates given only.
        assert_eq!(t.pick(class, &[Engine::Bf16, Engine::Int8]), Engine::Int8);
    }

    #[test]
    fn classes_are_powers_of_two_of_the_width_and_the_bank() {
        assert_eq!(Class::of(500_000, 128), Class::of(300_000, 100));
        assert_ne!(Class::of(500_000, 128), Class::of(500_000, 129));
        assert_ne!(Class::of(500_000, 128), Class::of(600_000, 128));
        assert_eq!(Class::of(0, 0), Class { dim: 0, bank: 0 });
    }
}
