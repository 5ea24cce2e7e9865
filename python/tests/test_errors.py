"""Every failure is a `colony.ColonyError` subclass carrying the host's message, or the
usual TypeError / ValueError for a wrong Python value."""

from __future__ import annotations

import colony
import pytest

from conftest import guest


def test_the_exception_tree():
    assert issubclass(colony.PluginLoadError, colony.ColonyError)
    assert issubclass(colony.WorkerError, colony.ColonyError)
    assert issubclass(colony.LimitError, colony.WorkerError)
    assert issubclass(colony.BudgetError, colony.WorkerError)
    assert issubclass(colony.ColonyError, Exception)


async def test_what_cannot_be_loaded_is_a_plugin_load_error_naming_the_plugin(tmp_path):
    runtime = colony.Runtime()
    with pytest.raises(colony.PluginLoadError, match="plugin 'junk' is not a WebAssembly component"):
        await runtime.load_plugin_bytes("junk", b"\x00asm not really")
    with pytest.raises(colony.PluginLoadError, match="cannot read"):
        await runtime.load_plugin(tmp_path / "absent.wasm")
    with pytest.raises(colony.PluginLoadError, match="does not export"):
        await runtime.load_plugin(guest("missing-export-fixture"), "no-export")
    typo = tmp_path / "typo.toml"
    typo.write_text(f"component = '{guest('echo-agent')}'\n[grants]\ntool = ['time.now']\n")
    with pytest.raises(colony.PluginLoadError, match="tool"):
        await runtime.load_manifest(typo)


def test_wrong_configuration_is_refused_with_the_field_named():
    with pytest.raises(ValueError, match="memory_byte"):
        colony.Runtime(limits={"memory_byte": 1})
    with pytest.raises(ValueError, match="config"):
        colony.Runtime({"no_such_setting": True})
    limits = colony.Runtime(limits={"token_budget": 7, "tool_timeout": 2.5}).limits
    assert limits["token_budget"] == 7 and limits["tool_timeout"] == "2s 500ms"


async def test_an_oversized_message_is_a_limit_error_and_a_full_inbox_a_budget_error():
    runtime = colony.Runtime(limits={"max_message_bytes": 1024, "host_memory_bytes": 4096,
                                     "inbox_capacity": 1000})
    plugin = await runtime.load_plugin(guest("probe-fixture"), "probe")
    worker = colony.Worker(plugin, "holder", "wait", input={"action": "sleep"})
    worker.start()
    with pytest.raises(colony.LimitError, match="holder"):
        worker.inject("m" * 2048)
    with pytest.raises(colony.BudgetError, match="holder"):
        for _ in range(10):
            worker.inject("m" * 1000)
    await worker.stop()


async def test_input_must_be_a_json_object():
    runtime = colony.Runtime()
    plugin = await runtime.load_plugin(guest("echo-agent"))
    with pytest.raises(TypeError, match="input must be a dict"):
        colony.Worker(plugin, "w", "t", input=[1, 2])
    cyclic: dict = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError):
        colony.Worker(plugin, "w", "t", input=cyclic)
    with pytest.raises(TypeError):
        colony.Worker(plugin, "w", "t", input={"x": object()})
