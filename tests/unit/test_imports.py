"""core is the part without Streamlit: a worker process must be able to import it alone."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_core_imports_without_streamlit():
    code = ("import core.jobs, core.worker, core.mnist_lab, core.viz, core.summary, core.runs, core.train, core.labs; "
            "import sys; assert 'streamlit' not in sys.modules, sorted(m for m in sys.modules if 'streamlit' in m)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_runner_named_in_labs_resolves():
    from core.labs import LABS, RUNNERS

    assert RUNNERS["mnist"] == "core.mnist_lab:run_mnist"
    for kind, path in RUNNERS.items():
        module, function = path.split(":")
        assert callable(getattr(importlib.import_module(module), function)), kind
    for lab in LABS:
        assert lab.page is None or (REPO / lab.page).exists(), lab
