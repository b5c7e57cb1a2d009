"""Composes the model card's grid: for each name in the names file, the real emoji of each style
beside the shipped model's image for `<style> <name>` (and, with --plain, its image for the plain
name), same seed per name.

  /usr/bin/python3 grid.py --jsonl /tmp/grid.jsonl                      # 1. the prompts
  deno task generate --batch /tmp/grid.jsonl --out-dir /tmp/grid      # 2. the images
  /usr/bin/python3 grid.py --generated /tmp/grid --out ../grid.png     # 3. the picture

Another model: --config its config.json (image size; the styles default to its first two),
--names its names file, --styles a comma list, --data its dataset folder; e.g. emoji-128:
  grid.py --config ../../emoji-128/recipe/config.json --names ../../emoji-128/recipe/grid_names.txt \\
    --styles google,twitter,fluent3d,openmoji --plain --data /work/data/emoji-128 ...
A style without that emoji gets a grey cell.
"""
import argparse
import json
import os

import numpy as np
from PIL import Image, ImageDraw

import models

HERE = os.path.dirname(os.path.abspath(__file__))


def names(path):
    return [n.strip() for n in open(path) if n.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/data")
    ap.add_argument("--config")
    ap.add_argument("--names", default=os.path.join(HERE, "grid_names.txt"))
    ap.add_argument("--styles", help="comma-separated (default: the config's first two)")
    ap.add_argument("--plain", action="store_true", help="also the plain name, without a style word")
    ap.add_argument("--jsonl")
    ap.add_argument("--generated")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "grid.png"))
    args = ap.parse_args()
    cfg = models.load_config(args.config)
    styles = args.styles.split(",") if args.styles else cfg["data"]["styles"][:2]
    ns = names(args.names)
    prompts = [(s, f"{s} {{}}") for s in styles] + ([("plain", "{}")] if args.plain else [])
    if args.jsonl:
        with open(args.jsonl, "w") as f:
            for i, n in enumerate(ns):
                for tag, p in prompts:
                    f.write(json.dumps({"id": f"{i:02d}-{tag}", "prompt": p.format(n), "seed": i}) + "\n")
        return
    d = np.load(os.path.join(args.data, "emoji.npz"))
    index = {c: i for i, c in enumerate(d["captions"])}
    cell = cfg["data"]["image_size"]
    cols = 2 * len(styles) + int(args.plain)  # per style: real | generated; then plain generated
    per_row = max(1, 1200 // (cols * cell + 8))
    rows = (len(ns) + per_row - 1) // per_row
    label_h = 12
    img = Image.new("RGB", (per_row * (cols * cell + 8), rows * (cell + label_h)), "white")
    draw = ImageDraw.Draw(img)
    for i, n in enumerate(ns):
        x0 = (i % per_row) * (cols * cell + 8)
        y0 = (i // per_row) * (cell + label_h)
        for k, (tag, p) in enumerate(prompts):
            if tag != "plain":
                j = index.get(p.format(n))
                real = Image.fromarray(d["images"][j]) if j is not None else Image.new("RGB", (cell, cell), "#ccc")
                img.paste(real, (x0 + 2 * k * cell, y0 + label_h))
            gen = Image.open(os.path.join(args.generated, f"{i:02d}-{tag}.png")).convert("RGB")
            img.paste(gen, (x0 + (2 * k + 1 if tag != "plain" else 2 * len(styles)) * cell, y0 + label_h))
        held = " (held out)" if "heldout" in d.files and d["heldout"][d["names"] == n].any() else ""
        draw.text((x0 + 2, y0), (n + held)[:60], fill=(0, 0, 0))
    img.save(args.out)
    print(f"{args.out}: {len(ns)} names; per name: " + " | ".join(
        f"real {t} | generated" if t != "plain" else "generated plain name" for t, _ in prompts))


if __name__ == "__main__":
    main()
