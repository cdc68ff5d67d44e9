"""The package's one C extension, examplegen._framing (examplegen/_framing.c, built by
setup.py), or None where it was not built (no compiler or no OpenSSL headers at install)
or where EXAMPLEGEN_NO_NATIVE=1 turns it off. Its callers (tfrecord: digests, CRCs and
frames of records; encode: Feature and Example bytes from typed columns) look it up here
at each call and have a numpy/Arrow path with the same results;
tests/test_framing_native.py compares the two and runs the encoding and framing tests
again with it turned off."""

import os

NO_NATIVE_ENV = "EXAMPLEGEN_NO_NATIVE"

framing = None
if os.environ.get(NO_NATIVE_ENV, "") in ("", "0"):
    try:
        from examplegen import _framing as framing
    except ImportError:  # pragma: no cover - the fallback is tested with EXAMPLEGEN_NO_NATIVE=1
        framing = None
