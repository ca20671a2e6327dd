"""The cluster launcher configs pass Ray's own validation and keep our deployment rules.

Only the offline half of what ``ray up`` does runs here (Ray 2.60,
``ray/autoscaler/_private/util.py``):

- ``prepare_config(config)``: for ``provider.type: local``, ``prepare_local``
  (``local/config.py``) replaces the node types with the single generated
  ``local.cluster.node`` type and sizes it from ``worker_ips``; then, for every provider,
  ``fillout_defaults`` merges the provider's ``defaults.yaml`` shipped inside the Ray
  package (a file read), ``merge_setup_commands`` prepends ``setup_commands`` to the head
  and worker setup lists, ``validate_docker_config`` checks the (empty) docker section and
  ``fill_node_type_min_max_workers`` fills per-type worker bounds. Dict work only.
- ``validate_config(config)``: ``jsonschema.validate`` against ``ray-schema.json`` from
  the package, then checks that ``cluster_synced_files`` was filled, that
  ``head_node_type`` is one of ``available_node_types`` and that the types' min_workers
  fit in ``max_workers``. Dict work only.

What ``ray up`` does next, ``commands._bootstrap_config``, is online and never called
here: the provider's ``fillout_available_node_types_resources`` (AWS: boto3
``describe_instance_types``) and ``bootstrap_config`` (IAM role, VPC, key pair).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[2]
AWS = "cluster.yaml"
LOCAL = "cluster.local.yaml"
BOTH = [AWS, LOCAL]
AUTH_MODE_ASSIGNMENT = "RAY_AUTH_MODE=token"
AUTH_FILE = "~/.ray/auth_token"


def load(name: str) -> dict[str, Any]:
    config = yaml.safe_load((REPO / name).read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def prepared(name: str) -> dict[str, Any]:
    """The config as ``ray up`` would have it after the offline steps."""
    config = prepare_config(load(name))
    validate_config(config)
    return config


def simple_commands(command: str) -> list[list[str]]:
    """Splits a shell line on ``;``, ``&&`` and ``||`` into the words of each command."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word in {";", "&&", "||"}:
            commands.append([])
        else:
            commands[-1].append(word)
    return [words for words in commands if words]


def env_and_program(words: list[str]) -> tuple[list[str], list[str]]:
    """Separates the leading ``NAME=value`` assignments from the program and its arguments."""
    index = 0
    while index < len(words) and "=" in words[index] and not words[index].startswith("-"):
        index += 1
    return words[:index], words[index:]


def invocations(config: dict[str, Any], key: str, program: list[str]) -> list[list[str]]:
    """Each simple command of ``config[key]`` running ``program``, with its env prefix."""
    found = []
    for line in config[key]:
        for words in simple_commands(line):
            _, argv = env_and_program(words)
            if argv[: len(program)] == program:
                found.append(words)
    return found


@pytest.mark.parametrize("name", BOTH)
def test_config_passes_ray_validation(name: str) -> None:
    """Ray's prepare_config and validate_config accept the file as committed."""
    config = prepared(name)
    assert config["head_node_type"] in config["available_node_types"]


@pytest.mark.parametrize("name", BOTH)
def test_every_ray_and_elexirion_start_uses_token_auth(name: str) -> None:
    """Each `ray start` and `elexirion` command in the start lists runs with RAY_AUTH_MODE=token."""
    config = prepared(name)
    checked = 0
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        for line in config[key]:
            for words in simple_commands(line):
                env, argv = env_and_program(words)
                if argv[:2] == ["ray", "start"] or argv[:1] == ["elexirion"]:
                    assert AUTH_MODE_ASSIGNMENT in env, (
                        f"{key}: {line!r} lacks {AUTH_MODE_ASSIGNMENT}"
                    )
                    checked += 1
    assert checked == 3  # head ray start, elexirion up, worker ray start


@pytest.mark.parametrize("name", BOTH)
def test_head_starts_ray_with_dashboard_then_elexirion_up(name: str) -> None:
    """The head starts Ray with the dashboard and autoscaler, then `elexirion up --address auto`."""
    config = prepared(name)
    lines = config["head_start_ray_commands"]
    ray_start = [i for i, line in enumerate(lines) if "ray start --head" in line]
    elexirion_up = [i for i, line in enumerate(lines) if "elexirion up" in line]
    assert len(ray_start) == 1 and len(elexirion_up) == 1
    assert ray_start[0] < elexirion_up[0]
    [head] = invocations(config, "head_start_ray_commands", ["ray", "start"])
    assert "--port=6379" in head
    assert "--dashboard-host=0.0.0.0" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert not any(word.startswith("--include-dashboard") for word in head)
    [up] = invocations(config, "head_start_ray_commands", ["elexirion", "up"])
    assert env_and_program(up)[1] == ["elexirion", "up", "--address", "auto"]


