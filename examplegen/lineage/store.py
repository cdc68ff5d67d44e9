"""Choosing, checking and opening the ML Metadata (MLMD) store.

One URL selects the store (`--mlmd URL`, else env `EXAMPLEGEN_MLMD`, else KFP's
`METADATA_GRPC_SERVICE_HOST`/`_PORT`, else `sqlite:///mlmd.sqlite` in the working dir):

    sqlite:///relative/path.sqlite      sqlite:////absolute/path.sqlite
    mysql://user[:password]@host[:port]/database[?socket=/path/to/mysqld.sock]
    postgresql://user[:password]@host[:port]/database
    grpc://host:port                    (an MLMD gRPC server, as on a KFP cluster)

`open_store` probes the store before returning, so a wrong URL, password or port is a
clear LineageError before any data is read. ml-metadata's own errors are poor (a wrong
MySQL password gives an empty message, a PostgreSQL 15 database the user does not own
fails deep in CREATE TABLE), so MySQL is probed with pymysql and PostgreSQL with
psycopg2 (when installed) first. Choices made here:

- MySQL host `localhost` is connected to over TCP at 127.0.0.1 (the URL names a port, and
  the MySQL client would otherwise look for a Unix socket at a path that differs between
  distributions). For a Unix socket, say so: `mysql://root@/mlmd?socket=/run/mysqld/mysqld.sock`.
  Host and socket are never both given to ml-metadata (that aborts the process).
- A missing MySQL or PostgreSQL database is created (as KFP's own MLMD server does),
  unless the store is opened read-only (`create=False`), where it is an error.
- Passwords never appear in messages, logs or records: `StoreConfig.__str__` and
  `redact_url` print `mysql://root:***@host:3306/db`.
- A MySQL / PostgreSQL URL without a password takes it from `EXAMPLEGEN_MLMD_PASSWORD`
  when that is set (e.g. from a Kubernetes secret), else from the Secret Manager secret
  named by `EXAMPLEGEN_MLMD_PASSWORD_SECRET` (Vertex AI), so no password is in a URL.

Writes are retried with backoff on transient contention ("database is locked",
deadlocks, concurrent schema creation), so several processes can share one store.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import re
import time
import urllib.parse
from typing import Any, Callable, Mapping, Optional, TypeVar

from examplegen.errors import LineageError

ENV_URL = "EXAMPLEGEN_MLMD"
ENV_GRPC_HOST = "METADATA_GRPC_SERVICE_HOST"
ENV_GRPC_PORT = "METADATA_GRPC_SERVICE_PORT"
ENV_PASSWORD = "EXAMPLEGEN_MLMD_PASSWORD"
ENV_PASSWORD_SECRET = "EXAMPLEGEN_MLMD_PASSWORD_SECRET"  # a Secret Manager secret version's name
DEFAULT_SQLITE_PATH = "mlmd.sqlite"
DEFAULT_TIMEOUT_SEC = 10.0
MYSQL_DEFAULT_PORT = 3306
POSTGRES_DEFAULT_PORT = 5432

_SCHEMES = ("sqlite", "mysql", "postgresql", "grpc")
_SCHEME_ALIASES = {"postgres": "postgresql", "mariadb": "mysql", "mysql+pymysql": "mysql"}
_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_$]{1,64}$")
# A host name or an IPv4 address; IPv6 addresses come in brackets and urllib checks them.
_HOST_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_IPV6_HINT = "an IPv6 address goes in brackets, e.g. mysql://root@[::1]:3306/mlmd"
# scheme://user:password@ -- the password may itself hold an (unencoded) "@": up to the last one.
_URL_PASSWORD_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<pw>[^/\s]*)@")

T = TypeVar("T")
log = logging.getLogger(__name__)

# Keep ml-metadata's C++ log lines (glog, configured when its extension loads) off stderr:
# its errors reach us as exceptions, which we report, and benign retried races would
# otherwise print alarming lines. Set GLOG_minloglevel=0 to see them when debugging.
os.environ.setdefault("GLOG_minloglevel", "3")


def redact_url(text: str) -> str:
    """`text` with the password of every `scheme://user:password@` in it replaced by ***."""
    return _URL_PASSWORD_RE.sub(lambda m: f"{m.group('head')}:***@", text)


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    """Where the MLMD store is. `str()` is the URL with the password redacted."""

    scheme: str  # "sqlite" | "mysql" | "postgresql" | "grpc"
    path: Optional[str] = None  # sqlite: absolute file path
    host: Optional[str] = None
    port: Optional[int] = None
    user: Optional[str] = None
    password: Optional[str] = dataclasses.field(default=None, repr=False)
    database: Optional[str] = None
    socket: Optional[str] = None  # mysql: Unix socket path (then host is None)
    origin: str = "url"  # where the setting came from, for messages

    @classmethod
    def from_url(cls, url: str, origin: str = "url") -> "StoreConfig":
        """Parse a store URL; raise LineageError (password redacted) if it is malformed."""
        shown = redact_url(url)
        where = f"MLMD store URL {shown!r} (from {origin})"
        if "://" not in url:
            raise LineageError(
                f"{where} has no scheme: use sqlite:///path, mysql://user@host:port/db, "
                "postgresql://user@host:port/db or grpc://host:port"
            )
        scheme_raw = url.split("://", 1)[0].lower()
        scheme = _SCHEME_ALIASES.get(scheme_raw, scheme_raw)
        if scheme not in _SCHEMES:
            raise LineageError(
                f"{where}: unknown scheme {scheme_raw!r}; supported: {', '.join(_SCHEMES)}"
            )
        if scheme == "sqlite":
            return cls._sqlite(url.split("://", 1)[1], where, origin)
        parts, host, port = cls._split_network_url(scheme + "://" + url.split("://", 1)[1], where)
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        user = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        database = urllib.parse.unquote(parts.path.lstrip("/")) or None
        if scheme == "grpc":
            if query or database or user:
                raise LineageError(f"{where}: a gRPC store URL is just grpc://host:port")
            if not host or not port:
                raise LineageError(f"{where}: give both host and port, e.g. grpc://metadata-grpc-service:8080")
            return cls("grpc", host=host, port=port, origin=origin)
        allowed = {"socket"} if scheme == "mysql" else set()
        unknown = sorted(set(query) - allowed)
        if unknown:
            raise LineageError(f"{where}: unknown option(s) {', '.join(unknown)}")
        socket = query.get("socket", [None])[-1]
        if not user:
            raise LineageError(f"{where}: give the user name, e.g. {scheme}://root@127.0.0.1/mlmd")
        if not database:
            raise LineageError(f"{where}: give the database name after the host, e.g. .../mlmd")
        if scheme == "mysql" and not _DB_NAME_RE.match(database):
            raise LineageError(f"{where}: database name {database!r} may only use letters, digits, _ and $")
        if socket:
            if host not in (None, "localhost"):
                raise LineageError(
                    f"{where}: give either a host or ?socket=, not both (host {host!r})"
                )
            return cls(scheme, user=user, password=password, database=database, socket=socket, origin=origin)
        if not host:
            raise LineageError(f"{where}: give the database server host, e.g. 127.0.0.1")
        if scheme == "mysql" and host == "localhost":
            host = "127.0.0.1"  # TCP, see the module docstring
        default_port = MYSQL_DEFAULT_PORT if scheme == "mysql" else POSTGRES_DEFAULT_PORT
        return cls(scheme, host=host, port=port or default_port, user=user, password=password,
                   database=database, origin=origin)

    @staticmethod
    def _split_network_url(url: str, where: str) -> tuple[urllib.parse.SplitResult, Optional[str], Optional[int]]:
        """urlsplit with its ValueErrors (bad IPv6 brackets, ports) and odd host names as
        LineageErrors: (parts, host, port)."""
        try:
            parts = urllib.parse.urlsplit(url)
            host = parts.hostname
        except ValueError as exc:  # "Invalid IPv6 URL", "'x' does not appear to be an IPv4 or IPv6 address"
            raise LineageError(f"{where}: malformed host ({exc}); {_IPV6_HINT}") from None
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port is not None and not 1 <= port <= 65535:
            host_port = parts.netloc.rsplit("@", 1)[-1]
            hint = f"; {_IPV6_HINT}" if host_port.count(":") > 1 and "[" not in host_port else ""
            raise LineageError(f"{where}: the port is not a number in 1-65535{hint}")
        if host and ":" not in host and not _HOST_RE.match(host):
            raise LineageError(f"{where}: {host!r} is not a valid host name or IP address")
        return parts, host, port

    @classmethod
    def _sqlite(cls, rest: str, where: str, origin: str) -> "StoreConfig":
        # sqlite:///rel/path -> "rel/path"; sqlite:////abs/path -> "/abs/path"
        if not rest.startswith("/"):
            raise LineageError(f"{where}: write sqlite:///relative/path or sqlite:////absolute/path")
        path = urllib.parse.unquote(rest[1:].split("?", 1)[0])
        if not path or path.endswith("/"):
            raise LineageError(f"{where}: no database file name")
        return cls("sqlite", path=os.path.abspath(path), origin=origin)

    @classmethod
    def resolve(cls, url: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> "StoreConfig":
        """The store to use: `url`, else $EXAMPLEGEN_MLMD, else KFP's gRPC env, else ./mlmd.sqlite.

        A database URL without a password gets one from the environment (with_password_from).
        """
        env = os.environ if environ is None else environ
        if url:
            return cls.from_url(url, origin="--mlmd").with_password_from(env)
        if env.get(ENV_URL):
            return cls.from_url(env[ENV_URL], origin=f"${ENV_URL}").with_password_from(env)
        host, port = env.get(ENV_GRPC_HOST), env.get(ENV_GRPC_PORT)
        if host:
            if not port or not port.isdigit():
                raise LineageError(
                    f"${ENV_GRPC_HOST} is {host!r} but ${ENV_GRPC_PORT} is {port!r}: "
                    "set it to the MLMD gRPC port (KFP uses 8080)"
                )
            return cls.from_url(f"grpc://{host}:{port}", origin=f"${ENV_GRPC_HOST}/${ENV_GRPC_PORT}")
        return cls("sqlite", path=os.path.abspath(DEFAULT_SQLITE_PATH), origin="default")

    def with_password_from(self, environ: Mapping[str, str]) -> "StoreConfig":
        """This config with the password from the environment, if it has none:
        $EXAMPLEGEN_MLMD_PASSWORD, else the Secret Manager secret named by
        $EXAMPLEGEN_MLMD_PASSWORD_SECRET (Vertex AI)."""
        if self.scheme not in ("mysql", "postgresql") or self.password is not None:
            return self
        if environ.get(ENV_PASSWORD):
            return dataclasses.replace(self, password=environ[ENV_PASSWORD])
        if environ.get(ENV_PASSWORD_SECRET):
            from examplegen import secret_manager

            password = secret_manager.access(environ[ENV_PASSWORD_SECRET], f"${ENV_PASSWORD_SECRET}", environ)
            return dataclasses.replace(self, password=password)
        return self

    def url(self) -> str:
        """The URL with the password redacted (safe to print or record)."""
        if self.scheme == "sqlite":
            return "sqlite:///" + self.path
        if self.scheme == "grpc":
            return f"grpc://{self._netloc_host}:{self.port}"
        auth = urllib.parse.quote(self.user or "", safe="") + (":***" if self.password else "")
        if self.socket:
            return f"{self.scheme}://{auth}@/{self.database}?socket={self.socket}"
        return f"{self.scheme}://{auth}@{self._netloc_host}:{self.port}/{self.database}"

    @property
    def _netloc_host(self) -> Optional[str]:
        return f"[{self.host}]" if self.host and ":" in self.host else self.host

    def __str__(self) -> str:
        return self.url()

    def connection_config(self, *, create: bool = True, timeout: float = DEFAULT_TIMEOUT_SEC) -> Any:
        """The ml-metadata proto: ConnectionConfig, or MetadataStoreClientConfig for gRPC."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        if self.scheme == "grpc":
            cfg = pb.MetadataStoreClientConfig(host=self.host, port=self.port)
            cfg.client_timeout_sec = max(timeout, 30.0)
            return cfg
        cfg = pb.ConnectionConfig()
        # ml-metadata retries Aborted itself with ~2 s average waits; we retry faster (see _retry).
        cfg.retry_options.max_num_retries = 1
        if self.scheme == "sqlite":
            cfg.sqlite.filename_uri = self.path
            mode = pb.SqliteMetadataSourceConfig
            cfg.sqlite.connection_mode = mode.READWRITE_OPENCREATE if create else mode.READWRITE
        elif self.scheme == "mysql":
            if self.socket:
                cfg.mysql.socket = self.socket
            else:
                cfg.mysql.host, cfg.mysql.port = self.host, self.port
            cfg.mysql.user = self.user
            if self.password:
                cfg.mysql.password = self.password
            cfg.mysql.database = self.database
            cfg.mysql.skip_db_creation = not create
        else:
            cfg.postgresql.host = self.host
            cfg.postgresql.port = str(self.port)
            cfg.postgresql.user = self.user
            if self.password:
                cfg.postgresql.password = self.password
            cfg.postgresql.dbname = self.database
            cfg.postgresql.skip_db_creation = not create
        return cfg


