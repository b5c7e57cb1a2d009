"""Builds the training set from the npm emoji tarballs (see the model card for licences).

Usage: /usr/bin/python3 dataset.py --data /work/data
Expects `npm pack emoji-datasource-google@16.0.0 emoji-datasource-twitter@16.0.0` unpacked in
--data (each tarball into a folder named after it). Writes --data/emoji.npz: images (N,64,64,3)
uint8 composited on white, captions, category ids, style ids; and --data/vocab.json.
"""
import argparse
import json
import os
import re

import numpy as np
from PIL import Image

STYLES = {"google": "emoji-datasource-google-16.0.0", "twitter": "emoji-datasource-twitter-16.0.0"}
TONES = {
    "1F3FB": "light skin tone",
    "1F3FC": "medium light skin tone",
    "1F3FD": "medium skin tone",
    "1F3FE": "medium dark skin tone",
    "1F3FF": "dark skin tone",
}
CATEGORIES = [
    "Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
    "Activities", "Objects", "Symbols", "Flags",
]
SPECIAL = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"]


def words(text):
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def emoji_name(e):
    return " ".join(words(e.get("name") or e["short_name"].replace("_", " ")))


def load_png(path):
    img = Image.open(path).convert("RGBA").resize((64, 64), Image.BICUBIC)
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, img).convert("RGB"), dtype=np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/data")
    args = ap.parse_args()
    images, captions, cats, styles = [], [], [], []
    for style_id, (style, folder) in enumerate(STYLES.items()):
        pkg = os.path.join(args.data, folder, "package")
        meta = json.load(open(os.path.join(pkg, "emoji.json")))
        for e in meta:
            if e["category"] not in CATEGORIES or not e.get(f"has_img_{style}"):
                continue
            variants = [(e["image"], "")]
            for key, v in (e.get("skin_variations") or {}).items():
                if key in TONES and v.get(f"has_img_{style}"):
                    variants.append((v["image"], TONES[key]))
            for image, tone in variants:
                path = os.path.join(pkg, "img", style, "64", image)
                if not os.path.exists(path):
                    continue
                images.append(load_png(path))
                captions.append(" ".join(filter(None, [style, emoji_name(e), tone])))
                cats.append(CATEGORIES.index(e["category"]))
                styles.append(style_id)
    vocab = {w: i for i, w in enumerate(SPECIAL)}
    for c in captions:
        for w in c.split():
            vocab.setdefault(w, len(vocab))
    np.savez_compressed(
        os.path.join(args.data, "emoji.npz"), images=np.stack(images), captions=np.array(captions),
        categories=np.array(cats, dtype=np.int64), styles=np.array(styles, dtype=np.int64),
    )
    json.dump(vocab, open(os.path.join(args.data, "vocab.json"), "w"), indent=0)
    print(f"{len(images)} images, {len(vocab)} words, max caption {max(len(c.split()) for c in captions)} words")


if __name__ == "__main__":
    main()
