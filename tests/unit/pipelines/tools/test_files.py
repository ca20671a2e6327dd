"""read_file, list_files and search: results, limits and every error path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import SandboxError, ToolError
from pipelines.tools import ListFilesTool, ReadFileTool, SearchTool, Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "main.py").write_text(
        "import os\n\ndef main():\n    return 1\n", encoding="utf-8"
    )
    (root / "src" / "pkg" / "util.py").write_text(
        "def helper():\n    return 'TODO'\n", encoding="utf-8"
    )
    (root / "README.md").write_text("# Title\ntodo: write docs\n", encoding="utf-8")
    (root / "data.bin").write_bytes(b"\x00\x01\x02TODO")
    for skipped in (".git", "node_modules", ".venv", "__pycache__"):
        (root / skipped).mkdir()
        (root / skipped / "hidden.py").write_text("TODO = 1\n", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("TODO = 'secret'\n", encoding="utf-8")
    (root / "leak.py").symlink_to(outside / "secret.py")
    (root / "leakdir").symlink_to(outside, target_is_directory=True)
    return Workspace(root)


async def call(tool: Any, ws: Workspace, **args: Any) -> dict[str, Any]:
    result: dict[str, Any] = await tool.run(args, ws)
    json.dumps(result)  # every result must be JSON-serialisable
    return result


# ----------------------------------------------------------------- read_file


async def test_read_file_whole(ws: Workspace) -> None:
    """read_file returns the content, total lines and a workspace-relative path."""
    result = await call(ReadFileTool(), ws, path="src/main.py")
    assert result["path"] == "src/main.py"
    assert result["content"] == "import os\n\ndef main():\n    return 1\n"
    assert result["lines"] == 4
    assert result["start_line"] == 1
    assert result["end_line"] == 4
    assert result["truncated"] is False


async def test_read_file_line_range(ws: Workspace) -> None:
    """start_line/end_line select an inclusive 1-based range."""
    result = await call(ReadFileTool(), ws, path="src/main.py", start_line=3, end_line=4)
    assert result["content"] == "def main():\n    return 1\n"
    assert (result["start_line"], result["end_line"], result["lines"]) == (3, 4, 4)


async def test_read_file_range_past_end_is_empty(ws: Workspace) -> None:
    """A range starting past the last line returns empty content and end_line None."""
    result = await call(ReadFileTool(), ws, path="src/main.py", start_line=10)
    assert result["content"] == ""
    assert result["end_line"] is None


async def test_read_file_truncates_at_max_bytes(ws: Workspace) -> None:
    """Content is cut at max_bytes and truncated is set."""
    result = await call(ReadFileTool(), ws, path="src/main.py", max_bytes=12)
    assert result["content"] == "import os\n\nd"
    assert result["truncated"] is True


async def test_read_file_truncation_never_splits_a_character(ws: Workspace) -> None:
    """A cut inside a multi-byte character drops the partial character."""
    (ws.root / "u.txt").write_text("aé\n", encoding="utf-8")
    result = await call(ReadFileTool(), ws, path="u.txt", max_bytes=2)
    assert result["content"] == "a"
    assert result["truncated"] is True


async def test_read_file_binary_fails(ws: Workspace) -> None:
    """A binary file raises ToolError(binary_file)."""
    with pytest.raises(ToolError) as info:
        await call(ReadFileTool(), ws, path="data.bin")
    assert info.value.code == "binary_file"


async def test_read_file_undecodable_fails(ws: Workspace) -> None:
    """A file that is not UTF-8 raises ToolError(binary_file)."""
    (ws.root / "latin.txt").write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ToolError) as info:
        await call(ReadFileTool(), ws, path="latin.txt")
    assert info.value.code == "binary_file"


async def test_read_file_missing_fails(ws: Workspace) -> None:
    """A missing file raises ToolError(not_found)."""
    with pytest.raises(ToolError) as info:
        await call(ReadFileTool(), ws, path="nope.py")
    assert info.value.code == "not_found"


async def test_read_file_directory_fails(ws: Workspace) -> None:
    """A directory raises ToolError(not_a_file)."""
    with pytest.raises(ToolError) as info:
        await call(ReadFileTool(), ws, path="src")
    assert info.value.code == "not_a_file"


async def test_read_file_escape_fails(ws: Workspace) -> None:
    """Paths out of the workspace, including via symlinks, raise SandboxError."""
    for path in ("../outside/secret.py", "leak.py", "leakdir/secret.py"):
        with pytest.raises(SandboxError):
            await call(ReadFileTool(), ws, path=path)


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        ({}, "path"),
        ({"path": 3}, "path"),
        ({"path": "a", "start_line": 0}, "start_line"),
        ({"path": "a", "max_bytes": "big"}, "max_bytes"),
        ({"path": "a", "colour": "red"}, "colour"),
        ({"path": "src/main.py", "start_line": 3, "end_line": 2}, "end_line"),
    ],
)
async def test_read_file_invalid_arguments(
    ws: Workspace, args: dict[str, Any], argument: str
) -> None:
    """Bad arguments raise ToolError(invalid_arguments) naming the argument."""
    with pytest.raises(ToolError) as info:
        await ReadFileTool().run(args, ws)
    assert info.value.code == "invalid_arguments"
    assert repr(argument) in str(info.value)


async def test_arguments_must_be_a_mapping(ws: Workspace) -> None:
    """A non-object argument payload raises ToolError(invalid_arguments)."""
    with pytest.raises(ToolError) as info:
        await ReadFileTool().run(["path"], ws)  # type: ignore[arg-type]
    assert info.value.code == "invalid_arguments"


# ---------------------------------------------------------------- list_files


async def test_list_files_everything_sorted(ws: Workspace) -> None:
    """list_files returns sorted relative paths, skipping tool dirs and outward symlinks."""
    result = await call(ListFilesTool(), ws)
    assert result == {
        "files": ["README.md", "data.bin", "src/main.py", "src/pkg/util.py"],
        "truncated": False,
    }


async def test_list_files_pattern_and_subdir(ws: Workspace) -> None:
    """A name-only glob matches at any depth; a path glob is relative to 'path'."""
    assert (await call(ListFilesTool(), ws, pattern="*.py"))["files"] == [
        "src/main.py",
        "src/pkg/util.py",
    ]
    assert (await call(ListFilesTool(), ws, path="src", pattern="pkg/*.py"))["files"] == [
        "src/pkg/util.py"
    ]
    assert (await call(ListFilesTool(), ws, pattern="src/*.py"))["files"] == ["src/main.py"]
    assert (await call(ListFilesTool(), ws, pattern="**/*.[mp]d"))["files"] == ["README.md"]


async def test_list_files_keeps_inward_symlinks(ws: Workspace) -> None:
    """A file symlink whose target is inside the workspace is listed."""
    (ws.root / "alias.py").symlink_to(ws.root / "src" / "main.py")
    assert "alias.py" in (await call(ListFilesTool(), ws))["files"]


async def test_list_files_truncates(ws: Workspace) -> None:
    """max_results caps the list and sets truncated."""
    result = await call(ListFilesTool(), ws, max_results=2)
    assert result == {"files": ["README.md", "data.bin"], "truncated": True}


async def test_list_files_errors(ws: Workspace) -> None:
    """A missing dir is not_found, an escape is SandboxError, a bad limit invalid_arguments."""
    with pytest.raises(ToolError) as info:
        await call(ListFilesTool(), ws, path="nowhere")
    assert info.value.code == "not_found"
    with pytest.raises(SandboxError):
        await call(ListFilesTool(), ws, path="leakdir")
    with pytest.raises(ToolError) as info:
        await call(ListFilesTool(), ws, max_results=0)
    assert info.value.code == "invalid_arguments"


# -------------------------------------------------------------------- search


async def test_search_finds_lines(ws: Workspace) -> None:
    """search returns file, 1-based line and text, skipping binaries and skipped dirs."""
    result = await call(SearchTool(), ws, pattern="TODO")
    assert result == {
        "matches": [{"file": "src/pkg/util.py", "line": 2, "text": "    return 'TODO'"}],
        "truncated": False,
    }


async def test_search_ignore_case_and_glob(ws: Workspace) -> None:
    """ignore_case widens matching; glob narrows the files searched."""
    result = await call(SearchTool(), ws, pattern="todo", ignore_case=True)
    assert [(m["file"], m["line"]) for m in result["matches"]] == [
        ("README.md", 2),
        ("src/pkg/util.py", 2),
    ]
    result = await call(SearchTool(), ws, pattern="todo", ignore_case=True, glob="*.md")
    assert [m["file"] for m in result["matches"]] == ["README.md"]


async def test_search_truncates(ws: Workspace) -> None:
    """max_results caps the matches and sets truncated."""
    result = await call(SearchTool(), ws, pattern=r"\w", max_results=1)
    assert len(result["matches"]) == 1
    assert result["truncated"] is True


async def test_search_skips_large_files(ws: Workspace) -> None:
    """Files over 1 MB are not searched."""
    (ws.root / "big.txt").write_text("needle\n" + "x" * 1_100_000, encoding="utf-8")
    (ws.root / "small.txt").write_text("needle\n", encoding="utf-8")
    result = await call(SearchTool(), ws, pattern="needle")
    assert [m["file"] for m in result["matches"]] == ["small.txt"]


async def test_search_single_file(ws: Workspace) -> None:
    """path may name one file."""
    result = await call(SearchTool(), ws, pattern="def", path="src/main.py")
    assert [m["line"] for m in result["matches"]] == [3]


async def test_search_invalid_regex(ws: Workspace) -> None:
    """An invalid regex raises ToolError(invalid_arguments) carrying the regex error."""
    with pytest.raises(ToolError) as info:
        await call(SearchTool(), ws, pattern="(unclosed")
    assert info.value.code == "invalid_arguments"
    assert "'pattern'" in str(info.value)
    assert "missing )" in str(info.value)


async def test_search_errors(ws: Workspace) -> None:
    """Missing pattern is invalid_arguments; escaping paths raise SandboxError."""
    with pytest.raises(ToolError) as info:
        await call(SearchTool(), ws)
    assert info.value.code == "invalid_arguments"
    assert "'pattern'" in str(info.value)
    with pytest.raises(SandboxError):
        await call(SearchTool(), ws, pattern="x", path="..")