# --------------------------------------------------------------------------- retries

_TRANSIENT_MARKERS = (
    "database is locked",
    "database table is locked",
    "sqlite_busy",
    "deadlock",
    "lock wait timeout",
    "try restarting transaction",
    "please retry",
    "concurrent connection",
    "table definition has changed",
    "could not serialize access",
    # ml-metadata's own SQLite retry loop giving up under contention (seen on a loaded
    # 2-core machine when two processes create the schema of a new SQLite file at once)
    "concurrent writes aborted",
)


# Two processes creating the schema of an empty PostgreSQL database at once collide in
# its catalog; the loser succeeds on a retry.
_SCHEMA_RACE_MARKERS = ("duplicate key value violates unique constraint", "already exists")
_DUPLICATE_MARKERS = ("duplicate key value violates unique constraint", "duplicate entry",
                      "unique constraint failed")


def is_duplicate(exc: BaseException) -> bool:
    """True if a write lost a race to insert the same unique row (type, context, artifact).

    ml-metadata reports that as AlreadyExists on SQLite and MySQL but as Internal on PostgreSQL.
    """
    from ml_metadata import errors as mlmd_errors

    if isinstance(exc, mlmd_errors.AlreadyExistsError):
        return True
    return isinstance(exc, mlmd_errors.InternalError) and any(
        marker in str(exc).lower() for marker in _DUPLICATE_MARKERS)


