//! Work items computed by several threads, out of order, and taken by one consumer in order.
//! Workers claim items in order and never run more than a window ahead of the consumer, so
//! at most `window` results wait in memory, and no worker waits for a batch to finish: a
//! worker only stops when the consumer is a window behind.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

pub struct Ordered<T> {
    state: Mutex<State<T>>,
    /// Signalled when a result arrives (the consumer waits on it).
    arrived: Condvar,
    /// Signalled when the consumer takes a result or the work stops (workers wait on it).
    taken: Condvar,
    count: usize,
    window: usize,
}

struct State<T> {
    next_claim: usize,
    next_take: usize,
    done: BTreeMap<usize, T>,
    stopped: bool,
}

impl<T> Ordered<T> {
    /// `count` items, workers at most `window` (≥ 1) items ahead of the consumer.
    pub fn new(count: usize, window: usize) -> Ordered<T> {
        let state = State { next_claim: 0, next_take: 0, done: BTreeMap::new(), stopped: false };
        Ordered {
            state: Mutex::new(state),
            arrived: Condvar::new(),
            taken: Condvar::new(),
            count,
            window: window.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next item for a worker to compute, once it is within the window; None when all
    /// are claimed or the work was stopped.
    pub fn claim(&self) -> Option<usize> {
        let mut s = self.lock();
        loop {
            if s.stopped || s.next_claim >= self.count {
                return None;
            }
            if s.next_claim < s.next_take + self.window {
                s.next_claim += 1;
                return Some(s.next_claim - 1);
            }
            s = self.taken.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Item `i`'s result.
    pub fn put(&self, i: usize, result: T) {
        let mut s = self.lock();
        s.done.insert(i, result);
        if i == s.next_take {
            self.arrived.notify_one();
        }
    }

    /// The next result in order, waiting for it; None once all were taken or the work was
    /// stopped.
    pub fn take(&self) -> Option<T> {
        let mut s = self.lock();
        loop {
            if s.stopped || s.next_take >= self.count {
                return None;
            }
            let next = s.next_take;
            if let Some(r) = s.done.remove(&next) {
                s.next_take += 1;
                self.taken.notify_all();
                return Some(r);
            }
            s = self.arrived.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Stops the work: workers claim nothing more and the consumer takes nothing more.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.taken.notify_all();
        self.arrived.notify_all();
    }
}

/// Stops the work when dropped during a panic, so that a thread that dies (a worker or the
/// consumer) leaves no other thread waiting for it.
pub struct StopOnPanic<'a, T>(pub &'a Ordered<T>);

impl<T> Drop for StopOnPanic<'_, T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Results come out in order whatever order they finish in, and no worker ever claims an
    /// item a window or more ahead of the consumer.
    #[test]
    fn results_come_in_order_within_the_window() {
        let (count, window) = (500, 6);
        let ordered = Ordered::new(count, window);
        let taken = AtomicUsize::new(0);
        let got = std::thread::scope(|s| {
            for w in 0..3 {
                let (ordered, taken) = (&ordered, &taken);
                s.spawn(move || {
                    while let Some(i) = ordered.claim() {
                        // The consumer may be inside take(), one ahead of its count.
                        assert!(i <= taken.load(Ordering::SeqCst) + window, "item {i} claimed past the window");
                        if (i + w) % 7 == 0 {
                            std::thread::sleep(std::time::Duration::from_micros(200));
                        }
                        ordered.put(i, i * 3);
                    }
                });
            }
            let mut got = Vec::new();
            while let Some(r) = ordered.take() {
                got.push(r);
                taken.fetch_add(1, Ordering::SeqCst);
            }
            got
        });
        assert_eq!(got, (0..count).map(|i| i * 3).collect::<Vec<_>>());
    }

    /// A worker that panics stops the work: the consumer returns instead of waiting forever
    /// (having taken some of the results before the failing item, never one after it).
    #[test]
    fn a_panicking_worker_stops_the_consumer() {
        let ordered = Ordered::new(100, 4);
        let outcome = std::thread::scope(|s| {
            let worker = s.spawn(|| {
                let _stop = StopOnPanic(&ordered);
                while let Some(i) = ordered.claim() {
                    assert!(i != 10, "worker fails at item 10");
                    ordered.put(i, i);
                }
            });
            let mut taken = 0;
            while ordered.take().is_some() {
                taken += 1;
            }
            (taken, worker.join().is_err())
        });
        assert!(outcome.0 <= 10 && outcome.1, "{outcome:?}");
    }

    /// A consumer that panics releases the workers waiting for room in the window.
    #[test]
    fn a_panicking_consumer_releases_the_workers() {
        let ordered = Ordered::new(100, 2);
        std::thread::scope(|s| {
            let worker = s.spawn(|| {
                let mut computed = 0;
                while let Some(i) = ordered.claim() {
                    ordered.put(i, i);
                    computed += 1;
                }
                computed
            });
            let consumer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _stop = StopOnPanic(&ordered);
                ordered.take();
                panic!("the consumer fails");
            }));
            assert!(consumer.is_err());
            assert!(worker.join().unwrap() <= 3);
        });
    }
}
