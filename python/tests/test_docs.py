"""README's Python example and examples/python-host run as written."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def test_the_readme_python_example_runs_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "README has no Python example"
    script = blocks[0].replace('"colony-home"', repr(str(tmp_path / "home")))
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [done.stdout.splitlines()[0], "100 reports"]
    assert done.stdout.startswith("success ")


def test_the_python_host_example_runs_offline():
    done = subprocess.run([sys.executable, str(ROOT / "examples/python-host/fanout.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("  success ") == 3
    assert done.stdout.count("heard: [WORKER_REPORT]") == 3