def is_transient(exc: BaseException, extra_markers: tuple[str, ...] = ()) -> bool:
    """True for store errors that a retry of the whole call can cure (locks, deadlocks)."""
    from ml_metadata import errors as mlmd_errors

    if isinstance(exc, mlmd_errors.AlreadyExistsError):
        return False
    if isinstance(exc, mlmd_errors.AbortedError):
        return True
    return any(marker in str(exc).lower() for marker in _TRANSIENT_MARKERS + extra_markers)


def retry(fn: Callable[[], T], *, what: str, deadline_sec: float = 60.0,
          extra_markers: tuple[str, ...] = ()) -> T:
    """Call `fn` until it succeeds, retrying transient store errors with jittered backoff."""
    delay, start = 0.02, time.monotonic()
    while True:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - filtered by is_transient
            if not is_transient(exc, extra_markers) or time.monotonic() - start > deadline_sec:
                raise
            log.debug("retrying %s after a transient store error: %s", what, redact_url(str(exc))[:300])
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 1.0)


# --------------------------------------------------------------------------- probes


def _probe_sqlite(cfg: StoreConfig, create: bool) -> None:
    path = cfg.path
    parent = os.path.dirname(path)
    if os.path.isdir(path):
        raise LineageError(f"MLMD store {cfg} (from {cfg.origin}): {path} is a directory, not a SQLite file")
    if not os.path.exists(path):
        if not create:
            raise LineageError(
                f"no MLMD store at {path} (from {cfg.origin}): nothing has been recorded there yet"
            )
        if not os.path.isdir(parent):
            raise LineageError(
                f"MLMD store {cfg} (from {cfg.origin}): directory {parent} does not exist"
            )
        if not os.access(parent, os.W_OK):
            raise LineageError(f"MLMD store {cfg}: directory {parent} is not writable")
        return
    with open(path, "rb") as f:
        header = f.read(16)
    if header and header != b"SQLite format 3\x00":
        raise LineageError(f"MLMD store {cfg} (from {cfg.origin}): {path} is not a SQLite database")
    if create and not os.access(path, os.W_OK):
        raise LineageError(f"MLMD store {cfg}: {path} is not writable")


