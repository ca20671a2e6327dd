"""`elexirion generate`, `pipelines list` and `pipelines lineage`: output, DNA, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serve.cli import app

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean working directory, no API keys, store and user library inside tmp_path."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.endswith("_API_KEY") or key.startswith("ELEXIRION_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ELEXIRION_STORE", f"sqlite:///{tmp_path}/store.db")
    monkeypatch.setenv("ELEXIRION_LIBRARY_DIR", str(tmp_path / "lib"))
    return {"lib": str(tmp_path / "lib")}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_generate_offline_saves_pipeline_with_dna(env: dict[str, str]) -> None:
    """Offline, generate saves a template pipeline to the user library and prints its DNA."""
    code, out, err = invoke("generate", "Audit the code for security bugs", "--provider", "offline")
    assert code == 0, err
    path = Path(env["lib"]) / "audit_the_code_for_security_bugs.yaml"
    assert path.is_file()
    assert f"saved {path}" in out
    assert "rounds    1" in out and "origin genesis" in out and "generation 0" in out
    assert "template (analysis, offline)" in out
    done = CliRunner().invoke(app, ["validate", str(path)])
    assert done.exit_code == 0, done.stderr


def test_generate_json_and_name_collision(env: dict[str, str], tmp_path: Path) -> None:
    """--json prints one object; a second pipeline with the same name gets a suffix."""
    code, out, _ = invoke("generate", "plan a migration", "--name", "mig", "--json")
    assert code == 0
    first = json.loads(out)
    assert first["name"] == "mig" and first["rounds"] == 1 and first["round_errors"] == [[]]
    assert first["dna"]["origin"] == "genesis" and first["dna"]["parents"] == []
    assert first["kind"] == "planning" and first["drafted_by"] == "template"
    other = tmp_path / "other"
    code, out, _ = invoke(
        "generate", "plan a migration", "--name", "mig", "--library-dir", str(other), "--json"
    )
    assert code == 0
    second = json.loads(out)
    assert second["name"] == "mig_2" and Path(second["path"]) == other / "mig_2.yaml"


def test_generate_rejects_empty_request_and_unknown_provider(env: dict[str, str]) -> None:
    """User errors exit 2 with a message naming the problem."""
    code, _, err = invoke("generate", "  ")
    assert code == 2 and "request is empty" in err
    code, _, err = invoke("generate", "plan", "--provider", "nosuch")
    assert code == 2 and "unknown provider 'nosuch'" in err
    code, _, err = invoke("generate", "plan", "--store", "mysql://x")
    assert code == 2 and "unknown store URL" in err


def test_pipelines_list_shows_builtin_and_user_pipelines(env: dict[str, str]) -> None:
    """list registers the libraries and shows every pipeline with version, DNA and fitness."""
    invoke("generate", "write pytest tests for utils", "--name", "utils_tests")
    code, out, err = invoke("pipelines", "list", "--json")
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert {"code_analysis", "planning", "deployment", "utils_tests"} <= set(rows)
    assert rows["planning"]["library"] == "built-in" and rows["planning"]["version"] == 1
    assert rows["planning"]["dna"]["origin"] == "human"
    assert rows["utils_tests"]["library"] == "user"
    assert rows["utils_tests"]["dna"]["origin"] == "genesis"
    assert rows["utils_tests"]["fitness"] == {
        "runs": 0,
        "success_rate": None,
        "quality": None,
        "cost_usd": None,
        "latency_ms": None,
    }
    code, out, _ = invoke("pipelines", "list")
    assert code == 0
    assert "utils_tests" in out and "genesis" in out and "built-in" in out


def test_pipelines_lineage_after_an_edit(env: dict[str, str]) -> None:
    """Editing a generated file adds a human version whose parent is the genesis version."""
    invoke("generate", "plan a launch", "--name", "launch")
    path = Path(env["lib"]) / "launch.yaml"
    path.write_text(path.read_text().replace("Break the work", "Split the work"))
    code, out, err = invoke("pipelines", "lineage", "launch", "--json")
    assert code == 0, err
    first, second = json.loads(out)
    assert first["dna"]["origin"] == "genesis" and first["dna"]["generation"] == 0
    assert second["dna"]["origin"] == "human" and second["dna"]["generation"] == 1
    assert second["dna"]["parents"] == [first["dna"]["id"]]
    assert second["fitness"]["runs"] == 0
    code, out, _ = invoke("pipelines", "lineage", "launch")
    assert code == 0
    assert "2 version(s)" in out and first["dna"]["id"][:8] in out and "genesis" in out


def test_pipelines_lineage_unknown_name_exits_2(env: dict[str, str]) -> None:
    """An unknown pipeline exits 2 and the message names it."""
    code, out, err = invoke("pipelines", "lineage", "no_such_pipeline")
    assert code == 2 and out == ""
    assert "no pipeline 'no_such_pipeline'" in err


def test_generated_and_deployment_pipelines_run_from_the_shell(tmp_path: Path) -> None:
    """As a user would: generate, then run the saved file and the deployment pipeline offline."""
    exe = Path(sys.executable).parent / "elexirion"
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and not k.startswith("ELEXIRION_")
    }

    def shell(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(exe), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env=clean,
            check=False,
        )

    done = shell("generate", "roll out v2 of the api", "--json")
    assert done.returncode == 0, done.stderr
    saved = json.loads(done.stdout)
    assert saved["path"] == ".elexirion/library/roll_out_v2_of_the_api.yaml"
    done = shell("run", saved["path"], "--input", "service=api", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rollout_plan"]["provider"] == "offline"
    done = shell("run", "deployment", "--input", "request=roll out v2 of the api", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)["rollout_plan"]
    assert plan["provider"] == "offline" and isinstance(plan["stages"], list)
