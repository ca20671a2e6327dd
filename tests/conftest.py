"""Root test configuration: no test in any tier reaches the network.

The guard from :mod:`pipelines.testing` is installed when pytest configures, before
collection, so even import-time connections are caught; loopback and AF_UNIX stay
open for wire-level fake servers on 127.0.0.1.
"""

from __future__ import annotations

import pytest

from pipelines.testing import install_network_guard, uninstall_network_guard


def pytest_configure(config: pytest.Config) -> None:
    install_network_guard()


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall_network_guard()
