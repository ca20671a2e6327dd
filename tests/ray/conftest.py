"""One local Ray for every Ray test (session scope), with token auth and the dashboard on.

The unit suite forbids ``ray.init``; these tests live apart (``tests/ray/``). The
fake Anthropic server runs in this process; executors reach it over loopback.
"""

from __future__ import annotations

import os

# Ray reads its auth mode when it is first imported; set it before anything imports ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.providers.fakes import FakeProviderServer, FaultPlan

pytestmark = pytest.mark.ray


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeProviderServer]:
    server = FakeProviderServer("anthropic").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[dict[str, Any]]:
    """A local Ray: 2 CPUs, dashboard on 127.0.0.1, token auth as in production."""
    import ray

    # Serve in HAProxy mode, as `elexirion serve` runs it (the Serve tests hold it to
    # the whole API: SSE, disconnects, limits). Read by Serve's processes at start.
    os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
    # Everything on loopback: the test network guard only lets 127.0.0.0/8 through.
    context = ray.init(
        num_cpus=2,
        namespace="elexirion",
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        _node_ip_address="127.0.0.1",
        logging_level="ERROR",
        log_to_driver=False,
    )
    yield {"dashboard_url": f"http://{context.dashboard_url}"}
    ray.shutdown()


@pytest.fixture(scope="session")
def tree(
    ray_session: dict[str, Any],
    fake_anthropic: FakeProviderServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """The application tree on a SQLite store, providers pointed at the fake."""
    from actors.app import start_tree, stop_tree
    from actors.config import TreeConfig

    db = tmp_path_factory.mktemp("tree") / "elexirion.db"
    config = TreeConfig(
        store_url=f"sqlite:///{db}",
        shards=2,
        executors=2,
        spread_executors=False,
        provider_env={
            "ANTHROPIC_API_KEY": "test-key-0000",
            "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
            "ELEXIRION_RESILIENCE__RETRY__MAX_ATTEMPTS": "1",
        },
    )
    start_tree(config)
    yield {"config": config, "db": Path(db)}
    stop_tree()


@pytest.fixture
def fake_plan(fake_anthropic: FakeProviderServer) -> Iterator[FakeProviderServer]:
    """A clean script and plan on the fake for one test."""
    fake_anthropic.state.script.clear()
    fake_anthropic.state.set_plan(FaultPlan())
    yield fake_anthropic
    fake_anthropic.state.script.clear()
    fake_anthropic.state.set_plan(FaultPlan())
