"""The test-isolation guards: no real network in any test, no Ray in unit tests."""

from __future__ import annotations

import asyncio
import pickle
import socket
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.testing import (
    NetworkBlocked,
    install_network_guard,
    is_allowed_host,
    network_allowed,
    network_guard_installed,
    no_network,
    uninstall_network_guard,
)
from tests.unit.conftest import RAY_REFUSAL, refusing_ray_init

PUBLIC_IP = "93.184.216.34"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server
    server.close()


def test_guard_is_installed_for_the_session() -> None:
    """The root conftest installs the guard before any test runs."""
    assert network_guard_installed()


def test_create_connection_to_public_host_is_blocked() -> None:
    """socket.create_connection to a public name raises NetworkBlocked naming the host."""
    with pytest.raises(NetworkBlocked, match=r"example\.com"):
        socket.create_connection(("example.com", 443), timeout=1)


def test_plain_socket_connect_to_public_ip_is_blocked() -> None:
    """A raw socket connect (and connect_ex) to a public IP raises before any packet."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(NetworkBlocked, match=PUBLIC_IP.replace(".", r"\.")) as info:
            sock.connect((PUBLIC_IP, 80))
        assert info.value.host == PUBLIC_IP
        with pytest.raises(NetworkBlocked):
            sock.connect_ex((PUBLIC_IP, 80))


def test_dns_lookup_and_udp_send_are_blocked() -> None:
    """getaddrinfo of a public name and sendto a public IP raise NetworkBlocked."""
    with pytest.raises(NetworkBlocked, match="getaddrinfo"):
        socket.getaddrinfo("example.com", 80)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        pytest.raises(NetworkBlocked, match="sendto"),
    ):
        sock.sendto(b"x", ("8.8.8.8", 53))


async def test_asyncio_open_connection_to_public_host_is_blocked() -> None:
    """asyncio's resolver path (as used by HTTP clients) is blocked too."""
    with pytest.raises(NetworkBlocked):
        await asyncio.open_connection("example.com", 80)


def test_loopback_connection_works(listener: socket.socket) -> None:
    """Connecting to a local listener on 127.0.0.1 and via 'localhost' stays allowed."""
    port = listener.getsockname()[1]
    for host in ("127.0.0.1", "localhost"):
        with socket.create_connection((host, port), timeout=2) as client:
            peer, _ = listener.accept()
            client.sendall(b"ping")
            assert peer.recv(4) == b"ping"
            peer.close()


async def test_asyncio_loopback_connection_works(listener: socket.socket) -> None:
    """asyncio.open_connection to a loopback listener succeeds under the guard."""
    _, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
    writer.close()
    await writer.wait_closed()
    assert network_guard_installed()


def test_unix_sockets_are_allowed(tmp_path: Path) -> None:
    """AF_UNIX sockets never leave the machine and are not checked."""
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)
            assert client.getpeername() == path


def test_allowed_hosts() -> None:
    """Loopback v4/v6 (incl. mapped), localhost and explicitly allowed hosts pass."""
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "::ffff:127.0.0.1", "LOCALHOST"):
        assert is_allowed_host(host), host
    for host in ("10.0.0.1", PUBLIC_IP, "example.com", "0.0.0.0", "::"):  # noqa: S104 - probed, not bound
        assert not is_allowed_host(host), host
    with network_allowed("10.1.2.3"):
        assert is_allowed_host("10.1.2.3")
    assert not is_allowed_host("10.1.2.3")


def test_uninstall_restores_socket_and_no_network_reinstalls() -> None:
    """Uninstalling restores the real functions; no_network() blocks only inside its block."""
    guarded_connect = socket.socket.connect
    uninstall_network_guard()
    try:
        assert not network_guard_installed()
        assert "connect" not in vars(socket.socket)  # back to the inherited C method
        with no_network():
            assert network_guard_installed()
            with pytest.raises(NetworkBlocked):
                socket.create_connection(("example.com", 80))
        assert not network_guard_installed()
    finally:
        install_network_guard()
    assert network_guard_installed()
    assert socket.socket.connect is not guarded_connect  # a fresh, equivalent guard


def test_network_blocked_pickles() -> None:
    """NetworkBlocked round-trips through pickle with its host and operation."""
    error = pickle.loads(pickle.dumps(NetworkBlocked("example.com", "connect")))
    assert isinstance(error, NetworkBlocked)
    assert (error.host, error.operation) == ("example.com", "connect")
    assert "example.com" in str(error)


# ------------------------------------------------------------------------- Ray


def test_ray_imported_during_a_unit_test_refuses_init(tmp_path: Path) -> None:
    """A unit test that imports ray finds ray.init raising RuntimeError."""
    package = tmp_path / "ray"
    package.mkdir()
    (package / "__init__.py").write_text("def init(*args, **kwargs):\n    return 'started'\n")
    already_loaded = "ray" in sys.modules
    sys.path.insert(0, str(tmp_path))
    try:
        import ray  # the stand-in above, unless the real Ray is already loaded

        with pytest.raises(RuntimeError, match=RAY_REFUSAL):
            ray.init()
    finally:
        sys.path.remove(str(tmp_path))
        if not already_loaded:
            sys.modules.pop("ray", None)


def test_already_loaded_ray_refuses_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """When ray is loaded before the test, its init is patched straight away."""
    fake = types.ModuleType("ray")
    fake.init = lambda *args, **kwargs: "started"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", fake)
    with refusing_ray_init(monkeypatch), pytest.raises(RuntimeError, match=RAY_REFUSAL):
        fake.init()
