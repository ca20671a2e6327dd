"""Walking a workspace tree: sorted, sandboxed, skipping tool and dependency directories.

Directory symlinks are never descended (that is how loops and escapes happen);
file symlinks are kept only when their target lies inside the workspace. Glob
patterns use the familiar shell/gitignore shape: ``*`` and ``?`` stay within one
path segment, ``**/`` spans any number of directories, and a pattern without
``/`` matches the file name at any depth (``*.py`` finds every Python file).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .sandbox import Workspace

__all__ = ["SKIPPED_DIRS", "compile_glob", "walk_files"]

# Virtualenvs, VCS metadata, dependency and cache trees: never the code under review.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "__pycache__",
        "node_modules",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
    }
)


def walk_files(
    workspace: Workspace, top: Path, pattern: re.Pattern[str] | None = None
) -> list[Path]:
    """Every regular file under ``top`` (itself inside ``workspace``), sorted by relative path.

    ``pattern`` (from :func:`compile_glob`) is matched against the path relative
    to ``top``. When ``top`` is a file, it is the only candidate.
    """
    if top.is_file():
        return [top] if pattern is None or _matches(pattern, top.name) else []
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        base = Path(dirpath)
        # Prune in place: os.walk then never enters skipped or symlinked directories.
        dirnames[:] = [
            name for name in dirnames if name not in SKIPPED_DIRS and not (base / name).is_symlink()
        ]
        for name in filenames:
            path = base / name
            if path.is_symlink() and not workspace.contains(path):
                continue
            if not path.is_file():  # sockets, fifos, dangling links
                continue
            rel = path.relative_to(top).as_posix()
            if pattern is None or _matches(pattern, rel):
                found.append((workspace.relative(path), path))
    found.sort(key=lambda item: item[0])
    return [path for _, path in found]


def compile_glob(glob: str) -> re.Pattern[str]:
    """Translate a glob into a regex over posix relative paths (see the module docstring)."""
    if "/" not in glob:
        glob = "**/" + glob
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("(?s:" + "".join(out) + r")\Z")


def _matches(pattern: re.Pattern[str], rel: str) -> bool:
    return pattern.match(rel) is not None
