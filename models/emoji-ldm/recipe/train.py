"""Trains the default model in stages; every stage logs, checkpoints and resumes.

  /usr/bin/python3 train.py ae --minutes 10          # autoencoder, then encodes the dataset
  /usr/bin/python3 train.py decoder --minutes 20     # decoder fine-tune on noisy latents (encoder frozen)
  /usr/bin/python3 train.py unet --minutes 90        # UNet + text encoder (v-prediction, CFG dropout, EMA)
  /usr/bin/python3 train.py classifier --minutes 4   # evaluation network (category classifier)
  /usr/bin/python3 train.py pack                     # every stage's final weights -> weights.npz
  /usr/bin/python3 train.py unpack                   # weights.npz -> the stages' files, latents

pack/unpack carry a run between machines (gpu_train.sh trains on a GPU machine and packs; unpack
rebuilds ae.pt, decoder_ft.pt, unet.pt (EMA weights), classifier.pt and latents.npy here) as plain
numpy arrays, so the two machines' torch versions need not match.

Work files live in --work (default /work/data/run), never in the repository. Uses CUDA when present.
--config names another model's config (models/emoji-128/recipe/config.json; default: emoji-ldm's,
models.DEFAULT_CONFIG); the first stage writes it to --work/config.json and every later stage
refuses a different one. The dataset may carry `heldout` (names never trained on: the autoencoder
and UNet skip them, the classifier does not) and `plain_captions` (the caption without its style
word; else a leading style word of the config is taken off), used for the config's `style_drop`
share of UNet samples (config-style-drop.json: the default model retrained so plain names work).
"""
import argparse
import contextlib
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import models

SEED = 1234
BETAS = {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02, "num_train_timesteps": 1000}
MAX_TOKENS = 16
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def log(work, msg):
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    print(line, flush=True)
    with open(os.path.join(work, "train.log"), "a") as f:
        f.write(line + "\n")


def save_atomic(obj, path):
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_data(data):
    d = np.load(os.path.join(data, "emoji.npz"))
    vocab = json.load(open(os.path.join(data, "vocab.json")))
    return d, vocab


def train_indices(d):
    """The images the autoencoder and the UNet learn from: all but the held-out names' images."""
    n = len(d["captions"])
    return np.flatnonzero(~d["heldout"]) if "heldout" in d.files else np.arange(n)


def resolve_config(args):
    """The run's model config: --config (or the default model's), which must match the one an
    earlier stage wrote to --work/config.json."""
    cfg = models.load_config(args.config)
    path = os.path.join(args.work, "config.json")
    if os.path.exists(path):
        if json.load(open(path)) != json.loads(json.dumps(cfg)):
            raise SystemExit(f"train: {args.work} was made with another config than "
                             f"{args.config or 'the default'} (see {path})")
    else:
        json.dump(cfg, open(path + ".tmp", "w"), indent=1)
        os.replace(path + ".tmp", path)
    return cfg


def autocast(args):
    """bf16 autocast on CUDA when --amp bf16 (GroupNorm and attention included on torch 2.x); a
    no-op otherwise (torch 1.13's CPU autocast fails on GroupNorm)."""
    on = DEVICE == "cuda" and args.amp == "bf16"
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=on) if on else contextlib.nullcontext()


def tokenize(captions, vocab, max_tokens=MAX_TOKENS):
    """Word-level: <|startoftext|> words <|endoftext|>, padded with <pad> to max_tokens."""
    ids = np.full((len(captions), max_tokens), vocab["<pad>"], dtype=np.int64)
    for i, c in enumerate(captions):
        toks = [vocab["<|startoftext|>"]] + [vocab.get(w, vocab["<unk>"]) for w in c.split()]
        toks = toks[: max_tokens - 1] + [vocab["<|endoftext|>"]]
        ids[i, : len(toks)] = toks
    return ids


def plain_captions(d, cfg):
    """Each caption without its style word: the dataset's `plain_captions`, else the caption with a
    leading word from the config's styles taken off (the default model's "google red apple")."""
    if "plain_captions" in d.files:
        return list(d["plain_captions"])
    styles = set(cfg["data"]["styles"])
    return [c.split(" ", 1)[1] if c.split(" ", 1)[0] in styles and " " in c else c for c in d["captions"]]


