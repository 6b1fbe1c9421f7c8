"""Evidently's own virtual environment, ``benchmarks/.peer-venvs/evidently``: never a project dependency.

Created on first use with ``python -m venv`` and pip, then reused. 0.7 is the line with the
``Report([DataDriftPreset()])`` API; it imports a pandas helper that pandas 3 removed, hence pandas < 3.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent.parent / ".peer-venvs" / "evidently"
PACKAGES = ["evidently==0.7.23", "pandas<3", "pyarrow"]


def _version(python: Path) -> str | None:
    if not python.exists():
        return None
    code = "from evidently import Report; from evidently.presets import DataDriftPreset; import evidently;"
    done = subprocess.run(
        [str(python), "-c", code + " print(evidently.__version__)"], capture_output=True, text=True, timeout=300
    )
    return done.stdout.split()[-1] if done.returncode == 0 and done.stdout.strip() else None


def ensure_evidently() -> tuple[Path, str]:
    """The python of Evidently's venv and Evidently's version, installing it the first time (minutes)."""
    python = VENV / "bin" / "python"
    found = _version(python)
    if found is not None:
        return python, found
    print(f"installing {' '.join(PACKAGES)} into {VENV} (the first time takes minutes) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PACKAGES]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(PACKAGES)} into {VENV} failed: {done.stderr.strip()[-800:]}")
    found = _version(python)
    if found is None:
        raise RuntimeError(f"evidently was installed into {VENV} but its Report and DataDriftPreset do not import")
    return python, found
