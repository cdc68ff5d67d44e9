"""Regenerate the image and text samples in examples/data/ (committed; a few KB in all).

    python examples/make_media_samples.py

- examples/data/images/<shape>/*.png|jpg: tiny drawings of circles, squares and
  triangles (24x24) in the PNG and JPEG modes an image folder meets (RGB, RGBA, palette,
  grayscale), labels from the folder names;
- examples/data/text/<sentiment>/*.txt: short reviews, labels from the folder names;
- examples/data/text_corpus/lines.txt.gz: an unlabelled corpus, one sentence per line.
"""

from __future__ import annotations

import gzip
import os
import shutil

from PIL import Image, ImageDraw

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SIZE = 24
COLORS = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (230, 180, 20)]
# (file name, Pillow mode, format) per image of a label
VARIANTS = [("a.png", "RGB", "PNG"), ("b.jpg", "RGB", "JPEG"), ("c.png", "RGBA", "PNG"),
            ("d.png", "P", "PNG"), ("e.jpg", "L", "JPEG"), ("f.png", "L", "PNG")]


def _draw(shape: str, color: tuple[int, int, int], offset: int) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE + offset % 3), (245, 245, 245))  # heights differ a little
    draw = ImageDraw.Draw(image)
    box = (4 + offset % 3, 4, SIZE - 4, SIZE - 4)
    if shape == "circle":
        draw.ellipse(box, fill=color)
    elif shape == "square":
        draw.rectangle(box, fill=color)
    else:
        draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=color)
    return image


def images() -> None:
    root = os.path.join(DATA, "images")
    shutil.rmtree(root, ignore_errors=True)
    for s, shape in enumerate(["circle", "square", "triangle"]):
        os.makedirs(os.path.join(root, shape))
        for i, (name, mode, fmt) in enumerate(VARIANTS):
            image = _draw(shape, COLORS[(s + i) % len(COLORS)], i)
            if mode == "RGBA":
                image = image.convert("RGBA")
                image.putalpha(Image.new("L", image.size, 200))
            elif mode == "P":
                image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
            else:
                image = image.convert(mode)
            options = {"quality": 80} if fmt == "JPEG" else {"optimize": True}
            image.save(os.path.join(root, shape, name), fmt, **options)


REVIEWS = {
    "pos": ["A warm, funny film. I would watch it again.",
            "Great acting and a clever plot.\nThe ending made the whole theatre cheer.",
            "Lovely music; the best film this year."],
    "neg": ["Too long and nothing happens.",
            "The plot made no sense.\nI left after an hour.\nSave your money."],
}
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Examples are written as gzip TFRecords.",
    "",
    "Caf\u00e9 au lait costs \u20ac3.",
    "Every span keeps its label map.",
    "Text corpora become one example per line or per file.",
]


def text() -> None:
    root = os.path.join(DATA, "text")
    shutil.rmtree(root, ignore_errors=True)
    for label, reviews in REVIEWS.items():
        os.makedirs(os.path.join(root, label))
        for i, review in enumerate(reviews):
            with open(os.path.join(root, label, f"{i}.txt"), "w", encoding="utf-8", newline="\n") as f:
                f.write(review + "\n")
    corpus = os.path.join(DATA, "text_corpus")
    shutil.rmtree(corpus, ignore_errors=True)
    os.makedirs(corpus)
    # mtime=0: the same bytes on every run
    with open(os.path.join(corpus, "lines.txt.gz"), "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(("\n".join(CORPUS) + "\n").encode("utf-8"))


if __name__ == "__main__":
    images()
    text()
    total = sum(os.path.getsize(os.path.join(d, n)) for sub in ("images", "text", "text_corpus")
                for d, _, names in os.walk(os.path.join(DATA, sub)) for n in names)
    print(f"wrote examples/data/images, text, text_corpus ({total:,} bytes)")
