"""Choosing and opening the MLMD store: URL forms, environment, clear errors, no leaked passwords."""

from __future__ import annotations

import logging
import os
import socket
import uuid

import pytest

from examplegen.errors import LineageError
from examplegen.lineage import Recorder, StoreConfig, open_store, redact_url
from tests.lineage_fixtures import MYSQL, POSTGRES, mysql_url, postgres_url, sqlite_url  # noqa: F401

SECRET = "s3cr3t-Pa55"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("url, expected", [
    ("sqlite:///rel/m.sqlite", dict(scheme="sqlite", path=os.path.abspath("rel/m.sqlite"))),
    ("sqlite:////abs/m.sqlite", dict(scheme="sqlite", path="/abs/m.sqlite")),
    ("mysql://root@127.0.0.1/mlmd", dict(scheme="mysql", host="127.0.0.1", port=3306, user="root",
                                          password=None, database="mlmd")),
    ("mysql://u:p%40ss@db.example:3307/m", dict(host="db.example", port=3307, user="u", password="p@ss")),
    ("mysql://root@localhost:3306/mlmd", dict(host="127.0.0.1", socket=None)),  # TCP, not a socket
    ("mysql://root@/mlmd?socket=/run/mysqld/mysqld.sock",
     dict(host=None, port=None, socket="/run/mysqld/mysqld.sock")),
    ("mariadb://root@h/x", dict(scheme="mysql", host="h")),
    ("postgresql://pg:pw@10.1.2.3/mlmd", dict(scheme="postgresql", host="10.1.2.3", port=5432,
                                              user="pg", password="pw", database="mlmd")),
    ("postgres://pg@h:6543/m", dict(scheme="postgresql", port=6543)),
    ("grpc://metadata-grpc-service.kubeflow:8080", dict(scheme="grpc", host="metadata-grpc-service.kubeflow",
                                                         port=8080)),
    ("mysql://root@[::1]:3307/m", dict(host="::1", port=3307)),  # IPv6 in brackets
    ("grpc://[fd00::5]:8080", dict(host="fd00::5", port=8080)),
])
def test_url_forms(url, expected):
    cfg = StoreConfig.from_url(url)
    for key, value in expected.items():
        assert getattr(cfg, key) == value, key


@pytest.mark.parametrize("url, message", [
    ("/tmp/m.sqlite", "no scheme"),
    ("redis://h:1/x", "unknown scheme 'redis'"),
    ("sqlite://m.sqlite", "sqlite:///relative"),
    ("sqlite:///", "no database file name"),
    ("mysql://127.0.0.1/mlmd", "user name"),
    ("mysql://root@127.0.0.1", "database name"),
    ("mysql://root@127.0.0.1:99999/m", "port"),
    ("mysql://root@127.0.0.1/bad-name", "may only use"),
    ("mysql://root@db/m?socket=/s.sock", "either a host or ?socket="),
    ("mysql://root@h/m?ssl=1", "unknown option(s) ssl"),
    ("grpc://host", "give both host and port"),
    # malformed hosts and ports (urllib's ValueErrors were tracebacks, port 0 meant the default)
    ("mysql://root@[::1:3306/db", "malformed host (Invalid IPv6 URL); an IPv6 address goes in brackets"),
    ("mysql://root@[nohost]/db", "malformed host"),
    ("postgresql://u@[::1/db", "malformed host"),
    ("grpc://[::1:8080", "malformed host"),
    ("mysql://root@::1:3306/db", "an IPv6 address goes in brackets, e.g. mysql://root@[::1]:3306/mlmd"),
    ("mysql://root@h:0/db", "the port is not a number in 1-65535"),
    ("mysql://root@h:3306x/db", "the port is not a number in 1-65535"),
    ("postgresql://u@h:-5/db", "the port is not a number in 1-65535"),
    ("grpc://h:65536", "the port is not a number in 1-65535"),
    ("mysql://root@my host/db", "'my host' is not a valid host name or IP address"),
])
def test_malformed_urls_are_clear_errors(url, message):
    with pytest.raises(LineageError, match=None) as err:
        StoreConfig.from_url(url)
    assert message in str(err.value)


