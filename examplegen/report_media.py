"""The report's sections for image and text Examples (see examplegen.report).

Images (examples with ``image/encoded``): a few thumbnails made from the encoded bytes
(resized with Pillow, embedded as PNG data URIs, a few KB each), the label counts per
split (ids and names from ``image/class/label`` / ``image/class/text``, ordered by the
artifact's ``label_map``), and the formats and sizes seen.

Text (examples with a ``text`` feature): the distribution of text lengths (characters),
label counts when labelled (``label`` / ``label_text``) and a few sample texts.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import html
import io
import json
from typing import Optional

IMAGE_FEATURE = "image/encoded"
TEXT_FEATURE = "text"
THUMBNAILS = 12  # at most, over all labels
THUMBNAILS_PER_LABEL = 3
THUMBNAIL_PIXELS = 96  # longest side
TEXT_SAMPLES = 5
TEXT_SAMPLE_CHARS = 300
HISTOGRAM_BUCKETS = 10

_LABEL_FEATURES = {"image": ("image/class/label", "image/class/text"), "text": ("label", "label_text")}


@dataclasses.dataclass
class MediaSummary:
    """What the image / text sections show; filled example by example (see add)."""

    kind: str = ""  # "image" | "text" | "" (neither)
    label_counts: dict = dataclasses.field(default_factory=dict)  # split -> Counter[(id, name)]
    thumbnails: list = dataclasses.field(default_factory=list)  # (label, filename, data URI, w, h)
    thumbnail_errors: int = 0
    formats: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    sizes: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # (w, h, c)
    lengths: list = dataclasses.field(default_factory=list)  # text lengths in characters
    samples: list = dataclasses.field(default_factory=list)  # (label, text)
    _per_label: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def add(self, example_features, split: str) -> None:
        """Accounts for one example (a map of feature name -> tf.train.Feature)."""
        if not self.kind:
            if IMAGE_FEATURE in example_features:
                self.kind = "image"
            elif _bytes(example_features, TEXT_FEATURE) is not None:
                self.kind = "text"
            else:
                return
        id_name, text_name = _LABEL_FEATURES[self.kind]
        label_id = _first(example_features, id_name, "int64_list")
        label = _first(example_features, text_name, "bytes_list")
        label = label.decode("utf-8", "replace") if label is not None else None
        if label_id is not None or label is not None:
            self.label_counts.setdefault(split, collections.Counter())[(label_id, label)] += 1
        if self.kind == "image":
            self._add_image(example_features, label)
        else:
            self._add_text(example_features, label)

    def _add_image(self, features, label: Optional[str]) -> None:
        encoded = _first(features, IMAGE_FEATURE, "bytes_list")
        fmt = _first(features, "image/format", "bytes_list")
        self.formats[fmt.decode("utf-8", "replace") if fmt is not None else "?"] += 1
        self.sizes[tuple(_first(features, f"image/{k}", "int64_list") for k in ("width", "height", "channels"))] += 1
        if encoded is None or len(self.thumbnails) >= THUMBNAILS or self._per_label[label] >= THUMBNAILS_PER_LABEL:
            return
        thumb = thumbnail(encoded)
        if thumb is None:
            self.thumbnail_errors += 1
            return
        self._per_label[label] += 1
        name = _first(features, "image/filename", "bytes_list")
        self.thumbnails.append((label, name.decode("utf-8", "replace") if name else "", *thumb))

    def _add_text(self, features, label: Optional[str]) -> None:
        value = _bytes(features, TEXT_FEATURE).decode("utf-8", "replace")
        self.lengths.append(len(value))
        if len(self.samples) < TEXT_SAMPLES:
            self.samples.append((label, value))


def _bytes(features, name: str) -> Optional[bytes]:
    return _first(features, name, "bytes_list")


def _first(features, name: str, kind: str):
    feature = features.get(name) if hasattr(features, "get") else None
    if feature is None or feature.WhichOneof("kind") != kind:
        return None
    values = getattr(feature, kind).value
    return values[0] if len(values) else None


def thumbnail(encoded: bytes) -> Optional[tuple[str, int, int]]:
    """(PNG data URI, width, height) of a small copy of the image, or None if undecodable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(encoded)) as image:
            image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA")
            out = io.BytesIO()
            image.save(out, "PNG", optimize=True)
            width, height = image.size
    except Exception:  # Pillow raises many types; an undecodable image just has no thumbnail
        return None
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii"), width, height


# ---------------------------------------------------------------------------------------
# HTML

CSS = """
.thumbs{display:flex;flex-wrap:wrap;gap:10px}.thumbs figure{margin:0;text-align:center;font-size:12px}
.thumbs img{border:1px solid #dadce0;image-rendering:pixelated;background:#fff}
.bar{background:#1a73e8;height:10px;display:inline-block}
pre.sample{white-space:pre-wrap;margin:0;font-size:12px;max-width:80ch}
"""


def _esc(value) -> str:
    return "" if value is None else html.escape(str(value), quote=True)


