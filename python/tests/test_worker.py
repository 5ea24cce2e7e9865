"""Workers through the Python API: lifecycle, results and reports with the events' field
names, injection, persistent turns, stop, cancellation, seeding."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time

import colony
import pytest

from conftest import ROOT, guest

RESULT_FIELDS = {"output", "error", "tokens_used", "tool_calls_used", "duration_seconds", "status",
                 "summary", "data"}
REPORT_FIELDS = {"worker_id", "colony_id", "task", "status", "summary", "data", "error",
                 "duration_seconds", "tokens_used"}
EVENT_FIELDS = {"type", "stream_id", "node_id", "execution_id", "data", "timestamp"}


async def probe(runtime: colony.Runtime | None = None) -> colony.Plugin:
    runtime = runtime or colony.Runtime()
    return await runtime.load_plugin(guest("probe-fixture"), "probe")


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_an_ephemeral_worker_runs_and_reports_with_the_events_field_names():
    runtime = colony.Runtime()
    plugin = await runtime.load_plugin(guest("echo-agent"))
    assert plugin.name == "echo_agent" and len(plugin.sha256) == 64
    bus = colony.EventBus()
    reports = bus.subscribe(types=["SUBAGENT_REPORT"])
    everything = bus.subscribe()
    worker = colony.Worker(plugin, "w-1", "summarise the news", input={"text": "hello"},
                           event_bus=bus, colony_id="c-1")
    assert worker.state == "pending" and worker.is_active and worker.result is None
    result = await worker.run()
    assert set(result) == RESULT_FIELDS
    assert result["status"] == "success" and result["error"] is None
    assert worker.state == worker.status == "completed"
    assert worker.result == result
    event = await asyncio.wait_for(reports.recv(), 5)
    assert set(event) == EVENT_FIELDS
    assert event["type"] == "SUBAGENT_REPORT" and event["node_id"] == "w-1"
    report = worker.report
    assert REPORT_FIELDS <= set(report) <= set(event["data"]) | REPORT_FIELDS
    for field in ("worker_id", "colony_id", "task", "status", "summary", "data", "tokens_used"):
        assert report[field] == event["data"][field], field
    assert report["colony_id"] == "c-1" and report["task"] == "summarise the news"
    types = []
    while (e := everything.try_recv()) is not None:
        types.append(e["type"])
    assert types[0] == "EXECUTION_STARTED" and "SUBAGENT_REPORT" in types
    info = worker.info()
    assert info["id"] == "w-1" and info["state"] == "completed" and info["mode"] == "ephemeral"


async def test_a_failing_guest_fails_its_worker_with_the_guests_error():
    plugin = await probe()
    worker = colony.Worker(plugin, "w-fail", "fail", input={"action": "fail", "error": "no data"})
    result = await worker.run()
    assert worker.state == "failed"
    assert result["status"] == "failed" and "no data" in result["error"]


async def test_a_persistent_worker_takes_one_turn_per_injected_message_and_stops():
    plugin = await probe()
    bus = colony.EventBus()
    turns = bus.subscribe(types=["TURN_COMPLETED"])
    worker = colony.Worker(plugin, "p-1", "converse", persistent=True, event_bus=bus)
    assert worker.is_persistent
    worker.start()
    assert worker.is_active
    for message in ("one", "two", "three"):
        worker.inject(message)
    seen = [await asyncio.wait_for(turns.recv(), 10) for _ in range(3)]
    assert [e["node_id"] for e in seen] == ["p-1"] * 3
    outcome = await worker.stop()
    assert outcome["state"] == "stopped" and outcome["clean"] is True
    assert worker.state == "stopped" and not worker.is_active


async def test_stop_ends_a_guest_that_spins_forever():
    plugin = await probe()
    worker = colony.Worker(plugin, "spinner", "spin", input={"action": "spin"})
    worker.start()
    await asyncio.sleep(0.1)
    begun = time.monotonic()
    outcome = await worker.stop()
    assert outcome["state"] == "stopped"
    assert time.monotonic() - begun < 10
    assert worker.result["status"] == "stopped"


async def test_cancelling_run_stops_the_worker():
    plugin = await probe()
    worker = colony.Worker(plugin, "cancelled", "spin", input={"action": "spin"})
    task = asyncio.create_task(worker.run())
    await until(lambda: worker.state == "running")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: not worker.is_active)
    assert worker.state == "stopped"


async def test_a_run_cancelled_before_it_began_never_starts_the_worker():
    plugin = await probe()
    worker = colony.Worker(plugin, "never", "spin", input={"action": "spin"})
    task = asyncio.create_task(worker.run())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert worker.state == "pending"
    with pytest.raises(colony.WorkerError, match="never started"):
        await worker.wait()


def test_asyncio_run_takes_a_call_directly():
    runtime = colony.Runtime()
    plugin = asyncio.run(runtime.load_plugin(guest("echo-agent")))
    result = asyncio.run(colony.Worker(plugin, "direct", "run me").run())
    assert result["status"] == "success"


async def test_cancelling_wait_leaves_the_worker_running():
    plugin = await probe()
    worker = colony.Worker(plugin, "waiter", "wait", input={"action": "wait"})
    worker.start()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(worker.wait(), 0.2)
    assert worker.state == "running"
    worker.inject("wake up")
    result = await asyncio.wait_for(worker.wait(), 10)
    assert result["output"]["got"] == "wake up"


async def test_a_seeded_conversation_is_what_the_guest_reads(tmp_path):
    plugin = await probe()
    worker = colony.Worker(plugin, "seeded", "read", input={"action": "conversation"},
                           storage_path=tmp_path / "seeded")
    count = worker.seed_conversation([
        {"role": "user", "content": "earlier question"},
        {"role": "assistant", "content": "earlier answer"},
    ])
    assert count == 2
    result = await worker.run()
    parts = result["output"]["parts"]
    assert [(p["role"], p["content"]) for p in parts] == [
        ("user", "earlier question"), ("assistant", "earlier answer")]


async def test_seeding_without_a_storage_path_or_after_start_is_a_worker_error():
    plugin = await probe()
    worker = colony.Worker(plugin, "unseeded", "read", input={"action": "wait"})
    with pytest.raises(colony.WorkerError, match="storage path"):
        worker.seed_conversation([{"role": "user", "content": "x"}])
    worker.start()
    with pytest.raises(colony.WorkerError, match="unseeded"):
        worker.start()
    await worker.stop()


async def test_one_runtime_serves_two_event_loops():
    runtime = colony.Runtime()
    plugin = await runtime.load_plugin(guest("echo-agent"))

    async def again() -> str:
        return (await colony.Worker(plugin, "second-loop", "again").run())["status"]

    # A second loop, in a thread (asyncio.run refuses to nest).
    status = await asyncio.to_thread(asyncio.run, again())
    assert status == "success"


def test_a_runtime_s_traces_are_exported_when_the_interpreter_exits(tmp_path):
    """Spans still in the exporter's batch when a script ends are written at exit."""
    spans = tmp_path / "spans.jsonl"
    script = textwrap.dedent(f"""
        import asyncio, colony
        async def main():
            runtime = colony.Runtime(config={{"telemetry": {{"file": {str(spans)!r}}}}})
            plugin = await runtime.load_plugin({str(guest("echo-agent"))!r}, "echo")
            await colony.Worker(plugin, "w-traced", "summarise the news").run()
        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    names = [span["name"]
             for line in spans.read_text().splitlines()
             for resource in json.loads(line)["resourceSpans"]
             for scope in resource["scopeSpans"]
             for span in scope["spans"]]
    assert names == ["invoke_agent echo"]
