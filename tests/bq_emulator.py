"""The BigQuery emulator (bqemulator 1.4.0: REST and the gRPC Storage Read API) for tests.

It pulls protobuf 6, so it cannot live in the pinned venv: ``bq_venv`` builds its own
venv once under ``<repo>/.venv-bq`` from tests/bqemulator-requirements.txt (kept while
that file is unchanged; a lock file makes parallel test workers build it once), and
``bq_emulator`` starts it on free loopback ports. The official clients talk to it
unmodified: ``client_options={"api_endpoint": emulator.rest_url}``, anonymous credentials,
Storage Read over an insecure gRPC channel to ``emulator.grpc_target``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import subprocess
import sys
import time
from typing import Iterator

import pytest

from tests.cloud_servers import START_TIMEOUT, _accepts_connections, _free_port, _log_tail
from tests.helpers import REPO

VENV = os.path.join(REPO, ".venv-bq")
REQUIREMENTS = os.path.join(REPO, "tests", "bqemulator-requirements.txt")

PROJECT = "test"


def _requirements_digest() -> str:
    with open(REQUIREMENTS, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def build_venv() -> str:
    """``.venv-bq`` with bqemulator and DuckDB's spatial extension; returns its bin dir."""
    marker = os.path.join(VENV, "built-from")
    os.makedirs(os.path.dirname(VENV), exist_ok=True)
    with open(VENV + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = _requirements_digest()
        if os.path.exists(marker) and open(marker).read() == digest:
            return os.path.join(VENV, "bin")
        steps = [[sys.executable, "-m", "venv", "--clear", VENV],
                 [os.path.join(VENV, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check",
                  "-r", REQUIREMENTS],
                 [os.path.join(VENV, "bin", "python"), "-c",
                  "from duckdb_extensions import import_extension; import_extension('spatial')"]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"building {VENV} failed at {' '.join(step)}:\n{done.stdout}{done.stderr}")
        with open(marker, "w") as f:
            f.write(digest)
    return os.path.join(VENV, "bin")


@dataclasses.dataclass
class Emulator:
    process: subprocess.Popen
    rest_port: int
    grpc_port: int
    log_path: str

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def options(self, **more) -> dict:
        """The bigquery source options that point it at this emulator."""
        return {"api_endpoint": self.rest_url, "read_endpoint": self.grpc_target, "anonymous": True, **more}

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(),
                               client_options={"api_endpoint": self.rest_url})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start(bin_dir: str, log_dir: str, attempts: int = 3) -> Emulator:
    """bqemulator on free loopback ports, once both accept connections (a port taken
    between choosing and binding it: another try on new ports)."""
    failures = []
    for attempt in range(attempts):
        rest, grpc_port = _free_port(), _free_port()
        log_path = os.path.join(log_dir, f"bqemulator-{attempt}.log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [os.path.join(bin_dir, "bqemulator"), "start", "--rest-host", "127.0.0.1", "--rest-port", str(rest),
                 "--grpc-host", "127.0.0.1", "--grpc-port", str(grpc_port), "--project", PROJECT,
                 "--log-level", "warning"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        emulator = Emulator(process, rest, grpc_port, log_path)
        deadline = time.monotonic() + START_TIMEOUT * 2
        while time.monotonic() < deadline and process.poll() is None:
            if _accepts_connections(rest) and _accepts_connections(grpc_port):
                return emulator
            time.sleep(0.1)
        emulator.stop()
        failures.append(f"ports {rest}/{grpc_port}, exit code {process.returncode}: {_log_tail(log_path)}")
    raise RuntimeError("bqemulator did not start:\n" + "\n".join(failures))


@pytest.fixture(scope="session")
def bq_venv() -> str:
    return build_venv()


@pytest.fixture(scope="session")
def bq_emulator(bq_venv, tmp_path_factory) -> Iterator[Emulator]:
    emulator = start(bq_venv, str(tmp_path_factory.mktemp("bqemulator")))
    try:
        yield emulator
    finally:
        emulator.stop()