def render(media: MediaSummary, split_names: list[str], metadata: dict, table) -> str:
    """The HTML sections for ``media`` (empty for Examples that are neither image nor text).
    ``table(headers, rows, numeric)`` renders a table as the report does."""
    if not media.kind:
        return ""
    parts = []
    label_map = metadata.get("label_map")
    if isinstance(label_map, str):
        label_map = json.loads(label_map)
    if media.label_counts or label_map:
        parts.append(_labels_html(media, split_names, label_map or [], table))
    if media.kind == "image":
        parts.append(_images_html(media, table))
    else:
        parts.append(_text_html(media, table))
    return "".join(parts)


def _labels_html(media: MediaSummary, split_names: list[str], label_map: list, table) -> str:
    totals: collections.Counter = collections.Counter()
    for counts in media.label_counts.values():
        totals.update(counts)
    keys = {(i, name) for i, name in enumerate(label_map)} | set(totals)
    order = sorted(keys, key=lambda k: (k[0] is None, k[0] if k[0] is not None else 0, k[1] or ""))
    splits = [s for s in split_names if s in media.label_counts]
    rows = [(_esc(i), _esc(name), *(f"{media.label_counts[s][(i, name)]:,}" for s in splits), f"{totals[(i, name)]:,}")
            for i, name in order]
    note = " (label map recorded on the artifact)" if label_map else ""
    return (f"<h2>Labels</h2><p class=\"muted\">{len(order)} label(s){_esc(note)}; counts over the examples "
            f"read.</p>" + table(["Id", "Label", *splits, "Total"], rows, (0, *range(2, 3 + len(splits)))))


def _images_html(media: MediaSummary, table) -> str:
    parts = ["<h2>Images</h2>"]
    formats = ", ".join(f"{_esc(f)} ({n:,})" for f, n in media.formats.most_common())
    parts.append(f"<p>Formats: {formats}.</p>")
    sizes = [(f"{w} × {h}", _esc(c), f"{n:,}") for (w, h, c), n in media.sizes.most_common(8)]
    parts.append(table(["Width × height", "Channels", "Images"], sizes, (2,)))
    if media.thumbnails:
        parts.append(f"<p class=\"muted\">{len(media.thumbnails)} thumbnail(s), the first images of each "
                     "label, from the encoded bytes.</p><div class=\"thumbs\">")
        for label, name, uri, width, height in media.thumbnails:
            caption = _esc(label if label is not None else name)
            parts.append(f"<figure><img src=\"{uri}\" width=\"{width}\" height=\"{height}\" alt=\"{_esc(name)}\" "
                         f"title=\"{_esc(name)}\"><figcaption>{caption}</figcaption></figure>")
        parts.append("</div>")
    if media.thumbnail_errors:
        parts.append(f"<p>{media.thumbnail_errors:,} image(s) could not be decoded for a thumbnail.</p>")
    return "".join(parts)


def _text_html(media: MediaSummary, table) -> str:
    lengths = sorted(media.lengths)
    parts = ["<h2>Text</h2>"]
    if lengths:
        def pct(p: float) -> int:
            return lengths[min(len(lengths) - 1, int(p * (len(lengths) - 1) + 0.5))]

        stats = [("min", lengths[0]), ("10%", pct(0.1)), ("median", pct(0.5)), ("90%", pct(0.9)),
                 ("max", lengths[-1]), ("mean", round(sum(lengths) / len(lengths), 1))]
        parts.append("<p>Length in characters over " f"{len(lengths):,} texts: "
                     + ", ".join(f"{k} {v:,}" for k, v in stats) + ".</p>")
        parts.append(table(["Length (characters)", "Texts", ""], _histogram_rows(lengths), (1,)))
    if media.samples:
        rows = []
        for label, value in media.samples:
            shown = value if len(value) <= TEXT_SAMPLE_CHARS else value[:TEXT_SAMPLE_CHARS - 1] + "…"
            rows.append((_esc(label if label is not None else ""), f"{len(value):,}",
                         f"<pre class=\"sample\">{_esc(shown)}</pre>"))
        parts.append("<p class=\"muted\">Sample texts (the first examples read):</p>")
        parts.append(table(["Label", "Length", "Text"], rows, (1,)))
    return "".join(parts)


def histogram(lengths: list[int], buckets: int = HISTOGRAM_BUCKETS) -> list[tuple[int, int, int]]:
    """(low, high, count) of equal-width buckets over sorted ``lengths`` (high inclusive)."""
    low, high = lengths[0], lengths[-1]
    width = max(1, -(-(high - low + 1) // buckets))
    counts = collections.Counter((n - low) // width for n in lengths)
    return [(low + b * width, min(high, low + (b + 1) * width - 1), counts[b])
            for b in range(-(-(high - low + 1) // width))]


def _histogram_rows(lengths: list[int]):
    rows = histogram(lengths)
    top = max(count for _, _, count in rows) or 1
    for low, high, count in rows:
        span = f"{low:,}" if low == high else f"{low:,} – {high:,}"
        yield span, f"{count:,}", f"<span class=\"bar\" style=\"width:{max(1, 200 * count // top)}px\"></span>"
