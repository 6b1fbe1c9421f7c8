"""Several processes registering the same model at once get versions 1..N: no duplicate, no gap."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from shipyard.config import Settings
from shipyard.workspace import Workspace

PROCESSES = 4
EACH = 5


def _register_many(database_url: str, artifact_uri: str, home: str, start: mp.synchronize.Event) -> list[int]:
    import numpy as np
    from sklearn.linear_model import LinearRegression

    x = np.arange(20, dtype=float).reshape(10, 2)
    model = LinearRegression().fit(x, x[:, 0] * 2 + 1)
    workspace = Workspace(Settings(home=Path(home), database_url=database_url, artifact_uri=artifact_uri))
    start.wait(60)
    numbers = [workspace.registry.register(model, name="shared", sample_input=x).version for _ in range(EACH)]
    workspace.close()
    return numbers


def test_concurrent_registrations_number_without_gaps_or_duplicates(settings: Settings) -> None:
    context = mp.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(PROCESSES) as pool:
            pending = [
                pool.apply_async(
                    _register_many, (settings.database_url, settings.artifact_uri, str(settings.home), start)
                )
                for _ in range(PROCESSES)
            ]
            start.set()
            results = [p.get(timeout=240) for p in pending]
    numbers = sorted(n for result in results for n in result)
    assert numbers == list(range(1, PROCESSES * EACH + 1))
    workspace = Workspace(settings)
    try:
        assert [v.version for v in workspace.registry.list_versions("shared")] == numbers
        assert workspace.registry.list_models()[0].latest_version == PROCESSES * EACH
    finally:
        workspace.close()
