"""Colonies from Python: fan-out and reports, the overseer, stop_all, the journal across
processes, batches and resume, a fan-out of 10,000 through `async for`, and an event loop
that stays responsive while workers run."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import colony

from conftest import ROOT, guest


async def plugins(runtime: colony.Runtime) -> tuple[colony.Plugin, colony.Plugin]:
    echo = await runtime.load_plugin(guest("echo-agent"), "echo")
    probe = await runtime.load_plugin(guest("probe-fixture"), "probe")
    return echo, probe


async def test_a_colony_fans_out_and_waits_for_every_report(tmp_path):
    runtime = colony.Runtime()
    echo, _ = await plugins(runtime)
    async with await colony.Colony.open(runtime, tmp_path / "home", id="c1") as c:
        assert c.id == "c1" and not c.is_distributed
        ids = c.run_parallel(echo, ["one", {"task": "two", "input": {"k": 2}}, "three"])
        assert len(ids) == 3
        reports = await c.wait_for_reports(ids, timeout=30)
        assert [r["worker_id"] for r in reports] == ids
        assert [r["task"] for r in reports] == ["one", "two", "three"]
        assert {r["status"] for r in reports} == {"success"}
        assert {w["state"] for w in c.workers()} == {"completed"}
        assert c.info(ids[0])["task"] == "one"
        assert c.worker(ids[1]).result["status"] == "success"
    # Reopened, the journal has nothing left unfinished.
    async with await colony.Colony.open(runtime, tmp_path / "home", id="c1") as again:
        assert again.interrupted == []


async def test_tasks_are_checked_before_anything_runs(tmp_path):
    runtime = colony.Runtime()
    echo, _ = await plugins(runtime)
    async with await colony.Colony.open(runtime, tmp_path, max_batch=2) as c:
        import pytest
        with pytest.raises(TypeError, match="not one string"):
            c.run_parallel(echo, "a task")
        with pytest.raises(ValueError, match="no field `colour`"):
            c.run_parallel(echo, [{"task": "x", "colour": "red"}])
        with pytest.raises(colony.LimitError, match="over the limit of 2"):
            c.run_parallel(echo, ["a", "b", "c"])
        with pytest.raises(colony.WorkerError, match="no worker 'nobody'"):
            await c.inject("nobody", "hello")
        assert c.workers() == []


async def test_the_overseer_hears_every_report_as_a_turn(tmp_path):
    runtime = colony.Runtime()
    echo, _ = await plugins(runtime)
    chat = await runtime.load_plugin(guest("chat-agent"), "chat")
    async with await colony.Colony.open(runtime, tmp_path) as c:
        turns = c.subscribe(types=["TURN_COMPLETED"])
        overseer = c.start_overseer(chat, "coordinate", [{"role": "user", "content": "hi"}])
        assert c.overseer.id == overseer.id and overseer.is_persistent
        ids = c.run_parallel(echo, ["a", "b"])
        heard = []
        while len(heard) < 2:
            event = await asyncio.wait_for(turns.recv(), 20)
            assert event["node_id"] == overseer.id
            heard.append(event["data"]["message"])
        assert all(m.startswith("[WORKER_REPORT]") for m in heard)
        assert {m.split()[1].rstrip(":") for m in heard} == set(ids)
        outcomes = await c.stop_all()
        assert overseer.id in {o["worker_id"] for o in outcomes}
        assert overseer.state == "stopped"


async def test_stop_all_stops_running_and_queued_workers(tmp_path):
    runtime = colony.Runtime()
    _, probe = await plugins(runtime)
    async with await colony.Colony.open(runtime, tmp_path, max_concurrency=2) as c:
        ids = c.run_parallel(probe, [{"task": "spin", "input": {"action": "spin"}}] * 4)
        await asyncio.sleep(0.2)
        outcomes = await c.stop_all()
        assert {o["worker_id"] for o in outcomes} == set(ids)
        assert {o["state"] for o in outcomes} == {"stopped"}
        reports = await c.wait_for_reports(ids, timeout=5)
        assert {r["status"] for r in reports} == {"stopped"}


async def test_a_fan_out_of_ten_thousand_loses_no_report_through_async_for(tmp_path):
    runtime = colony.Runtime()
    echo, _ = await plugins(runtime)
    async with await colony.Colony.open(runtime, tmp_path, max_concurrency=64) as c:
        reports = c.subscribe(types=["SUBAGENT_REPORT"], capacity=20_000)
        batch = c.fan_out(echo, [f"task {i}" for i in range(10_000)])
        assert batch["size"] == 10_000 and len(batch["started"]) == 10_000
        seen: dict[str, int] = {}
        async for event in reports:
            data = event["data"]
            assert data["batch_id"] == batch["id"] and data["batch_size"] == 10_000
            seen[event["node_id"]] = data["batch_index"]
            if len(seen) == 10_000:
                break
        assert reports.missed == 0
        assert sorted(seen.values()) == list(range(10_000))
        assert set(seen) == set(batch["started"])


async def test_the_event_loop_stays_responsive_while_workers_run(tmp_path):
    runtime = colony.Runtime()
    echo, probe = await plugins(runtime)
    async with await colony.Colony.open(runtime, tmp_path, max_concurrency=64) as c:
        reports = c.subscribe(types=["SUBAGENT_REPORT"], capacity=5000)
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        beat = asyncio.create_task(ticker())
        spinning = c.run_parallel(probe, [{"task": "s", "input": {"action": "spin"}}] * 2)
        batch = c.fan_out(echo, [f"t{i}" for i in range(2000)])
        got = 0
        async for _ in reports:
            got += 1
            if got == 2000:
                break
        beat.cancel()
        for worker_id in spinning:
            await c.stop_worker(worker_id)
        gaps = [b - a for a, b in zip(ticks, ticks[1:])]
        assert len(batch["started"]) == 2000
        assert max(gaps) < 0.25, f"the loop stalled for {max(gaps):.3f} s"


async def test_a_killed_processs_workers_are_interrupted_and_its_batch_resumes(tmp_path):
    home = tmp_path / "home"
    script = textwrap.dedent(f"""
        import asyncio, colony, sys
        async def main():
            runtime = colony.Runtime()
            probe = await runtime.load_plugin({str(guest("probe-fixture"))!r}, "probe")
            c = await colony.Colony.open(runtime, {str(home)!r}, id="k", max_concurrency=2)
            batch = c.fan_out(probe, [{{"task": "quick", "input": {{"action": "echo"}}}},
                                      {{"task": "slow", "input": {{"action": "sleep"}}}},
                                      {{"task": "slow", "input": {{"action": "sleep"}}}}])
            await c.wait_for_reports(batch["started"][:1], timeout=30)
            print(batch["id"], flush=True)
            await asyncio.sleep(3600)
        asyncio.run(main())
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT)
    try:
        batch_id = (await asyncio.to_thread(child.stdout.readline)).strip()
        assert batch_id.startswith("b-"), batch_id
        await asyncio.sleep(0.3)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    # A journal whose owner's heartbeat is fresh may belong to a live process.
    await asyncio.sleep(3.5)
    runtime = colony.Runtime()
    _, probe = await plugins(runtime)
    async with await colony.Colony.open(runtime, home, id="k") as c:
        assert len(c.interrupted) == 2
        resumed = c.resume_batch(probe, batch_id)
        assert [r["task"] for r in resumed["reported"]] == ["quick"]
        assert len(resumed["started"]) == 2
        outcomes = await c.stop_all()
        assert {o["state"] for o in outcomes} == {"stopped"}


