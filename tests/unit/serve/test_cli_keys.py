"""`elexirion keys create/list/revoke`: the key shown once, lists without key material, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from serve.cli import app
from store.base import hash_api_key
from store.factory import open_store


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean working directory and a store inside tmp_path, named by $ELEXIRION_STORE."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("ELEXIRION_"):
            monkeypatch.delenv(key)
    url = f"sqlite:///{tmp_path}/keys.db"
    monkeypatch.setenv("ELEXIRION_STORE", url)
    return url


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def find(url: str, raw: str) -> Any:
    async def work() -> Any:
        store = await open_store(url)
        try:
            return await store.find_api_key(hash_api_key(raw))
        finally:
            await store.close()

    return asyncio.run(work())


def test_create_list_revoke_round_trip(store_url: str) -> None:
    """create prints the key once; list shows it active without key material; revoke ends it."""
    code, out, err = invoke("keys", "create", "ci-bot", "--scope", "chat", "--scope", "runs")
    assert code == 0, err
    raw = out.strip()
    assert raw.startswith("elx_") and "\n" not in raw
    assert "shown once" in err and "cannot be shown again" in err
    key = find(store_url, raw)
    assert key is not None and key.name == "ci-bot" and key.scopes == ["chat", "runs"]

    code, out, _ = invoke("keys", "list", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["name"] == "ci-bot" and row["prefix"] == raw[:12] and row["active"] is True
    assert row["scopes"] == ["chat", "runs"] and row["revoked_at"] is None
    assert set(row) == {
        "name",
        "prefix",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
        "active",
    }
    code, table, _ = invoke("keys", "list")
    assert code == 0 and "ci-bot" in table and "active" in table
    for listing in (out, table):
        assert raw not in listing and raw[12:20] not in listing
        assert hash_api_key(raw) not in listing

    code, _, err = invoke("keys", "revoke", "ci-bot")
    assert code == 0 and "revoked API key ci-bot" in err
    assert find(store_url, raw) is None
    (row,) = json.loads(invoke("keys", "list", "--json")[1])
    assert row["active"] is False and row["revoked_at"] is not None


def test_revoke_unknown_key_exits_2(store_url: str) -> None:
    """Revoking a name with no active key exits 2 and says so."""
    code, _, err = invoke("keys", "revoke", "ghost")
    assert code == 2
    assert "no active API key named 'ghost'" in err


def test_create_refuses_a_taken_or_bad_name(store_url: str) -> None:
    """A second active key of one name, or a bad name, exits 2 with the reason."""
    assert invoke("keys", "create", "alice")[0] == 0
    code, out, err = invoke("keys", "create", "alice")
    assert code == 2 and out == ""
    assert "already exists" in err and "keys revoke alice" in err
    code, _, err = invoke("keys", "create", "no spaces")
    assert code == 2 and "invalid key name" in err


def test_create_json_and_store_option(tmp_path: Path, store_url: str) -> None:
    """--json prints one object with the key; --store overrides $ELEXIRION_STORE."""
    other = f"sqlite:///{tmp_path}/other.db"
    code, out, err = invoke("keys", "create", "web", "--json", "--store", other)
    assert code == 0, err
    created = json.loads(out)
    assert created["name"] == "web" and created["scopes"] == ["chat"]
    assert created["key"].startswith(created["prefix"])
    assert find(other, created["key"]) is not None
    assert find(store_url, created["key"]) is None
    assert json.loads(invoke("keys", "list", "--json")[1]) == []


def test_empty_list_says_how_to_create(store_url: str) -> None:
    """With no keys, list says how to create one (on stderr; stdout stays empty)."""
    code, out, err = invoke("keys", "list")
    assert code == 0 and out == ""
    assert "elexirion keys create NAME" in err


def test_bad_store_url_exits_2(store_url: str) -> None:
    """An unusable store URL is a user error: exit 2 with the reason."""
    code, _, err = invoke("keys", "list", "--store", "mysql://nope")
    assert code == 2 and "unknown store URL" in err
