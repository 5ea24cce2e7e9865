"""`colony mcp` (Colony as an MCP *server*) driven by the official Python MCP SDK, `mcp` 2.3.0.

Each plugin given with `--plugin` is one tool; a call runs one ephemeral worker of it in a
journaled colony whose home is `--home`. These tests talk to the server over stdio and
streamable HTTP exactly as a third-party client would (`mcp.Client`), and read the
colony's journal (`HOME/journal.db`) with sqlite3 to see what the workers became.

Needs the `colony` binary (`$COLONY_BIN`, else target/debug/colony) and the guest
components `make guests` builds; run with the venv `make mcp-servers` makes:

    target/mcpvenv/bin/python -m pytest -q tests/mcp-clients

Async tests run on anyio's pytest plugin (shipped with anyio, a dependency of `mcp`).
`mode` is the SDK's connect policy: "auto" (its default) probes `server/discover` and falls
back to the `initialize` handshake; "legacy" always uses the handshake.
"""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import asynccontextmanager, closing
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
GUESTS = TARGET / "wasm32-wasip2" / "guest"
TIMEOUT = float(os.environ.get("COLONY_MCP_TEST_TIMEOUT", "120"))  # per test, and per request
TOKEN = "s3cret"
PROBE_SCHEMA = {"type": "object", "properties": {"action": {"type": "string"}}, "required": ["action"]}
BOTH_MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def colony_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("COLONY_BIN", TARGET / "debug" / "colony"))
    if not path.is_file():
        pytest.fail(f"colony binary {path} is missing: build it (cargo build) or set COLONY_BIN")
    return path


def guest(name: str) -> pathlib.Path:
    path = GUESTS / f"{name}.wasm"
    if not path.is_file():
        pytest.fail(f"guest component {path} is missing: run `make guests` first")
    return path


@pytest.fixture
def home(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def probe(tmp_path: pathlib.Path) -> pathlib.Path:
    """A manifest offering the probe fixture as the tool `probe`."""
    path = tmp_path / "probe.toml"
    path.write_text(
        f"component = {json.dumps(str(guest('probe_fixture')))}\n"
        "[tool]\n"
        'name = "probe"\n'
        'description = "Runs the probe fixture."\n'
        'input_schema = { type = "object", properties = { action = { type = "string" } }, required = ["action"] }\n'
    )
    return path


@pytest.fixture
def logs(tmp_path: pathlib.Path):
    """Opens a file for a server's stderr; printed at teardown, so a failure shows it."""
    paths: list[pathlib.Path] = []

    def open_log():
        paths.append(tmp_path / f"server-{len(paths)}.stderr")
        return paths[-1].open("w")

    yield open_log
    for path in paths:
        print(f"--- {path.name} ---\n{path.read_text(errors='replace')}")


@pytest.fixture
def serve_stdio(colony_bin, home, logs):
    """`async with serve_stdio(plugin, ...) as client`: a Client on `colony mcp` over stdio."""

    @asynccontextmanager
    async def connect(*plugins: pathlib.Path, mode: str = "auto"):
        args = ["--home", str(home), "mcp"] + [a for p in plugins for a in ("--plugin", str(p))]
        params = StdioServerParameters(command=str(colony_bin), args=args, env={"RUST_BACKTRACE": "1"})
        with logs() as errlog:
            transport = stdio_client(params, errlog=errlog)
            async with Client(transport, mode=mode, read_timeout_seconds=TIMEOUT) as client:
                yield client

    return connect


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLONY_MCP_TOKEN"}
    return env | {"RUST_BACKTRACE": "1"} | extra


@pytest.fixture
def serve_http(colony_bin, home, logs, free_tcp_port):
    """`serve_http(plugin, token=..., env=...)` starts `colony mcp --listen` and returns its URL."""
    procs: list[subprocess.Popen] = []

    def start(plugin: pathlib.Path, token: str | None = None, env: dict[str, str] | None = None) -> str:
        address = f"127.0.0.1:{free_tcp_port}"
        args = [str(colony_bin), "--home", str(home), "mcp", "--plugin", str(plugin), "--listen", address]
        args += ["--token", token] if token else []
        with logs() as errlog:  # the child keeps its own copy
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errlog, text=True, env=env or server_env())
        procs.append(proc)
        ready, lines = threading.Event(), []

        def read_stdout() -> None:
            for line in proc.stdout:
                lines.append(line)
                if "listening" in line:
                    ready.set()
            ready.set()  # EOF: the process is gone

        threading.Thread(target=read_stdout, daemon=True).start()
        if not ready.wait(TIMEOUT) or not any("listening" in line for line in lines):
            pytest.fail(f"colony mcp never said it was listening (exit {proc.poll()}); stdout: {lines}")
        assert address in "".join(lines)
        return f"http://{address}/mcp"

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def journal(home: pathlib.Path) -> dict[str, str]:
    """Worker id → state, as the colony's journal has them now."""
    path = home / "journal.db"
    if not path.is_file():
        return {}
    try:
        with closing(sqlite3.connect(path, timeout=5)) as db:
            return dict(db.execute("SELECT id, state FROM workers"))
    except sqlite3.OperationalError:  # not created yet
        return {}


