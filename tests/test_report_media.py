"""The report's image and text sections, on Examples written with TensorFlow's own classes."""

import base64
import io
import json
import os
import re

import tensorflow as tf
from PIL import Image

from examplegen import report, report_media
from tests.helpers import REPO
from tests.test_report import _write_examples

IMAGES = os.path.join(REPO, "examples", "data", "images")


def _bytes(*values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(*values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _image_example(path, label_map):
    label = os.path.basename(os.path.dirname(path))
    with Image.open(path) as image:
        width, height = image.size
        fmt = image.format.lower()
    return tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": _bytes(open(path, "rb").read()), "image/format": _bytes(fmt.encode()),
        "image/width": _ints(width), "image/height": _ints(height), "image/channels": _ints(3),
        "image/filename": _bytes(os.path.basename(path).encode()),
        "image/class/label": _ints(label_map.index(label)), "image/class/text": _bytes(label.encode()),
    }))


def _image_artifact(root):
    label_map = ["circle", "square", "triangle", "star"]  # "star": in the map, no images
    files = sorted(os.path.join(d, n) for d, _, names in os.walk(IMAGES) for n in names)
    train = [_image_example(f, label_map) for f in files if not f.endswith("a.png")]
    eval_ = [_image_example(f, label_map) for f in files if f.endswith("a.png")]
    metadata = {"split_names": json.dumps(["train", "eval"]), "label_map": json.dumps(label_map),
                "example_counts": json.dumps({"train": len(train), "eval": len(eval_)})}
    return _write_examples(root, {"train": train, "eval": eval_}, metadata), files


def _thumbnails(page):
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_image_report_has_thumbnails_and_label_counts(tmp_path):
    examples, files = _image_artifact(tmp_path / "examples")
    html_path = str(tmp_path / "report.html")
    summary = report.write_report(examples, html_path)
    page = open(html_path, encoding="utf-8").read()

    assert summary.media.kind == "image"
    thumbs = _thumbnails(page)
    # 3 per label, first images of the first split: 3 labels x 3
    assert len(thumbs) == 9
    first = [f for f in files if f.endswith(("b.jpg", "c.png", "d.png")) and "/circle/" in f][0]
    with Image.open(io.BytesIO(thumbs[0])) as thumb, Image.open(first) as original:
        assert thumb.format == "PNG" and thumb.size == original.size  # small images stay as they are
        assert list(thumb.convert("RGB").getdata()) == list(original.convert("RGB").getdata())
    assert sum(len(t) for t in thumbs) < 20_000

    labels = re.search(r"<h2>Labels</h2>.*?</table>", page, re.S).group(0)
    rows = re.findall(r"<tr><td class=\"num\">(\d)</td><td>(\w+)</td><td class=\"num\">(\d+)</td>"
                      r"<td class=\"num\">(\d+)</td><td class=\"num\">(\d+)</td></tr>", labels)
    assert rows == [("0", "circle", "5", "1", "6"), ("1", "square", "5", "1", "6"),
                    ("2", "triangle", "5", "1", "6"), ("3", "star", "0", "0", "0")]
    assert "Formats: png (12), jpeg (6)." in page
    assert re.search(r"\(\d{2,3} bytes\)", page)  # sample rows show the size of binary values


def test_large_binary_values_are_not_kept_as_distinct_values(tmp_path):
    records = []
    for i in range(3):
        noise = io.BytesIO()
        Image.frombytes("RGB", (32, 32), os.urandom(32 * 32 * 3)).save(noise, "PNG")
        records.append(tf.train.Example(features=tf.train.Features(feature={
            "image/encoded": _bytes(noise.getvalue())})))
    summary = report.summarize(_write_examples(tmp_path / "examples", {"train": records}))
    stats = summary.features["image/encoded"]
    assert not stats.distinct and stats.min_length > 1024
    assert f"length {stats.min_length:,}" in report.render_html(summary)


def test_large_images_are_shrunk_to_thumbnails(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (640, 320), (10, 20, 30)).save(path)
    uri, width, height = report_media.thumbnail(path.read_bytes())
    assert (width, height) == (96, 48)
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as thumb:
        assert thumb.size == (96, 48) and thumb.getpixel((5, 5)) == (10, 20, 30)
    assert report_media.thumbnail(b"not an image") is None


def test_text_report_has_length_distribution_and_samples(tmp_path):
    texts = [b"short", b"a bit longer text", "caf\u00e9".encode(), b"x" * 400]
    labels = ["pos", "neg", "pos", "neg"]
    examples = [tf.train.Example(features=tf.train.Features(feature={
        "text": _bytes(t), "label": _ints(["neg", "pos"].index(label)), "label_text": _bytes(label.encode())}))
        for t, label in zip(texts, labels)]
    root = _write_examples(tmp_path / "examples", {"train": examples},
                           {"split_names": json.dumps(["train"]), "label_map": json.dumps(["neg", "pos"])})
    html_path = str(tmp_path / "report.html")
    summary = report.write_report(root, html_path)
    page = open(html_path, encoding="utf-8").read()
    assert summary.media.kind == "text" and summary.media.lengths == [5, 17, 4, 400]
    assert "Length in characters over 4 texts: min 4, 10%" in page and "max 400" in page
    assert "caf\u00e9" in page
    assert "x" * 299 + "…" in page and "x" * 300 not in page  # long samples cut
    assert re.search(r"<td class=\"num\">0</td><td>neg</td><td class=\"num\">2</td>", page)


def test_histogram_buckets_cover_every_length():
    lengths = sorted([0, 1, 2, 3, 10, 10, 99, 100])
    buckets = report_media.histogram(lengths, buckets=4)
    assert buckets[0][0] == 0 and buckets[-1][1] == 100
    assert sum(count for _, _, count in buckets) == len(lengths)
    assert [b for b in buckets if b[0] <= 10 <= b[1]][0][2] == 6
    assert report_media.histogram([7, 7]) == [(7, 7, 2)]


def test_other_examples_get_no_media_section(tmp_path):
    example = tf.train.Example(features=tf.train.Features(feature={"x": _ints(1)}))
    root = _write_examples(tmp_path / "examples", {"train": [example]})
    page = report.render_html(report.summarize(root))
    assert "<h2>Labels</h2>" not in page and "<h2>Images</h2>" not in page and "<h2>Text</h2>" not in page
