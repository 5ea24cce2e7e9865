"""Colony guest helpers for Python (componentize-py): the host interfaces with Python
objects instead of JSON text. Put this folder on componentize-py's path (`-p`)."""

import json
from typing import Any, Optional

from wit_world.imports import conversation as _conversation
from wit_world.imports import events as _events
from wit_world.imports import inbox as _inbox
from wit_world.imports import report as _report
from wit_world.imports import types

_STATUS = {
    "success": types.ReportStatus.SUCCESS,
    "partial": types.ReportStatus.PARTIAL,
    "failed": types.ReportStatus.FAILED,
}


def report(status: str, summary: str, data: Optional[dict] = None) -> None:
    """Files the report for the parent: status 'success' | 'partial' | 'failed'."""
    _report.report_to_parent(_STATUS[status], summary, json.dumps(data or {}))


def emit(event_type: str, data: Optional[dict] = None) -> None:
    """Publishes a progress event with a dict as data."""
    _events.emit(event_type, json.dumps(data or {}))


def info(message: str) -> None:
    """Writes an info log line."""
    _events.log(types.LogLevel.INFO, message)


def drain() -> list[str]:
    """Every injected message not yet delivered."""
    return _inbox.drain()


def wait(ms: int) -> Optional[str]:
    """The next injected message within `ms` milliseconds, or None."""
    return _inbox.wait(ms)


def read_conversation() -> list[Any]:
    """The worker's conversation parts, in order, read page by page."""
    parts: list[Any] = []
    start: Optional[int] = 0
    while start is not None:
        page = _conversation.read(start, 0)
        parts.extend(page.parts)
        start = page.next
    return parts


def input_of(context: types.RunContext) -> dict:
    """The run's input as a dict."""
    return json.loads(context.input or "{}")
