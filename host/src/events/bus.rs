//! The in-process event bus.
//!
//! Why not `tokio::sync::broadcast`: a broadcast channel overwrites the oldest events of
//! a slow receiver, reports included. Here each subscription owns a queue. Publishing
//! never waits on a subscriber; instead:
//! * `SUBAGENT_REPORT` events are always queued. They are few (one per worker end, plus
//!   persistent turns that filed a report) and size-limited, so memory stays bounded by
//!   the number of workers, and an overseer never misses one.
//! * Any other event is queued while the subscription holds fewer than its capacity of
//!   them; beyond that it is counted as missed, and the subscriber's next `recv` returns
//!   [`RecvError::Lagged`] with the count before the events that follow.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use super::{AgentEvent, EventFilter, EventType};

/// Default number of ordinary (non-report) events a subscription may hold unread.
pub const DEFAULT_SUBSCRIPTION_CAPACITY: usize = 4096;

/// Why [`Subscription::recv`] returned no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// This many ordinary events were not delivered because the subscription was full.
    /// Reports are never among them. Receiving again continues with the next event.
    #[error("subscriber lagged: {0} events were dropped (reports are never dropped)")]
    Lagged(u64),
    /// The bus is gone and every queued event has been received.
    #[error("event bus closed")]
    Closed,
}

/// A cheap, clonable handle to one event bus.
#[derive(Clone, Default)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

#[derive(Default)]
struct BusInner {
    /// A mutex, not a read-write lock: one publish delivers to every subscription before
    /// the next begins, so all subscriptions see events in one order (an overseer's
    /// turns follow the order in which any other subscriber saw the reports).
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
}

impl Drop for BusInner {
    fn drop(&mut self) {
        for sub in self
            .subscribers
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
        {
            sub.notify.notify_one();
        }
    }
}

struct Subscriber {
    filter: EventFilter,
    capacity: usize,
    queue: Mutex<Queue>,
    notify: Notify,
    dropped: AtomicBool,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<AgentEvent>,
    /// Queued events that are not reports (the ones capacity applies to).
    ordinary: usize,
    /// Ordinary events not queued since the subscriber last heard of it.
    missed: u64,
}

impl EventBus {
    /// A new bus with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribe to the events `filter` selects, from now on, with the default capacity.
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        self.subscribe_with_capacity(filter, DEFAULT_SUBSCRIPTION_CAPACITY)
    }

    /// Subscribe with room for `capacity` unread ordinary events (reports don't count).
    pub fn subscribe_with_capacity(&self, filter: EventFilter, capacity: usize) -> Subscription {
        let subscriber = Arc::new(Subscriber {
            filter,
            capacity,
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
            dropped: AtomicBool::new(false),
        });
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(subscriber.clone());
        Subscription {
            subscriber,
            bus: Arc::downgrade(&self.inner),
        }
    }

    /// Deliver `event` to every subscription whose filter selects it. Never blocks.
    pub fn publish(&self, event: AgentEvent) {
        let mut subscribers = self
            .inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|s| !s.dropped.load(Ordering::Relaxed));
        // Copies for all but the last subscriber that wants it, which takes the event
        // itself (most events have one subscriber, or none).
        let mut wanting = subscribers.iter().filter(|s| s.filter.matches(&event));
        let Some(mut last) = wanting.next() else {
            return;
        };
        for next in wanting {
            last.push(event.clone());
            last = next;
        }
        last.push(event);
    }

    /// Number of live subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| !s.dropped.load(Ordering::Relaxed))
            .count()
    }
}

impl Subscriber {
    fn push(&self, event: AgentEvent) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if event.event_type != EventType::SubagentReport {
            if queue.ordinary >= self.capacity {
                queue.missed += 1;
                return;
            }
            queue.ordinary += 1;
        }
        queue.events.push_back(event);
        drop(queue);
        self.notify.notify_one();
    }

    fn pop(&self) -> Option<Result<AgentEvent, RecvError>> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.missed > 0 {
            return Some(Err(RecvError::Lagged(std::mem::take(&mut queue.missed))));
        }
        let event = queue.events.pop_front()?;
        if event.event_type != EventType::SubagentReport {
            queue.ordinary -= 1;
        }
        Some(Ok(event))
    }
}

