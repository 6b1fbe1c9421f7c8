"""The README works as written: every shell and Python block runs, in order, in one fresh directory.

The blocks are one story (train and save a model, register it, serve it, call it, roll out, monitor), so
they run as one bash script in a new process group: a server a block starts in the background is there
for the next block, and the whole group is stopped by PID at the end. Two things differ from a reader's
shell, both stated here: port 8000 is replaced by a free port (tests run side by side), and ``shipyard``
and ``python`` are this checkout's. A block preceded by ``<!-- readme-test: skip (why) -->`` is not run;
only the set-up block (``make run`` serves forever, ``make test`` runs this very test) and blocks that
need a remote server are marked so, and the test checks that no other block is.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.serving_support import free_port

README = Path(__file__).resolve().parents[2] / "README.md"
VENV_BIN = Path(sys.executable).parent
SKIP_MARK = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<why>[^)]+)\)\s*-->")
ALLOWED_SKIPS = ("set-up", "remote server")
TIMEOUT_S = 600


@dataclass(frozen=True, slots=True)
class Block:
    language: str
    code: str
    line: int
    skip: str | None


def readme_blocks(text: str) -> list[Block]:
    """Fenced ``sh``/``bash``/``python`` blocks with their line and skip mark; other fences are prose."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^```(\w*)\s*$", lines[index])
        if not opening:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        language = opening.group(1)
        if language in ("sh", "bash", "python"):
            previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
            mark = SKIP_MARK.search(previous)
            blocks.append(Block(language, "\n".join(body), start + 1, mark.group("why") if mark else None))
    return blocks


def as_script(blocks: list[Block], port: int) -> str:
    parts = ["set -euo pipefail"]
    for number, block in enumerate(blocks, 1):
        if block.skip is not None:
            continue
        code = block.code.replace("8000", str(port))
        parts.append(f"echo '=== README block {number} (line {block.line}, {block.language})' >&2")
        if block.language == "python":
            parts.append(f"python - <<'README_PYTHON'\n{code}\nREADME_PYTHON")
        else:
            parts.append(code)
    return "\n".join(parts) + "\n"


def test_only_set_up_and_remote_server_blocks_are_skipped() -> None:
    blocks = readme_blocks(README.read_text())
    assert len(blocks) >= 10
    skipped = [(b.line, b.skip) for b in blocks if b.skip is not None]
    assert all(any(why.startswith(allowed) for allowed in ALLOWED_SKIPS) for _, why in skipped), skipped
    assert len(skipped) <= 2, skipped


def test_every_readme_block_runs_as_written(tmp_path: Path) -> None:
    blocks = readme_blocks(README.read_text())
    script = tmp_path / "readme.sh"
    script.write_text(as_script(blocks, free_port()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env |= {"PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", "COLUMNS": "100", "PYTHONUNBUFFERED": "1"}
    work = tmp_path / "reader"
    work.mkdir()
    log = tmp_path / "readme.log"
    with log.open("w") as out:  # a file, not a pipe: a server left in the background keeps a pipe open
        process = subprocess.Popen(
            ["bash", str(script)], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            process.wait(timeout=TIMEOUT_S)
        finally:  # the server a block started in the background, and anything else the script left running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            if process.returncode is None:
                process.wait(timeout=30)
    output = log.read_text()
    assert process.returncode == 0, f"a README block failed (exit {process.returncode}):\n{output[-6000:]}"
    assert "Traceback" not in output, output[-6000:]
