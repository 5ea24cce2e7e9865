"""Colony persistent overseer in Python: keeps state across turns."""

import json

import wit_world


class WitWorld(wit_world.WitWorld):
    def __init__(self) -> None:
        self.turns = 0
        self.history: list[str] = []

    def run(self, context) -> str:
        return json.dumps({"ready": True, "language": "python"})

    def on_message(self, message: str) -> str:
        self.turns += 1
        previous = self.history[-1] if self.history else None
        self.history.append(message)
        return json.dumps({"turn": self.turns, "heard": message, "previous": previous, "language": "python"})
