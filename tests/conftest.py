import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _private_lineage_store(tmp_path, monkeypatch):
    """Every test records lineage in its own SQLite file unless it chooses a store."""
    monkeypatch.setenv("EXAMPLEGEN_MLMD", f"sqlite:///{tmp_path}/mlmd.sqlite")
    monkeypatch.delenv("METADATA_GRPC_SERVICE_HOST", raising=False)
    monkeypatch.delenv("METADATA_GRPC_SERVICE_PORT", raising=False)
