"""Packs the prepared dataset small enough to travel to a GPU machine, and unpacks it there.

  /usr/bin/python3 carry_data.py pack /work/data/emoji.npz /work/data/vocab.json .train
  /usr/bin/python3 carry_data.py pack DATA/emoji.npz DATA/vocab.json .train128 --colors 128
  python3 carry_data.py unpack .train /tmp/data          # -> /tmp/data/emoji.npz, vocab.json

Default (the default model's 64 px set): the images go into one lossless WebP mosaic (14 MB
instead of 17: the device tool carries at most 64 MiB). With --colors N (emoji-128's 128 px set,
49 MiB as lossless WebP): each image is reduced to at most N colours by libimagequant without
dithering (white stays white) and stored as its own lossless WebP, all in one array of bytes
(images.npz: `webp` and `offsets`); at N = 128 that is about 2 KB an image, 39-62 dB PSNR. The
captions and labels go into a compressed npz. Unpacking checks the image count.
"""
import io
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image

COLS = 84


def pack(src_npz, vocab, out_dir, colors=None):
    d = np.load(src_npz)
    images = d["images"]
    n, h, w, _ = images.shape
    os.makedirs(out_dir, exist_ok=True)
    if colors is None:
        rows = (n + COLS - 1) // COLS
        mosaic = np.zeros((rows * h, COLS * w, 3), np.uint8)
        for i in range(n):
            r, c = divmod(i, COLS)
            mosaic[r * h:(r + 1) * h, c * w:(c + 1) * w] = images[i]
        Image.fromarray(mosaic).save(os.path.join(out_dir, "images.webp"), lossless=True, quality=100, method=6)
    else:
        blobs = []
        for x in images:
            im = Image.fromarray(x).quantize(colors, method=Image.Quantize.LIBIMAGEQUANT, dither=Image.Dither.NONE)
            b = io.BytesIO()
            im.save(b, "WEBP", lossless=True, method=6)
            blobs.append(np.frombuffer(b.getvalue(), np.uint8))
        offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        np.savez(os.path.join(out_dir, "images.npz"), webp=np.concatenate(blobs), offsets=offsets)
    labels = {k: d[k] for k in d.files if k != "images"}
    np.savez_compressed(os.path.join(out_dir, "labels.npz"), count=np.array([n, h, w]), **labels)
    shutil.copy(vocab, os.path.join(out_dir, "vocab.json"))
    size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print(f"packed {n} images into {out_dir}: {size / 2**20:.1f} MiB")


def unpack(in_dir, out_dir):
    labels = np.load(os.path.join(in_dir, "labels.npz"))
    n, h, w = (int(v) for v in labels["count"])
    if os.path.exists(os.path.join(in_dir, "images.npz")):
        z = np.load(os.path.join(in_dir, "images.npz"))
        webp, off = z["webp"], z["offsets"]
        images = np.stack([np.asarray(Image.open(io.BytesIO(webp[off[i]:off[i + 1]].tobytes())).convert("RGB"))
                           for i in range(len(off) - 1)])
    else:
        mosaic = np.asarray(Image.open(os.path.join(in_dir, "images.webp")).convert("RGB"))
        images = np.stack([mosaic[(i // COLS) * h:(i // COLS + 1) * h, (i % COLS) * w:(i % COLS + 1) * w]
                           for i in range(n)])
    # per-image arrays; the *_names arrays are the label sets (category and style names)
    rest = {k: labels[k] for k in labels.files if k != "count"}
    if len(images) != n or images.shape[1:3] != (h, w) or any(
            len(v) != n for k, v in rest.items() if not k.endswith("_names")):
        sys.exit("carry_data: labels and images disagree in count or size")
    os.makedirs(out_dir, exist_ok=True)
    np.savez(os.path.join(out_dir, "emoji.npz"), images=images, **rest)
    shutil.copy(os.path.join(in_dir, "vocab.json"), os.path.join(out_dir, "vocab.json"))
    json.load(open(os.path.join(out_dir, "vocab.json")))
    print(f"unpacked {n} images into {out_dir}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 6 and a[0] == "pack" and a[4] == "--colors" and a[5].isdigit() and 2 <= int(a[5]) <= 256:
        pack(*a[1:4], colors=int(a[5]))
    elif len(a) == 4 and a[0] == "pack":
        pack(*a[1:])
    elif len(a) == 3 and a[0] == "unpack":
        unpack(*a[1:])
    else:
        sys.exit(__doc__)
