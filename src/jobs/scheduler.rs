//! Admission: a fixed number of slots for jobs that run at once and a
//! bounded queue in front of them. A job is admitted with a [`Ticket`]: a
//! slot now, or a place in the queue; beyond the queue it is refused with
//! RESOURCE_EXHAUSTED. Waiting jobs get slots in the order they came (the
//! semaphore is fair), and a job that leaves the queue frees its place.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// The slots and the queue.
#[derive(Debug)]
pub struct Scheduler {
    slots: Arc<Semaphore>,
    size: usize,
    queue: usize,
    waiting: Arc<AtomicUsize>,
}

/// A place in the queue; dropping it leaves the queue.
#[derive(Debug)]
pub struct QueuePlace {
    waiting: Arc<AtomicUsize>,
}

impl Drop for QueuePlace {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        publish_queue(&self.waiting);
    }
}

fn publish_queue(waiting: &AtomicUsize) {
    metrics::gauge!("embedeval_evaluations_queued").set(waiting.load(Ordering::SeqCst) as f64);
}

/// What admission gave a job.
#[derive(Debug)]
pub enum Ticket {
    /// A slot, now.
    Slot(Slot),
    /// A place in the queue.
    Queued {
        /// The semaphore to wait on.
        slots: Arc<Semaphore>,
        /// The job's place, held until it gets a slot or leaves.
        place: QueuePlace,
        /// Slots in all (for the running gauge).
        size: usize,
    },
}

/// A slot held by a running job; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    slots: Arc<Semaphore>,
    size: usize,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, slots: Arc<Semaphore>, size: usize) -> Self {
        let running = size - slots.available_permits();
        metrics::gauge!("embedeval_evaluations_running").set(running as f64);
        Self {
            _permit: permit,
            slots,
            size,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The permit is released after this body: count it as free already.
        let running = (self.size - self.slots.available_permits()).saturating_sub(1);
        metrics::gauge!("embedeval_evaluations_running").set(running as f64);
    }
}

impl Ticket {
    /// Whether the job waits in the queue.
    pub fn is_queued(&self) -> bool {
        matches!(self, Ticket::Queued { .. })
    }

    /// The slot: at once, or when the jobs ahead have left their slots.
    pub async fn slot(self) -> Result<Slot> {
        match self {
            Ticket::Slot(slot) => Ok(slot),
            Ticket::Queued { slots, place, size } => {
                let permit = slots.clone().acquire_owned().await.map_err(|_| {
                    Error::unavailable(
                        crate::error::Unavailable::ShuttingDown,
                        "the server is shutting down",
                    )
                })?;
                drop(place);
                Ok(Slot::new(permit, slots, size))
            }
        }
    }
}

impl Scheduler {
    /// `slots` jobs at once (at least one), `queue` more waiting.
    pub fn new(slots: usize, queue: usize) -> Self {
        let size = slots.max(1);
        metrics::gauge!("embedeval_evaluations_running").set(0.0);
        metrics::gauge!("embedeval_evaluations_queued").set(0.0);
        Self {
            slots: Arc::new(Semaphore::new(size)),
            size,
            queue,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A slot now, or a place in the queue; RESOURCE_EXHAUSTED when both are full.
    pub fn admit(&self) -> Result<Ticket> {
        // A free slot goes to a job that waits before a newcomer.
        let waiting = self.waiting.load(Ordering::SeqCst) > 0;
        if let (false, Ok(permit)) = (waiting, self.slots.clone().try_acquire_owned()) {
            publish_queue(&self.waiting);
            return Ok(Ticket::Slot(Slot::new(
                permit,
                self.slots.clone(),
                self.size,
            )));
        }
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let place = QueuePlace {
            waiting: self.waiting.clone(),
        };
        if waiting >= self.queue {
            drop(place);
            return Err(Error::ResourceExhausted(format!(
                "every evaluation slot is busy and {waiting} evaluations are waiting (the queue holds {}); retry later",
                self.queue
            )));
        }
        publish_queue(&self.waiting);
        Ok(Ticket::Queued {
            slots: self.slots.clone(),
            place,
            size: self.size,
        })
    }

    /// Jobs holding a slot now.
    pub fn running(&self) -> usize {
        self.size - self.slots.available_permits()
    }

    /// Jobs waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Slots in all.
    pub fn size(&self) -> usize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_then_queue_then_refusal_and_first_come_first_served() {
        let s = Scheduler::new(1, 2);
        let first = s.admit().unwrap();
        assert!(!first.is_queued());
        let second = s.admit().unwrap();
        let third = s.admit().unwrap();
        assert!(second.is_queued() && third.is_queued());
        assert_eq!((s.running(), s.waiting()), (1, 2));
        let err = s.admit().unwrap_err();
        assert!(matches!(err, Error::ResourceExhausted(_)), "{err}");
        assert_eq!(s.waiting(), 2, "a refusal takes no place");

        // The third starts waiting first, yet the second (admitted earlier)
        // is not overtaken once it waits too: order is the order of waiting.
        let slot = first.slot().await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (name, ticket) in [("second", second), ("third", third)] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let slot = ticket.slot().await.unwrap();
                tx.send(name).unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                drop(slot);
            });
            tokio::task::yield_now().await;
        }
        drop(slot);
        assert_eq!(rx.recv().await, Some("second"));
        assert_eq!(rx.recv().await, Some("third"));
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert_eq!((s.running(), s.waiting()), (0, 0));
    }

    #[tokio::test]
    async fn a_newcomer_does_not_take_a_slot_that_a_waiting_job_is_owed() {
        let s = Scheduler::new(1, 2);
        let first = s.admit().unwrap().slot().await.unwrap();
        let second = s.admit().unwrap();
        assert!(second.is_queued());
        // The slot frees before the queued job has started waiting on it.
        drop(first);
        assert!(s.admit().unwrap().is_queued(), "the newcomer queues too");
        assert!(!second.slot().await.unwrap().slots.is_closed());
    }

    #[tokio::test]
    async fn a_job_that_leaves_the_queue_frees_its_place() {
        let s = Scheduler::new(1, 1);
        let _running = s.admit().unwrap().slot().await.unwrap();
        let queued = s.admit().unwrap();
        assert!(s.admit().is_err());
        drop(queued);
        assert_eq!(s.waiting(), 0);
        assert!(s.admit().unwrap().is_queued());
    }
}
