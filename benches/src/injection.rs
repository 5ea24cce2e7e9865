//! Table 2, injection: inject → guest turn → TURN_COMPLETED received, on 1 and on 100
//! persistent workers, beside two baselines measured the same way in the same run: the
//! same guest served by wasmtime alone (a task per instance calling `on-message` for each
//! message from a channel: [`crate::wasmtime_alone`]), and the floor — a tokio task per
//! "worker" that takes each message from a channel and publishes the same TURN_COMPLETED
//! on the same bus (no guest, no sandbox).

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use colony::{AgentEvent, EventBus, EventFilter, EventType, Subscription, Worker, WorkerSpec};
use serde_json::json;
use tokio::sync::mpsc;

use crate::wasmtime_alone::WasmtimeAlone;

const MESSAGES: usize = 20_000;
/// Messages in flight per worker (never past a worker's inbox capacity).
const WINDOW: usize = 64;

pub async fn table() {
    let runtime = crate::runtime(1000);
    let probe = crate::plugin(&runtime, "probe-fixture").await;
    println!("\n### 2. Injection: inject → turn → TURN_COMPLETED received\n");
    println!(
        "| what | workers | messages | messages/s | p50 µs | p99 µs | ÷ wasmtime alone | ÷ floor |\n\
         |---|---|---|---|---|---|---|---|"
    );
    let alone = WasmtimeAlone::new(&crate::guest("probe-fixture"))
        .expect("the probe guest in wasmtime alone");
    for workers in [1usize, 100] {
        let floor = floor(workers).await;
        let alone = wasmtime_alone(&alone, workers).await;
        let colony = guests(&probe, workers).await;
        for (name, (per_s, p50, p99)) in [
            ("colony, probe guest", colony),
            ("wasmtime alone: same guest, no Colony", alone),
            ("floor: tokio task + bus", floor),
        ] {
            println!(
                "| {name} | {workers} | {MESSAGES} | {per_s:.0} | {p50:.1} | {p99:.1} | {:.2} | {:.2} |",
                per_s / alone.0,
                per_s / floor.0
            );
        }
    }
}

/// `workers` persistent probe guests echoing each message as a turn.
async fn guests(probe: &colony::Plugin, workers: usize) -> (f64, f64, f64) {
    let bus = EventBus::new();
    let turns = subscribe(&bus);
    let mut ready = bus.subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let mut pool = Vec::new();
    for i in 0..workers {
        let spec =
            WorkerSpec::persistent(format!("p{i}"), "").with_input(json!({"action": "echo"}));
        let worker = Worker::new(probe, spec, Some(bus.clone())).expect("worker");
        worker.start().expect("start");
        pool.push(worker);
    }
    for _ in 0..workers {
        ready.recv().await.expect("initial report");
    }
    let measured = measure(workers, turns, |i, message| {
        pool[i].inject(message).expect("inject");
    })
    .await;
    for worker in &pool {
        worker.stop().await;
    }
    measured
}

/// The same guest served by wasmtime alone: a task per instance, each message a call.
async fn wasmtime_alone(guest: &WasmtimeAlone, workers: usize) -> (f64, f64, f64) {
    let bus = EventBus::new();
    let turns = subscribe(&bus);
    let inboxes: Vec<mpsc::UnboundedSender<String>> = (0..workers)
        .map(|i| {
            let (tx, rx) = mpsc::unbounded_channel::<String>();
            let (guest, bus) = (guest.clone(), bus.clone());
            tokio::spawn(async move {
                guest
                    .serve(format!("p{i}"), r#"{"action": "echo"}"#, rx, &bus)
                    .await
                    .expect("the guest serves its turns");
            });
            tx
        })
        .collect();
    measure(workers, turns, |i, message| {
        inboxes[i].send(message).expect("the task is running");
    })
    .await
}

/// The floor: a task per worker turning each message into a TURN_COMPLETED event.
async fn floor(workers: usize) -> (f64, f64, f64) {
    let bus = EventBus::new();
    let turns = subscribe(&bus);
    let inboxes: Vec<mpsc::UnboundedSender<String>> = (0..workers)
        .map(|i| {
            let (tx, mut rx) = mpsc::unbounded_channel::<String>();
            let bus = bus.clone();
            tokio::spawn(async move {
                let id = format!("p{i}");
                while let Some(message) = rx.recv().await {
                    bus.publish(AgentEvent {
                        event_type: EventType::TurnCompleted,
                        stream_id: id.clone(),
                        worker_id: id.clone(),
                        execution_id: id.clone(),
                        data: json!({"worker_id": id, "turn": 1, "message": message,
                            "output": {"echo": message}}),
                        timestamp: chrono::Utc::now(),
                    });
                }
            });
            tx
        })
        .collect();
    measure(workers, turns, |i, message| {
        inboxes[i].send(message).expect("the task is running");
    })
    .await
}

fn subscribe(bus: &EventBus) -> Subscription {
    bus.subscribe_with_capacity(
        EventFilter::all().types([EventType::TurnCompleted]),
        1 << 20,
    )
}

/// Sends [`MESSAGES`] round-robin through `inject` with [`WINDOW`] in flight per worker,
/// timing each until its TURN_COMPLETED: (messages/s, p50 µs, p99 µs).
async fn measure(
    workers: usize,
    mut turns: Subscription,
    inject: impl Fn(usize, String),
) -> (f64, f64, f64) {
    let mut in_flight: HashMap<String, VecDeque<Instant>> = HashMap::new();
    let mut latencies = Vec::with_capacity(MESSAGES);
    let (mut next, mut pending) = (0, 0);
    let begun = Instant::now();
    while latencies.len() < MESSAGES {
        while next < MESSAGES && pending < WINDOW * workers {
            let i = next % workers;
            in_flight
                .entry(format!("p{i}"))
                .or_default()
                .push_back(Instant::now());
            inject(i, format!("m{next}"));
            next += 1;
            pending += 1;
        }
        let event = turns.recv().await.expect("a turn");
        let sent = in_flight
            .get_mut(&event.worker_id)
            .and_then(VecDeque::pop_front)
            .expect("a message in flight");
        latencies.push(sent.elapsed());
        pending -= 1;
    }
    let per_s = MESSAGES as f64 / begun.elapsed().as_secs_f64();
    let (p50, p99) = crate::percentiles(&mut latencies);
    (per_s, p50, p99)
}
