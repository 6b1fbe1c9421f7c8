"""NannyML's own virtual environment, ``benchmarks/.peer-venvs/nannyml``, shared with the test suite's peer
(``tests/peers.py``): built with pip on first use (minutes), reused after. Never a project dependency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent.parent / ".peer-venvs" / "nannyml"
# The same pins as tests/peers.py: statsmodels is imported by nannyml but not declared by it.
PACKAGES = ["nannyml==0.13.1", "pandas<3", "pyarrow", "statsmodels"]


def _imports(python: Path) -> bool:
    if not python.exists():
        return False
    done = subprocess.run([str(python), "-c", "import nannyml"], capture_output=True, text=True, timeout=300)
    return done.returncode == 0


def ensure_nannyml() -> Path:
    """The python of NannyML's venv, installing it the first time."""
    python = VENV / "bin" / "python"
    if _imports(python):
        return python
    print(f"installing {' '.join(PACKAGES)} into {VENV} (the first time takes minutes) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PACKAGES]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 or not _imports(python):
        raise RuntimeError(f"pip install {' '.join(PACKAGES)} into {VENV} failed: {done.stderr.strip()[-800:]}")
    return python