/// A subscriber's end of the bus. Dropping it unsubscribes.
pub struct Subscription {
    subscriber: Arc<Subscriber>,
    bus: Weak<BusInner>,
}

impl Subscription {
    /// The next event, waiting for one if none is queued.
    pub async fn recv(&mut self) -> Result<AgentEvent, RecvError> {
        loop {
            let notified = self.subscriber.notify.notified();
            if let Some(item) = self.subscriber.pop() {
                return item;
            }
            if self.bus.strong_count() == 0 {
                return Err(RecvError::Closed);
            }
            notified.await;
        }
    }

    /// The next event if one is queued, without waiting. `Ok(None)`: nothing yet.
    pub fn try_recv(&mut self) -> Result<Option<AgentEvent>, RecvError> {
        match self.subscriber.pop() {
            Some(item) => item.map(Some),
            None if self.bus.strong_count() == 0 => Err(RecvError::Closed),
            None => Ok(None),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.subscriber.dropped.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(t: EventType, worker: &str) -> AgentEvent {
        AgentEvent {
            event_type: t,
            stream_id: worker.into(),
            worker_id: worker.into(),
            execution_id: worker.into(),
            data: json!({}),
            timestamp: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn slow_subscriber_gets_lag_error_but_every_report() {
        let bus = EventBus::new();
        let mut sub = bus.subscribe_with_capacity(EventFilter::all(), 2);
        for i in 0..5 {
            bus.publish(event(EventType::WorkerLog, "w"));
            bus.publish(event(EventType::SubagentReport, &format!("r{i}")));
        }
        let mut reports = 0;
        let mut lagged = 0;
        while let Some(item) = sub.try_recv().transpose() {
            match item {
                Ok(e) if e.event_type == EventType::SubagentReport => reports += 1,
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => lagged += n,
                Err(RecvError::Closed) => unreachable!(),
            }
        }
        assert_eq!(reports, 5);
        assert_eq!(lagged, 3);
    }

    #[tokio::test]
    async fn filters_by_type_and_worker_and_unsubscribes_on_drop() {
        let bus = EventBus::new();
        let mut sub = bus.subscribe(
            EventFilter::all()
                .types([EventType::SubagentReport])
                .worker("a"),
        );
        bus.publish(event(EventType::SubagentReport, "b"));
        bus.publish(event(EventType::WorkerLog, "a"));
        bus.publish(event(EventType::SubagentReport, "a"));
        let got = sub.recv().await.unwrap();
        assert_eq!(got.worker_id, "a");
        assert_eq!(sub.try_recv(), Ok(None));
        drop(sub);
        bus.publish(event(EventType::WorkerLog, "a"));
        assert_eq!(bus.subscriber_count(), 0);
    }

    #[test]
    fn every_subscription_sees_concurrent_publishers_in_one_order() {
        let bus = EventBus::new();
        let mut first = bus.subscribe(EventFilter::all());
        let mut second = bus.subscribe(EventFilter::all());
        std::thread::scope(|scope| {
            for t in 0..4 {
                let bus = bus.clone();
                scope.spawn(move || {
                    for i in 0..500 {
                        bus.publish(event(EventType::SubagentReport, &format!("{t}-{i}")));
                    }
                });
            }
        });
        let drain = |sub: &mut Subscription| {
            std::iter::from_fn(|| sub.try_recv().unwrap().map(|e| e.worker_id)).collect::<Vec<_>>()
        };
        let seen = drain(&mut first);
        assert_eq!(seen.len(), 2000);
        assert_eq!(seen, drain(&mut second));
    }

    #[tokio::test]
    async fn recv_reports_closed_after_bus_is_dropped() {
        let bus = EventBus::new();
        let mut sub = bus.subscribe(EventFilter::all());
        bus.publish(event(EventType::WorkerLog, "a"));
        drop(bus);
        assert!(sub.recv().await.is_ok());
        assert_eq!(sub.recv().await, Err(RecvError::Closed));
    }
}
