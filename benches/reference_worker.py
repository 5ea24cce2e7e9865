"""Baseline for benchmark 1: the reference framework's `Worker` (../shared/reference/worker.py),
adapted only as far as needed to run outside its framework: an in-memory event bus standing in
for `framework.host.event_bus`, and a stub agent loop whose `execute` returns at once.

The `Worker` methods on the measured path (run, _build_result, _emit_terminal_events,
start_background) are the reference's, re-indented (the shared copy is flattened onto one
line). Prints one JSON object: workers/s and p50/p99 latency (µs) of spawn → SUBAGENT_REPORT
received.

    python3 benches/reference_worker.py --total 5000 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


# --- stand-in for framework.host.event_bus -------------------------------------------------
class EventType(StrEnum):
    EXECUTION_COMPLETED = "execution_completed"
    EXECUTION_FAILED = "execution_failed"
    SUBAGENT_REPORT = "subagent_report"


@dataclass
class AgentEvent:
    type: EventType
    stream_id: str
    node_id: str
    execution_id: str
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)


class EventBus:
    def __init__(self) -> None:
        self._handlers: list[tuple[set[EventType], Any]] = []

    def subscribe(self, types: set[EventType], handler: Any) -> None:
        self._handlers.append((types, handler))

    async def publish(self, event: AgentEvent) -> None:
        for types, handler in self._handlers:
            if event.type in types:
                await handler(event)


# --- the reference Worker (the measured path, as in worker.py) -----------------------------
class WorkerStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class WorkerResult:
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    tokens_used: int = 0
    duration_seconds: float = 0.0
    status: str = "success"
    summary: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Worker:
    def __init__(self, worker_id, task, agent_loop, context, event_bus=None, colony_id="", persistent=False):
        self.id = worker_id
        self.task = task
        self.status = WorkerStatus.PENDING
        self._agent_loop = agent_loop
        self._context = context
        self._event_bus = event_bus
        self._colony_id = colony_id
        self._persistent = persistent
        self._task_handle = None
        self._started_at = 0.0
        self._result = None
        self._input_queue = asyncio.Queue()
        self._explicit_report = None
        if agent_loop is not None:
            agent_loop._owner_worker = self

    async def run(self):
        self.status = WorkerStatus.RUNNING
        self._started_at = time.monotonic()
        try:
            result = await self._agent_loop.execute(self._context)
            duration = time.monotonic() - self._started_at
            if result.success:
                self.status = WorkerStatus.COMPLETED
                self._result = self._build_result(result, duration, default_status="success")
            else:
                self.status = WorkerStatus.FAILED
                self._result = self._build_result(result, duration, default_status="failed")
            await self._emit_terminal_events(result)
            return self._result
        except asyncio.CancelledError:
            self.status = WorkerStatus.STOPPED
            self._result = WorkerResult(error="Worker stopped by queen", status="stopped",
                                        summary="Worker was cancelled before completion.")
            await self._emit_terminal_events(None, force_status="stopped")
            return self._result

    def _build_result(self, agent_result, duration, default_status):
        explicit = self._explicit_report
        if explicit is not None:
            return WorkerResult(output=dict(agent_result.output or {}), error=agent_result.error,
                                tokens_used=getattr(agent_result, "tokens_used", 0), duration_seconds=duration,
                                status=explicit["status"], summary=explicit["summary"], data=explicit["data"])
        if agent_result.success:
            summary = f"Completed task '{self.task[:80]}' with {len(agent_result.output or {})} outputs."
            data = dict(agent_result.output or {})
        else:
            summary = f"Task '{self.task[:80]}' failed: {agent_result.error or 'unknown'}"
            data = {}
        return WorkerResult(output=dict(agent_result.output or {}), error=agent_result.error,
                            tokens_used=getattr(agent_result, "tokens_used", 0), duration_seconds=duration,
                            status=default_status, summary=summary, data=data)

    async def _emit_terminal_events(self, agent_result, force_status=None):
        if self._event_bus is None:
            return
        if agent_result is not None:
            lifecycle_type = EventType.EXECUTION_COMPLETED if agent_result.success else EventType.EXECUTION_FAILED
            await self._event_bus.publish(AgentEvent(
                type=lifecycle_type, stream_id=self._context.stream_id or self.id, node_id=self.id,
                execution_id=self._context.execution_id or self.id,
                data={"worker_id": self.id, "colony_id": self._colony_id, "task": self.task,
                      "success": agent_result.success, "error": agent_result.error,
                      "output_keys": (list(agent_result.output.keys()) if agent_result.output else [])}))
        result = self._result
        if result is None:
            return
        await self._event_bus.publish(AgentEvent(
            type=EventType.SUBAGENT_REPORT, stream_id=self._context.stream_id or self.id, node_id=self.id,
            execution_id=self._context.execution_id or self.id,
            data={"worker_id": self.id, "colony_id": self._colony_id, "task": self.task,
                  "status": force_status or result.status, "summary": result.summary, "data": result.data,
                  "error": result.error, "duration_seconds": result.duration_seconds,
                  "tokens_used": result.tokens_used}))

    async def start_background(self):
        self._task_handle = asyncio.create_task(self.run(), name=f"worker:{self.id}")


# --- the stub agent loop: the same outputs as the Rust guest, returned at once -------------
@dataclass
class AgentResult:
    success: bool
    output: dict[str, Any]
    error: str | None = None
    tokens_used: int = 0


@dataclass
class Context:
    stream_id: str = ""
    execution_id: str = ""


class StubLoop:
    def __init__(self, task: str) -> None:
        self.task = task

    async def execute(self, context):
        return AgentResult(success=True, output={"words": len(self.task.split()), "shout": self.task.upper()})


async def bench(total: int, concurrency: int) -> dict[str, float]:
    bus = EventBus()
    waiting: dict[str, asyncio.Future] = {}

    async def on_report(event: AgentEvent) -> None:
        waiting.pop(event.node_id).set_result(None)

    bus.subscribe({EventType.SUBAGENT_REPORT}, on_report)
    latencies: list[float] = []
    counter = iter(range(total))

    async def lane() -> None:
        loop = asyncio.get_running_loop()
        for i in counter:
            started = time.perf_counter()
            worker_id = f"w{i}"
            done = loop.create_future()
            waiting[worker_id] = done
            task = "count these words"
            worker = Worker(worker_id, task, StubLoop(task), Context(), event_bus=bus)
            await worker.start_background()
            await done
            latencies.append(time.perf_counter() - started)

    begun = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed = time.perf_counter() - begun
    latencies.sort()
    pick = lambda q: latencies[round((len(latencies) - 1) * q)] * 1e6
    return {"workers_per_s": total / elapsed, "p50_us": pick(0.5), "p99_us": pick(0.99)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--total", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.total, args.concurrency))))
