"""Colony: run AI agent workers as sandboxed WebAssembly components, from asyncio.

Every agent loop runs as a WebAssembly component (a *plugin*) in its own sandbox: no
files, no environment, no network, bounded memory and CPU. The host — this package — runs
workers, fans tasks out across a colony, journals everything, and can lend guests
Python tools and a Python model provider without giving them anything else::

    import asyncio, colony

    async def main():
        runtime = colony.Runtime()
        plugin = await runtime.load_plugin("echo_agent.wasm")
        worker = colony.Worker(plugin, "w-1", "summarise the news")
        result = await worker.run()
        print(result["status"], result["summary"])

    asyncio.run(main())

Every method that waits is awaitable and never blocks the event loop. Cancelling
``Worker.run()`` stops the worker; cancelling a wait only stops the waiting.
"""

from __future__ import annotations

import collections
import collections.abc
import inspect
from typing import Any, Awaitable, Callable, Mapping

from ._colony import (
    BudgetError,
    Colony,
    ColonyError,
    EventBus,
    LimitError,
    Plugin,
    PluginLoadError,
    Runtime,
    Worker,
    WorkerError,
)

__all__ = [
    "BudgetError",
    "Colony",
    "ColonyError",
    "EventBus",
    "LimitError",
    "Plugin",
    "PluginLoadError",
    "Runtime",
    "Subscription",
    "Tool",
    "Worker",
    "WorkerError",
    "tool",
]

class _Call(collections.abc.Coroutine):
    """A call into the host as a coroutine: ``await`` it or hand it to
    ``asyncio.create_task``. A task cancelled before it first ran still cancels the call
    (a plain ``async def`` wrapper would never see that cancellation)."""

    __slots__ = ("_future", "_steps", "_started")

    def __init__(self, future: Any) -> None:
        self._future = future
        self._steps = future.__await__()
        self._started = False

    def __await__(self) -> Any:
        self._started = True
        return self._steps

    def send(self, value: Any) -> Any:
        self._started = True
        return self._steps.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if not self._started:
            self._future.cancel()
            self._started = True
        if val is None and tb is None:
            return self._steps.throw(typ)
        return self._steps.throw(typ, val, tb)

    def close(self) -> None:
        if not self._future.done():
            self._future.cancel()
        self._steps.close()


#: Events handed over per burst when a subscription is read.
_DRAIN = 1024


class Subscription:
    """Events matching a filter, as dicts, in publish order: ``async for event in sub``.

    Made by ``EventBus.subscribe`` and ``Colony.subscribe``. A read that is cancelled
    loses no event: the next read returns it. Past the subscription's capacity the oldest
    unread events are dropped and counted in ``missed``. The iteration ends when the bus
    is gone.
    """

    __slots__ = ("_native", "_ready")

    def __init__(self, native: Any) -> None:
        self._native = native
        self._ready: collections.deque[dict[str, Any]] = collections.deque()

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> dict[str, Any]:
        event = await self._next()
        if event is None:
            raise StopAsyncIteration
        return event

    async def recv(self) -> dict[str, Any]:
        """The next event; ``ColonyError`` if the bus is gone."""
        event = await self._next()
        if event is None:
            raise ColonyError("the event bus is closed")
        return event

    def try_recv(self) -> dict[str, Any] | None:
        """The next event if one is ready, else ``None``; never waits."""
        if not self._ready:
            self._ready.extend(self._native.drain(_DRAIN))
        return self._ready.popleft() if self._ready else None

    @property
    def missed(self) -> int:
        """Events dropped because this subscription fell behind."""
        return self._native.missed

    async def _next(self) -> dict[str, Any] | None:
        ready = self._ready
        while not ready:
            ready.extend(self._native.drain(_DRAIN))
            if ready:
                break
            if not await self._native.wait():
                return None
        return ready.popleft()


class Tool:
    """A host tool written in Python: an async function guests call through
    ``tools.call``, only if their plugin's manifest grants it by ``name``.

    The guest's arguments arrive as keyword arguments; the return value must be JSON
    (dict, list, str, number, bool, None). An exception reaches the guest as a tool
    error. The worker's tool timeout cancels the coroutine; its tool-call budget counts
    the call; a result larger than its host memory budget has room for is refused.
    """

    __slots__ = ("name", "description", "parameters", "function")

    def __init__(
        self,
        name: str,
        function: Callable[..., Awaitable[Any]],
        *,
        description: str = "",
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"tool {name!r}: {function!r} is not an async function")
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"tool name {name!r} must be non-empty without spaces")
        self.name = name
        self.function = function
        self.description = description or (inspect.getdoc(function) or "")
        self.parameters = dict(parameters) if parameters is not None else {"type": "object"}

    async def __call__(self, **arguments: Any) -> Any:
        return await self.function(**arguments)

    def __repr__(self) -> str:
        return f"<colony.Tool {self.name!r}>"


def tool(
    name: str,
    *,
    description: str = "",
    parameters: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], Tool]:
    """Decorates an async function as a ``Tool`` named ``name`` (pass it to
    ``Runtime(tools=[...])``). ``description`` defaults to the docstring; ``parameters``
    is the JSON schema of its arguments (default: any object)::

        @colony.tool("weather.lookup", parameters={"type": "object",
                     "properties": {"city": {"type": "string"}}, "required": ["city"]})
        async def lookup(city: str) -> dict:
            return {"city": city, "sky": "clear"}
    """

    def wrap(function: Callable[..., Awaitable[Any]]) -> Tool:
        return Tool(name, function, description=description, parameters=parameters)

    return wrap
