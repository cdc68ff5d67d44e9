"""The image folder source: features from headers (checked against Pillow and TensorFlow's
decoders), labels from paths, label maps stable across spans, clear errors on bad files."""

import json
import os

import pytest
from PIL import Image

from examplegen.errors import ConfigError, SourceError
from examplegen.sources import folders, images
from tests.helpers import REPO

SAMPLE = os.path.join(REPO, "examples", "data", "images")


def make_image(path, mode="RGB", size=(7, 5), fmt=None, **save):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.new(mode, size)
    if mode == "P":
        image.putpalette([i % 256 for i in range(768)])
    image.save(path, fmt, **save)
    return path


def read_all(files, options):
    rows = []
    for unit in images.plan("train", files, options).units:
        for batch in images.read(unit, options):
            rows.extend(batch.to_pylist())
    return rows


def sample_files():
    return sorted(os.path.join(d, n) for d, _, names in os.walk(SAMPLE) for n in names)


def test_sample_folder_features_match_pillow_and_tensorflow():
    import tensorflow as tf

    files = sample_files()
    options = images.ImageOptions().with_label_map(files)
    rows = read_all(files, options)
    assert len(rows) == len(files) == 18
    assert options.label_map == ("circle", "square", "triangle")
    for path, row in zip(files, rows):
        data = open(path, "rb").read()
        assert row["image/encoded"] == data  # never re-encoded
        with Image.open(path) as image:
            assert row["image/format"] == image.format.lower()
            assert (row["image/width"], row["image/height"]) == image.size
        decoded = tf.io.decode_image(data)
        assert tuple(decoded.shape) == (row["image/height"], row["image/width"], row["image/channels"])
        label = os.path.basename(os.path.dirname(path))
        assert row["image/class/text"] == label
        assert row["image/class/label"] == options.label_map.index(label)
        assert row["image/filename"] == os.path.basename(path)


@pytest.mark.parametrize("mode,fmt,transparency", [
    ("RGB", "PNG", None), ("RGBA", "PNG", None), ("LA", "PNG", None), ("L", "PNG", None),
    ("P", "PNG", None), ("P", "PNG", 0), ("1", "PNG", None), ("I;16", "PNG", None),
    ("RGB", "JPEG", None), ("L", "JPEG", None), ("RGB", "GIF", None), ("RGB", "BMP", None),
])
def test_channels_are_what_tensorflow_decodes(tmp_path, mode, fmt, transparency):
    import tensorflow as tf

    save = {"transparency": transparency} if transparency is not None else {}
    path = make_image(str(tmp_path / "x" / f"img.{fmt.lower()}"), mode, fmt=fmt, **save)
    info = images.image_info(open(path, "rb").read(), path)
    decoded = tf.io.decode_image(open(path, "rb").read(), expand_animations=False)
    assert tuple(decoded.shape) == (info.height, info.width, info.channels) == (5, 7, decoded.shape[2])


def test_not_an_image_is_an_error_naming_the_file(tmp_path):
    good = make_image(str(tmp_path / "cat" / "a.png"))
    bad = tmp_path / "cat" / "notes.jpg"
    bad.write_text("not an image")
    options = images.ImageOptions().with_label_map([good, str(bad)])
    with pytest.raises(SourceError, match=r"notes\.jpg: not a decodable image"):
        read_all([good, str(bad)], options)


def test_truncated_image_is_caught_by_decoding_and_passes_a_header_check(tmp_path):
    path = str(tmp_path / "cat" / "a.jpg")
    os.makedirs(os.path.dirname(path))
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(path, "JPEG")  # noise: data >> header
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"a\.jpg: not a decodable image"):
        read_all([path], images.ImageOptions().with_label_map([path]))
    rows = read_all([path], images.ImageOptions(verify="header").with_label_map([path]))
    assert rows[0]["image/width"] == 64


