//! The job's state machine, live handle and events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::domain::Status;
use crate::error::Error;

#[test]
fn a_lease_not_renewed_for_nine_tenths_of_its_length_counts_as_lapsed() {
    let live = Live::new(vec!["e".into()], 1, false);
    // No lease (a job of one process): never lapsed.
    assert!(!live.lease_lapsed(Duration::ZERO));
    live.set_lease(crate::database::Lease {
        job_id: "j".into(),
        owner: "r0".into(),
        attempt: 1,
    });
    assert!(!live.lease_lapsed(Duration::from_secs(3600)));
    std::thread::sleep(Duration::from_millis(50));
    // At least 50 ms since the lease was taken: past 0.9 × 50 ms.
    assert!(live.lease_lapsed(Duration::from_millis(50)));
    assert!(!live.lease_lapsed(Duration::from_secs(3600)));
    // A confirmed renewal holds it again, from when it was sent.
    live.lease_renewed(Instant::now());
    assert!(!live.lease_lapsed(Duration::from_secs(3600)));
}

#[test]
fn a_job_moves_through_its_states_and_the_first_stop_reason_stays() {
    let mut s = JobState::admitted(true);
    assert!(s.waiting_in_queue() && !s.started() && s.reason().is_none());
    s.start();
    assert_eq!(s.phase, Phase::Running);
    assert!(!s.waiting_in_queue() && s.started());
    assert!(s.stop(StopReason::Cancelled));
    assert!(!s.stop(StopReason::Shutdown), "the first reason stays");
    assert_eq!(
        s.phase,
        Phase::Stopped {
            reason: StopReason::Cancelled,
            started: true
        }
    );
    s.start();
    assert_eq!(
        s.reason(),
        Some(StopReason::Cancelled),
        "a stopped job does not start"
    );
    let mut waiting = JobState::admitted(true);
    waiting.stop(StopReason::Shutdown);
    assert!(waiting.waiting_in_queue() && !waiting.started());
    assert!(
        !JobState::admitted(false).waiting_in_queue(),
        "given a slot at admission"
    );
}

#[test]
fn how_a_job_ends_is_a_function_of_its_state() {
    let stopped = |reason| {
        let mut s = JobState::admitted(false);
        s.start();
        s.stop(reason);
        s
    };
    let unrecorded = |mut s: JobState| {
        s.unrecorded = true;
        s
    };
    let done = {
        let mut s = JobState::admitted(false);
        s.start();
        s
    };
    // Every report recorded: marked ended, with or without a lease.
    assert_eq!(done.ending(true), Ending::Finish);
    assert_eq!(done.ending(false), Ending::Finish);
    assert_eq!(stopped(StopReason::Cancelled).ending(true), Ending::Finish);
    assert_eq!(
        stopped(StopReason::Deadline(Duration::from_secs(1))).ending(true),
        Ending::Finish
    );
    // A report not recorded: given back to run again, never marked ended.
    assert_eq!(unrecorded(done).ending(true), Ending::GiveBack);
    assert_eq!(unrecorded(done).ending(false), Ending::Leave);
    // Moved elsewhere: nothing more is recorded here.
    assert_eq!(stopped(StopReason::LeaseLost).ending(true), Ending::Leave);
    assert!(stopped(StopReason::LeaseLost).moved());
    assert_eq!(
        unrecorded(stopped(StopReason::LeaseLost)).ending(true),
        Ending::Leave
    );
    // Handed over at shutdown: released to the others when held.
    assert_eq!(
        stopped(StopReason::HandedOver).ending(true),
        Ending::HandOver
    );
    assert_eq!(
        unrecorded(stopped(StopReason::HandedOver)).ending(true),
        Ending::HandOver
    );
    assert_eq!(stopped(StopReason::HandedOver).ending(false), Ending::Leave);
    assert!(!stopped(StopReason::Shutdown).moved());
}
use futures::StreamExt;

fn progress(stage: &str) -> Event {
    Event::Progress(Progress {
        evaluation_id: "e".into(),
        model: "m".into(),
        model_index: 1,
        models: 1,
        stage: stage.into(),
        done: 0,
        total: 1,
    })
}

#[tokio::test]
async fn followers_see_events_in_order_and_late_ones_see_the_end() {
    let live = Live::new(vec!["e".into()], 1, false);
    let early = live.follow();
    live.emit(progress("a"));
    live.emit(progress("b"));
    live.finish(Err(Arc::new(Error::Cancelled("x".into()))));
    let events: Vec<Event> = early.collect().await;
    assert_eq!(events.len(), 3);
    assert!(matches!(&events[1], Event::Progress(p) if p.stage == "b"));
    assert!(matches!(events[2], Event::Done(Err(_))));
    let late: Vec<Event> = live.follow().collect().await;
    assert!(matches!(late.as_slice(), [Event::Done(Err(_))]));
}

#[test]
fn the_first_reason_stays_and_a_guard_past_its_deadline_records_it() {
    let live = Arc::new(Live::new(vec!["e".into()], 1, false));
    live.stop(StopReason::Cancelled);
    live.stop(StopReason::Shutdown);
    assert_eq!(live.reason(), Some(StopReason::Cancelled));
    assert!(live.token().is_cancelled());

    let live = Arc::new(Live::new(vec!["e".into()], 1, false));
    let d = Duration::from_millis(1);
    drop(StopOnDrop::new(live.clone(), Some(Deadline::after(d))));
    assert_eq!(live.reason(), Some(StopReason::Deadline(d)));
    assert_eq!(StopReason::Deadline(d).status(), Status::Failed);

    let live = Arc::new(Live::new(vec!["e".into()], 1, false));
    let far = Deadline::after(Duration::from_secs(60));
    drop(StopOnDrop::new(live.clone(), Some(far)));
    assert_eq!(live.reason(), Some(StopReason::ClientGone));

    let live = Arc::new(Live::new(vec!["e".into()], 1, false));
    StopOnDrop::new(live.clone(), None).disarm();
    assert_eq!(live.reason(), None);
    drop(StopOnDrop::new(live.clone(), None));
    assert_eq!(live.reason(), Some(StopReason::ClientGone));
}
