"""Image folders with labels from paths: ``input_base/<label>/<file>.jpg|png|...``.

One example per image file, with the feature names TensorFlow's image models use:

======================  ======  ===============================================
feature                 kind    value
======================  ======  ===============================================
``image/encoded``       bytes   the file's bytes, unchanged (never re-encoded)
``image/format``        bytes   ``jpeg``, ``png``, ``gif``, ``bmp`` or ``webp``
``image/height``        int64   pixels, from the image header
``image/width``         int64   pixels, from the image header
``image/channels``      int64   channels ``tf.io.decode_image`` returns
``image/filename``      bytes   the file's name (no directory)
``image/class/label``   int64   the label's id in the label map (labels only)
``image/class/text``    bytes   the label: the name of the file's directory
======================  ======  ===============================================

Format, size and channels come from the header, read with Pillow. By default every
image is also fully decoded once (``verify="decode"``), so a truncated or corrupt file
is an error naming it instead of a failure in a training job; ``verify="header"`` only
reads headers. A file Pillow cannot identify, or in a format TensorFlow's
``decode_image`` does not read (``formats``), is an error naming it. The EXIF
orientation is not applied (TensorFlow's decoders do not apply it either).

Label ids come from a label map, stable across spans (examplegen.sources.folders).
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Iterator, Sequence

import pyarrow as pa

from examplegen import fs
from examplegen.errors import ConfigError, SourceError
from examplegen.sources import folders
from examplegen.sources.base import Plan

FORMAT = "images"

# Pillow format names -> image/format; what tf.io.decode_image reads (TF 2.17).
TF_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "GIF": "gif", "BMP": "bmp"}
VERIFY_MODES = ("decode", "header")
BATCH_FILES = 256  # images per record batch
UNIT_BYTES = 32 << 20  # input bytes per work unit
UNIT_FILES = 2048  # at most this many files per work unit

SCHEMA = pa.schema([
    ("image/encoded", pa.binary()),
    ("image/format", pa.string()),
    ("image/height", pa.int64()),
    ("image/width", pa.int64()),
    ("image/channels", pa.int64()),
    ("image/filename", pa.string()),
])
LABEL_FIELDS = [("image/class/label", pa.int64()), ("image/class/text", pa.string())]


@dataclasses.dataclass(frozen=True)
class ImageOptions(folders.SourceOptions):
    """How to read an image folder (see the module docstring and SourceOptions)."""

    verify: str = "decode"  # "decode": decode every image once; "header": read headers only
    formats: tuple[str, ...] = ("jpeg", "png", "gif", "bmp")  # accepted image/format values

    _what = "images"

    def __post_init__(self):
        super().__post_init__()
        if self.verify not in VERIFY_MODES:
            raise ConfigError(f"images option verify: {self.verify!r} is unknown; use one of "
                              f"{', '.join(VERIFY_MODES)}")
        known = sorted(set(TF_FORMATS.values()))
        unknown = [f for f in self.formats if f not in known]
        if unknown:
            raise ConfigError(f"images option formats: {unknown} unknown; use some of {known}")


Options = ImageOptions


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    format: str
    height: int
    width: int
    channels: int


def _channels(image, fmt: str) -> int:
    """Channels of the array tf.io.decode_image returns for this image."""
    if fmt == "gif":
        return 3
    if image.mode in ("P", "PA"):  # palette: expanded to RGB, or RGBA when transparent
        return 4 if image.mode == "PA" or "transparency" in image.info else 3
    if image.mode == "CMYK":
        return 4
    return len(image.getbands())


def image_info(data: bytes, path: str, options: ImageOptions = ImageOptions()) -> ImageInfo:
    """Format, size and channels of an encoded image, from its header (Pillow).

    Raises SourceError naming ``path`` when the bytes are not a (decodable) image in one
    of ``options.formats``.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = TF_FORMATS.get(image.format or "")
            if fmt is None or fmt not in options.formats:
                raise SourceError(f"{path}: a {image.format} image; accepted formats are "
                                  f"{', '.join(options.formats)} (images option formats)")
            width, height = image.size
            channels = _channels(image, fmt)
            if options.verify == "decode":
                image.load()
    except SourceError:
        raise
    except Image.DecompressionBombError as exc:
        raise SourceError(f"{path}: {exc}") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error ...
        raise SourceError(f"{path}: not a decodable image ({type(exc).__name__}: {exc}); remove the "
                          f"file or narrow the input pattern (e.g. '*/*.jpg')") from None
    return ImageInfo(fmt, height, width, channels)


def plan(split_name: str, files: Sequence[str], options: ImageOptions, chunk_bytes: int = 0) -> Plan:
    """Work units of consecutive whole files, about UNIT_BYTES each."""
    units = folders.plan_files(files, UNIT_BYTES, UNIT_FILES, rows_per_file=True)
    return Plan(units, columns=schema(options).names)


def schema(options: ImageOptions) -> pa.Schema:
    return pa.schema(list(SCHEMA) + (LABEL_FIELDS if options.labels else []))


def read(unit: folders.FileUnit, options: ImageOptions) -> Iterator[pa.RecordBatch]:
    """Record batches of the unit's images, in file order."""
    for start in range(0, len(unit.files), BATCH_FILES):
        yield read_files(unit.files[start:start + BATCH_FILES], options)


def read_files(paths: Sequence[str], options: ImageOptions) -> pa.RecordBatch:
    """One record batch of the images at ``paths`` (labels need options.label_map)."""
    encoded, infos = [], []
    for path in paths:
        try:
            with fs.open_input(path) as f:  # checked against its digest (examplegen.fs)
                data = f.read()
        except OSError as exc:
            raise SourceError(f"{path}: cannot read ({exc})") from None
        encoded.append(data)
        infos.append(image_info(data, path, options))
    columns = [
        pa.array(encoded, pa.binary()),
        pa.array([i.format for i in infos], pa.string()),
        pa.array([i.height for i in infos], pa.int64()),
        pa.array([i.width for i in infos], pa.int64()),
        pa.array([i.channels for i in infos], pa.int64()),
        pa.array([os.path.basename(p) for p in paths], pa.string()),
    ]
    if options.labels:
        if options.label_map is None:
            raise ConfigError("images: the label map must be resolved before reading (with_label_map)")
        ids, names = folders.label_ids(paths, options.label_map)
        columns += [pa.array(ids, pa.int64()), pa.array(names, pa.string())]
    return pa.RecordBatch.from_arrays(columns, schema=schema(options))


# Optional hooks of the source contract (examplegen.sources): the label map over all splits.
for_output = folders.for_output
prepare = folders.prepare
artifact_metadata = folders.artifact_metadata
default_input_pattern = folders.default_input_pattern