@pytest.mark.parametrize("name", BOTH)
def test_workers_join_the_head_port(name: str) -> None:
    """Workers run `ray start` against $RAY_HEAD_IP on the head's GCS port and never `elexirion up`."""
    config = prepared(name)
    [worker] = invocations(config, "worker_start_ray_commands", ["ray", "start"])
    assert "--address=$RAY_HEAD_IP:6379" in worker
    assert not invocations(config, "worker_start_ray_commands", ["elexirion"])


@pytest.mark.parametrize("name", BOTH)
def test_setup_installs_the_mounted_project_on_every_node(name: str) -> None:
    """The repo is mounted at ~/elexirion and both head and worker setup pip-install it."""
    config = prepared(name)
    assert config["file_mounts"]["~/elexirion"] == "."
    # prepare_config has merged setup_commands into both per-role lists.
    for key in ("head_setup_commands", "worker_setup_commands"):
        installs = [line for line in config[key] if "pip install -e ~/elexirion" in line]
        assert installs, f"{key} does not install the project"


@pytest.mark.parametrize("name", BOTH)
def test_auth_token_is_mounted_at_rays_default_path(name: str) -> None:
    """The launcher's ~/.ray/auth_token is a file mount, so head and workers get the same token."""
    config = prepared(name)
    assert config["file_mounts"][AUTH_FILE] == AUTH_FILE


def test_aws_executors_run_only_on_workers() -> None:
    """On AWS only the worker type advertises `executor`; the head type launches no workers."""
    config = prepared(AWS)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    workers = {name: spec for name, spec in types.items() if name != config["head_node_type"]}
    assert "executor" not in head["resources"] and head["max_workers"] == 0
    assert [spec["resources"].get("executor") for spec in workers.values()] == [1]
    assert [(spec["min_workers"], spec["max_workers"]) for spec in workers.values()] == [(0, 8)]


def test_local_workers_advertise_executor() -> None:
    """On-premise workers advertise one `executor` slot via `ray start --resources`; the head none."""
    config = prepared(LOCAL)
    [worker] = invocations(config, "worker_start_ray_commands", ["ray", "start"])
    assert '--resources={"executor":1}' in worker
    [head] = invocations(config, "head_start_ray_commands", ["ray", "start"])
    assert not any(word.startswith("--resources") for word in head)


@pytest.mark.parametrize("name", BOTH)
def test_unknown_top_level_key_is_rejected(name: str) -> None:
    """A key the schema does not know at top level fails jsonschema validation, naming the key."""
    broken = load(name)
    broken["max_wrokers"] = 3
    with pytest.raises(jsonschema.ValidationError) as caught:
        validate_config(prepare_config(broken))
    assert "'max_wrokers' was unexpected" in caught.value.message
    assert list(caught.value.absolute_path) == []


def test_missing_head_node_type_is_rejected() -> None:
    """A head_node_type absent from available_node_types raises Ray's ValueError on that field."""
    broken = load(AWS)
    broken["head_node_type"] = "ray.head.missing"
    with pytest.raises(ValueError, match="`head_node_type` must be one of `available_node_types`"):
        validate_config(prepare_config(broken))


def test_unknown_node_type_key_is_rejected() -> None:
    """A node type with a key the schema does not know fails, pointing at that node type."""
    broken = load(AWS)
    broken["available_node_types"]["ray.worker.cpu"]["instance_type"] = "m6i.2xlarge"
    with pytest.raises(jsonschema.ValidationError) as caught:
        validate_config(prepare_config(broken))
    assert "'instance_type' was unexpected" in caught.value.message
    assert list(caught.value.absolute_path) == ["available_node_types", "ray.worker.cpu"]


def test_local_config_rejects_declared_node_types() -> None:
    """On-premise configs may not declare node types: Ray's prepare_local aborts naming the field."""
    broken = load(LOCAL)
    broken["available_node_types"] = load(AWS)["available_node_types"]
    broken["head_node_type"] = "ray.head.default"
    with pytest.raises(click.ClickException, match="available_node_types is not supported"):
        prepare_config(broken)
