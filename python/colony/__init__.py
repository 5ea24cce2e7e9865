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

import atexit
import collections
import collections.abc
import inspect
import logging
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
    stop_open_colonies as _stop_open_colonies,
)

# A script that ends without `async with` or `stop_all` still stops its colonies' workers
# (journaled `stopped`, with reports) instead of leaving them to be found `interrupted`.
atexit.register(_stop_open_colonies)

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
    """A call into the host, as a coroutine: ``await`` it, hand it to
    ``asyncio.create_task`` or ``asyncio.run``. Like any coroutine it does nothing until
    first driven; then it starts the host's work on the driving loop, and cancelling the
    task cancels that work."""

    __slots__ = ("_start", "_future", "_steps")

    def __init__(self, start: Callable[[], Any]) -> None:
        self._start: Callable[[], Any] | None = start
        self._future: Any = None
        self._steps: Any = None

    def _begin(self) -> Any:
        if self._steps is None:
            if self._start is None:
                raise RuntimeError("cannot reuse an already awaited or closed call")
            start, self._start = self._start, None
            self._future = start()
            self._steps = self._future.__await__()
        return self._steps

    def __await__(self) -> Any:
        return self._begin()

    def send(self, value: Any) -> Any:
        return self._begin().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if self._steps is None:
            # Never started: nothing to cancel; raise where the body would have begun.
            self._start = None
            if val is None:
                raise typ
            raise val.with_traceback(tb)
        if val is None and tb is None:
            return self._steps.throw(typ)
        return self._steps.throw(typ, val, tb)

    def close(self) -> None:
        self._start = None
        if self._future is not None and not self._future.done():
            self._future.cancel()
        if self._steps is not None:
            self._steps.close()


async def _invoke(function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """Calls a Python tool on its loop: the guest's arguments must fit its signature."""
    try:
        inspect.signature(function).bind(**arguments)
    except TypeError as error:
        raise _InvalidArguments(str(error)) from None
    except ValueError:
        pass  # no signature to check (some builtins): let the call decide
    result = function(**arguments)
    return await result if inspect.isawaitable(result) else result


class _InvalidArguments(TypeError):
    """The guest's arguments do not fit the tool's signature."""


def _log_failure(what: str, error: BaseException) -> None:
    """A Python tool or provider raised: the host's log gets the traceback."""
    logging.getLogger("colony").error("%s raised", what, exc_info=error)


#: Events handed over per burst when a subscription is read.
_DRAIN = 1024


class Subscription:
    """Events matching a filter, as dicts, in publish order: ``async for event in sub``.

    Made by ``EventBus.subscribe`` and ``Colony.subscribe``. A read that is cancelled
    loses no event: the next read returns it. Past the subscription's capacity the oldest
    unread events are dropped and counted in ``missed``. The iteration ends when the bus
    is gone or ``close()`` is called. ``try_recv`` sees only what no pending ``recv``
    is waiting on.
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

    def close(self) -> None:
        """Ends the subscription: ``async for`` stops once what is ready is read."""
        self._native.close()

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
    """A host tool written in Python: a function (async, or quick and sync) guests call
    through ``tools.call``, only if their plugin's manifest grants it by ``name``. It
    runs on the event loop the runtime is used from.

    The guest's arguments arrive as keyword arguments (arguments that do not fit the
    signature are refused as invalid before the call); the return value must be JSON
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
        if not callable(function):
            raise TypeError(f"tool {name!r}: {function!r} is not callable")
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"tool name {name!r} must be non-empty without spaces")
        self.name = name
        self.function = function
        self.description = description or (inspect.getdoc(function) or "")
        self.parameters = dict(parameters) if parameters is not None else {"type": "object"}

    async def __call__(self, **arguments: Any) -> Any:
        return await _invoke(self.function, arguments)

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
