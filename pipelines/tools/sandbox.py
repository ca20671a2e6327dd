"""The workspace sandbox: every path a pipeline touches must resolve inside one root.

:class:`Workspace` is the only way tools turn a user- or model-supplied path into a
real path. It rejects, with :class:`~pipelines.errors.SandboxError`:

* ``..`` segments that climb out of the root;
* absolute paths outside the root;
* symlinks (to files or directories, anywhere along the path) whose target is
  outside the root;
* NUL bytes (the OS would truncate the path silently).

The check is done on the fully resolved path *and* on every existing parent, so a
symlinked directory pointing outside fails even when the final component does not
exist yet. There is an unavoidable window between the check and the use (a path
could be swapped for a symlink afterwards); workspaces are owned by the pipeline,
not by an adversary racing it, so this is accepted.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.errors import SandboxError, ToolError

__all__ = ["Workspace"]


class Workspace:
    """A directory that confines every file path a pipeline touches.

    ``root`` is the resolved absolute directory. With ``create=True`` a missing
    root is created (parents too); otherwise a missing root raises
    :class:`SandboxError`.
    """

    def __init__(self, root: str | Path, *, create: bool = False) -> None:
        given = Path(root)
        if "\x00" in str(given):
            raise SandboxError(
                f"workspace root {str(given)!r} contains a NUL byte", path=str(given)
            )
        if create:
            given.mkdir(parents=True, exist_ok=True)
        # Keep the spelling the caller used as well as the resolved one: an absolute
        # path written against an unresolved root (/tmp vs /private/tmp) is still inside.
        self._given_root = Path(os.path.normpath(given.absolute()))
        self.root: Path = given.resolve()
        if not self.root.is_dir():
            raise SandboxError(
                f"workspace root {str(given)!r} does not exist or is not a directory",
                path=str(given),
            )

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def resolve(self, path: str | Path, *, must_exist: bool = False) -> Path:
        """Return the resolved absolute path of ``path`` inside the workspace.

        Relative paths are joined to the root; absolute paths must already lie
        inside it. Raises :class:`SandboxError` for any escape (see the module
        docstring) and, with ``must_exist``, ``ToolError(code="not_found")`` when
        the path does not exist.
        """
        text = os.fspath(path)
        if "\x00" in text:
            raise self._escape(text, "contains a NUL byte")
        candidate = Path(text)
        if candidate.is_absolute():
            candidate = self._rebase(candidate, text)
        else:
            candidate = self.root / candidate
        # Lexical check first: '..' must not climb out even through paths that do not exist.
        if not _inside(Path(os.path.normpath(candidate)), self.root):
            raise self._escape(text, "climbs out of the workspace")
        self._check_parents(candidate, text)
        try:
            resolved = candidate.resolve(strict=False)
        except (OSError, RuntimeError) as exc:  # symlink loops: RuntimeError before 3.13
            raise self._escape(text, f"cannot be resolved ({exc})") from exc
        if not _inside(resolved, self.root):
            raise self._escape(text, f"resolves to {resolved}, outside the workspace")
        if must_exist and not resolved.exists():
            raise ToolError(f"{text!r} does not exist in workspace {self.root}", code="not_found")
        return resolved

    def relative(self, path: Path) -> str:
        """The posix path of ``path`` relative to the root (``"."`` for the root itself).

        Raises :class:`SandboxError` if ``path`` is not inside the workspace.
        """
        absolute = path if path.is_absolute() else self.root / path
        for candidate in (absolute, Path(os.path.normpath(absolute)), absolute.resolve()):
            if _inside(candidate, self.root):
                rel = candidate.relative_to(self.root).as_posix()
                return rel or "."
        raise self._escape(str(path), "is not inside the workspace")

    def contains(self, path: Path) -> bool:
        """Whether ``path`` (resolved, symlinks followed) lies inside the workspace."""
        try:
            return _inside(path.resolve(strict=False), self.root)
        except (OSError, RuntimeError):
            return False

    # ------------------------------------------------------------------ helpers

    def _rebase(self, candidate: Path, text: str) -> Path:
        normal = Path(os.path.normpath(candidate))
        if _inside(normal, self.root):
            return candidate
        if _inside(normal, self._given_root):
            return self.root / normal.relative_to(self._given_root)
        raise self._escape(text, "is an absolute path outside the workspace")

    def _check_parents(self, candidate: Path, text: str) -> None:
        # Walk from the root down: each existing component must resolve inside, so a
        # symlinked directory pointing out is caught before anything is created in it.
        try:
            rel_parts = Path(os.path.normpath(candidate)).relative_to(self.root).parts
        except ValueError:
            return  # the final resolve check reports it
        current = self.root
        for part in rel_parts:
            current = current / part
            if not os.path.lexists(current):
                return
            try:
                real = current.resolve(strict=False)
            except (OSError, RuntimeError) as exc:
                raise self._escape(text, f"cannot be resolved ({exc})") from exc
            if not _inside(real, self.root):
                rel = current.relative_to(self.root).as_posix()
                raise self._escape(text, f"goes through {rel!r}, which links to {real}")

    def _escape(self, text: str, why: str) -> SandboxError:
        return SandboxError(f"path {text!r} {why} (workspace {self.root})", path=text)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)
