"""The NATS backend from Python: a colony whose workers run on a real `colony node` over a
real nats-server (JetStream), with reports and injection crossing the network."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time

import colony
import pytest

from conftest import TARGET, guest

NATS = next((p for p in ("/usr/sbin/nats-server", shutil.which("nats-server")) if p and
             os.path.exists(p)), None)
COLONY = TARGET / "debug" / "colony"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    if NATS is None:
        pytest.fail("nats-server is missing: run `make setup`")
    if not COLONY.exists():
        pytest.fail(f"{COLONY} is missing: run `cargo build -p colony`")
    port = free_port()
    server = subprocess.Popen([NATS, "-js", "-a", "127.0.0.1", "-p", str(port),
                               "-sd", str(tmp_path / "nats")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{port}"
    node = None
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.05)
        node = subprocess.Popen([str(COLONY), "--nats", url, "--home", str(tmp_path / "node"),
                                 "node", "--name", "py-node", "--slots", "4",
                                 "--plugin", str(guest("probe-fixture"))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = node.stdout.readline()
        assert " serving " in line, (line, node.stderr.read() if node.poll() is not None else "")
        yield url
    finally:
        for child in (node, server):
            if child is not None:
                child.kill()
                child.wait()


async def test_a_colony_on_nats_runs_its_workers_on_a_node(cluster, tmp_path):
    runtime = colony.Runtime()
    probe = await runtime.load_plugin(guest("probe-fixture"), "probe")
    async with await colony.Colony.open(runtime, tmp_path / "home", id="py-nats",
                                        nats=cluster) as c:
        assert c.is_distributed
        reports = c.subscribe(types=["SUBAGENT_REPORT"])
        batch = c.fan_out(probe, [{"task": f"t{i}", "input": {"action": "echo"}}
                                  for i in range(8)])
        collector = c.spawn(probe, {"task": "collect", "input": {"action": "collect"}})
        # Injection crosses the network to the node the worker runs on.
        for _ in range(200):
            if (c.info(collector) or {}).get("state") == "running":
                break
            await asyncio.sleep(0.05)
        await c.inject(collector, "hello")
        await c.inject(collector, "done")
        done = await c.wait_for_reports(batch["started"] + [collector], timeout=60)
        assert [r["status"] for r in done] == ["success"] * 9, done
        assert sorted(r["batch_index"] for r in done[:8]) == list(range(8))
        assert done[8]["data"]["messages"] == ["hello", "done"]
        heard = set()
        while len(heard) < 9:
            heard.add((await asyncio.wait_for(reports.recv(), 10))["node_id"])
        assert heard == set(batch["started"] + [collector])
