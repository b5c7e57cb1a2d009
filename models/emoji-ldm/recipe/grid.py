"""Composes the model card's grid: for each name in grid_names.txt, the real Noto (google) and
Twemoji (twitter) emoji beside the shipped model's images for the same captions.

  deno task generate --batch /tmp/grid.jsonl --out-dir /tmp/grid      # written by --jsonl below
  /usr/bin/python3 grid.py --jsonl /tmp/grid.jsonl                      # 1. the prompts
  /usr/bin/python3 grid.py --generated /tmp/grid --out ../grid.png     # 2. the picture
"""
import argparse
import json
import os

import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))


def names():
    return [n.strip() for n in open(os.path.join(HERE, "grid_names.txt")) if n.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/data")
    ap.add_argument("--jsonl")
    ap.add_argument("--generated")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "grid.png"))
    args = ap.parse_args()
    if args.jsonl:
        with open(args.jsonl, "w") as f:
            for i, n in enumerate(names()):
                for style in ("google", "twitter"):
                    f.write(json.dumps({"id": f"{i:02d}-{style}", "prompt": f"{style} {n}", "seed": i}) + "\n")
        return
    d = np.load(os.path.join(args.data, "emoji.npz"))
    caps = list(d["captions"])
    ns = names()
    cols = 4  # real google, generated google, real twitter, generated twitter
    per_row = 3
    cell = 64
    rows = (len(ns) + per_row - 1) // per_row
    label_h = 12
    img = Image.new("RGB", (per_row * (cols * cell + 8), rows * (cell + label_h)), "white")
    draw = ImageDraw.Draw(img)
    for i, n in enumerate(ns):
        x0 = (i % per_row) * (cols * cell + 8)
        y0 = (i // per_row) * (cell + label_h)
        for k, style in enumerate(("google", "twitter")):
            real = d["images"][caps.index(f"{style} {n}")]
            gen = Image.open(os.path.join(args.generated, f"{i:02d}-{style}.png")).convert("RGB")
            img.paste(Image.fromarray(real), (x0 + (2 * k) * cell, y0 + label_h))
            img.paste(gen, (x0 + (2 * k + 1) * cell, y0 + label_h))
        draw.text((x0 + 2, y0), n[:40], fill=(0, 0, 0))
    img.save(args.out)
    print(f"{args.out}: {len(ns)} names; per name: real google | generated | real twitter | generated")


if __name__ == "__main__":
    main()
