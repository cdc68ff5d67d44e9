"""A small stand-in of Trino's HTTP client protocol, for tests (no Trino server can be
installed here). It is NOT Trino: it runs the SQL in SQLite and speaks the protocol the
official ``trino`` client uses:

- ``POST /v1/statement`` (the SQL as the body) answers QUEUED with a ``nextUri``; each
  ``GET`` of a ``nextUri`` returns one page of ``data`` (``page_rows`` rows) with the
  ``columns`` (Trino type names and ``typeSignature`` s) and the next ``nextUri``, the
  last page none (state FINISHED); ``DELETE`` cancels;
- values in Trino's JSON wire form (decimals and timestamps as text, varbinary base64,
  arrays and rows as JSON arrays); the tables are declared with real Trino type names;
- a failed query is Trino's JSON error (``error``: message, errorCode, errorName,
  errorType, failureInfo) with state FAILED;
- HTTPS with a self-signed certificate; HTTP basic (user and password) or bearer (JWT)
  authentication checked on every request (401 otherwise); ``X-Trino-User`` required,
  ``X-Trino-Catalog`` / ``X-Trino-Schema`` recorded. With ``presto=True`` it wants
  PrestoDB's ``X-Presto-*`` headers instead and names types the Presto way
  (``timestamp with time zone``, no precision).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import re
import sqlite3
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional


def _signature(type_name: str) -> dict:
    """Trino's ClientTypeSignature of a type name (the subset the tests use)."""
    text = type_name.strip()
    if text.startswith("timestamp") or text.startswith("time"):
        zoned = text.endswith("with time zone")
        base = "timestamp" if text.startswith("timestamp") else "time"
        raw = base + (" with time zone" if zoned else "")
        digits = re.search(r"\((\d+)\)", text)
        return {"rawType": raw, "arguments": [{"kind": "LONG", "value": int(digits.group(1))}] if digits else []}
    head, _, rest = text.partition("(")
    if not rest:
        return {"rawType": head, "arguments": []}
    inner, depth, parts, start = rest[:-1], 0, [], 0
    for i, ch in enumerate(inner):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    if head in ("decimal", "varchar", "char"):
        return {"rawType": head, "arguments": [{"kind": "LONG", "value": int(p)} for p in parts]}
    if head == "row":
        fields = []
        for part in parts:
            name, _, typ = part.partition(" ")
            fields.append({"kind": "NAMED_TYPE", "value": {"fieldName": {"name": name.strip('"')},
                                                           "typeSignature": _signature(typ)}})
        return {"rawType": "row", "arguments": fields}
    return {"rawType": head, "arguments": [{"kind": "TYPE", "value": _signature(p)} for p in parts]}


def _wire(value, type_name: str):
    """A Python value in Trino's JSON wire form for ``type_name``."""
    if value is None:
        return None
    t = type_name.lower()
    if t.startswith("array("):
        inner = type_name[6:-1]
        return [_wire(v, inner) for v in value]
    if t.startswith("map("):
        key_type, value_type = (a["value"] for a in _signature(type_name)["arguments"])
        return {str(_wire(k, _type_text(key_type))): _wire(v, _type_text(value_type)) for k, v in value.items()}
    if t.startswith("row("):
        sig = _signature(type_name)["arguments"]
        return [_wire(v, _type_text(a["value"]["typeSignature"])) for v, a in zip(value, sig)]
    if t.startswith("decimal"):
        return str(value)
    if t == "varbinary":
        return base64.b64encode(value).decode()
    if t.startswith("timestamp"):  # as many fraction digits as the precision says (default 3)
        digits = int(re.search(r"\((\d+)\)", t).group(1)) if "(" in t else 3
        zoned = "with time zone" in t
        value = value.astimezone(datetime.timezone.utc) if zoned else value
        fraction = f"{value.microsecond:06d}".ljust(digits, "0")[:digits]
        return value.strftime("%Y-%m-%d %H:%M:%S") + (f".{fraction}" if digits else "") + (" UTC" if zoned else "")
    if t == "date":
        return value.isoformat()
    if t in ("ipaddress", "uuid"):
        return str(value)
    return value


def _from_store(value, type_name: str):
    """A value SQLite gave back in the wire form again (booleans come back as 0/1, arrays
    and rows as their JSON text)."""
    if value is None:
        return None
    t = type_name.lower()
    if t == "boolean":
        return bool(value)
    if t.startswith(("array", "row", "map")):
        return json.loads(value)
    return value


def _type_text(signature: dict) -> str:
    raw, args = signature["rawType"], signature["arguments"]
    if not args:
        return raw
    if raw in ("timestamp with time zone", "time with time zone"):
        return f"{raw.split(' ')[0]}({args[0]['value']}) with time zone"
    if args[0]["kind"] == "LONG":
        return f"{raw}({','.join(str(a['value']) for a in args)})"
    if raw == "row":
        return "row(" + ", ".join(f"{a['value']['fieldName']['name']} {_type_text(a['value']['typeSignature'])}"
                                  for a in args) + ")"
    return f"{raw}(" + ", ".join(_type_text(a["value"]) for a in args) + ")"


