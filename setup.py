"""The one native part of the package: examplegen._framing (the Example bytes of a batch
from its typed columns, SHA-256 and CRC32C of every record of a batch in one call, the
TFRecord frames; see examplegen/_framing.c). Everything else is in pyproject.toml. The
extension is optional: where it cannot be built (no compiler or no OpenSSL headers) the
package installs without it and examplegen.encode and examplegen.tfrecord use numpy,
Arrow, hashlib and google_crc32c instead, with the same bytes, ~2 us per row slower."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "examplegen._framing",
    sources=["examplegen/_framing.c"],
    libraries=["crypto"],
    extra_compile_args=["-O2"],
    optional=True,
)])
