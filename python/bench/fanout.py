"""Python-driven fan-out throughput, beside the pure-Python reference Worker in the same
run (the reference's own code with a stub agent loop: no sandbox, no guest).

    make python-bench        # release build into target/pybench, then this script

Prints a Markdown table (BENCHMARKS.md, table 10).
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
import tempfile
import time

import colony

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUEST = ROOT / "target" / "wasm32-wasip2" / "guest" / "echo_agent.wasm"
sys.path.insert(0, str(ROOT / "benches"))
import reference_worker  # noqa: E402  (the baseline of BENCHMARKS.md table 1)


def summary(latencies: list[float], total: int, elapsed: float) -> dict[str, float]:
    latencies.sort()
    pick = lambda q: latencies[round((len(latencies) - 1) * q)] * 1e6  # noqa: E731
    return {"workers_per_s": total / elapsed, "p50_us": pick(0.5), "p99_us": pick(0.99)}


async def workers(plugin: colony.Plugin, total: int, lanes: int) -> dict[str, float]:
    """`colony.Worker(...).run()` from `lanes` asyncio tasks: spawn → result in Python."""
    counter = iter(range(total))
    latencies: list[float] = []

    async def lane() -> None:
        for i in counter:
            started = time.perf_counter()
            await colony.Worker(plugin, f"w{i}", "count these words").run()
            latencies.append(time.perf_counter() - started)

    begun = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    return summary(latencies, total, time.perf_counter() - begun)


async def journaled(runtime: colony.Runtime, plugin: colony.Plugin, total: int,
                    in_flight: int) -> dict[str, float]:
    """A journaled `Colony` fan-out, every report read through `async for`."""
    with tempfile.TemporaryDirectory() as home:
        async with await colony.Colony.open(runtime, home, max_concurrency=in_flight) as hive:
            reports = hive.subscribe(types=["SUBAGENT_REPORT"], capacity=total + 1)
            begun = time.perf_counter()
            hive.fan_out(plugin, ["count these words"] * total)
            seen = 0
            async for _ in reports:
                seen += 1
                if seen == total:
                    break
            elapsed = time.perf_counter() - begun
    return {"workers_per_s": total / elapsed, "p50_us": float("nan"), "p99_us": float("nan")}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--total", type=int, default=10_000)
    args = parser.parse_args()
    runtime = colony.Runtime()
    plugin = await runtime.load_plugin(GUEST, "echo")
    await workers(plugin, 500, 8)  # warm-up: pool slots, allocator
    rows = []
    for lanes in (1, 64):
        rows.append((f"colony.Worker(...).run(), echo guest", lanes,
                     await workers(plugin, args.total, lanes)))
        rows.append(("reference Python Worker (stub loop, no sandbox)", lanes,
                     await reference_worker.bench(args.total, lanes)))
    rows.append(("journaled colony.Colony fan_out + async for", 64,
                 await journaled(runtime, plugin, args.total, 64)))
    print(f"| what | concurrency | workers/s | p50 µs | p99 µs | ÷ reference |")
    print("|---|---|---|---|---|---|")
    reference = {lanes: r["workers_per_s"] for what, lanes, r in rows if what.startswith("ref")}
    for what, lanes, r in rows:
        ratio = r["workers_per_s"] / reference[lanes]
        print(f"| {what} | {lanes} | {r['workers_per_s']:.0f} | {r['p50_us']:.0f} | "
              f"{r['p99_us']:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