def _probe_mysql(cfg: StoreConfig, create: bool, timeout: float) -> None:
    import pymysql

    where = f"MySQL at {cfg.socket or f'{cfg.host}:{cfg.port}'} (store {cfg}, from {cfg.origin})"
    kwargs: dict[str, Any] = dict(user=cfg.user, password=cfg.password or "", connect_timeout=max(1, int(timeout)))
    if cfg.socket:
        kwargs["unix_socket"] = cfg.socket
    else:
        kwargs.update(host=cfg.host, port=cfg.port)
    try:
        conn = pymysql.connect(**kwargs)
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        if code == 1045:
            raise LineageError(
                f"{where}: access denied for user {cfg.user!r} "
                f"({'wrong password' if cfg.password else 'no password given'}, or the user may "
                "not connect from this host)"
            ) from None
        if code in (2003, 2002, 2013):
            raise LineageError(f"{where}: cannot connect (server not running or port/socket wrong)") from None
        if code == 2005:
            raise LineageError(f"{where}: unknown host {cfg.host!r}") from None
        raise LineageError(f"{where}: {redact_url(str(exc.args[-1] if exc.args else exc))}") from None
    except OSError as exc:
        raise LineageError(f"{where}: cannot connect ({exc.strerror or exc})") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (cfg.database,))
            if cur.fetchone() is None:
                if not create:
                    raise LineageError(f"{where}: database {cfg.database!r} does not exist (nothing recorded yet?)")
                try:
                    cur.execute(f"CREATE DATABASE IF NOT EXISTS `{cfg.database}`")
                except pymysql.err.MySQLError as exc:
                    raise LineageError(
                        f"{where}: database {cfg.database!r} does not exist and user {cfg.user!r} "
                        f"may not create it ({exc.args[-1]}): create it or grant CREATE"
                    ) from None
            try:
                cur.execute(f"USE `{cfg.database}`")
            except pymysql.err.MySQLError as exc:
                raise LineageError(
                    f"{where}: user {cfg.user!r} may not use database {cfg.database!r} ({exc.args[-1]})"
                ) from None
    finally:
        conn.close()


