"""A model provider written in Python driving the agent-loop guest: tool calls through a
Python tool, token usage counted against the worker's budget, errors and oversized
answers."""

from __future__ import annotations


import colony

from conftest import ScriptedRouter, guest, lookup, lookups


async def agent(manifest, provider, *, task="What is the weather in Oslo?", **worker):
    runtime = colony.Runtime(tools=[lookup], provider=provider)
    assert runtime.has_llm
    path = manifest("agent-loop", '[grants]\ntools = ["weather.lookup"]', plugin="agent")
    plugin = await runtime.load_manifest(path)
    bus = colony.EventBus()
    events = bus.subscribe()
    w = colony.Worker(plugin, "agent-1", task, event_bus=bus, **worker)
    result = await w.run()
    seen = []
    while (e := events.try_recv()) is not None:
        seen.append(e)
    return result, seen


async def test_a_python_provider_and_tool_drive_the_agent_loop(manifest):
    lookups.clear()
    router = ScriptedRouter([
        {"tool_calls": [{"id": "c1", "name": "weather.lookup", "arguments": {"city": "Oslo"}}],
         "usage": {"input_tokens": 30, "output_tokens": 5}},
        {"text": "It is clear in Oslo.", "usage": {"input_tokens": 50, "output_tokens": 7}},
    ])
    result, events = await agent(manifest, router)
    assert result["status"] == "success", result
    assert result["summary"] == "It is clear in Oslo."
    assert result["tokens_used"] == 30 + 5 + 50 + 7
    assert lookups == ["Oslo"]
    first, second = router.requests
    assert first["worker"] == "agent-1"
    assert first["messages"][-1] == {"role": "user", "content": "What is the weather in Oslo?",
                                     "tool_calls": [], "tool_call_id": None}
    assert [t["name"] for t in first["tools"]] == ["weather.lookup"]
    assert second["messages"][-1]["role"] == "tool"
    assert '"sky":"clear"' in second["messages"][-1]["content"].replace(" ", "")
    deltas = "".join(e["data"]["delta"] for e in events if e["type"] == "LLM_TEXT_DELTA")
    assert deltas == "It is clear in Oslo."


async def test_the_usage_a_python_provider_reports_spends_the_token_budget(manifest):
    step = {"tool_calls": [{"name": "weather.lookup", "arguments": {"city": "Rome"}}],
            "usage": {"input_tokens": 40, "output_tokens": 20}}
    router = ScriptedRouter([step, step, step, {"text": "never reached"}])
    result, _ = await agent(manifest, router, token_budget=100)
    assert result["status"] == "partial"
    assert result["summary"].startswith("Stopped early: token budget exhausted")
    assert result["tokens_used"] == 120
    assert len(router.requests) == 2


async def test_the_tool_call_budget_bounds_python_tools_too(manifest):
    lookups.clear()
    call = {"name": "weather.lookup", "arguments": {"city": "Lima"}}
    router = ScriptedRouter([{"tool_calls": [call, call, call]}, {"text": "done"}])
    result, _ = await agent(manifest, router, tool_call_budget=2)
    assert result["data"]["budget_limited"] is True
    assert lookups == ["Lima", "Lima"]
    assert "tool-call budget of 2 spent" in router.requests[1]["messages"][-1]["content"]


class Broken:
    async def complete(self, request: dict) -> dict:
        raise ConnectionError("the router is down")


class Oversized:
    async def complete(self, request: dict) -> dict:
        return {"text": "y" * (2 << 20)}


async def test_a_raising_provider_fails_the_worker_and_only_the_host_log_has_its_message(
        manifest, caplog):
    result, _ = await agent(manifest, Broken())
    assert result["status"] == "failed"
    assert "the python provider raised ConnectionError" in result["error"]
    assert "the router is down" not in result["error"]
    logged = [r for r in caplog.records if r.name == "colony"]
    assert logged and "the router is down" in str(logged[0].exc_info[1])


async def test_an_openai_shaped_answer_is_read(manifest):
    lookups.clear()
    router = ScriptedRouter([
        {"id": "chatcmpl-1", "model": "m", "stop_reason": "tool_calls",
         "tool_calls": [{"name": "weather.lookup", "arguments": '{"city": "Bergen"}'}],
         "usage": {"prompt_tokens": 11, "completion_tokens": 3}},
        {"text": "Clear.", "stop_reason": "stop"},
    ])
    result, _ = await agent(manifest, router)
    assert result["status"] == "success" and result["tokens_used"] == 14
    assert lookups == ["Bergen"]


async def test_an_answer_over_the_host_memory_budget_is_refused(manifest):
    runtime = colony.Runtime(provider=Oversized(), limits={"host_memory_bytes": 1 << 20})
    plugin = await runtime.load_plugin(guest("agent-loop"))
    result = await colony.Worker(plugin, "big", "say a lot").run()
    assert result["status"] == "failed"
    assert "host memory budget" in result["error"]


def test_a_provider_needs_an_async_complete_method():
    import pytest

    class Sync:
        def complete(self, request):
            return {}

    with pytest.raises(TypeError, match="complete"):
        colony.Runtime(provider=object())
    with pytest.raises(TypeError, match="async def"):
        colony.Runtime(provider=Sync())
