"""A colony driven from Python, offline: an overseer, a fan-out of researcher agents
(sandboxed WebAssembly guests), a host tool written in Python, and a Python model
provider standing in for a framework's own model client.

    make guests && make python-package
    target/pyhost/bin/python examples/python-host/fanout.py
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import tempfile

import colony

HERE = pathlib.Path(__file__).resolve().parent
GUESTS = HERE.parents[1] / "target" / "wasm32-wasip2" / "guest"

NOTES = {
    "launch": "The launch moved to Tuesday; marketing signs off on Monday.",
    "hiring": "Two backend engineers start next month.",
    "budget": "Q3 spend is 4% under plan.",
}


@colony.tool(
    "notes.search",
    description="Finds the team's note on a topic.",
    parameters={"type": "object", "properties": {"topic": {"type": "string"}},
                "required": ["topic"]},
)
async def search(topic: str) -> dict:
    await asyncio.sleep(0.01)  # a real tool would await a database or an API here
    return {"topic": topic, "note": NOTES.get(topic, "nothing on file")}


class ScriptedRouter:
    """A model provider: any object with an async ``complete(request) -> answer``.

    A framework plugs its own client in here (a LiteLLM-style router, say); this one is
    scripted so the example runs offline: ask for the tool, then summarise its result.
    The usage it reports counts against each worker's token budget.
    """

    async def complete(self, request: dict) -> dict:
        last = request["messages"][-1]
        if last["role"] == "user":
            topic = last["content"].split()[-1]
            return {"tool_calls": [{"id": "c1", "name": "notes.search",
                                    "arguments": {"topic": topic}}],
                    "usage": {"input_tokens": 60, "output_tokens": 12}}
        found = json.loads(last["content"])
        return {"text": f"{found['topic']}: {found['note']}",
                "usage": {"input_tokens": 90, "output_tokens": 20}}


async def main() -> int:
    runtime = colony.Runtime(tools=[search], provider=ScriptedRouter())
    researcher = await runtime.load_manifest(HERE / "researcher.toml")
    overseer_plugin = await runtime.load_plugin(GUESTS / "chat_agent.wasm", "overseer")
    with tempfile.TemporaryDirectory() as home:
        async with await colony.Colony.open(runtime, home, id="research") as hive:
            turns = hive.subscribe(types=["TURN_COMPLETED"])
            overseer = hive.start_overseer(overseer_plugin, "Coordinate the research")
            batch = hive.fan_out(researcher, [f"Look up {topic}" for topic in NOTES])
            print(f"batch {batch['id']}: {batch['size']} researchers")
            reports = await hive.wait_for_reports(batch["started"], timeout=60)
            for report in reports:
                print(f"  {report['worker_id']}  {report['status']:8} "
                      f"{report['tokens_used']:4} tokens  {report['summary']}")
            for _ in reports:
                turn = await asyncio.wait_for(turns.recv(), 10)
                print(f"overseer {overseer.id} heard: {turn['data']['message'][:70]}")
    return 0 if all(r["status"] == "success" for r in reports) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
