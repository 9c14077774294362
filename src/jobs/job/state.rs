//! Where a job is in its life on this replica: its [`JobState`] (the one
//! function deciding how it ends), why it was stopped ([`StopReason`]) and
//! the client's [`Deadline`].

use std::time::{Duration, Instant};

use crate::domain::Status;
use crate::error::Error;

/// How close to its deadline a client that leaves is taken to have left
/// because of it (the server's timer and the client's run apart by a little).
const DEADLINE_TOLERANCE: Duration = Duration::from_millis(10);

/// A client's deadline: when it gives up, and the length it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When it passes.
    pub at: Instant,
    /// The length the client gave.
    pub length: Duration,
}

impl Deadline {
    /// A deadline `length` from now.
    pub fn after(length: Duration) -> Self {
        Self {
            at: Instant::now() + length,
            length,
        }
    }

    /// Whether it has passed (or is within a few milliseconds).
    pub fn passed(&self) -> bool {
        Instant::now() + DEADLINE_TOLERANCE >= self.at
    }
}

/// Why a job was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// CancelEvaluation.
    Cancelled,
    /// The client that submitted it (without detach) went away.
    ClientGone,
    /// The client's deadline passed.
    Deadline(Duration),
    /// The server shut down and the grace period ran out.
    Shutdown,
    /// Another replica took the job over: this one's lease lapsed (it could
    /// not renew it in time), and the other records the job's end.
    LeaseLost,
    /// The replica shut down and handed the detached job back to the
    /// database, where another replica takes it over.
    HandedOver,
}

impl StopReason {
    /// The status an evaluation stopped for this reason is stored with.
    pub fn status(self) -> Status {
        match self {
            StopReason::Deadline(_) => Status::Failed,
            _ => Status::Cancelled,
        }
    }

    /// The error a job stopped for this reason ends with.
    pub fn error(self) -> Error {
        match self {
            StopReason::Cancelled => Error::Cancelled("cancelled by CancelEvaluation".into()),
            StopReason::ClientGone => Error::Cancelled(
                "the client went away (submit with detach to keep a job running without it)".into(),
            ),
            StopReason::Deadline(d) => Error::DeadlineExceeded(format!(
                "the client's deadline of {:.3} s passed before the evaluation finished",
                d.as_secs_f64()
            )),
            StopReason::Shutdown => {
                Error::Cancelled("the server shut down before the evaluation finished".into())
            }
            StopReason::LeaseLost => Error::Cancelled(
                "another replica took the job over (this one could not renew its lease)".into(),
            ),
            StopReason::HandedOver => Error::unavailable(
                crate::error::Unavailable::HandedOver,
                "this replica shut down and handed the job over to the others; follow it \
                 through any replica",
            ),
        }
    }
}

/// Where a job is in its life on this replica. The transitions, all of
/// them (each a method below; any other call leaves the state as it is):
///
/// ```text
/// Admitted{queued} --start--> Running
/// Admitted | Running --stop(reason)--> Stopped{reason, started}   (the first reason stays)
/// any --detach--> the same, detached          any --unrecorded--> the same, unrecorded
/// ```
///
/// How the job ends is a function of the state alone ([`JobState::ending`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobState {
    /// Its phase.
    pub phase: Phase,
    /// Whether admission put it in the queue (rather than straight into a slot).
    pub queued: bool,
    /// Whether it runs without its submitter.
    pub detached: bool,
    /// Whether a report of it could not be recorded.
    pub unrecorded: bool,
}

/// A job's phase ([`JobState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Admitted, waiting for its slot.
    Admitted,
    /// Holding a slot.
    Running,
    /// Stopped for `reason`; `started` when it held a slot by then.
    Stopped {
        /// The first reason given.
        reason: StopReason,
        /// Whether it had started.
        started: bool,
    },
}

/// What a job does once its work is over ([`JobState::ending`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every report was recorded: the job is marked ended.
    Finish,
    /// A report could not be recorded: the job is given back to the queue,
    /// to run its unrecorded evaluations again wherever it is taken.
    GiveBack,
    /// The replica shut down: the job is handed over to the others.
    HandOver,
    /// Another replica holds the job now, or nothing holds it here: this
    /// replica records nothing more of it.
    Leave,
}

impl JobState {
    /// A job just admitted, `queued` or given a slot at once.
    pub fn admitted(queued: bool) -> Self {
        Self {
            phase: Phase::Admitted,
            queued,
            detached: false,
            unrecorded: false,
        }
    }

    /// It took its slot.
    pub fn start(&mut self) {
        if self.phase == Phase::Admitted {
            self.phase = Phase::Running;
        }
    }

    /// It was stopped for `reason`; false when it already was (the first
    /// reason stays).
    pub fn stop(&mut self, reason: StopReason) -> bool {
        let started = match self.phase {
            Phase::Admitted => false,
            Phase::Running => true,
            Phase::Stopped { .. } => return false,
        };
        self.phase = Phase::Stopped { reason, started };
        true
    }

    /// Why it was stopped, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        match self.phase {
            Phase::Stopped { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Whether it held a slot.
    pub fn started(&self) -> bool {
        matches!(
            self.phase,
            Phase::Running | Phase::Stopped { started: true, .. }
        )
    }

    /// Whether it still waits in the queue it was admitted to.
    pub fn waiting_in_queue(&self) -> bool {
        self.queued && !self.started()
    }

    /// Whether another replica holds the job now (this one's lease was
    /// taken, or it handed the job over): then this replica records nothing
    /// more of it.
    pub fn moved(&self) -> bool {
        matches!(
            self.reason(),
            Some(StopReason::LeaseLost | StopReason::HandedOver)
        )
    }

    /// How the job ends once its work is over, with (`leased`) or without a
    /// hold on it in the database.
    pub fn ending(&self, leased: bool) -> Ending {
        match (self.reason(), self.unrecorded, leased) {
            (Some(StopReason::LeaseLost), _, _) => Ending::Leave,
            (Some(StopReason::HandedOver), _, true) => Ending::HandOver,
            (Some(StopReason::HandedOver), _, false) => Ending::Leave,
            (_, false, _) => Ending::Finish,
            (_, true, true) => Ending::GiveBack,
            (_, true, false) => Ending::Leave,
        }
    }
}
