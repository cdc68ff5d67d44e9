"""Strings with backslashes on an ml-metadata PostgreSQL store.

ml-metadata 1.17.1 quotes string values for PostgreSQL with libpq's PQescapeLiteral and
then strips the first and last character, assuming the result is `'...'`. For a value
holding a backslash PQescapeLiteral returns ` E'...'` instead, so the SQL it builds is
broken (`syntax error at or near ...`): no string property, URI or name with a `\\` can be
written (a CSV config's default quote char `"` is `"\\""` in JSON). No connection setting
helps (standard_conforming_strings changes nothing: the E'' form is used regardless).

`PostgresTextStore` wraps the store on PostgreSQL only: every string that would break
(a backslash or a NUL, which PostgreSQL text cannot hold) is written as
`examplegen-pct:` + the string with `%`, `\\` and NUL percent-encoded (`C:%5Cdata`), and
decoded on every read, so callers see exactly what they wrote. Strings without those
characters, the vast majority, are stored unchanged (readable by any MLMD client); a
string that itself starts with the prefix is encoded too, so decoding is always exact.

Encoded: string property values, `uri`, `name` and `external_id` of artifacts,
executions, contexts and types, and plain string arguments (a URI or a context name
to look up). Filter queries are passed through untouched: keep their literals plain
(`is_plain`), which holds for type names and digests.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Callable

PREFIX = "examplegen-pct:"
_UNSAFE = ("\\", "\0")
# Characters that ml-metadata's filter-query translation mangles on PostgreSQL.
_FILTER_UNSAFE = _UNSAFE + ("'", '"')


def encode_text(text: str) -> str:
    """`text` as stored on PostgreSQL (unchanged unless it holds a backslash or NUL)."""
    if not text.startswith(PREFIX) and not any(c in text for c in _UNSAFE):
        return text
    return PREFIX + text.replace("%", "%25").replace("\\", "%5C").replace("\0", "%00")


def decode_text(text: str) -> str:
    """The original of a string read from PostgreSQL (inverse of encode_text)."""
    if not text.startswith(PREFIX):
        return text
    return urllib.parse.unquote(text[len(PREFIX):])


def is_plain(text: str) -> bool:
    """True if `text` may appear in an MLMD filter-query literal on every store."""
    return not text.startswith(PREFIX) and not any(c in text for c in _FILTER_UNSAFE)


def _node_types() -> tuple[type, ...]:
    from ml_metadata.proto import metadata_store_pb2 as pb

    return (pb.Artifact, pb.Execution, pb.Context, pb.ArtifactType, pb.ExecutionType, pb.ContextType)


def _convert_node(node: Any, fn: Callable[[str], str]) -> None:
    """Apply `fn` to the string fields of an MLMD node or type, in place."""
    for field in ("uri", "name", "external_id"):
        if field in node.DESCRIPTOR.fields_by_name and node.HasField(field):
            setattr(node, field, fn(getattr(node, field)))
    if node.DESCRIPTOR.name in ("Artifact", "Execution", "Context"):
        for values in (node.properties, node.custom_properties):
            for value in values.values():
                if value.WhichOneof("value") == "string_value":
                    value.string_value = fn(value.string_value)


def _convert(value: Any, fn: Callable[[str], str], copy: bool, node_types: tuple[type, ...]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, node_types):
        if copy:  # never change the caller's protos
            value = _clone(value)
        _convert_node(value, fn)
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v, fn, copy, node_types) for v in value)
    return value


def _clone(message: Any) -> Any:
    twin = type(message)()
    twin.CopyFrom(message)
    return twin


class PostgresTextStore:
    """An ml-metadata MetadataStore whose strings round-trip exactly on PostgreSQL."""

    def __init__(self, mlmd: Any):
        self._mlmd = mlmd
        self._node_types = _node_types()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._mlmd, name)
        if not callable(method):
            return method
        types = self._node_types

        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(_convert(a, encode_text, True, types) for a in args)
            kwargs = {k: _convert(v, encode_text, True, types) for k, v in kwargs.items()}
            result = method(*args, **kwargs)
            return _convert(result, decode_text, False, types)

        return call
