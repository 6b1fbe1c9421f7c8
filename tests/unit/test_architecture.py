"""The public names are pinned, and imports point down: edges -> services -> capabilities -> core."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard

SRC = Path(shipyard.__file__).parent

# Which top-level parts each part may import from (besides itself and errors/config).
ALLOWED = {
    "core": set(),
    "rollouts": {"core"},
    "monitoring": {"core"},
    "alerts": {"core", "monitoring", "rollouts"},
    "store": {"core", "rollouts", "monitoring", "alerts"},
    "artifacts": {"core"},
    "flavors": {"core"},
    "reporting": {"core", "monitoring", "rollouts"},
    "services": {"core", "rollouts", "monitoring", "store", "artifacts", "flavors", "alerts", "notify"},
    "notify": {"alerts", "store"},
    "jobs": {"core", "services", "workspace"},
    "serving": {
        "core",
        "rollouts",
        "monitoring",
        "store",
        "artifacts",
        "flavors",
        "services",
        "workspace",
        "version",
        "jobs",
        "notify",
        "alerts",
    },
    "cli": {
        "core",
        "rollouts",
        "store",
        "artifacts",
        "flavors",
        "monitoring",
        "reporting",
        "services",
        "workspace",
        "serving",
        "api",
        "client",
        "version",
        "jobs",
        "notify",
        "alerts",
    },
    "dashboard": {"core", "rollouts", "monitoring", "services", "workspace", "serving"},
}


def test_public_names_are_pinned() -> None:
    assert sorted(shipyard.__all__) == sorted(
        [
            "Client",
            "FeatureSpec",
            "FeatureType",
            "LoadedModel",
            "ModelRef",
            "ModelVersion",
            "OutputKind",
            "OutputSpec",
            "PredictResult",
            "Prediction",
            "Settings",
            "ShipyardError",
            "Signature",
            "VersionStatus",
            "Workspace",
            "__version__",
            "compare",
            "convert",
            "load",
            "register",
            "validate",
        ]
    )
    for name in shipyard.__all__:
        assert hasattr(shipyard, name)


def test_importing_shipyard_loads_no_public_name_until_it_is_used() -> None:
    """`import shipyard` (and so every `shipyard` command) must not pay for pandas, SQLAlchemy or the services."""
    code = (
        "import sys, shipyard; "
        "heavy = [m for m in ('pandas', 'sklearn', 'scipy', 'sqlalchemy', 'numpy', 'shipyard.workspace') "
        "if m in sys.modules]; "
        "client = shipyard.Client; "
        "print(heavy, client.__module__, shipyard.PredictResult.__name__, 'shipyard.client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[]", "shipyard.client", "PredictResult", "True"]


def test_an_unknown_public_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Cleint'"):
        _ = shipyard.Cleint  # type: ignore[attr-defined]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shipyard."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("shipyard."):
                    found.add(alias.name.split(".")[1])
    return found


def test_imports_point_down() -> None:
    problems = []
    for part, allowed in ALLOWED.items():
        folder = SRC / part
        if not folder.is_dir():
            continue
        for path in folder.rglob("*.py"):
            bad = _imports(path) - allowed - {part, "errors", "config"}
            if bad:
                problems.append(f"{path.relative_to(SRC)} imports {sorted(bad)}")
    assert problems == []


def _imports_package_root(path: Path) -> bool:
    """``from shipyard import X`` (or ``import shipyard``) reaches the package's ``__init__`` for a name."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "shipyard":
            return True
        if isinstance(node, ast.Import) and any(alias.name == "shipyard" for alias in node.names):
            return True
    return False


def test_the_pure_packages_import_only_core_and_errors() -> None:
    """rollouts/ and monitoring/ are maths over core's records: no settings, no I/O layer, not each other."""
    problems = []
    for part in ("core", "rollouts", "monitoring"):
        for path in (SRC / part).rglob("*.py"):
            bad = _imports(path) - {part, "core", "errors"}
            if bad:
                problems.append(f"{path.relative_to(SRC)} imports {sorted(bad)}")
    assert problems == []


def test_serving_never_imports_the_package_root() -> None:
    """The server reads names from their modules, never through ``shipyard/__init__``'s lazy exports."""
    assert [str(p.relative_to(SRC)) for p in (SRC / "serving").rglob("*.py") if _imports_package_root(p)] == []


def test_unit_tests_mirror_the_source_tree() -> None:
    """Each folder of unit tests is named after the package it tests, so a module's tests are found by its path."""
    unit = Path(__file__).parent
    folders = {p.name for p in unit.iterdir() if p.is_dir() and p.name != "__pycache__"}
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    assert folders <= packages, sorted(folders - packages)


def test_head_revision_read_from_files_matches_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from shipyard.store.db import MIGRATIONS_DIR, head_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()
