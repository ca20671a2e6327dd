"""Workspace: every path resolves inside the root, or SandboxError."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from pipelines.errors import SandboxError, ToolError
from pipelines.tools import Workspace


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside"
    target.mkdir()
    (target / "secret.txt").write_text("secret", encoding="utf-8")
    return target


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("x = 1\n", encoding="utf-8")
    return Workspace(root)


def test_root_is_resolved_absolute(tmp_path: Path) -> None:
    """The root is stored resolved and absolute even when given with '..'."""
    (tmp_path / "ws").mkdir()
    ws = Workspace(tmp_path / "ws" / ".." / "ws")
    assert ws.root == (tmp_path / "ws").resolve()
    assert ws.root.is_absolute()


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    """A missing root raises SandboxError unless create=True."""
    with pytest.raises(SandboxError, match="does not exist"):
        Workspace(tmp_path / "nope")


def test_create_makes_the_root(tmp_path: Path) -> None:
    """create=True makes the root directory, parents included."""
    ws = Workspace(tmp_path / "a" / "b", create=True)
    assert ws.root.is_dir()


def test_relative_path_joins_root(ws: Workspace) -> None:
    """A relative path resolves under the root."""
    assert ws.resolve("src/a.py") == ws.root / "src" / "a.py"
    assert ws.resolve(".") == ws.root
    assert ws.resolve("src/../src/a.py") == ws.root / "src" / "a.py"


def test_absolute_path_inside_is_accepted(ws: Workspace) -> None:
    """An absolute path inside the root is accepted as is."""
    assert ws.resolve(ws.root / "src" / "a.py") == ws.root / "src" / "a.py"
    assert ws.resolve(str(ws.root)) == ws.root


def test_absolute_path_with_unresolved_root_spelling_is_accepted(tmp_path: Path) -> None:
    """An absolute path written against the root as the caller spelled it is inside."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    ws = Workspace(tmp_path / "alias")
    assert ws.resolve(tmp_path / "alias" / "f.txt") == real.resolve() / "f.txt"


def test_dotdot_escape_fails(ws: Workspace) -> None:
    """'..' that climbs out of the root raises SandboxError naming path and workspace."""
    with pytest.raises(SandboxError) as info:
        ws.resolve("../outside/secret.txt")
    assert "../outside/secret.txt" in str(info.value)
    assert str(ws.root) in str(info.value)
    assert info.value.path == "../outside/secret.txt"


def test_dotdot_escape_fails_for_missing_targets(ws: Workspace) -> None:
    """'..' escapes fail even when the target does not exist."""
    with pytest.raises(SandboxError):
        ws.resolve("src/../../nowhere/file")


def test_absolute_path_outside_fails(ws: Workspace, outside: Path) -> None:
    """An absolute path outside the root raises SandboxError."""
    with pytest.raises(SandboxError, match="outside the workspace"):
        ws.resolve(outside / "secret.txt")
    with pytest.raises(SandboxError):
        ws.resolve("/etc/passwd")


def test_symlinked_file_pointing_out_fails(ws: Workspace, outside: Path) -> None:
    """A symlink to a file outside the root raises SandboxError."""
    (ws.root / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(SandboxError, match=r"link\.txt"):
        ws.resolve("link.txt")


def test_symlinked_dir_pointing_out_fails(ws: Workspace, outside: Path) -> None:
    """A path through a symlinked directory outside fails, even for a missing leaf."""
    (ws.root / "linkdir").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SandboxError):
        ws.resolve("linkdir/secret.txt")
    with pytest.raises(SandboxError):
        ws.resolve("linkdir/not-yet-created.txt")
    with pytest.raises(SandboxError):
        ws.resolve("linkdir/../x")


def test_symlink_inside_is_accepted(ws: Workspace) -> None:
    """A symlink whose target stays inside the root is fine."""
    (ws.root / "alias.py").symlink_to(ws.root / "src" / "a.py")
    assert ws.resolve("alias.py") == ws.root / "src" / "a.py"


def test_dangling_symlink_out_fails(ws: Workspace, tmp_path: Path) -> None:
    """A dangling symlink pointing outside fails: its target would be created outside."""
    (ws.root / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(SandboxError):
        ws.resolve("dangling")


def test_symlink_loop_fails(ws: Workspace) -> None:
    """A symlink loop raises SandboxError instead of hanging or crashing."""
    (ws.root / "loop").symlink_to(ws.root / "loop")
    with pytest.raises(SandboxError):
        ws.resolve("loop/x")


def test_nul_byte_fails(ws: Workspace) -> None:
    """A NUL byte in a path raises SandboxError."""
    with pytest.raises(SandboxError, match="NUL"):
        ws.resolve("src/a.py\x00.txt")


def test_must_exist(ws: Workspace) -> None:
    """must_exist raises ToolError(not_found) for missing paths and passes existing ones."""
    assert ws.resolve("src/a.py", must_exist=True).is_file()
    with pytest.raises(ToolError) as info:
        ws.resolve("src/missing.py", must_exist=True)
    assert info.value.code == "not_found"
    assert ws.resolve("src/missing.py") == ws.root / "src" / "missing.py"


def test_relative_gives_posix_path(ws: Workspace) -> None:
    """relative() returns the posix path under the root, '.' for the root."""
    assert ws.relative(ws.root / "src" / "a.py") == "src/a.py"
    assert ws.relative(ws.root) == "."
    assert ws.relative(Path("src/a.py")) == "src/a.py"


def test_relative_outside_fails(ws: Workspace, outside: Path) -> None:
    """relative() of a path outside the root raises SandboxError."""
    with pytest.raises(SandboxError):
        ws.relative(outside / "secret.txt")


def test_sandbox_error_pickles(ws: Workspace) -> None:
    """A SandboxError from resolve() round-trips through pickle with its path."""
    with pytest.raises(SandboxError) as info:
        ws.resolve("../x")
    clone = pickle.loads(pickle.dumps(info.value))
    assert clone.path == "../x"
    assert str(clone) == str(info.value)