def _probe_postgresql(cfg: StoreConfig, create: bool, timeout: float) -> None:
    try:
        import psycopg2
    except ImportError:  # ml-metadata's own (poorer) errors are translated in open_store
        return
    where = f"PostgreSQL at {cfg.host}:{cfg.port} (store {cfg}, from {cfg.origin})"
    kwargs = dict(host=cfg.host, port=cfg.port, user=cfg.user, password=cfg.password or "",
                  connect_timeout=max(1, int(timeout)))

    def connect(dbname: str):
        try:
            return psycopg2.connect(dbname=dbname, **kwargs)
        except psycopg2.OperationalError as exc:
            return exc

    conn = connect(cfg.database)
    if isinstance(conn, Exception):
        message = redact_url(str(conn).strip().splitlines()[-1] if str(conn).strip() else repr(conn))
        if "does not exist" not in message or "database" not in message:
            raise LineageError(f"{where}: cannot connect as user {cfg.user!r}: {message}")
        if not create:
            raise LineageError(f"{where}: database {cfg.database!r} does not exist (nothing recorded yet?)")
        admin = connect("postgres")
        if isinstance(admin, Exception):
            raise LineageError(f"{where}: database {cfg.database!r} does not exist: {message}")
        try:
            with admin.cursor() as cur:
                cur.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
                row = cur.fetchone()
        finally:
            admin.close()
        if not (row and row[0]):
            raise LineageError(
                f"{where}: database {cfg.database!r} does not exist and user {cfg.user!r} may not "
                f"create databases: run CREATE DATABASE {cfg.database} OWNER {cfg.user}"
            )
        return  # ml-metadata creates it, owned by the user
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT has_schema_privilege(current_user, 'public', 'CREATE')")
            can_create = cur.fetchone()[0]
            cur.execute("SELECT to_regclass('public.type') IS NOT NULL")
            has_schema = cur.fetchone()[0]
    finally:
        conn.close()
    if create and not can_create:
        raise LineageError(
            f"{where}: user {cfg.user!r} may not create tables in schema public of database "
            f"{cfg.database!r} (PostgreSQL 15+ grants that only to the database owner): run "
            f"ALTER DATABASE {cfg.database} OWNER TO {cfg.user}; or GRANT CREATE ON SCHEMA public "
            f"TO {cfg.user}; in that database"
        )
    if not create and not has_schema:
        raise LineageError(f"{where}: database {cfg.database!r} holds no MLMD tables (nothing recorded yet?)")


def _probe_grpc(cfg: StoreConfig, timeout: float) -> None:
    import grpc

    channel = grpc.insecure_channel(f"{cfg.host}:{cfg.port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise LineageError(
            f"no MLMD gRPC server answered at {cfg.host}:{cfg.port} within {timeout:g} s "
            f"(store {cfg}, from {cfg.origin})"
        ) from None
    finally:
        channel.close()


