"""The peers' own virtual environments, ``benchmarks/.peer-venvs/{mlflow,bentoml}``: never project dependencies.

Created on first use with ``python -m venv`` and pip, then reused. scikit-learn is pinned to the version
this interpreter runs, so the one joblib file trained here loads unchanged in every environment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PEER_VENVS = Path(__file__).resolve().parent.parent / ".peer-venvs"

# name -> (what to pip install besides the pinned scikit-learn, the module that proves it is there)
PEERS = {
    "mlflow": (["mlflow"], "mlflow"),
    "bentoml": (["bentoml"], "bentoml"),
}


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def _probe(python: Path, module: str) -> tuple[str, str] | None:
    """(peer version, scikit-learn version) as installed in that venv, or None when either is missing."""
    if not python.exists():
        return None
    code = f"import {module}, sklearn; print({module}.__version__, sklearn.__version__)"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return None
    peer, sklearn = done.stdout.split()[-2:]
    return peer, sklearn


def ensure_peer_venv(name: str) -> tuple[Path, str]:
    """The python of peer ``name``'s venv and the peer's version, installing it the first time (minutes)."""
    packages, module = PEERS[name]
    venv = PEER_VENVS / name
    python = venv / "bin" / "python"
    sklearn = _sklearn_version()
    found = _probe(python, module)
    if found is not None and found[1] == sklearn:
        return python, found[0]
    print(f"installing {' '.join(packages)} into {venv} (the first time takes minutes) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*pip, *packages, f"scikit-learn=={sklearn}"], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(packages)} into {venv} failed: {done.stderr.strip()[-800:]}")
    found = _probe(python, module)
    if found is None:
        raise RuntimeError(f"{module} was installed into {venv} but does not import")
    return python, found[0]