def resume(ck, opt, **modules):
    """Loads a stage's checkpoint `ck` into `modules` (checkpoint key -> module) and `opt` (when it
    holds optimizer state: after `unpack` it does not, and the optimizer starts afresh); returns
    the checkpoint, or None when there is none yet."""
    if not os.path.exists(ck):
        return None
    s = torch.load(ck, map_location=DEVICE)
    for key, module in modules.items():
        module.load_state_dict(s[key])
    if s.get("opt"):
        opt.load_state_dict(s["opt"])
    return s


def images_tensor(d):
    """All images as uint8 NCHW (converted to [-1, 1] per batch by `unit`: 128 px images as float
    would take 4x the memory)."""
    return torch.from_numpy(d["images"]).permute(0, 3, 1, 2).contiguous()


def unit(x):
    """uint8 images -> float in [-1, 1]."""
    return x.float() / 127.5 - 1.0


# ------------------------------------------------------------------ autoencoder
def train_ae(args):
    d, _ = load_data(args.data)
    x_all = images_tensor(d).to(DEVICE)
    pool = torch.from_numpy(train_indices(d))
    ae = models.AutoencoderKL(args.cfg["vae"]).to(DEVICE)
    opt = torch.optim.AdamW(ae.parameters(), lr=1e-3, weight_decay=0.0)
    ck = os.path.join(args.work, "ae.pt")
    s = resume(ck, opt, model=ae)
    it = s["it"] if s else 0
    if s:
        log(args.work, f"ae: resumed at {it}")
    g = torch.Generator().manual_seed(SEED + it)
    start = time.time()
    while time.time() - start < args.minutes * 60 and it < args.max_iters:
        idx = pool[torch.randint(0, len(pool), (args.batch or 32,), generator=g)]
        x = unit(x_all[idx.to(DEVICE)])
        with autocast(args):
            z = ae.encoder(x)
            rec = ae.decoder(z)
        z, rec = z.float(), rec.float()
        loss = (rec - x).abs().mean() + 0.5 * F.mse_loss(rec, x) + 1e-4 * z.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
        if it % 50 == 0:
            log(args.work, f"ae it {it} loss {loss.item():.4f}")
        if it % 500 == 0:
            save_atomic({"model": ae.state_dict(), "opt": opt.state_dict(), "it": it}, ck)
    save_atomic({"model": ae.state_dict(), "opt": opt.state_dict(), "it": it}, ck)
    encode_dataset(args.work, ae, x_all, it, pool)


@torch.no_grad()
def encode_dataset(work, ae, x_all, it, pool):
    """Writes latents.npy (every image's) and ae.json (latent scaling factor and reconstruction
    error, both over the training images `pool`)."""
    ae.eval()
    lat = torch.cat([ae.encoder(unit(x_all[i:i + 256].to(DEVICE))).cpu() for i in range(0, len(x_all), 256)])
    err = 0.0
    for i in range(0, len(pool), 256):
        j = pool[i:i + 256]
        err += float((ae.decoder(lat[j].to(DEVICE)).cpu() - unit(x_all[j.to(x_all.device)].cpu())).abs().sum())
    scale = float(1.0 / lat[pool].std())
    mae = err / (len(pool) * x_all[0].numel()) * 127.5
    np.save(os.path.join(work, "latents.npy"), lat.numpy())
    json.dump({"scaling_factor": scale, "reconstruction_mae_255": mae, "iterations": it},
              open(os.path.join(work, "ae.json"), "w"))
    log(work, f"ae done: {it} its, scaling_factor {scale:.4f}, reconstruction MAE {mae:.2f}/255")