async def eventually(check: Callable[[], Any], what: str, timeout: float) -> Any:
    with anyio.move_on_after(timeout):
        while not (value := check()):
            await anyio.sleep(0.1)
        return value
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}")


def assert_report(result, status: str) -> dict[str, Any]:
    """Checks the shape of a tool result carrying a worker report; returns its structuredContent."""
    report = result.structured_content
    assert isinstance(report, dict), result
    assert report["status"] == status, report
    assert {"worker_id", "status", "summary", "data"} <= report.keys(), report
    assert isinstance(report["worker_id"], str) and report["worker_id"]
    assert isinstance(report["data"], dict), report
    assert result.is_error is (status != "success"), result
    assert [(c.type, c.text) for c in result.content] == [("text", report["summary"])], result
    return report


@BOTH_MODES
async def test_tools_come_from_manifests_and_file_stems(serve_stdio, probe, mode):
    with anyio.fail_after(TIMEOUT):
        async with serve_stdio(probe, mode=mode) as client:
            tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["probe"]
        assert tools[0].description == "Runs the probe fixture."
        assert tools[0].input_schema == PROBE_SCHEMA

        async with serve_stdio(probe, guest("echo_agent"), mode=mode) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
        assert sorted(tools) == ["echo_agent", "probe"]
        assert tools["echo_agent"].input_schema.get("type") == "object"


async def test_the_readme_example_manifest_serves_its_tool(serve_stdio):
    example = pathlib.Path(__file__).resolve().parents[2] / "examples" / "mcp" / "summarise.toml"
    with anyio.fail_after(TIMEOUT):
        async with serve_stdio(example) as client:
            tools = (await client.list_tools()).tools
            result = await client.call_tool("summarise", {"task": "the quarterly figures"})
    assert [t.name for t in tools] == ["summarise"]
    assert tools[0].input_schema["required"] == ["task"]
    report = assert_report(result, "success")
    assert "the quarterly figures" in report["summary"]


@BOTH_MODES
async def test_call_runs_a_worker_and_returns_its_report(serve_stdio, probe, mode):
    with anyio.fail_after(TIMEOUT):
        async with serve_stdio(probe, mode=mode) as client:
            result = await client.call_tool("probe", {"action": "echo"})
    assert_report(result, "success")


async def test_worker_events_arrive_as_progress_notifications(serve_stdio, probe):
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    with anyio.fail_after(TIMEOUT):
        async with serve_stdio(probe) as client:
            result = await client.call_tool("probe", {"action": "emit_many", "count": 5}, progress_callback=on_progress)
            # The SDK runs progress callbacks in tasks of their own: let them land.
            await eventually(lambda: sum("tick" in (m or "") for _, m in seen) >= 5, f"5 tick progress notes (saw {seen})", 5)
    assert_report(result, "success")
    assert max(p for p, _ in seen) >= 5, seen


