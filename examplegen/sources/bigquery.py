"""BigQuery source: a query run into a temporary table, read with the Storage Read API.

``--format bigquery --connection bigquery://PROJECT`` (the project the queries run and
are billed in; ``bigquery://`` takes Application Default Credentials' project). Each
input split's pattern is a GoogleSQL query (examplegen.sources.query: span placeholders,
result digest). Credentials are Application Default Credentials (``gcloud auth
application-default login``, a service account key named by
``$GOOGLE_APPLICATION_CREDENTIALS``, or the workload's identity); nothing secret is
ever in the URL or the options.

Per query, the launcher runs ``CREATE TABLE `PROJECT.DATASET.examplegen_<id>`
OPTIONS(expiration_timestamp = now + 1 day) AS <query>`` (an explicit destination
table; the dataset is created in ``location`` when missing), opens one Storage Read
session on it in Arrow format and makes one work unit per stream; workers read their
stream. The table is deleted when the split is done, converted or failed (the expiration
is the safety net for a killed process).

Options: ``dataset`` (the temporary tables' dataset, default ``examplegen_tmp``),
``location`` (e.g. ``EU``; default: the dataset's or BigQuery's), ``max_streams``
(default: one per CPU core), ``digest``, ``schema``, and for emulators ``api_endpoint``
(REST, e.g. ``http://127.0.0.1:9050``), ``read_endpoint`` (``host:port`` of the Storage
Read API over an insecure gRPC channel) and ``anonymous`` (no credentials).

Types as the Storage Read API delivers them: INT64 int64, FLOAT64 double, NUMERIC
decimal128(38, 9), BIGNUMERIC decimal256(76, 38), BOOL, STRING, BYTES, DATE date32,
DATETIME naive timestamp[us], TIMESTAMP timestamp[us, UTC], TIME time64[us], JSON and
GEOGRAPHY text (bqemulator: GEOGRAPHY as WKB bytes), ARRAY list, STRUCT struct; then the shared converter (examplegen.typemap).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import urllib.parse
import uuid
from typing import Iterator, Optional, Sequence

import pyarrow as pa

from examplegen.errors import ConfigError, SourceError
from examplegen.sources.base import Plan, check_schema_columns, options_dict, options_from_dict, with_schema
from examplegen.sources.query import Connection, QueryUnit, ResolvedQuery, normalise_batch, query_plan, read_batches

FORMAT = "bigquery"
QUERY = True  # plan() takes ResolvedQuery objects, not files (examplegen.sources.query)
SCHEMES = ("bigquery",)
TABLE_PREFIX = "examplegen_"
EXPIRATION = "TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)"


@dataclasses.dataclass(frozen=True)
class Options:
    dataset: str = "examplegen_tmp"  # where the temporary result tables go
    location: Optional[str] = None  # BigQuery location (US, EU, europe-west4, ...)
    max_streams: int = 0  # Storage Read streams per query; 0: one per CPU core
    digest: bool = True  # order-independent result digest (data version; CACHED reruns)
    schema: Optional[tuple[tuple[str, str], ...]] = None  # feature -> typemap override
    api_endpoint: Optional[str] = None  # BigQuery REST endpoint (emulators)
    read_endpoint: Optional[str] = None  # Storage Read host:port, insecure gRPC (emulators)
    anonymous: bool = False  # no credentials (emulators); default: Application Default Credentials

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "Options":
        opts = options_from_dict(cls, d, FORMAT)
        if not isinstance(opts.dataset, str) or not opts.dataset.replace("_", "").isalnum():
            raise ConfigError(f"bigquery option dataset: expected a dataset name (letters, digits, _), "
                              f"got {opts.dataset!r}")
        for key in ("location", "api_endpoint", "read_endpoint"):
            value = getattr(opts, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"bigquery option {key}: expected a non-empty string, got {value!r}")
        if not isinstance(opts.max_streams, int) or isinstance(opts.max_streams, bool) or opts.max_streams < 0:
            raise ConfigError(f"bigquery option max_streams must be 0 (one per CPU core) or a positive integer, "
                              f"got {opts.max_streams!r}")
        if not isinstance(opts.anonymous, bool):
            raise ConfigError(f"bigquery option anonymous must be true or false, got {opts.anonymous!r}")
        return with_schema(opts, FORMAT)

    def to_dict(self) -> dict:
        return options_dict(self)

    @property
    def workers(self) -> int:
        """Streams asked for per query (the engine's default worker count)."""
        return self.max_streams or max(1, len(os.sched_getaffinity(0)))


def connection(url: str) -> Connection:
    """The Connection of a ``bigquery://PROJECT`` URL (no user, no password: ADC)."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is not None and parts.scheme in SCHEMES and (parts.username or parts.password or parts.port
                                                         or parts.path.strip("/") or parts.query):
        raise ConfigError(f"connection {Connection.parse(url, SCHEMES).url!r}: a BigQuery connection is "
                          "bigquery://PROJECT (credentials come from Application Default Credentials; dataset "
                          "and location are the options dataset and location)")
    conn = Connection.parse(url, SCHEMES)
    return Connection(conn.url)  # no password: a database password variable means nothing here


def _project(conn: Connection) -> Optional[str]:
    return urllib.parse.urlsplit(conn.url).hostname or None


def _credentials(options: Options):
    if options.anonymous:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    return None  # the clients use Application Default Credentials


def _client(conn: Connection, options: Options):
    from google.cloud import bigquery

    client_options = {"api_endpoint": options.api_endpoint} if options.api_endpoint else None
    return bigquery.Client(project=_project(conn), credentials=_credentials(options), location=options.location,
                           client_options=client_options)


def _read_client(options: Options):
    from google.cloud import bigquery_storage

    if options.read_endpoint:
        import grpc
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

        channel = grpc.insecure_channel(options.read_endpoint)
        return bigquery_storage.BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))
    return bigquery_storage.BigQueryReadClient(credentials=_credentials(options))


def _failure(where: str, what: str, exc: BaseException) -> SourceError:
    message = getattr(exc, "message", None) or str(exc)
    return SourceError(f"{where}: {what}: {message.strip().splitlines()[0] if message.strip() else repr(exc)}")


class _Session:
    """The launcher's BigQuery work for one split: temporary tables and read sessions."""

    def __init__(self, conn: Connection, options: Options):
        self.options = options
        self.client = _client(conn, options)
        self.reader = _read_client(options)
        self.project = self.client.project
        self.tables: list[str] = []
        self.dataset_ready = False

    def run_into_table(self, q: ResolvedQuery) -> str:
        """Runs ``q`` into a new temporary table; returns its id ``project.dataset.table``."""
        from google.api_core import exceptions
        from google.cloud import bigquery

        if not self.dataset_ready:
            dataset = bigquery.Dataset(f"{self.project}.{self.options.dataset}")
            if self.options.location:
                dataset.location = self.options.location
            try:
                self.client.create_dataset(dataset, exists_ok=True)
            except exceptions.GoogleAPIError as exc:
                raise _failure(q.where, f"cannot create the dataset {dataset.dataset_id!r} for the temporary "
                                        "result tables (option dataset)", exc) from None
            self.dataset_ready = True
        table = f"{self.project}.{self.options.dataset}.{TABLE_PREFIX}{uuid.uuid4().hex}"
        body = q.query.strip().rstrip(";").strip()
        sql = f"CREATE TABLE `{table}` OPTIONS(expiration_timestamp = {EXPIRATION}) AS\n{body}\n"
        self.tables.append(table)  # dropped by close() even when the job fails half-way
        try:
            self.client.query(sql, job_config=bigquery.QueryJobConfig(labels={"examplegen": "query"})).result()
        except exceptions.GoogleAPIError as exc:
            raise _failure(q.where, "BigQuery rejected the query", exc) from None
        return table

    def open_streams(self, q: ResolvedQuery, table: str) -> tuple[pa.Schema, list[str]]:
        """A Storage Read session on ``table``: its Arrow schema and stream names."""
        from google.api_core import exceptions
        from google.cloud.bigquery_storage_v1 import types

        project, dataset, table_id = table.split(".")
        request = types.ReadSession(table=f"projects/{project}/datasets/{dataset}/tables/{table_id}",
                                    data_format=types.DataFormat.ARROW)
        try:
            session = self.reader.create_read_session(parent=f"projects/{self.project}", read_session=request,
                                                      max_stream_count=self.options.workers)
        except exceptions.GoogleAPIError as exc:
            raise _failure(q.where, "cannot open a Storage Read session on the result", exc) from None
        schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
        return schema, [stream.name for stream in session.streams]

    def close(self) -> None:
        """Deletes the temporary tables (a failure to is a warning: they expire in a day)."""
        from google.api_core import exceptions

        for table in self.tables:
            try:
                self.client.delete_table(table, not_found_ok=True)
            except exceptions.GoogleAPIError as exc:
                print(f"examplegen: warning: could not delete the temporary table {table} (it expires within a "
                      f"day): {exc}", file=sys.stderr)
        self.tables = []
        self.client.close()


def plan(split_name: str, queries: Sequence[ResolvedQuery], options: Options, chunk_bytes: int = 0) -> Plan:
    session = _Session(queries[0].connection, options)
    units: list[QueryUnit] = []
    columns: Optional[list[str]] = None
    try:
        for q in queries:
            schema, streams = session.open_streams(q, session.run_into_table(q))
            if columns is None:
                columns = schema.names
            elif schema.names != columns:
                raise SourceError(f"input split {split_name!r}: the query returns other columns for span "
                                  f"{q.span} ({schema.names}) than for span {queries[0].span} ({columns})")
            serialized = schema.serialize().to_pybytes()
            units.extend(QueryUnit(q.where, 0, q.query, q.connection, q.index, k, len(streams), (name, serialized))
                         for k, name in enumerate(streams))
        check_schema_columns(options.schema, columns or [], queries[0].where, FORMAT)
    except BaseException:
        session.close()
        raise
    result = query_plan(queries, units, columns, options.digest)
    result.close = session.close
    return result


def _batches(unit: QueryUnit, options: Options) -> Iterator[pa.RecordBatch]:
    from google.api_core import exceptions

    stream, serialized = unit.extra
    schema = pa.ipc.read_schema(pa.py_buffer(serialized))
    client = _read_client(options)
    try:
        for response in client.read_rows(stream):
            yield pa.ipc.read_record_batch(pa.py_buffer(response.arrow_record_batch.serialized_record_batch), schema)
    except exceptions.GoogleAPIError as exc:
        raise _failure(f"{unit.path} stream {unit.part + 1} of {unit.parts}", "reading the result failed",
                       exc) from None


def read(unit: QueryUnit, options: Options) -> Iterator[pa.RecordBatch]:
    return (yield from read_batches(unit, _batches(unit, options), options.digest,
                                    lambda batch: normalise_batch(batch, None, lambda: unit.path)))
