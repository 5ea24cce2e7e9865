"""Record, replay and fork from Python: the agent loop driven by a Python provider and
tool is recorded, replayed without either being called, made to diverge, forked onto
another provider, and exported as a script."""

from __future__ import annotations

import sqlite3

import colony

from conftest import ScriptedRouter as Router, lookup, lookups as calls

ANSWERS = [
    {"tool_calls": [{"id": "c1", "name": "weather.lookup", "arguments": {"city": "Oslo"}}],
     "usage": {"input_tokens": 30, "output_tokens": 5}},
    {"text": "It is clear in Oslo.", "usage": {"input_tokens": 50, "output_tokens": 7}},
]


async def test_a_recorded_run_replays_without_the_model_or_the_tool(manifest, tmp_path):
    calls.clear()
    router = Router(ANSWERS)
    runtime = colony.Runtime(tools=[lookup], provider=router)
    path = manifest("agent-loop", '[grants]\ntools = ["weather.lookup"]', plugin="agent")
    plugin = await runtime.load_manifest(path)
    async with await colony.Colony.open(runtime, tmp_path / "home") as c:
        [id] = c.run_parallel(plugin, ["What is the weather in Oslo?"])
        [report] = await c.wait_for_reports([id], timeout=30)
        assert report["summary"] == "It is clear in Oslo."
        assert (len(router.requests), calls) == (2, ["Oslo"])
        steps = c.recording(id)["steps"]
        assert [s["kind"] for s in steps] == ["tool_list", "llm", "tool", "llm"]

        outcome = await c.replay(plugin, id)
        assert outcome["matches"], outcome
        assert outcome["divergence"] is None and outcome["report_difference"] is None
        assert outcome["result"]["summary"] == "It is clear in Oslo."
        assert (len(router.requests), calls) == (2, ["Oslo"]), "nothing reached"

        outcome = await c.replay(plugin, id, input={"system": "Answer in French."})
        assert not outcome["matches"]
        assert outcome["divergence"]["step"] == 2
        assert outcome["divergence"]["recorded"] == "llm"
        assert "at system" in outcome["divergence"]["detail"]

        script = c.export_script(id)
        assert [s.get("text") for s in script] == ["", "It is clear in Oslo."]
        assert script[0]["tool_calls"][0]["arguments"] == {"city": "Oslo"}


async def test_a_fork_goes_live_after_its_step(manifest, tmp_path):
    calls.clear()
    recorded = colony.Runtime(tools=[lookup], provider=Router(ANSWERS))
    path = manifest("agent-loop", '[grants]\ntools = ["weather.lookup"]', plugin="agent")
    plugin = await recorded.load_manifest(path)
    async with await colony.Colony.open(recorded, tmp_path / "home") as c:
        [id] = c.run_parallel(plugin, ["What is the weather in Oslo?"])
        await c.wait_for_reports([id], timeout=30)
    other = Router([{"text": "Oslo is sunny, says the other model."}])
    runtime = colony.Runtime(tools=[lookup], provider=other)
    plugin = await runtime.load_manifest(path)
    async with await colony.Colony.open(runtime, tmp_path / "home") as c:
        worker = await c.fork(plugin, id, 3)
        result = await worker.wait()
        assert result["summary"] == "Oslo is sunny, says the other model."
        assert len(other.requests) == 1
        assert calls == ["Oslo"], "the tool call (step 3) came from the recording"
    journal = sqlite3.connect(tmp_path / "home" / "journal.db")
    row = journal.execute("SELECT forked_from, forked_at FROM workers WHERE id = ?", (worker.id,))
    assert row.fetchone() == (id, 3)