def train_decoder(args):
    """Fine-tunes the decoder (encoder frozen, so the UNet's latents stay valid) to decode noisy
    latents to clean images: sampled latents are never exact, and an unregularised decoder turns
    small latent errors into speckles."""
    d, _ = load_data(args.data)
    x_all = images_tensor(d)
    pool = torch.from_numpy(train_indices(d))
    lat = torch.from_numpy(np.load(os.path.join(args.work, "latents.npy")))
    scale = json.load(open(os.path.join(args.work, "ae.json")))["scaling_factor"]
    ae = models.AutoencoderKL(args.cfg["vae"]).to(DEVICE)
    ae.load_state_dict(torch.load(os.path.join(args.work, "ae.pt"), map_location=DEVICE)["model"])
    ck = os.path.join(args.work, "decoder_ft.pt")
    opt = torch.optim.AdamW(ae.decoder.parameters(), lr=2e-4, weight_decay=0.0)
    s = resume(ck, opt, decoder=ae.decoder)
    it = s["it"] if s else 0
    g = torch.Generator().manual_seed(SEED + 7 + it)
    start, batch = time.time(), args.batch or 32
    while time.time() - start < args.minutes * 60 and it < args.max_iters:
        idx = pool[torch.randint(0, len(pool), (batch,), generator=g)]
        z = lat[idx]
        # noise of up to 0.3 in the UNet's (scaled) latent units
        sigma = torch.rand((batch, 1, 1, 1), generator=g) * 0.3 / scale
        z = z + sigma * torch.randn(z.shape, generator=g)
        x = unit(x_all[idx].to(DEVICE))
        with autocast(args):
            rec = ae.decoder(z.to(DEVICE))
        rec = rec.float()
        loss = (rec - x).abs().mean() + 0.5 * F.mse_loss(rec, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
        if it % 50 == 0:
            log(args.work, f"decoder it {it} loss {loss.item():.4f}")
    save_atomic({"decoder": ae.decoder.state_dict(), "opt": opt.state_dict(), "it": it}, ck)
    log(args.work, f"decoder fine-tune done: {it} its")


# ------------------------------------------------------------------ diffusion
def alphas_cumprod():
    b = torch.linspace(BETAS["beta_start"], BETAS["beta_end"], BETAS["num_train_timesteps"], dtype=torch.float64)
    return torch.cumprod(1 - b, 0).float()


def train_unet(args):
    d, vocab = load_data(args.data)
    cfg, n_tok = args.cfg, args.cfg["data"]["max_tokens"]
    pool = torch.from_numpy(train_indices(d))
    lat = torch.from_numpy(np.load(os.path.join(args.work, "latents.npy")))
    scale = json.load(open(os.path.join(args.work, "ae.json")))["scaling_factor"]
    lat = (lat * scale).to(DEVICE)
    ids_all = torch.from_numpy(tokenize(list(d["captions"]), vocab, n_tok))
    style_drop = cfg["data"]["style_drop"]
    ids_plain = torch.from_numpy(tokenize(plain_captions(d, cfg), vocab, n_tok)) if style_drop else None
    empty = torch.from_numpy(tokenize([""], vocab, n_tok))[0]
    torch.manual_seed(SEED)
    unet = models.UNet2DConditionModel(cfg["unet"]).to(DEVICE)
    text = models.CLIPTextModel(dict(cfg["text"], vocab_size=len(vocab))).to(DEVICE)
    params = list(unet.parameters()) + list(text.parameters())
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, **({"fused": True} if DEVICE == "cuda" else {}))
    ck = os.path.join(args.work, "unet.pt")
    it, spent = 0, 0.0
    s = resume(ck, opt, unet=unet, text=text)
    if s:
        ema = s["ema"]
        it, spent = s["it"], s.get("seconds", 0.0)
        log(args.work, f"unet: resumed at {it} ({spent / 60:.1f} min)")
    ac = alphas_cumprod().to(DEVICE)
    g = torch.Generator().manual_seed(SEED + it)
    start, last_save, avg = time.time(), time.time(), None

    def checkpoint():
        save_atomic({"unet": unet.state_dict(), "text": text.state_dict(), "opt": opt.state_dict(), "ema": ema,
                     "it": it, "seconds": spent + time.time() - start, "vocab_size": len(vocab)}, ck)

    batch = args.batch or 32
    while time.time() - start < args.minutes * 60 and it < args.max_iters:
        idx = pool[torch.randint(0, len(pool), (batch,), generator=g)]
        x0 = lat[idx.to(DEVICE)]
        ids = ids_all[idx].clone()
        if style_drop:
            plain = torch.rand(batch, generator=g) < style_drop
            ids[plain] = ids_plain[idx[plain]]
        drop = torch.rand(batch, generator=g) < cfg["data"]["caption_drop"]
        ids[drop] = empty
        t = torch.randint(0, BETAS["num_train_timesteps"], (batch,), generator=g).to(DEVICE)
        noise = torch.randn(x0.shape, generator=g).to(DEVICE)
        a = ac[t].sqrt()[:, None, None, None]
        s = (1 - ac[t]).sqrt()[:, None, None, None]
        xt = a * x0 + s * noise
        v = a * noise - s * x0
        with autocast(args):
            pred = unet(xt, t, text(ids.to(DEVICE)))
        loss = F.mse_loss(pred.float(), v)
        lr = args.lr * min(1.0, (it + 1) / 200)
        for pg in opt.param_groups:
            pg["lr"] = lr
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        it += 1
        decay = min(args.ema, (1 + it) / (10 + it))
        with torch.no_grad():
            torch._foreach_mul_(ema, decay)
            torch._foreach_add_(ema, [p.detach() for p in params], alpha=1 - decay)
        if it % (250 if DEVICE == "cuda" else 25) == 0:  # reading the loss waits for the GPU
            avg = loss.item() if avg is None else 0.6 * avg + 0.4 * loss.item()
            el = spent + time.time() - start
            log(args.work, f"unet it {it} loss {avg:.4f} lr {lr:.2e} {el / 60:.1f} min")
        if time.time() - last_save > 300:
            checkpoint()
            last_save = time.time()
    checkpoint()
    log(args.work, f"unet: stopped at {it}")