async def test_closing_a_subscription_ends_its_async_for(tmp_path):
    runtime = colony.Runtime()
    echo, _ = await plugins(runtime)
    async with await colony.Colony.open(runtime, tmp_path) as c:
        reports = c.subscribe(types=["SUBAGENT_REPORT"])
        ids = c.run_parallel(echo, ["a", "b"])
        await c.wait_for_reports(ids, timeout=30)
        seen = []

        async def read() -> None:
            async for event in reports:
                seen.append(event["node_id"])

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.2)
        reports.close()
        await asyncio.wait_for(reader, 5)
        assert sorted(seen) == sorted(ids)


def _exit_without_closing(home, keep: bool) -> list[str]:
    """Runs a script that starts 300 waiting workers (64 running) in a colony at `home` and ends
    without `async with` or `stop_all` — keeping the colony in a global (`keep`) or
    dropping it with its coroutine. Returns the worker ids it printed."""
    script = textwrap.dedent(f"""
        import asyncio, colony
        async def main():
            runtime = colony.Runtime()
            probe = await runtime.load_plugin({str(guest("probe-fixture"))!r}, "probe")
            c = await colony.Colony.open(runtime, {str(home)!r}, id="x", max_concurrency=64,
                                         max_batch=300)
            ids = c.run_parallel(probe, [{{"task": "wait", "input": {{"action": "wait"}}}}] * 300)
            while sum(w["state"] == "running" for w in c.workers()) < 64:
                await asyncio.sleep(0.01)
            print(" ".join(ids), flush=True)
            if {keep!r}:
                global kept
                kept = c
        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


async def test_workers_of_a_colony_left_open_at_exit_are_stopped_with_reports(tmp_path):
    for keep in (True, False):
        home = tmp_path / f"keep-{keep}"
        ids = await asyncio.to_thread(_exit_without_closing, home, keep)
        assert len(ids) == 300
        journal = sqlite3.connect(home / "journal.db")
        states = dict(journal.execute("SELECT id, state FROM workers"))
        reported = {row[0] for row in journal.execute("SELECT worker_id FROM reports")}
        journal.close()
        assert {states[i] for i in ids} == {"stopped"}, (keep, states)
        assert reported == set(ids), (keep, reported)
