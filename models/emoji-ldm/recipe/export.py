"""Exports the trained default model to an optimum-style ONNX folder (TorchScript exporter, opset 17,
module-path node names), then the project's own `deno task split` cuts and quantizes the UNet.

  /usr/bin/python3 export.py --work /work/data/run --out /work/data/export
  /usr/bin/python3 export.py --work /work/data/run --grid /tmp/grid.png   # quick look (DDIM-20, CFG 4)
  /usr/bin/python3 export.py --config C --random --data D --out DIR       # untrained weights: sizing

--config names another model's config (as train.py); --random exports the architecture with seeded
random weights and no run (no eval/, no preview), to measure its speed before any training.

Writes to --out: model_index.json, scheduler/, tokenizer/, text_encoder/model.onnx,
unet/model.onnx (monolithic, fp32; not shipped), vae_decoder/model.onnx + config.json,
vae_decoder/preview.json (a linear latent→RGB map for cheap previews), eval/classifier.onnx,
test_vectors/unet.json (inputs and torch outputs to check the split UNet against).
"""
import argparse
import base64
import json
import os

import numpy as np
import torch

import models
import train

SCHEDULER = {
    "_class_name": "DDIMScheduler",
    "num_train_timesteps": 1000,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "prediction_type": "v_prediction",
    "timestep_spacing": "trailing",
    "steps_offset": 0,
    "clip_sample": False,
    "set_alpha_to_one": False,
}


def load(work, vocab_size, cfg):
    """The run's networks with the UNet's and text encoder's EMA weights; work=None gives seeded
    random weights (every Transformer2D's zero-initialised proj_out too, so no block is a no-op)."""
    torch.manual_seed(0)
    unet = models.UNet2DConditionModel(cfg["unet"])
    text = models.CLIPTextModel(dict(cfg["text"], vocab_size=vocab_size))
    ae = models.AutoencoderKL(cfg["vae"])
    if work is None:
        for m in unet.modules():
            if isinstance(m, models.Transformer2DModel):
                torch.nn.init.normal_(m.proj_out.weight, std=0.02)
        return unet.eval(), text.eval(), ae.eval(), {"it": 0, "seconds": 0}
    s = torch.load(os.path.join(work, "unet.pt"))
    params = list(unet.parameters()) + list(text.parameters())
    with torch.no_grad():
        for p, e in zip(params, s["ema"]):
            p.copy_(e)
    ae.load_state_dict(torch.load(os.path.join(work, "ae.pt"))["model"])
    ft = os.path.join(work, "decoder_ft.pt")
    if os.path.exists(ft):  # the decoder fine-tuned on noisy latents (train.py decoder)
        ae.decoder.load_state_dict(torch.load(ft)["decoder"])
    return unet.eval(), text.eval(), ae.eval(), s


def shapes(cfg):
    """(latent side, image side, text tokens, text width) of a config."""
    return (cfg["unet"]["sample_size"], cfg["data"]["image_size"], cfg["data"]["max_tokens"],
            cfg["text"]["hidden_size"])