# ------------------------------------------------------------------ evaluation network
def classifier(cfg, d):
    """The evaluation network for the dataset's categories (`category_names`, else the default 9)."""
    classes = len(d["category_names"]) if "category_names" in d.files else 9
    return models.EmojiClassifier(classes, cfg["classifier"]["channels"])


def train_classifier(args):
    d, _ = load_data(args.data)
    x_all = images_tensor(d)
    y_all = torch.from_numpy(d["categories"])
    torch.manual_seed(SEED)
    net = classifier(args.cfg, d).to(DEVICE)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    # fixed split: every 10th image is held out
    hold = torch.arange(len(x_all)) % 10 == 0
    xtr, ytr, xte, yte = x_all[~hold], y_all[~hold], x_all[hold], y_all[hold]
    g = torch.Generator().manual_seed(SEED)
    start, it = time.time(), 0
    while time.time() - start < args.minutes * 60 and it < args.max_iters:
        idx = torch.randint(0, len(xtr), (args.batch or 64,), generator=g)
        x = unit(xtr[idx])
        # light augmentation: small shifts, so generated images slightly off-centre still classify
        dx, dy = [int(v) for v in torch.randint(-3, 4, (2,), generator=g)]
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        logits, _ = net(x.to(DEVICE))
        loss = F.cross_entropy(logits, ytr[idx].to(DEVICE))
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
        if it % 50 == 0:
            log(args.work, f"classifier it {it} loss {loss.item():.4f}")
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(unit(xte[i:i + 256]).to(DEVICE))[0].argmax(1).cpu() for i in range(0, len(xte), 256)])
        acc = float((pred == yte).float().mean())
    save_atomic({"model": net.state_dict(), "it": it, "heldout_accuracy": acc}, os.path.join(args.work, "classifier.pt"))
    log(args.work, f"classifier done: {it} its, held-out accuracy {acc:.3f}")


