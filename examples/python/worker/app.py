"""Colony ephemeral worker in Python: reads its task, emits a progress event, reads its
seeded conversation, takes injected messages and reports to its parent.
Input: {"wait": true} to wait for one injected message, {"fail": true} to fail."""

import json

import colony_sdk as colony
import wit_world
from componentize_py_types import Err


class WitWorld(wit_world.WitWorld):
    def run(self, context) -> str:
        params = colony.input_of(context)
        colony.emit("progress", {"step": "start", "language": "python"})
        seeded = [part.content for part in colony.read_conversation()]
        injected = []
        if params.get("wait"):
            message = colony.wait(30000)
            if message is not None:
                injected.append(message)
        injected.extend(colony.drain())
        colony.info(f"python worker {context.worker_id} heard {len(injected)} messages")
        if params.get("fail"):
            raise Err(f"failing on purpose: {context.task}")
        colony.report("success", f"python did: {context.task}",
                      {"language": "python", "seeded": seeded, "injected": injected})
        return json.dumps({"language": "python", "task": context.task})

    def on_message(self, message: str) -> str:
        raise Err("this worker takes no messages")
