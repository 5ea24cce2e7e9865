"""Shared set-up of the Python package's tests: the guest components (built by
`make guests`), a coroutine runner, manifests written on the fly, and a Python model
provider and tool for the agent loop."""

from __future__ import annotations

import asyncio
import inspect
import os
import pathlib

import pytest

import colony

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def guest(name: str) -> pathlib.Path:
    """The component of guest crate `name` (e.g. ``echo-agent``)."""
    path = TARGET / "wasm32-wasip2" / "guest" / (name.replace("-", "_") + ".wasm")
    if not path.is_file():
        pytest.fail(f"guest component {path} is missing: run `make guests` first")
    return path


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Runs `async def` tests in a fresh event loop (no plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        kwargs = {name: pyfuncitem.funcargs[name] for name in names}
        asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), timeout=300))
        return True
    return None


@pytest.fixture
def manifest(tmp_path: pathlib.Path):
    """Writes a manifest for guest `name` with extra TOML and returns its path."""

    def write(name: str, extra: str = "", *, plugin: str | None = None) -> pathlib.Path:
        path = tmp_path / f"{plugin or name}.toml"
        text = f"name = {plugin or name!r}\ncomponent = {str(guest(name))!r}\n{extra}\n"
        path.write_text(text)
        return path

    return write


lookups: list[str] = []


@colony.tool("weather.lookup", parameters={"type": "object", "properties": {
    "city": {"type": "string"}}, "required": ["city"]})
async def lookup(city: str) -> dict:
    lookups.append(city)
    return {"city": city, "sky": "clear"}


class ScriptedRouter:
    """A LiteLLM-style router stand-in: answers from a list, records the requests."""

    def __init__(self, answers: list[dict]) -> None:
        self.answers = list(answers)
        self.requests: list[dict] = []

    async def complete(self, request: dict) -> dict:
        self.requests.append(request)
        await asyncio.sleep(0)
        return self.answers.pop(0)
