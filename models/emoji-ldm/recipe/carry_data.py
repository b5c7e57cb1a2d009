"""Packs the prepared dataset small enough to travel to a GPU machine, and unpacks it there.

  /usr/bin/python3 carry_data.py pack /work/data/emoji.npz /work/data/vocab.json .train
  python3 carry_data.py unpack .train /tmp/data          # -> /tmp/data/emoji.npz, vocab.json

The images go into one lossless WebP mosaic (14 MB instead of 17: the device tool carries at most
64 MiB), the captions and labels into a compressed npz. Unpacking checks the image count.
"""
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image

COLS = 84


def pack(src_npz, vocab, out_dir):
    d = np.load(src_npz)
    images = d["images"]
    n, h, w, _ = images.shape
    rows = (n + COLS - 1) // COLS
    mosaic = np.zeros((rows * h, COLS * w, 3), np.uint8)
    for i in range(n):
        r, c = divmod(i, COLS)
        mosaic[r * h:(r + 1) * h, c * w:(c + 1) * w] = images[i]
    os.makedirs(out_dir, exist_ok=True)
    Image.fromarray(mosaic).save(os.path.join(out_dir, "images.webp"), lossless=True, quality=100, method=6)
    labels = {k: d[k] for k in d.files if k != "images"}
    np.savez_compressed(os.path.join(out_dir, "labels.npz"), count=np.array([n, h, w]), **labels)
    shutil.copy(vocab, os.path.join(out_dir, "vocab.json"))
    print(f"packed {n} images into {out_dir}")


def unpack(in_dir, out_dir):
    labels = np.load(os.path.join(in_dir, "labels.npz"))
    n, h, w = (int(v) for v in labels["count"])
    mosaic = np.asarray(Image.open(os.path.join(in_dir, "images.webp")).convert("RGB"))
    images = np.stack([mosaic[(i // COLS) * h:(i // COLS + 1) * h, (i % COLS) * w:(i % COLS + 1) * w]
                       for i in range(n)])
    rest = {k: labels[k] for k in labels.files if k != "count"}
    if any(len(v) != n for v in rest.values()):
        sys.exit("carry_data: labels and images disagree in count")
    os.makedirs(out_dir, exist_ok=True)
    np.savez(os.path.join(out_dir, "emoji.npz"), images=images, **rest)
    shutil.copy(os.path.join(in_dir, "vocab.json"), os.path.join(out_dir, "vocab.json"))
    json.load(open(os.path.join(out_dir, "vocab.json")))
    print(f"unpacked {n} images into {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "pack":
        pack(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "unpack":
        unpack(*sys.argv[2:])
    else:
        sys.exit(__doc__)