class TrinoStandIn:
    """``tables``: name -> (columns [(name, Trino type)], rows [tuple of Python values])."""

    def __init__(self, tables: dict, user: str, password: Optional[str] = None, token: Optional[str] = None,
                 page_rows: int = 7, presto: bool = False, cert_dir: str = "."):
        self.user, self.password, self.token, self.page_rows, self.presto = user, password, token, page_rows, presto
        self.prefix = "X-Presto-" if presto else "X-Trino-"
        self.requests: list[tuple[str, str, dict]] = []
        self.queries: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.types: dict[str, str] = {}
        for name, (columns, rows) in tables.items():
            self.load(name, columns, rows)
        self.ca_path = os.path.join(cert_dir, "trino-standin-ca.pem")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.socket = self._tls_context(cert_dir).wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # ------------------------------------------------------------------ data

    def load(self, name: str, columns: list, rows: list) -> None:
        """(Re)creates table ``name``; complex values are stored as their wire JSON."""
        with self.lock:
            self.db.execute(f'DROP TABLE IF EXISTS "{name}"')
            self.db.execute(f'CREATE TABLE "{name}" (' + ", ".join(f'"{c}"' for c, _ in columns) + ")")
            for column, typ in columns:
                self.types[column] = typ
            stored = [tuple(self._store(v, t) for v, (_, t) in zip(row, columns)) for row in rows]
            self.db.executemany(f'INSERT INTO "{name}" VALUES ({", ".join("?" * len(columns))})', stored)

    @staticmethod
    def _store(value, typ: str):
        wire = _wire(value, typ)
        return json.dumps(wire) if isinstance(wire, (list, dict)) else wire

    def _column(self, name: str, sample) -> tuple[str, str]:
        typ = self.types.get(name)
        if typ is None:  # an expression: typed from its value, as Trino would
            typ = "bigint" if isinstance(sample, int) else "double" if isinstance(sample, float) else "varchar"
        shown = typ
        if self.presto:
            shown = re.sub(r"timestamp\(\d+\)", "timestamp", typ)
        return shown, typ

    def _run(self, sql: str) -> dict:
        with self.lock:
            cur = self.db.execute(sql)
            rows = cur.fetchall()
            names = [d[0] for d in cur.description]
        columns, data = [], []
        for k, name in enumerate(names):
            shown, typ = self._column(name, next((r[k] for r in rows if r[k] is not None), None))
            columns.append({"name": name, "type": shown, "typeSignature": _signature(shown), "_type": typ})
        for row in rows:
            data.append([_from_store(v, c["_type"]) for v, c in zip(row, columns)])
        for c in columns:
            del c["_type"]
        return {"columns": columns, "data": data}

    # ------------------------------------------------------------------ HTTP

    def _tls_context(self, cert_dir: str) -> ssl.SSLContext:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trino stand-in")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        key_path = os.path.join(cert_dir, "trino-standin-key.pem")
        with open(self.ca_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_path, key_path)
        return context

    def _authorized(self, header: Optional[str]) -> bool:
        if self.password is not None:
            expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return header == f"Basic {expected}"
        if self.token is not None:
            return header == f"Bearer {self.token}"
        return header is None

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: Optional[dict] = None, headers: Optional[dict] = None):
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _check(self) -> bool:
                standin.requests.append((self.command, self.path, dict(self.headers.items())))
                if not standin._authorized(self.headers.get("Authorization")):
                    self._send(401, headers={"WWW-Authenticate": 'Basic realm="Trino"'})
                    return False
                if self.headers.get(standin.prefix + "User") != standin.user:
                    self._send(400, {"message": f"{standin.prefix}User header must be {standin.user}"})
                    return False
                return True

            def _base(self) -> str:
                return f"https://127.0.0.1:{standin.port}"

            def do_POST(self):  # noqa: N802 - http.server's name
                if not self._check():
                    return
                sql = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                qid = uuid.uuid4().hex
                standin.queries[qid] = {"sql": sql, "result": None, "error": None}
                self._send(200, {"id": qid, "infoUri": f"{self._base()}/ui/query/{qid}",
                                 "nextUri": f"{self._base()}/v1/statement/executing/{qid}/0",
                                 "stats": {"state": "QUEUED", "queued": True, "scheduled": False}})

            def do_GET(self):  # noqa: N802
                if not self._check():
                    return
                match = re.fullmatch(r"/v1/statement/executing/(\w+)/(\d+)", self.path)
                if not match or match.group(1) not in standin.queries:
                    self._send(404, {"message": "no such query"})
                    return
                qid, page = match.group(1), int(match.group(2))
                query = standin.queries[qid]
                info = f"{self._base()}/ui/query/{qid}"
                if query["result"] is None and query["error"] is None:
                    try:
                        query["result"] = standin._run(query["sql"])
                    except sqlite3.Error as exc:
                        missing = "no such table" in str(exc)
                        query["error"] = {
                            "message": f"line 1:1: {exc}", "errorCode": 46 if missing else 1,
                            "errorName": "TABLE_NOT_FOUND" if missing else "SYNTAX_ERROR", "errorType": "USER_ERROR",
                            "errorLocation": {"lineNumber": 1, "columnNumber": 1},
                            "failureInfo": {"type": "io.trino.spi.TrinoException", "message": str(exc),
                                            "suppressed": [], "stack": []}}
                if query["error"] is not None:
                    self._send(200, {"id": qid, "infoUri": info, "stats": {"state": "FAILED"},
                                     "error": query["error"]})
                    return
                result = query["result"]
                rows = result["data"][page * standin.page_rows:(page + 1) * standin.page_rows]
                body = {"id": qid, "infoUri": info, "columns": result["columns"], "data": rows,
                        "stats": {"state": "RUNNING"}}
                if (page + 1) * standin.page_rows < len(result["data"]):
                    body["nextUri"] = f"{self._base()}/v1/statement/executing/{qid}/{page + 1}"
                else:
                    body["stats"] = {"state": "FINISHED"}
                self._send(200, body)

            def do_DELETE(self):  # noqa: N802
                if self._check():
                    self._send(204)

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.db.close()