def test_ipv6_hosts_are_printed_in_brackets():
    assert str(StoreConfig.from_url("mysql://root@[::1]:3307/m")) == "mysql://root@[::1]:3307/m"
    assert str(StoreConfig.from_url("grpc://[fd00::5]:8080")) == "grpc://[fd00::5]:8080"


def test_password_is_redacted_everywhere():
    url = f"mysql://etl:{SECRET}@db:3306/mlmd"
    cfg = StoreConfig.from_url(url)
    assert str(cfg) == "mysql://etl:***@db:3306/mlmd"
    assert SECRET not in repr(cfg) and SECRET not in cfg.url()
    assert redact_url(f"failed on {url} and postgresql://u:{SECRET}@h/x") == (
        "failed on mysql://etl:***@db:3306/mlmd and postgresql://u:***@h/x")
    assert cfg.connection_config().mysql.password == SECRET  # only the proto handed to MLMD has it
    odd = StoreConfig.from_url("mysql://etl:p@ss:w0rd@db/mlmd")  # an unencoded "@" in the password
    assert (odd.password, odd.host) == ("p@ss:w0rd", "db")
    assert redact_url("mysql://etl:p@ss:w0rd@db/mlmd") == "mysql://etl:***@db/mlmd"
    with pytest.raises(LineageError) as err:
        StoreConfig.from_url(f"mysql://etl:{SECRET}@db:3306")
    assert SECRET not in str(err.value) and "etl:***@" in str(err.value)


def test_store_selection_order():
    env = {"EXAMPLEGEN_MLMD": "sqlite:////env/m.sqlite",
           "METADATA_GRPC_SERVICE_HOST": "metadata-grpc-service", "METADATA_GRPC_SERVICE_PORT": "8080"}
    assert StoreConfig.resolve("sqlite:////flag.sqlite", env).path == "/flag.sqlite"
    assert StoreConfig.resolve(None, env).path == "/env/m.sqlite"
    del env["EXAMPLEGEN_MLMD"]
    grpc = StoreConfig.resolve(None, env)
    assert (grpc.scheme, grpc.host, grpc.port) == ("grpc", "metadata-grpc-service", 8080)
    default = StoreConfig.resolve(None, {})
    assert (default.scheme, default.path) == ("sqlite", os.path.abspath("mlmd.sqlite"))


def test_grpc_config_from_kfp_environment(monkeypatch):
    """The configuration path only: no MLMD gRPC server runs here."""
    monkeypatch.delenv("EXAMPLEGEN_MLMD", raising=False)
    monkeypatch.setenv("METADATA_GRPC_SERVICE_HOST", "metadata-grpc-service.kubeflow")
    monkeypatch.setenv("METADATA_GRPC_SERVICE_PORT", "8080")
    cfg = StoreConfig.resolve()
    proto = cfg.connection_config()
    assert type(proto).__name__ == "MetadataStoreClientConfig"
    assert (proto.host, proto.port) == ("metadata-grpc-service.kubeflow", 8080)
    assert str(cfg) == "grpc://metadata-grpc-service.kubeflow:8080"
    assert cfg.origin == "$METADATA_GRPC_SERVICE_HOST/$METADATA_GRPC_SERVICE_PORT"
    monkeypatch.setenv("METADATA_GRPC_SERVICE_PORT", "")
    with pytest.raises(LineageError, match="METADATA_GRPC_SERVICE_PORT"):
        StoreConfig.resolve()


def test_mysql_config_never_sets_both_host_and_socket():
    tcp = StoreConfig.from_url("mysql://root@localhost:3306/m").connection_config().mysql
    assert (tcp.host, tcp.port, tcp.socket) == ("127.0.0.1", 3306, "")
    sock = StoreConfig.from_url("mysql://root@localhost/m?socket=/x.sock").connection_config().mysql
    assert (sock.host, sock.socket) == ("", "/x.sock")


