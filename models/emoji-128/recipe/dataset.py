"""Builds emoji-128's training set from the ten colour emoji sets published on npm as Iconify JSON,
rasterised at 128x128 on white with librsvg (Debian `librsvg2-bin`: `rsvg-convert`).

  /usr/bin/python3 models/emoji-128/recipe/dataset.py fetch --data /work/data/emoji-128
  /usr/bin/python3 models/emoji-128/recipe/dataset.py build --data /work/data/emoji-128 [--jobs 2]
  /usr/bin/python3 models/emoji-128/recipe/dataset.py subset --data /work/data/emoji-128 \\
      --out /work/data/emoji-128-toy --count 512                     # a small copy for toy runs

fetch: `npm pack` of every pinned package into --data/npm, unpacked; refuses a package whose
declared licence (package.json and the Iconify info) is not the one recorded in SETS, or not one
that allows training and redistributing derived work (ALLOWED).

build: joins every icon to one Unicode emoji (by code point where the set lists them, else by its
CLDR name, the sets' aliases, the Unicode name or a short name of emoji-datasource's emoji.json,
which also gives the category), renders it (cached in --data/raster/), and writes --data/:
  emoji.npz   images (N,128,128,3) uint8, captions "<style> <name>", plain_captions "<name>",
              names, categories (index into category_names), styles (index into style_names),
              heldout (bool: the name is never trained on), category_names, style_names
  vocab.json  the word-level vocabulary of every caption (held-out names' words included)
  heldout_names.txt, sources.json (per set: package, version, licence, attribution, counts)

Dropped: icons no emoji matches (their set's category is kept only where it is unambiguous),
country and subdivision flags (near-identical rectangles), the five skin-tone swatches, two-person
skin-tone combinations, and skin-tone variants but one per emoji and set (--tones one; `none` or
`all` to change). Held out: about 10% of the names without skin tone (a fixed hash), with their
skin-tone variants, only names whose every word also occurs in a trained name, so that a held-out
name is a new combination of known words.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

SIZE = 128
# style word, npm package, version, licence (SPDX), attribution
SETS = [
    ("google", "@iconify-json/noto", "1.2.9", "Apache-2.0", "Noto Emoji, Google Inc. (googlefonts/noto-emoji)"),
    ("blob", "@iconify-json/noto-v1", "1.2.5", "Apache-2.0", "Noto Emoji v1 (blob), Google Inc. (googlefonts/noto-emoji)"),
    ("twitter", "@iconify-json/twemoji", "1.2.5", "CC-BY-4.0",
     "Twemoji graphics by Twitter, Inc. and other contributors (jdecked/twemoji), CC-BY-4.0"),
    ("openmoji", "@iconify-json/openmoji", "1.2.29", "CC-BY-SA-4.0",
     "OpenMoji, the open-source emoji and icon project (hfg-gmuend/openmoji), CC-BY-SA-4.0"),
    ("fluent", "@iconify-json/fluent-emoji-flat", "1.2.6", "MIT", "Fluent Emoji Flat, Microsoft Corporation"),
    ("fluent3d", "@iconify-json/fluent-emoji", "1.2.7", "MIT", "Fluent Emoji (3D), Microsoft Corporation"),
    ("emojione", "@iconify-json/emojione", "1.2.3", "CC-BY-4.0",
     "Emoji One 2.3 by Emoji One (EmojiTwo/emojitwo), CC-BY-4.0"),
    ("emojionev1", "@iconify-json/emojione-v1", "1.2.3", "CC-BY-SA-4.0",
     "Emoji One 1.5 by Emoji One (joypixels/emojione-legacy), CC-BY-SA-4.0"),
    ("firefox", "@iconify-json/fxemoji", "1.2.2", "Apache-2.0", "Firefox OS Emoji, Mozilla (mozilla/fxemoji)"),
    ("streamline", "@iconify-json/streamline-emojis", "1.2.4", "CC-BY-4.0",
     "Streamline Emojis by Streamline (webalys-hq/streamline-vectors), CC-BY-4.0"),
]
# names, code points, categories and skin-tone structure only (emoji.json); no images are used
METADATA = ("emoji-datasource-google", "16.0.0", "MIT")
# licences that allow training on the images and publishing the model and its images (with
# attribution; ShareAlike for CC-BY-SA, see the model card)
ALLOWED = {"Apache-2.0", "MIT", "CC-BY-4.0", "CC-BY-SA-4.0"}
CATEGORIES = [
    "Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
    "Activities", "Objects", "Symbols", "Flags",
]
# the sets' own category names (Iconify metadata.json), where one maps to one of CATEGORIES
SET_CATEGORIES = {
    "Activities": "Activities", "Activity": "Activities", "Animals & Nature": "Animals & Nature",
    "Animals Nature": "Animals & Nature", "Nature": "Animals & Nature", "Food & Drink": "Food & Drink",
    "Food Drink": "Food & Drink", "Food": "Food & Drink", "Objects": "Objects", "People & Body": "People & Body",
    "People Body": "People & Body", "Smileys & Emotion": "Smileys & Emotion", "Smileys Emotion": "Smileys & Emotion",
    "Symbols": "Symbols", "Travel & Places": "Travel & Places", "Travel Places": "Travel & Places",
    "Travel": "Travel & Places", "Places": "Travel & Places",
}
# names are words of these sets' CLDR icon names, in this order of preference
NAMING_SETS = ["noto", "twemoji", "fluent-emoji-flat", "openmoji"]
TONES = {"1F3FB": "light", "1F3FC": "medium-light", "1F3FD": "medium", "1F3FE": "medium-dark", "1F3FF": "dark"}
SPECIAL = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"]
HELDOUT_SHARE = 0.10
TONE_SUFFIX = r"-(light|medium-light|medium|medium-dark|dark)-skin-tone$"


def folder(package, version):
    return package.replace("@", "").replace("/", "-") + "-" + version


def package_dir(data, package, version):
    return os.path.join(data, "npm", folder(package, version), "package")


def set_id(package):
    return package.split("/")[-1]


def fetch(args):
    npm = os.path.join(args.data, "npm")
    os.makedirs(npm, exist_ok=True)
    for _, package, version, licence, _ in SETS + [(None, METADATA[0], METADATA[1], METADATA[2], None)]:
        dest = os.path.join(npm, folder(package, version))
        if not os.path.isdir(os.path.join(dest, "package")):
            out = subprocess.run(["npm", "pack", "--silent", f"{package}@{version}"], cwd=npm, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            os.makedirs(dest, exist_ok=True)
            with tarfile.open(os.path.join(npm, out)) as t:
                t.extractall(dest)
            os.remove(os.path.join(npm, out))
        check_licence(args.data, package, version, licence)
        print(f"{package}@{version}: {licence}")


def check_licence(data, package, version, licence):
    """Exits unless the package declares `licence` (package.json, and the Iconify info.json where
    there is one) and `licence` is in ALLOWED."""
    pkg = package_dir(data, package, version)
    if not os.path.exists(os.path.join(pkg, "package.json")):
        sys.exit(f"dataset: {pkg} is missing: run `dataset.py fetch --data {data}` first")
    declared = {json.load(open(os.path.join(pkg, "package.json"))).get("license")}
    info = os.path.join(pkg, "info.json")
    if os.path.exists(info):
        declared.add(json.load(open(info))["license"]["spdx"])
    if declared != {licence} or licence not in ALLOWED:
        sys.exit(f"dataset: {package}@{version} declares {sorted(declared)}, recorded {licence} "
                 f"(allowed: {sorted(ALLOWED)})")


def key(codepoints):
    """A code point sequence ("1F44B-1F3FD", "2764-FE0F") without variation selectors."""
    return "-".join(c for c in codepoints.upper().split("-") if c != "FE0F")


def squash(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


def kebab(text):
    return "-".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


class Catalogue:
    """Every Unicode emoji by key: its base emoji, skin tones, category, subcategory and CLDR name;
    and every name an icon set may use for it."""

    def __init__(self, data):
        meta = json.load(open(os.path.join(package_dir(data, *METADATA[:2]), "emoji.json")))
        self.emoji = {}  # key -> (base key, tones tuple, category, subcategory)
        aliases = {}
        for e in meta:
            k = key(e["unified"])
            self.emoji[k] = (k, (), e["category"], e["subcategory"])
            for tk, v in (e.get("skin_variations") or {}).items():
                self.emoji[key(v["unified"])] = (k, tuple(tk.split("-")), e["category"], e["subcategory"])
            for n in [e.get("name") or ""] + e.get("short_names", []):
                if n:
                    aliases.setdefault(kebab(n), k)
        self.name = {}  # key -> CLDR kebab name
        self.by_name = {}  # kebab name -> key
        for s in NAMING_SETS:
            pkg = self.pkg(data, s)
            for cp, n in json.load(open(os.path.join(pkg, "chars.json"))).items():
                k = key(cp)
                self.name.setdefault(k, n)
                self.by_name.setdefault(n, k)
        for s in [x[1] for x in SETS]:  # the sets' own aliases: old CLDR names -> current ones
            icons = json.load(open(os.path.join(self.pkg(data, set_id(s)), "icons.json")))
            for a, v in icons.get("aliases", {}).items():
                if v.get("parent") in self.by_name and set(v) == {"parent"}:
                    aliases.setdefault(a, self.by_name[v["parent"]])
        for n, k in aliases.items():
            self.by_name.setdefault(n, k)
        self.by_squashed = {}
        for n, k in self.by_name.items():
            self.by_squashed.setdefault(squash(n), k)

    @staticmethod
    def pkg(data, sid):
        s = next(x for x in SETS if set_id(x[1]) == sid)
        return package_dir(data, s[1], s[2])

    def match(self, sid, icon, chars):
        """The key of an icon of set `sid`, or None."""
        k = chars.get(icon)
        if k is None:
            k = self.by_name.get(icon)
        if k is None and sid == "fluent-emoji":  # "man-wrestling-medium-dark": tone without "-skin-tone"
            m = re.match(r"(.*)-(light|medium-light|medium|medium-dark|dark)$", icon)
            if m:
                k = self.by_name.get(f"{m[1]}-{m[2]}-skin-tone")
        if k is None and sid == "fxemoji":  # "alarmclock": names without separators
            k = self.by_squashed.get(icon)
        return k


def words(kebab_name):
    return " ".join(kebab_name.replace("-", " ").split())


def stable_hash(text):
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16)


def catalogue_items(data, tones):
    """One row per kept icon: (style index, set id, icon name, name words, category index, base
    name words: the name without its skin tone); and per set the counts of kept and dropped icons
    with the reasons."""
    cat = Catalogue(data)
    rows, stats = [], {}
    for si, (style, package, version, licence, _) in enumerate(SETS):
        sid = set_id(package)
        pkg = package_dir(data, package, version)
        icons = json.load(open(os.path.join(pkg, "icons.json")))
        meta_path = os.path.join(pkg, "metadata.json")
        set_cat = {}
        if os.path.exists(meta_path):
            for c, names in json.load(open(meta_path)).get("categories", {}).items():
                for n in names:
                    set_cat.setdefault(n, c)
        chars = {}
        chars_path = os.path.join(pkg, "chars.json")
        if os.path.exists(chars_path):
            chars = {n: key(cp) for cp, n in json.load(open(chars_path)).items()}
        st = {"kept": 0, "dropped": {}}
        toned = {}  # base key -> tone variants of this set
        kept = []
        for icon, body in icons["icons"].items():
            if body.get("hidden"):
                continue
            k = cat.match(sid, icon, chars)
            reason = None
            if k is not None and k in cat.emoji:
                base, tone, category, sub = cat.emoji[k]
                if category == "Component":
                    reason = "skin-tone swatch"
                elif sub in ("country-flag", "subdivision-flag"):
                    reason = "country flag"
                elif len(tone) > 1:
                    reason = "two-person skin tones"
                else:
                    name = cat.name.get(k) or icon
                    item = (si, sid, icon, words(name), CATEGORIES.index(category), words(cat.name.get(base) or name))
                    if tone:
                        toned.setdefault(base, []).append(item)
                    else:
                        kept.append(item)
            elif SET_CATEGORIES.get(set_cat.get(icon)) and (k is not None or sid != "fxemoji"):
                # newer than emoji.json (k), or no emoji of that name (its own name, without a
                # number suffix), and the set's category is unambiguous
                name = cat.name.get(k) if k is not None else re.sub(r"-\d+$", "", icon)
                base = re.sub(TONE_SUFFIX, "", name)
                item = (si, sid, icon, words(name), CATEGORIES.index(SET_CATEGORIES[set_cat[icon]]), words(base))
                if name.count("skin-tone") > 1:
                    reason = "two-person skin tones"
                elif base != name:
                    toned.setdefault(base, []).append(item)
                else:
                    kept.append(item)
            else:
                reason = "no emoji matches the name" if k is None else "not in emoji.json"
            if reason:
                st["dropped"][reason] = st["dropped"].get(reason, 0) + 1
        for base, items in toned.items():
            items.sort(key=lambda it: it[2])
            if tones == "all":
                kept += items
            elif tones == "one":
                kept.append(items[stable_hash(f"{sid}/{base}") % len(items)])
            st["dropped"]["skin-tone variants"] = st["dropped"].get("skin-tone variants", 0) + (
                0 if tones == "all" else len(items) - (tones == "one"))
        st["kept"] = len(kept)
        stats[style] = st
        rows += kept
    return rows, stats


def hold_out(names):
    """About HELDOUT_SHARE of the distinct names, chosen by a fixed hash, each only if all its words
    remain in some trained name."""
    counts = {}
    for n in names:
        for w in set(n.split()):
            counts[w] = counts.get(w, 0) + 1
    held = set()
    for n in sorted(names, key=lambda n: stable_hash(n)):
        if len(held) >= round(HELDOUT_SHARE * len(names)):
            break
        if all(counts[w] > 1 for w in set(n.split())):
            held.add(n)
            for w in set(n.split()):
                counts[w] -= 1
    return held


def svg(icons, icon):
    b = icons["icons"][icon]
    box = [b.get(k, icons.get(k, d)) for k, d in (("left", 0), ("top", 0), ("width", 16), ("height", 16))]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{SIZE}" '
            f'height="{SIZE}" viewBox="{" ".join(str(v) for v in box)}">{b["body"]}</svg>')


def render(data, sid, icons, icon):
    """The icon as (SIZE, SIZE, 3) uint8 on white, or None where librsvg fails on it (one in
    thousands: a filter it refuses); the PNG is cached in --data/raster/<set>/."""
    path = os.path.join(data, "raster", sid, icon + ".png")
    if not os.path.exists(path):
        r = subprocess.run(["rsvg-convert", "--background-color", "white"], input=svg(icons, icon).encode(),
                           capture_output=True)
        if r.returncode:
            print(f"rsvg-convert failed on {sid}/{icon} (dropped): {r.stderr.decode().strip()[:200]}")
            return None
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as f:
            f.write(r.stdout)
        os.replace(path + ".tmp", path)
    img = Image.open(path).convert("RGB")
    if img.size != (SIZE, SIZE):
        raise RuntimeError(f"{path}: {img.size}, not {SIZE}x{SIZE}")
    return np.asarray(img, dtype=np.uint8)


def build(args):
    for _, package, version, licence, _ in SETS + [(None, METADATA[0], METADATA[1], METADATA[2], None)]:
        check_licence(args.data, package, version, licence)
    rows, stats = catalogue_items(args.data, args.tones)
    icons = {set_id(p): json.load(open(os.path.join(package_dir(args.data, p, v), "icons.json")))
             for _, p, v, _, _ in SETS}
    with ThreadPoolExecutor(args.jobs) as pool:
        images = list(pool.map(lambda r: render(args.data, r[1], icons[r[1]], r[2]), rows))
    for r, img in zip(rows, images):
        if img is None:
            dropped = stats[SETS[r[0]][0]]
            dropped["kept"] -= 1
            dropped["dropped"]["renderer failed"] = dropped["dropped"].get("renderer failed", 0) + 1
    rows = [r for r, img in zip(rows, images) if img is not None]
    images = [img for img in images if img is not None]
    names, bases = [r[3] for r in rows], [r[5] for r in rows]
    held = hold_out(sorted(set(bases)))
    captions = [f"{SETS[r[0]][0]} {r[3]}" for r in rows]
    vocab = {w: i for i, w in enumerate(SPECIAL)}
    for c in captions:
        for w in c.split():
            vocab.setdefault(w, len(vocab))
    out = os.path.join(args.data, "emoji.npz")
    np.savez(out + ".tmp.npz", images=np.stack(images), captions=np.array(captions), plain_captions=np.array(names),
             names=np.array(names), categories=np.array([r[4] for r in rows], dtype=np.int64),
             styles=np.array([r[0] for r in rows], dtype=np.int64),
             heldout=np.array([b in held for b in bases]), category_names=np.array(CATEGORIES),
             style_names=np.array([s[0] for s in SETS]))
    os.replace(out + ".tmp.npz", out)
    json.dump(vocab, open(os.path.join(args.data, "vocab.json"), "w"), indent=0)
    with open(os.path.join(args.data, "heldout_names.txt"), "w") as f:
        f.write("\n".join(sorted(held)) + "\n")
    sources = [{"style": s, "package": p, "version": v, "licence": lic, "attribution": a, **stats[s]}
               for s, p, v, lic, a in SETS]
    sources.append({"package": METADATA[0], "version": METADATA[1], "licence": METADATA[2],
                    "use": "emoji.json: names, code points, categories (no images)"})
    n_held = int(sum(b in held for b in bases))
    json.dump({"renderer": renderer(), "size": SIZE, "tones": args.tones, "images": len(rows),
               "names": len(set(names)), "base_names": len(set(bases)), "heldout_names": len(held),
               "heldout_images": n_held, "words": len(vocab), "sets": sources},
              open(os.path.join(args.data, "sources.json"), "w"), indent=1)
    print(f"{len(rows)} images, {len(set(names))} names, {len(set(bases))} without skin tones "
          f"({len(held)} held out with their skin tones: {n_held} images), {len(vocab)} words, "
          f"max caption {max(len(c.split()) for c in captions)} words")
    for s in SETS:
        print(f"  {s[0]:11s} {stats[s[0]]['kept']:5d} kept, dropped {stats[s[0]]['dropped']}")


def renderer():
    return subprocess.run(["rsvg-convert", "--version"], capture_output=True, text=True).stdout.strip()


def subset(args):
    """A smaller copy of the dataset for toy runs: `count` images at fixed random positions (the
    held-out ones among them stay held out), the same vocabulary."""
    if not os.path.exists(os.path.join(args.data, "emoji.npz")):
        sys.exit(f"dataset subset: {args.data}/emoji.npz is missing: run `dataset.py build` first")
    d = np.load(os.path.join(args.data, "emoji.npz"))
    pick = np.sort(np.random.default_rng(0).permutation(len(d["captions"]))[:args.count])
    os.makedirs(args.out, exist_ok=True)
    arrays = {k: (d[k][pick] if k not in ("category_names", "style_names") else d[k]) for k in d.files}
    np.savez(os.path.join(args.out, "emoji.npz"), **arrays)
    with open(os.path.join(args.data, "vocab.json")) as src, open(os.path.join(args.out, "vocab.json"), "w") as dst:
        dst.write(src.read())
    print(f"{len(pick)} images -> {args.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["fetch", "build", "subset"])
    ap.add_argument("--data", default="/work/data/emoji-128")
    ap.add_argument("--jobs", type=int, default=2, help="rsvg-convert processes at once")
    ap.add_argument("--tones", choices=["none", "one", "all"], default="one",
                    help="skin-tone variants kept per emoji and set")
    ap.add_argument("--out", help="subset: the folder to write")
    ap.add_argument("--count", type=int, default=512, help="subset: images")
    args = ap.parse_args()
    if args.command == "subset" and not args.out:
        sys.exit("dataset subset: --out is required")
    {"fetch": fetch, "build": build, "subset": subset}[args.command](args)


if __name__ == "__main__":
    main()