# ------------------------------------------------------------------ moving a run between machines
def pack(args):
    """Every stage's final weights (the UNet's and text encoder's EMA) as numpy arrays in one file."""
    w, arrays = args.work, {}
    meta = {"device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu", "config": args.cfg}
    ae = torch.load(os.path.join(w, "ae.pt"), map_location="cpu")
    arrays.update({f"ae/{k}": v.numpy() for k, v in ae["model"].items()})
    meta["ae"] = dict(json.load(open(os.path.join(w, "ae.json"))), iterations=ae["it"])
    if os.path.exists(os.path.join(w, "decoder_ft.pt")):
        dec = torch.load(os.path.join(w, "decoder_ft.pt"), map_location="cpu")
        arrays.update({f"decoder/{k}": v.numpy() for k, v in dec["decoder"].items()})
        meta["decoder_iterations"] = dec["it"]
    s = torch.load(os.path.join(w, "unet.pt"), map_location="cpu")
    unet = models.UNet2DConditionModel(args.cfg["unet"])
    text = models.CLIPTextModel(dict(args.cfg["text"], vocab_size=s["vocab_size"]))
    unet.load_state_dict(s["unet"]), text.load_state_dict(s["text"])
    with torch.no_grad():
        for p, e in zip(list(unet.parameters()) + list(text.parameters()), s["ema"]):
            p.copy_(e)
    arrays.update({f"unet/{k}": v.numpy() for k, v in unet.state_dict().items()})
    arrays.update({f"text/{k}": v.numpy() for k, v in text.state_dict().items()})
    meta.update(unet_iterations=s["it"], unet_seconds=s.get("seconds", 0.0), vocab_size=s["vocab_size"])
    if os.path.exists(os.path.join(w, "classifier.pt")):
        c = torch.load(os.path.join(w, "classifier.pt"), map_location="cpu")
        arrays.update({f"classifier/{k}": v.numpy() for k, v in c["model"].items()})
        meta["classifier"] = {"iterations": c["it"], "heldout_accuracy": c["heldout_accuracy"]}
    np.savez(os.path.join(w, "weights.npz.tmp.npz"), meta=np.array(json.dumps(meta)), **arrays)
    os.replace(os.path.join(w, "weights.npz.tmp.npz"), os.path.join(w, "weights.npz"))
    log(w, f"packed {len(arrays)} arrays: {json.dumps(meta)}")


def unpack(args):
    """Rebuilds the stages' files from weights.npz (no optimizer state), and the dataset's latents."""
    w = args.work
    z = np.load(os.path.join(w, "weights.npz"))
    meta = json.loads(str(z["meta"]))
    if "config" in meta and meta["config"] != json.loads(json.dumps(args.cfg)):
        raise SystemExit(f"train unpack: {w}/weights.npz was trained with another config than "
                         f"{args.config or 'the default'}")

    def part(prefix):
        return {k[len(prefix) + 1:]: torch.from_numpy(z[k]) for k in z.files if k.startswith(prefix + "/")}

    save_atomic({"model": part("ae"), "it": meta["ae"]["iterations"]}, os.path.join(w, "ae.pt"))
    if "decoder_iterations" in meta:
        save_atomic({"decoder": part("decoder"), "it": meta["decoder_iterations"]}, os.path.join(w, "decoder_ft.pt"))
    unet = models.UNet2DConditionModel(args.cfg["unet"])
    text = models.CLIPTextModel(dict(args.cfg["text"], vocab_size=meta["vocab_size"]))
    unet.load_state_dict(part("unet")), text.load_state_dict(part("text"))
    ema = [p.detach().clone() for p in list(unet.parameters()) + list(text.parameters())]
    save_atomic({"unet": unet.state_dict(), "text": text.state_dict(), "ema": ema, "it": meta["unet_iterations"],
                 "seconds": meta["unet_seconds"], "vocab_size": meta["vocab_size"]}, os.path.join(w, "unet.pt"))
    if "classifier" in meta:
        save_atomic({"model": part("classifier"), "it": meta["classifier"]["iterations"],
                     "heldout_accuracy": meta["classifier"]["heldout_accuracy"]}, os.path.join(w, "classifier.pt"))
    ae = models.AutoencoderKL(args.cfg["vae"]).to(DEVICE)
    ae.load_state_dict(part("ae"))
    d, _ = load_data(args.data)
    encode_dataset(w, ae, images_tensor(d), meta["ae"]["iterations"], torch.from_numpy(train_indices(d)))
    log(w, f"unpacked: {json.dumps(meta)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["ae", "decoder", "unet", "classifier", "pack", "unpack"])
    ap.add_argument("--data", default="/work/data")
    ap.add_argument("--work", default="/work/data/run")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--max-iters", type=int, default=10**9)
    ap.add_argument("--batch", type=int, default=None, help="default 32 (classifier 64)")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", help="the model's config JSON (default: emoji-ldm's, models.DEFAULT_CONFIG)")
    ap.add_argument("--amp", choices=["none", "bf16"], default="none", help="bf16 autocast on CUDA")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    args.cfg = resolve_config(args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    stages = {"ae": train_ae, "decoder": train_decoder, "unet": train_unet, "classifier": train_classifier,
              "pack": pack, "unpack": unpack}
    stages[args.stage](args)


if __name__ == "__main__":
    main()
