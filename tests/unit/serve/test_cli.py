"""The elexirion CLI: run/validate/schema, exit codes 0/1/2, --json prints exactly one object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "examples" / "sample_project"


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    exe = Path(sys.executable).parent / "elexirion"
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_run_json_prints_one_object_mapping_steps(tmp_path: Path) -> None:
    """--json: stdout is exactly one JSON object keyed by step name; exit 0."""
    write(
        tmp_path / "p.yaml",
        "workflow:\n  name: p\n  steps:\n"
        "    - {name: a, type: test_echo, value: '{{inputs.x}}'}\n"
        "    - {name: b, type: claude, prompt: hello}\n",
    )
    done = cli("run", "p.yaml", "--input", "x=[1,2]", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert list(payload) == ["a", "b"]
    assert payload["a"]["value"] == [1, 2]
    assert payload["b"]["provider"] == "offline"
    assert done.stdout.count("\n") == 1


def test_run_bad_pipeline_exits_2_with_location(tmp_path: Path) -> None:
    """An invalid pipeline exits 2 and stderr names file, line, step and key."""
    write(
        tmp_path / "bad.yaml",
        "workflow:\n  name: p\n  steps:\n    - {name: a, type: test_echo, colour: red}\n",
    )
    done = cli("run", "bad.yaml", "--json", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "bad.yaml:4" in done.stderr and "'a'" in done.stderr and "'colour'" in done.stderr


def test_run_bad_input_exits_2(tmp_path: Path) -> None:
    """A malformed --input exits 2."""
    write(tmp_path / "p.yaml", "workflow:\n  name: p\n  steps:\n    - {name: a, type: test_echo}\n")
    done = cli("run", "p.yaml", "--input", "novalue", cwd=tmp_path)
    assert done.returncode == 2 and "key=value" in done.stderr


def test_run_step_failure_exits_1_naming_step(tmp_path: Path) -> None:
    """A step failing at run time exits 1 naming the step and its type."""
    write(
        tmp_path / "p.yaml",
        "workflow:\n  name: p\n  steps:\n    - {name: boom, type: test_echo, fail: true}\n",
    )
    done = cli("run", "p.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert "boom" in done.stderr and "test_echo" in done.stderr


def test_validate_reports_each_file(tmp_path: Path) -> None:
    """validate prints ok per good file and exits 2 when any file is bad."""
    good = write(
        tmp_path / "good.yaml", "workflow:\n  name: g\n  steps:\n    - {name: a, type: test_echo}\n"
    )
    bad = write(tmp_path / "bad.yaml", "workflow:\n  name: b\n  steps: []\n")
    done = cli("validate", str(good), str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert "ok  " in done.stdout and "good.yaml" in done.stdout
    assert "bad.yaml" in done.stderr


def test_schema_prints_json_schema(tmp_path: Path) -> None:
    """schema prints the JSON Schema document."""
    done = cli("schema", cwd=tmp_path)
    assert done.returncode == 0
    assert json.loads(done.stdout)["title"].startswith("Elexirion pipeline")


@pytest.fixture(scope="module")
def make_run_output(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """code_analysis on the sample project, offline (the analysis behind the chat demo)."""
    cwd = tmp_path_factory.mktemp("run")
    return cli("run", "code_analysis", "--input", f"project_dir={SAMPLE}", cwd=cwd)


def test_code_analysis_lists_every_planted_defect(
    make_run_output: subprocess.CompletedProcess[str],
) -> None:
    """The analysis prints every planted defect of the sample project as file:line, offline."""
    assert make_run_output.returncode == 0, make_run_output.stderr
    expected = (SAMPLE / "EXPECTED_FINDINGS.md").read_text()
    locations = [line.split("`")[1] for line in expected.splitlines() if line.startswith("| `")]
    assert len(locations) >= 8
    for location in locations:
        assert location in make_run_output.stdout, location
    assert "no LLM was called" in make_run_output.stdout
    assert "offline" in make_run_output.stdout


def test_code_analysis_json_review_keeps_every_finding(tmp_path: Path) -> None:
    """Offline, the review step's structured findings include every static finding."""
    done = cli("run", "code_analysis", "--input", f"project_dir={SAMPLE}", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    tool = {(f["file"], f["line"]) for f in payload["static_analysis"]["findings"]}
    review = {(f["file"], f["line"]) for f in payload["review"]["findings"]}
    assert tool and tool <= review
    assert payload["review"]["provider"] == "offline"
