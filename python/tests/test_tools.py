"""Host tools written in Python, called by real guests through `tools.call`: granted by
name only, run on the caller's event loop, bounded by the tool timeout, the tool-call
budget and the host memory budget."""

from __future__ import annotations

import asyncio
import threading

import colony
import pytest

from conftest import guest

calls: list[dict] = []


@colony.tool("py.add", parameters={"type": "object", "properties": {
    "a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]})
async def add(a: float, b: float) -> dict:
    """Adds two numbers."""
    calls.append({"a": a, "b": b, "thread": threading.get_ident()})
    await asyncio.sleep(0)
    return {"sum": a + b}


@colony.tool("py.explode")
async def explode() -> None:
    raise ValueError("the tool broke on purpose")


@colony.tool("py.huge")
async def huge() -> str:
    return "x" * (4 << 20)


sleeping: dict[str, object] = {}


@colony.tool("py.sleep")
async def sleep_forever() -> None:
    sleeping["started"] = True
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        sleeping["cancelled"] = True
        raise


@colony.tool("py.set")
def returns_a_set() -> set:
    return {1, 2}


TOOLS = [add, explode, huge, sleep_forever, returns_a_set]


async def call_tool(manifest, name: str, args: dict, *, grants: list[str],
                    limits: str = "") -> dict:
    runtime = colony.Runtime(tools=TOOLS)
    granted = ", ".join(f'"{g}"' for g in grants)
    path = manifest("hostile-fixture", f"[grants]\ntools = [{granted}]\n{limits}",
                    plugin="tool-caller")
    plugin = await runtime.load_manifest(path)
    worker = colony.Worker(plugin, "caller", "tool",
                           input={"action": "tool", "arg": name, "args": args})
    result = await worker.run()
    assert result["status"] == "success", result
    return result["output"]


def test_the_decorator_keeps_the_function_and_describes_the_tool():
    assert isinstance(add, colony.Tool)
    assert add.name == "py.add" and add.description == "Adds two numbers."
    assert add.parameters["required"] == ["a", "b"]
    with pytest.raises(TypeError, match="not callable"):
        colony.tool("py.bad")(42)
    with pytest.raises(TypeError, match="colony.Tool objects"):
        colony.Runtime(tools=[add.function])
    with pytest.raises(ValueError, match="already registered"):
        colony.Runtime(tools=[add, add])
    with pytest.raises(ValueError, match="already registered"):
        colony.Runtime(tools=[colony.Tool("files.read", add.function)])


async def test_a_granted_python_tool_runs_on_the_event_loops_thread(manifest):
    calls.clear()
    output = await call_tool(manifest, "py.add", {"a": 2, "b": 40}, grants=["py.add"])
    assert output == {"result": {"sum": 42}}
    assert calls[0]["thread"] == threading.get_ident()


async def test_an_ungranted_python_tool_is_never_called(manifest):
    calls.clear()
    output = await call_tool(manifest, "py.add", {"a": 1, "b": 1}, grants=["time.now"])
    assert "denied" in output and "py.add" in output["denied"]
    assert calls == []


async def test_a_raising_tool_is_a_tool_error_for_the_guest(manifest):
    output = await call_tool(manifest, "py.explode", {}, grants=["py.explode"])
    assert "ValueError: the tool broke on purpose" in output["denied"]


async def test_arguments_that_do_not_fit_the_signature_are_invalid_arguments(manifest):
    output = await call_tool(manifest, "py.add", {"a": 1}, grants=["py.add"])
    assert "missing a required argument: 'b'" in output["denied"]


async def test_a_return_value_that_is_not_json_is_a_tool_error(manifest):
    output = await call_tool(manifest, "py.set", {}, grants=["py.set"])
    assert "not JSON serializable" in output["denied"]


async def test_the_tool_timeout_cancels_the_coroutine(manifest):
    sleeping.clear()
    output = await call_tool(manifest, "py.sleep", {}, grants=["py.sleep"],
                             limits='[limits]\ntool_timeout = "300ms"')
    assert "denied" in output
    for _ in range(100):
        if sleeping.get("cancelled"):
            break
        await asyncio.sleep(0.02)
    assert sleeping == {"started": True, "cancelled": True}


async def test_a_result_over_the_host_memory_budget_is_refused(manifest):
    output = await call_tool(manifest, "py.huge", {}, grants=["py.huge"],
                             limits="[limits]\nhost_memory_bytes = 1048576")
    assert "host memory budget" in output["denied"]
