//! The client's subcommands, one file each: each function talks to the
//! server and hands what comes back to [`super::render`] and
//! [`super::output`].

mod compare;
mod comparisons;
mod datasets;
mod embed;
mod eval;
mod evaluations;
mod models;
mod plot;
mod runs;
mod watch;

pub use compare::compare;
pub use comparisons::comparisons;
pub use datasets::datasets;
pub use embed::embed;
pub use eval::eval;
pub use evaluations::evaluations;
pub use models::models;
pub use plot::plot;
pub use runs::runs;
pub use watch::watch;