def test_formats_tensorflow_cannot_decode_are_refused_unless_listed(tmp_path):
    path = make_image(str(tmp_path / "cat" / "a.tiff"), fmt="TIFF")
    with pytest.raises(SourceError, match=r"a\.tiff: a TIFF image; accepted formats are jpeg, png, gif, bmp"):
        read_all([path], images.ImageOptions().with_label_map([path]))
    with pytest.raises(ConfigError, match="formats"):
        images.ImageOptions.from_dict({"formats": "jpeg,tiff"})
    assert images.ImageOptions.from_dict({"formats": "jpeg,png"}).formats == ("jpeg", "png")


def test_unlabelled_images_have_no_label_features(tmp_path):
    path = make_image(str(tmp_path / "x" / "a.png"))
    options = images.ImageOptions.from_dict({"labels": "false"}).with_label_map([path])
    rows = read_all([path], options)
    assert "image/class/label" not in rows[0] and options.label_map is None


def test_label_map_is_sorted_then_stable_when_labels_are_added(tmp_path):
    files = [make_image(str(tmp_path / label / "a.png")) for label in ("zebra", "cat")]
    first = images.ImageOptions().with_label_map(files)
    assert first.label_map == ("cat", "zebra")
    more = files + [make_image(str(tmp_path / label / "b.png")) for label in ("ant", "dog")]
    second = images.ImageOptions().with_label_map(more, first.label_map)
    assert second.label_map == ("cat", "zebra", "ant", "dog")  # old ids kept, new ones appended sorted
    ids = {row["image/class/text"]: row["image/class/label"] for row in read_all(more, second)}
    assert ids == {"cat": 0, "zebra": 1, "ant": 2, "dog": 3}


def test_a_given_label_map_wins_and_may_forbid_new_labels(tmp_path):
    files = [make_image(str(tmp_path / label / "a.png")) for label in ("cat", "dog")]
    given = images.ImageOptions.from_dict({"label_map": ["dog", "cat", "bird"]})
    assert given.with_label_map(files, ("cat",)).label_map == ("dog", "cat", "bird")
    strict = images.ImageOptions.from_dict({"label_map": '["dog"]', "new_labels": "error"})
    with pytest.raises(SourceError, match=r"label\(s\) not in the label map \['dog'\]: 'cat' \(.*cat/a\.png\)"):
        strict.with_label_map(files)


def test_label_map_from_a_file_or_an_artifact(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps(["b", "a"]))
    assert folders.load_label_map(str(tmp_path / "labels.json")) == ("b", "a")
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "examples_metadata.json").write_text(json.dumps({"label_map": json.dumps(["x", "y"])}))
    assert folders.load_label_map(str(artifact)) == ("x", "y")
    assert folders.previous_label_map(str(artifact)) == ("x", "y")
    with pytest.raises(ConfigError, match="more than once"):
        folders.load_label_map(["a", "a"])
    with pytest.raises(ConfigError, match="neither a JSON list"):
        folders.load_label_map(str(tmp_path / "missing.json"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "examples_metadata.json").write_text("{}")
    with pytest.raises(ConfigError, match="records no label map"):
        folders.load_label_map(str(empty))


def test_options_round_trip_and_reject_unknown_keys():
    options = images.ImageOptions.from_dict({"label_map": ["a"], "verify": "header"})
    assert images.ImageOptions.from_dict(options.to_dict()) == options
    with pytest.raises(ConfigError, match="images option 'colour' is unknown"):
        images.ImageOptions.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match="verify"):
        images.ImageOptions.from_dict({"verify": "maybe"})


def test_work_units_cover_every_file_in_order(tmp_path, monkeypatch):
    files = [make_image(str(tmp_path / "c" / f"{i}.png")) for i in range(5)]
    monkeypatch.setattr(images, "UNIT_FILES", 2)
    units = images.plan("train", files, images.ImageOptions()).units
    assert [len(u.files) for u in units] == [2, 2, 1]
    assert [f for u in units for f in u.files] == files