def _translate_open_error(cfg: StoreConfig, exc: BaseException) -> LineageError:
    text = redact_url(str(exc).strip())
    if cfg.password:
        text = text.replace(cfg.password, "***")
    if cfg.scheme == "postgresql" and "connection pointer is null" in text.lower():
        text = ("cannot connect (server down, unknown user or wrong password; install "
                "psycopg2-binary for a precise reason)")
    elif cfg.scheme == "postgresql" and "permission denied for schema public" in text:
        text = (f"user {cfg.user!r} may not create tables in schema public of database "
                f"{cfg.database!r} (PostgreSQL 15+ grants that only to the database owner): run "
                f"ALTER DATABASE {cfg.database} OWNER TO {cfg.user}")
    elif cfg.scheme == "mysql" and "mysql_real_connect failed" in text:
        text = "cannot connect (server down, wrong port, or access denied)"
    return LineageError(f"cannot open MLMD store {cfg} (from {cfg.origin}): {text or type(exc).__name__}")


# --------------------------------------------------------------------------- store


def _import_mlmd():
    from ml_metadata.metadata_store import metadata_store

    return metadata_store


class LineageStore:
    """An open MLMD store: the raw `mlmd` MetadataStore plus race-safe helpers."""

    def __init__(self, mlmd: Any, config: StoreConfig):
        if config.scheme == "postgresql":
            from examplegen.lineage.postgres_text import PostgresTextStore

            mlmd = PostgresTextStore(mlmd)  # strings with backslashes; see that module
        self.mlmd = mlmd
        self.config = config
        self._type_ids: dict[tuple[str, str], int] = {}
        self.mirror: Optional[str] = None

    def mirror_to(self, path: str) -> None:
        """Write this (local SQLite) store back to `path` on every sync() and at exit."""
        import atexit

        self.mirror = path
        atexit.register(self.sync)

    def sync(self) -> None:
        """Copy a mirrored SQLite store back to where it belongs (no-op otherwise)."""
        if self.mirror is None:
            return
        import shutil

        tmp = f"{self.mirror}.tmp-{os.getpid()}"
        shutil.copyfile(self.config.path, tmp)
        os.replace(tmp, self.mirror)

    def __repr__(self) -> str:
        return f"LineageStore({self.config})"

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """`self.mlmd.<method>(...)`, retried on transient contention."""
        fn = getattr(self.mlmd, method)
        return retry(lambda: fn(*args, **kwargs), what=method)

    def type_id(self, kind: str, name: str) -> int:
        """Id of the schemaless artifact/execution/context type `name`, registered if new."""
        key = (kind, name)
        if key not in self._type_ids:
            from ml_metadata import errors as mlmd_errors
            from ml_metadata.proto import metadata_store_pb2 as pb

            proto = {"artifact": pb.ArtifactType, "execution": pb.ExecutionType, "context": pb.ContextType}[kind]
            put = getattr(self.mlmd, f"put_{kind}_type")
            get = getattr(self.mlmd, f"get_{kind}_type")

            def get_or_put() -> int:
                try:
                    return get(name).id
                except mlmd_errors.NotFoundError:
                    pass
                # MLMD's Type table has no unique index on the name (MySQL, PostgreSQL), so two
                # processes registering a new type at once would make two. Its external_id is
                # unique: the loser of that race fails and reads the winner's type.
                try:
                    return put(proto(name=name, external_id=f"examplegen.{kind}_type:{name}"))
                except mlmd_errors.StatusError as exc:
                    if not is_duplicate(exc):
                        raise
                    return get(name).id

            self._type_ids[key] = retry(get_or_put, what=f"register {kind} type {name}")
        return self._type_ids[key]

    def context(self, type_name: str, name: str, custom_properties: Optional[Mapping[str, Any]] = None) -> Any:
        """The context of that type and name, created (race-safe) if missing."""
        from ml_metadata import errors as mlmd_errors
        from ml_metadata.proto import metadata_store_pb2 as pb

        from examplegen.lineage.schema import set_value

        type_id = self.type_id("context", type_name)

        def get_or_put():
            found = self.mlmd.get_context_by_type_and_name(type_name, name)
            if found is not None:
                return found
            ctx = pb.Context(type_id=type_id, name=name)
            for key, value in (custom_properties or {}).items():
                set_value(ctx.custom_properties[key], value)
            try:
                [ctx.id] = self.mlmd.put_contexts([ctx])
            except mlmd_errors.StatusError as exc:
                if not is_duplicate(exc):
                    raise
                return self.mlmd.get_context_by_type_and_name(type_name, name)
            return self.mlmd.get_contexts_by_id([ctx.id])[0]

        return retry(get_or_put, what=f"context {type_name}/{name}")

    def link_parent(self, child_id: int, parent_id: int) -> None:
        """Make context `parent_id` the parent of `child_id` (idempotent)."""
        from ml_metadata import errors as mlmd_errors
        from ml_metadata.proto import metadata_store_pb2 as pb

        def put():
            parents = self.mlmd.get_parent_contexts_by_context(child_id)
            if any(p.id == parent_id for p in parents):
                return
            try:
                self.mlmd.put_parent_contexts([pb.ParentContext(child_id=child_id, parent_id=parent_id)])
            except mlmd_errors.StatusError as exc:
                if not is_duplicate(exc):
                    raise

        retry(put, what="link run context to pipeline context")