@torch.no_grad()
def sample(unet, text, ae, vocab, prompts, steps=20, cfg=4.0, seed=0, scale=1.0, latent=16, tokens=16):
    """DDIM (eta 0, trailing spacing) with CFG, v-prediction: a reference sampler for a quick look."""
    ac = train.alphas_cumprod().double()
    ts = np.round(np.arange(1000, 0, -1000 / steps)).astype(np.int64) - 1
    ids = torch.from_numpy(train.tokenize(prompts, vocab, tokens))
    empty = torch.from_numpy(train.tokenize([""] * len(prompts), vocab, tokens))
    ctx = torch.cat([text(empty), text(ids)])
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((len(prompts), 4, latent, latent), generator=g)
    for i, t in enumerate(ts):
        v = unet(torch.cat([x, x]), torch.tensor([int(t)]), ctx)
        vu, vc = v.chunk(2)
        v = vu + cfg * (vc - vu)
        a, s = ac[t].sqrt().float(), (1 - ac[t]).sqrt().float()
        x0 = a * x - s * v
        eps = s * x + a * v
        prev = ts[i + 1] if i + 1 < len(ts) else -1
        ap = ac[prev].float() if prev >= 0 else torch.tensor(1.0)
        x = ap.sqrt() * x0 + (1 - ap).sqrt() * eps
    img = ae.decoder(x / scale)
    return ((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def grid(work, data, out_png, cfg, prompts=None):
    from PIL import Image
    vocab = json.load(open(os.path.join(data, "vocab.json")))
    unet, text, ae, s = load(work, len(vocab), cfg)
    scale = json.load(open(os.path.join(work, "ae.json")))["scaling_factor"]
    latent, side, tokens, _ = shapes(cfg)
    styles = cfg["data"]["styles"]
    prompts = prompts or [f"{st} {n}" for n in GRID_NAMES for st in styles[:2]][:32]
    imgs = sample(unet, text, ae, vocab, prompts, scale=scale, latent=latent, tokens=tokens)
    g = Image.new("RGB", (8 * side, (len(imgs) + 7) // 8 * side), "white")
    for i, im in enumerate(imgs):
        g.paste(Image.fromarray(im), ((i % 8) * side, (i // 8) * side))
    g.save(out_png)
    print(f"grid of {len(imgs)} at iteration {s['it']} -> {out_png}")


GRID_NAMES = [
    "grinning face", "red apple", "dog face", "cat face", "pizza", "rocket", "heavy black heart",
    "sun with face", "banana", "automobile", "house building", "ghost", "thumbs up sign",
    "birthday cake", "snowman", "tiger face",
]


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.float32).tobytes()).decode()


def export(work, data, out, cfg):
    """work=None: the architecture with random weights (`load`), no eval/ and no preview."""
    vocab = json.load(open(os.path.join(data, "vocab.json")))
    unet, text, ae, s = load(work, len(vocab), cfg)
    aej = json.load(open(os.path.join(work, "ae.json"))) if work else {"scaling_factor": 1.0,
                                                                        "reconstruction_mae_255": None}
    latent, side, tokens, width = shapes(cfg)
    styles = cfg["data"]["styles"]
    for sub in ("scheduler", "tokenizer", "text_encoder", "unet", "vae_decoder", "test_vectors"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    kw = dict(opset_version=17, do_constant_folding=True)
    torch.manual_seed(0)
    sample_in = torch.randn(2, 4, latent, latent)
    t_in = torch.tensor([500], dtype=torch.int64)
    ctx_in = torch.randn(2, tokens, width)
    torch.onnx.export(unet, (sample_in, t_in, ctx_in), os.path.join(out, "unet", "model.onnx"),
                      input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                      dynamic_axes={"sample": {0: "batch"}, "encoder_hidden_states": {0: "batch"},
                                    "out_sample": {0: "batch"}}, **kw)
    ids = torch.from_numpy(train.tokenize([f"{styles[0]} red apple", ""], vocab, tokens)).int()
    torch.onnx.export(text, (ids,), os.path.join(out, "text_encoder", "model.onnx"), input_names=["input_ids"],
                      output_names=["last_hidden_state"], dynamic_axes={"input_ids": {0: "batch"},
                                                                        "last_hidden_state": {0: "batch"}}, **kw)
    torch.onnx.export(models.VaeDecoderExport(ae), (torch.randn(1, 4, latent, latent),),
                      os.path.join(out, "vae_decoder", "model.onnx"), input_names=["latent_sample"],
                      output_names=["sample"], dynamic_axes={"latent_sample": {0: "batch"}, "sample": {0: "batch"}},
                      **kw)
    cls_path = os.path.join(work, "classifier.pt") if work else ""
    if os.path.exists(cls_path):
        cs = torch.load(cls_path)
        net = models.EmojiClassifier(cs["model"]["head.weight"].shape[0], cfg["classifier"]["channels"])
        net.load_state_dict(cs["model"])
        net.eval()
        os.makedirs(os.path.join(out, "eval"), exist_ok=True)
        torch.onnx.export(net, (torch.randn(1, 3, side, side),), os.path.join(out, "eval", "classifier.onnx"),
                          input_names=["images"], output_names=["logits", "features"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
                          **kw)
        # features of real images: 2048 reference images and 256 held out (the real-vs-real floor);
        # the held-out captions are the benchmark's prompts
        d = np.load(os.path.join(data, "emoji.npz"))
        pick = np.random.default_rng(7).permutation(len(d["images"]))[:2304]
        x = torch.from_numpy(d["images"][pick]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        with torch.no_grad():
            feats = torch.cat([net(x[i:i + 256])[1] for i in range(0, len(x), 256)]).numpy()
        feats.astype(np.float32).tofile(os.path.join(out, "eval", "real_features.f32"))
        classes = (d["category_names"].tolist() if "category_names" in d.files
                   else __import__("dataset").CATEGORIES)
        extra = {k: d[k][pick].tolist() for k in ("plain_captions", "heldout") if k in d.files}
        json.dump({"classes": classes, "input": f"RGB {side}x{side} in [-1, 1], NCHW",
                   "heldout_accuracy": cs["heldout_accuracy"], "iterations": cs["it"],
                   "features": {"file": "real_features.f32", "count": len(pick), "dim": int(feats.shape[1]),
                                "reference": 2048, "holdout": 256},
                   "labels": d["categories"][pick].tolist(), "captions": d["captions"][pick].tolist(), **extra},
                  open(os.path.join(out, "eval", "config.json"), "w"), indent=1)
    # test vectors: the monolithic torch UNet on fixed inputs
    with torch.no_grad():
        ref = unet(sample_in, torch.tensor([500]), ctx_in)
        ids2 = torch.from_numpy(train.tokenize([f"{styles[-1]} red apple", ""], vocab, tokens)).int()
        tref = text(ids2)
    json.dump({
        "unet": {"sample": {"shape": list(sample_in.shape), "data": b64(sample_in)}, "timestep": 500,
                 "encoder_hidden_states": {"shape": list(ctx_in.shape), "data": b64(ctx_in)},
                 "out_sample": {"shape": list(ref.shape), "data": b64(ref)}},
        "text_encoder": {"input_ids": ids2.numpy().tolist(), "last_hidden_state": {"shape": list(tref.shape),
                                                                                  "data": b64(tref)}},
    }, open(os.path.join(out, "test_vectors", "vectors.json"), "w"))
    if work:
        # preview: least-squares linear map latent (4, scaled) -> RGB of the downsampled image, fitted
        # on at most 2^21 latent pixels (all of the default model's; 2,048 of emoji-128's images)
        d = np.load(os.path.join(data, "emoji.npz"))
        n = len(d["images"])
        cap = 2 ** 21 // (latent * latent)
        sub = np.arange(n) if n <= cap else np.sort(np.random.default_rng(3).permutation(n)[:cap])
        f = side // latent
        lat = np.load(os.path.join(work, "latents.npy"))[sub] * aej["scaling_factor"]
        imgs = d["images"][sub].reshape(-1, latent, f, latent, f, 3).mean(axis=(2, 4)) / 127.5 - 1.0
        X = np.concatenate([lat.transpose(0, 2, 3, 1).reshape(-1, 4), np.ones((lat.shape[0] * latent * latent, 1))],
                           axis=1)
        W, *_ = np.linalg.lstsq(X, imgs.reshape(-1, 3), rcond=None)
        json.dump({"weights": W[:4].T.tolist(), "bias": W[4].tolist(),
                   "note": "rgb[c] = sum_k weights[c][k] * latent[k] + bias[c], in [-1, 1]"},
                  open(os.path.join(out, "vae_decoder", "preview.json"), "w"), indent=1)
    json.dump({"_class_name": "AutoencoderKL", "scaling_factor": aej["scaling_factor"], "latent_channels": 4,
               "sample_size": side, "reconstruction_mae_255": aej["reconstruction_mae_255"]},
              open(os.path.join(out, "vae_decoder", "config.json"), "w"), indent=2)
    json.dump(SCHEDULER, open(os.path.join(out, "scheduler", "scheduler_config.json"), "w"), indent=2)
    json.dump(vocab, open(os.path.join(out, "tokenizer", "vocab.json"), "w"))
    json.dump({"tokenizer_class": "WordTokenizer", "model_max_length": tokens, "bos_token": "<|startoftext|>",
               "eos_token": "<|endoftext|>", "pad_token": "<pad>", "unk_token": "<unk>"},
              open(os.path.join(out, "tokenizer", "tokenizer_config.json"), "w"), indent=2)
    json.dump({"_class_name": "OnnxStableDiffusionPipeline", "_name_or_path": cfg["name"],
               "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["onnx", "CLIPTextModel"],
               "tokenizer": ["blockcache", "WordTokenizer"], "unet": ["blockcache", "BlockSplitUNet"],
               "vae_decoder": ["onnx", "AutoencoderKL"], "sample_size": side, "latent_size": latent,
               "training": {"iterations": s["it"], "minutes": round(s.get("seconds", 0) / 60, 1)}},
              open(os.path.join(out, "model_index.json"), "w"), indent=2)
    n_unet = sum(p.numel() for p in unet.parameters())
    n_text = sum(p.numel() for p in text.parameters())
    n_dec = sum(p.numel() for p in ae.decoder.parameters())
    print(f"exported: unet {n_unet} params, text {n_text}, vae decoder {n_dec}; iteration {s['it']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/work/data/run")
    ap.add_argument("--data", default="/work/data")
    ap.add_argument("--out")
    ap.add_argument("--grid")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", help="the model's config JSON (default: emoji-ldm's)")
    ap.add_argument("--random", action="store_true", help="export untrained (seeded random) weights")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = models.load_config(args.config)
    if args.grid:
        grid(args.work, args.data, args.grid, cfg)
    if args.out:
        export(None if args.random else args.work, args.data, args.out, cfg)


if __name__ == "__main__":
    main()
