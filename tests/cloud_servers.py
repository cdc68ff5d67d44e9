"""Real storage protocol servers on loopback for the remote file-system tests.

`gcs_server` is gcp-storage-emulator (the GCS JSON API) and `s3_server` is moto's server
(the S3 REST API), each in its own subprocess on a free port, in memory. They are
session-scoped, started together on first use and stopped (terminate, then kill) at the
end. Import all three fixtures into a test module:
`from tests.cloud_servers import cloud_servers, gcs_server, s3_server`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
from typing import Iterator

import pytest

START_TIMEOUT = 30.0  # seconds to wait for a server to accept connections
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it


@dataclasses.dataclass
class ServerProcess:
    """A server subprocess listening on 127.0.0.1:port."""

    name: str
    process: subprocess.Popen
    port: int
    log_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts_connections(port: int) -> bool:
    with contextlib.suppress(OSError):
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    return False


def _log_tail(path: str) -> str:
    with contextlib.suppress(OSError), open(path, "rb") as log:
        return log.read()[-2000:].decode("utf-8", "replace")
    return ""


def _launch(name: str, args_for_port, log_dir: str, attempt: int, env=None, python=None,
            cwd=None) -> ServerProcess:
    port = _free_port()
    log_path = os.path.join(log_dir, f"{name}-{attempt}.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [python or sys.executable, *args_for_port(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
    return ServerProcess(name, process, port, log_path)


def _wait_ready(server: ServerProcess) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and server.process.poll() is None:
        if _accepts_connections(server.port):
            return True
        time.sleep(0.05)
    server.stop()
    return False


def start_servers(specs: dict, log_dir: str, env=None, python=None, cwd=None) -> dict[str, ServerProcess]:
    """Start `python <args_for_port(port)>` for each {name: args_for_port}, all at once
    (``env``: their environment, default this process's; ``python``: the interpreter, default
    this one; ``cwd``: their working directory), and wait until each port accepts
    connections. Retries a server on a new port."""
    launch = {"env": env, "python": python, "cwd": cwd}
    servers = {name: _launch(name, args, log_dir, 0, **launch) for name, args in specs.items()}
    failures: dict[str, list[str]] = {name: [] for name in specs}
    try:
        for name, args in specs.items():
            for attempt in range(1, START_ATTEMPTS + 1):
                server = servers[name]
                if _wait_ready(server):
                    break
                failures[name].append(
                    f"port {server.port}, exit code {server.process.returncode}: "
                    f"{_log_tail(server.log_path)}"
                )
                if attempt == START_ATTEMPTS:
                    raise RuntimeError(f"{name} did not start:\n" + "\n".join(failures[name]))
                servers[name] = _launch(name, args, log_dir, attempt, **launch)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


# gcp-storage-emulator serves one connection at a time (http.server.HTTPServer): a client
# that stops reading a response midway (a test failing mid-download) would stall every
# later request until a timeout. Its threading variant avoids that; the emulator reads
# `http.server.HTTPServer` when it starts, so the swap takes effect.
_GCS_EMULATOR = (
    "import sys, http.server; "
    "http.server.HTTPServer = http.server.ThreadingHTTPServer; "
    "from gcp_storage_emulator.__main__ import main; main(sys.argv[1:])"
)


def _gcs_args(port: int) -> list[str]:
    return ["-c", _GCS_EMULATOR, "start",
            "--host", "127.0.0.1", "--port", str(port), "--in-memory", "--quiet"]


def _s3_args(port: int) -> list[str]:
    return ["-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@pytest.fixture(scope="session")
def cloud_servers(tmp_path_factory) -> Iterator[dict[str, ServerProcess]]:
    """Both servers, started in parallel: {"gs": emulator, "s3": moto}."""
    log_dir = str(tmp_path_factory.mktemp("servers"))
    servers = start_servers({"gs": _gcs_args, "s3": _s3_args}, log_dir)
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def gcs_server(cloud_servers) -> ServerProcess:
    """gcp-storage-emulator; point clients at it with STORAGE_EMULATOR_HOST=server.url."""
    return cloud_servers["gs"]


@pytest.fixture(scope="session")
def s3_server(cloud_servers) -> ServerProcess:
    """moto's S3 server; point boto3 at it with endpoint_url=server.url."""
    return cloud_servers["s3"]