async def test_a_flood_of_worker_events_is_throttled_into_few_progress_notifications(serve_stdio, probe):
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    with anyio.fail_after(TIMEOUT):
        async with serve_stdio(probe) as client:
            begun = time.monotonic()
            result = await client.call_tool("probe", {"action": "emit_many", "count": 900}, progress_callback=on_progress)
            elapsed = time.monotonic() - begun
            await anyio.sleep(0.5)
    assert_report(result, "success")
    # 900 events (under the 1,000/s event rate): a burst of 32, then 20 a second.
    assert 1 <= len(seen) <= 32 + 20 * elapsed + 2, (len(seen), elapsed)
    assert len(seen) < 900 / 10, len(seen)


async def test_failed_and_partial_reports_are_tool_errors(serve_stdio, probe):
    with anyio.fail_after(TIMEOUT):
        async with serve_stdio(probe) as client:
            failed = await client.call_tool("probe", {"action": "fail", "error": "no data"})
            partial = await client.call_tool(
                "probe",
                {"action": "report", "reports": [{"status": "partial", "summary": "half done", "data": '{"k": 1}'}]},
            )
    assert_report(failed, "failed")
    assert assert_report(partial, "partial")["summary"] == "half done"


async def test_concurrent_calls_are_journaled_workers(serve_stdio, probe, home):
    results = []

    async def call() -> None:
        results.append(await client.call_tool("probe", {"action": "echo"}))

    with anyio.fail_after(TIMEOUT):
        async with serve_stdio(probe) as client:
            async with anyio.create_task_group() as tg:
                for _ in range(12):
                    tg.start_soon(call)
    ids = {assert_report(result, "success")["worker_id"] for result in results}
    assert len(results) == 12 and len(ids) == 12
    states = journal(home)
    assert states == dict.fromkeys(ids, "completed"), states


async def test_cancelling_a_call_stops_its_worker(serve_stdio, probe, home):
    with anyio.fail_after(TIMEOUT):
        async with serve_stdio(probe) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "probe", {"action": "sleep"})
                await eventually(lambda: journal(home), "the worker in the journal", TIMEOUT / 2)
                await anyio.sleep(1)
                # Cancelling the caller's scope makes the SDK send notifications/cancelled.
                tg.cancel_scope.cancel()
            states = await eventually(
                lambda: (s := journal(home)) and "stopped" in s.values() and s, "the worker to be stopped", 15
            )
    assert list(states.values()) == ["stopped"], states


@BOTH_MODES
async def test_http_with_token(serve_http, probe, mode):
    url = serve_http(probe, token=TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=TIMEOUT), trust_env=False)
    with anyio.fail_after(TIMEOUT):
        async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            assert [t.name for t in (await client.list_tools()).tools] == ["probe"]
            result = await client.call_tool("probe", {"action": "echo"})
    assert_report(result, "success")


def post_initialize(url: str, authorization: str | None) -> int:
    """POSTs an `initialize` request to `url`; returns the HTTP status."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("token_from", ["flag", "env"])
def test_http_without_the_token_is_401(serve_http, probe, token_from):
    if token_from == "flag":
        url = serve_http(probe, token=TOKEN)
    else:
        url = serve_http(probe, env=server_env(COLONY_MCP_TOKEN=TOKEN))
    assert post_initialize(url, None) == 401
    assert post_initialize(url, "Bearer wrong") == 401
    assert post_initialize(url, TOKEN) == 401  # no "Bearer "
    assert post_initialize(url, f"Bearer {TOKEN}") == 200


def test_non_loopback_without_token_is_refused(colony_bin, home, probe, free_tcp_port):
    args = [str(colony_bin), "--home", str(home), "mcp", "--plugin", str(probe), "--listen", f"0.0.0.0:{free_tcp_port}"]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, env=server_env())
    except subprocess.TimeoutExpired:
        pytest.fail("colony mcp --listen 0.0.0.0 without a token did not exit within 10 s")
    assert done.returncode != 0, done
    assert "token" in done.stderr.lower(), done.stderr