# --------------------------------------------------------------------------- opening real stores


def test_sqlite_file_is_created_on_first_use(tmp_path):
    path = tmp_path / "new.sqlite"
    store = open_store(f"sqlite:///{path}")
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    assert store.mlmd.get_artifact_types() == []


def test_default_store_is_mlmd_sqlite_in_working_directory(tmp_path, monkeypatch):
    for name in ("EXAMPLEGEN_MLMD", "METADATA_GRPC_SERVICE_HOST", "METADATA_GRPC_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    store = open_store()
    assert store.config.path == str(tmp_path / "mlmd.sqlite") and (tmp_path / "mlmd.sqlite").exists()


def test_env_variable_selects_store(tmp_path, monkeypatch):
    monkeypatch.setenv("EXAMPLEGEN_MLMD", f"sqlite:///{tmp_path / 'env.sqlite'}")
    assert open_store().config.path == str(tmp_path / "env.sqlite")


def test_sqlite_errors(tmp_path):
    with pytest.raises(LineageError, match="directory .*missing-dir does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing-dir' / 'm.sqlite'}")
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello, this is not a database at all")
    with pytest.raises(LineageError, match="is not a SQLite database"):
        open_store(f"sqlite:///{not_db}")
    with pytest.raises(LineageError, match="no MLMD store at .*absent.sqlite"):
        open_store(f"sqlite:///{tmp_path / 'absent.sqlite'}", create=False)
    assert not (tmp_path / "absent.sqlite").exists()  # reading never creates a store
    with pytest.raises(LineageError, match="is a directory"):
        open_store(f"sqlite:///{tmp_path}")


def test_mysql_wrong_password_is_clear_and_not_leaked(mysql_url, caplog, capfd):
    url = mysql_url.replace("root@", f"root:{SECRET}@")
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(LineageError) as err:
            open_store(url)
    message = str(err.value)
    assert "access denied for user 'root'" in message and "wrong password" in message
    assert "root:***@127.0.0.1:3306" in message
    out, errout = capfd.readouterr()
    assert SECRET not in message + caplog.text + out + errout


def test_mysql_unreachable_port_is_clear(mysql_url):
    port = _free_port()
    with pytest.raises(LineageError, match=rf"MySQL at 127.0.0.1:{port} .*cannot connect"):
        open_store(mysql_url.replace(":3306/", f":{port}/"), timeout=2)


def test_mysql_missing_database_is_created_like_kfp_does(mysql_url):
    import pymysql

    name = "eg_test_new_" + uuid.uuid4().hex[:8]
    url = mysql_url.rsplit("/", 1)[0] + "/" + name
    with pytest.raises(LineageError, match=f"database '{name}' does not exist"):
        open_store(url, create=False)
    try:
        store = open_store(url)
        Recorder(store).start()
        conn = pymysql.connect(**MYSQL, database=name)
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM Execution")
            assert cur.fetchone() == (1,)
        conn.close()
    finally:
        conn = pymysql.connect(**MYSQL, autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def test_mysql_localhost_and_unix_socket(mysql_url):
    import pymysql

    conn = pymysql.connect(**MYSQL)
    with conn.cursor() as cur:
        cur.execute("SELECT @@socket")
        [socket_path] = cur.fetchone()
    conn.close()
    database = mysql_url.rsplit("/", 1)[1]
    Recorder(open_store(f"mysql://root@localhost:3306/{database}")).start()
    via_socket = open_store(f"mysql://root@/{database}?socket={socket_path}")
    assert len(via_socket.mlmd.get_executions()) == 1  # the same database, reached both ways


def test_postgresql_store_works(postgres_url):
    store = open_store(postgres_url)
    rec = Recorder(store)
    rec.start()
    rec.complete()
    assert [e.id for e in open_store(postgres_url, create=False).mlmd.get_executions()] == [rec.execution_id]


def test_postgresql_database_not_owned_by_user_is_explained():
    """PostgreSQL 15 lets only the owner create tables in schema public."""
    import psycopg2

    suffix = uuid.uuid4().hex[:8]
    role, database = f"eg_role_{suffix}", f"eg_test_{suffix}"
    admin = psycopg2.connect(dbname="postgres", **POSTGRES)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN")
        cur.execute(f'CREATE DATABASE "{database}"')  # owned by postgres
    try:
        with pytest.raises(LineageError) as err:
            open_store(f"postgresql://{role}@127.0.0.1:5432/{database}")
        assert f"may not create tables in schema public of database '{database}'" in str(err.value)
        assert f"ALTER DATABASE {database} OWNER TO {role}" in str(err.value)
        with pytest.raises(LineageError, match="may not create databases"):
            open_store(f"postgresql://{role}@127.0.0.1:5432/{database}_absent")
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            cur.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def test_postgresql_unreachable_port_is_clear():
    port = _free_port()
    with pytest.raises(LineageError, match=rf"PostgreSQL at 127.0.0.1:{port} .*cannot connect"):
        open_store(f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/x", timeout=2)


def test_grpc_server_not_answering_is_clear():
    port = _free_port()
    with pytest.raises(LineageError, match=rf"no MLMD gRPC server answered at 127.0.0.1:{port} within 0.5 s"):
        open_store(f"grpc://127.0.0.1:{port}", timeout=0.5)


def test_postgresql_errors_without_psycopg2_are_still_clear(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "psycopg2", None)  # as if psycopg2-binary were not installed
    port = _free_port()
    with pytest.raises(LineageError) as err:
        open_store(f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/x", timeout=2)
    assert "cannot connect" in str(err.value) and "postgres:***@127.0.0.1" in str(err.value)
    assert SECRET not in str(err.value)


def test_transient_store_errors_are_retried_and_others_are_not():
    from ml_metadata import errors as mlmd_errors

    from examplegen.lineage.store import is_duplicate, retry

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise mlmd_errors.InternalError("Error when executing query: database is locked")
        return "done"

    assert retry(flaky, what="test") == "done" and len(calls) == 3
    def invalid():
        calls.append(1)
        raise mlmd_errors.InvalidArgumentError("bad filter")

    with pytest.raises(mlmd_errors.InvalidArgumentError):
        retry(invalid, what="test")
    assert len(calls) == 4  # not retried
    assert is_duplicate(mlmd_errors.InternalError(
        'ERROR: duplicate key value violates unique constraint "type_external_id_key"'))
    assert not is_duplicate(mlmd_errors.InternalError("disk I/O error"))


def test_sqlite_on_a_cloud_storage_fuse_mount_is_worked_on_locally_and_written_back(tmp_path, monkeypatch):
    """SQLite cannot lock files on Cloud Storage FUSE (Vertex AI's /gcs/): the store is a
    local copy, written back after each recorded run, and the next run starts from it."""
    from examplegen.ingest import ingest
    from examplegen.lineage import store as store_module

    mount = tmp_path / "gcs"
    (mount / "bucket" / "root").mkdir(parents=True)
    monkeypatch.setattr(store_module, "FUSE_MOUNT_PREFIXES", (str(mount) + "/",))
    url = f"sqlite:///{mount}/bucket/root/mlmd.sqlite"
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("a,b\n1,x\n2,y\n")
    opened = open_store(url)
    assert opened.config.path != str(mount / "bucket" / "root" / "mlmd.sqlite")  # a local copy
    assert not opened.config.path.startswith(str(mount))
    first = ingest(str(data), str(tmp_path / "out"), mlmd=url)
    assert (mount / "bucket" / "root" / "mlmd.sqlite").exists()
    second = ingest(str(data), str(tmp_path / "out"), mlmd=url)  # reads the written-back store
    assert second.cached and not first.cached
    mlmd = open_store(url).mlmd
    assert len(mlmd.get_executions()) == 2