def open_store(
    url: Optional[str] = None,
    *,
    create: bool = True,
    timeout: float = DEFAULT_TIMEOUT_SEC,
    environ: Optional[Mapping[str, str]] = None,
) -> LineageStore:
    """Open (and probe) the MLMD store chosen by `url` / the environment; see module doc.

    `create=False` opens for reading: a store that does not exist yet is an error rather
    than being created. Raises LineageError with a clear, password-free message.
    """
    cfg = url if isinstance(url, StoreConfig) else StoreConfig.resolve(url, environ)
    if cfg.scheme == "sqlite":
        _probe_sqlite(cfg, create)
    elif cfg.scheme == "mysql":
        _probe_mysql(cfg, create, timeout)
    elif cfg.scheme == "postgresql":
        _probe_postgresql(cfg, create, timeout)
    else:
        _probe_grpc(cfg, timeout)
    mirror = None
    if cfg.scheme == "sqlite" and cfg.path.startswith(FUSE_MOUNT_PREFIXES):
        # SQLite cannot lock files on Cloud Storage FUSE ("disk I/O error"): work on a
        # local copy and write it back (LineageStore.sync) after each recorded run.
        cfg, mirror = _local_working_copy(cfg)
    metadata_store = _import_mlmd()
    connection = cfg.connection_config(create=create, timeout=timeout)

    def connect():
        mlmd = _quiet_construct(metadata_store.MetadataStore, connection)
        mlmd.get_context_types()  # a real round trip: schema present and readable
        return mlmd

    try:
        # Concurrent first use of an empty database races on schema creation ("please retry").
        mlmd = retry(connect, what="open MLMD store", deadline_sec=30.0, extra_markers=_SCHEMA_RACE_MARKERS)
    except LineageError:
        raise
    except Exception as exc:  # noqa: BLE001 - ml-metadata raises RuntimeError and others
        raise _translate_open_error(cfg, exc) from None
    store = LineageStore(mlmd, cfg)
    if mirror is not None:
        store.mirror_to(mirror)
    return store


# Where Cloud Storage is mounted with FUSE: Vertex AI Pipelines (and KFP's GCS FUSE CSI
# volumes by convention) put gs://bucket/path at /gcs/bucket/path.
FUSE_MOUNT_PREFIXES = ("/gcs/",)


def _local_working_copy(cfg: StoreConfig) -> tuple[StoreConfig, str]:
    """A StoreConfig for a local copy of the SQLite file at cfg.path (copied if it exists)."""
    import shutil
    import tempfile

    local = os.path.join(tempfile.mkdtemp(prefix="examplegen-mlmd-"), os.path.basename(cfg.path))
    if os.path.exists(cfg.path):
        shutil.copyfile(cfg.path, local)
    return dataclasses.replace(cfg, path=local), cfg.path


def _quiet_construct(factory: Callable[[Any], T], connection: Any) -> T:
    """Construct with absl DEBUG logging off: ml-metadata logs the config (password) there."""
    from absl import logging as absl_logging

    verbosity = absl_logging.get_verbosity()
    if verbosity >= absl_logging.DEBUG:
        absl_logging.set_verbosity(absl_logging.INFO)
    try:
        return factory(connection)
    finally:
        if verbosity >= absl_logging.DEBUG:
            absl_logging.set_verbosity(verbosity)
