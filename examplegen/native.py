"""The package's one C extension, examplegen._framing (examplegen/_framing.c, built by
setup.py), or None where it was not built (no compiler or no OpenSSL headers at install).
Its callers (tfrecord: digests and CRCs of records; encode: the per-row join of an
Example's pieces) look it up here at each call and have a pure-Python/Arrow path with the
same results, which tests/test_framing_native.py compares by setting ``framing`` to None."""

try:
    from examplegen import _framing as framing
except ImportError:  # pragma: no cover - the fallback is tested by setting framing to None
    framing = None
