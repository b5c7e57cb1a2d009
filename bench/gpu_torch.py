"""PyTorch reference timing for `bench/gpu_engine.sh`: the default model's UNet as its own recipe
defines it (models/emoji-ldm/recipe/models.py, UNET_CONFIG, the shipped size), random weights,
one guided image per evaluation (batch 2: sample [2, 4, 16, 16], timestep [1], context [2, 16, 128]).

Rows (milliseconds per UNet evaluation, median):
- eager, uncached: `unet(sample, t, ctx)` then `torch.cuda.synchronize()`;
- eager, cached: the same under a shipped schedule's recompute table (schedules/emoji-ldm): an
  attention block (Transformer2DModel, named like the split manifest's blocks) that the schedule
  reuses at a step returns its stored residual plus its input, as the engine's residual mode does;
  the figure is the mean over the schedule's steps;
- CUDA graphs, uncached and cached: the same captured with `torch.cuda.CUDAGraph` (one graph per
  distinct recompute row; inputs copied into the graph's static tensors, residuals stored into
  static buffers inside the graph), replayed.
Without CUDA (a CPU-only torch, as on the development machine) the eager rows run on the CPU and
the graph rows are skipped, so the script can be checked anywhere.

    python3 bench/gpu_torch.py [--schedule dpm-20-delta-0.16] [--evals 50] [--dtype float32]
        [--out FILE.json]
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models", "emoji-ldm", "recipe"))
import models  # noqa: E402  (the recipe's own model definition)


def attention_blocks(unet):
    """The Transformer2DModel modules by their split-manifest names (`down_blocks.0.attentions.0`)."""
    return {name: m for name, m in unet.named_modules() if isinstance(m, models.Transformer2DModel)}


class Cacheable(torch.nn.Module):
    """Wraps a Transformer2DModel: computes and stores its residual, or reuses the stored one."""

    def __init__(self, block):
        super().__init__()
        self.block = block
        self.reuse = False
        self.residual = None

    def forward(self, x, context):
        if self.reuse and self.residual is not None:
            return self.residual + x
        r = self.block(x, context) - x
        if self.residual is None:
            self.residual = r.detach().clone()
        else:
            self.residual.copy_(r)
        return r + x


def wrap_blocks(unet):
    """Replaces every attention block with a Cacheable wrapper; returns them by name."""
    wrapped = {}
    for name in list(attention_blocks(unet)):
        parent_name, _, child = name.rpartition(".")
        parent = unet.get_submodule(parent_name)
        w = Cacheable(parent[int(child)] if child.isdigit() else getattr(parent, child))
        if child.isdigit():
            parent[int(child)] = w
        else:
            setattr(parent, child, w)
        wrapped[name] = w
    return wrapped


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, n, device):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schedule", default="dpm-20-delta-0.16",
                    help="a shipped schedule of schedules/emoji-ldm (file name without .json)")
    ap.add_argument("--evals", type=int, default=50, help="timed evaluations per row")
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    ap.add_argument("--out", help="write the result as JSON here")
    args = ap.parse_args()
    if args.evals < 1:
        ap.error("--evals must be at least 1")
    path = os.path.join(ROOT, "schedules", "emoji-ldm", args.schedule + ".json")
    try:
        with open(path) as f:
            schedule = json.load(f)
    except OSError as e:
        ap.error(f"--schedule: cannot read {path} ({e.strerror})")

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    unet = models.UNet2DConditionModel().eval()
    params = sum(p.numel() for p in unet.parameters())
    blocks = wrap_blocks(unet)
    names = schedule["blocks"]
    if sorted(names) != sorted(blocks):
        sys.exit(f"gpu_torch: schedule blocks {names} do not match the model's {sorted(blocks)}")
    unet = unet.to(device=device, dtype=dtype)
    cfg = models.UNET_CONFIG
    size = cfg["sample_size"]
    sample = torch.randn(2, cfg["in_channels"], size, size, device=device, dtype=dtype)
    timestep = torch.tensor([500], device=device)
    context = torch.randn(2, 16, cfg["cross_attention_dim"], device=device, dtype=dtype)
    table = schedule["recompute"]

    def set_row(row):
        for name, compute in zip(names, row):
            blocks[name].reuse = not compute

    rows = {}
    with torch.inference_mode():
        # eager, uncached
        set_row([True] * len(names))
        for _ in range(5):
            unet(sample, timestep, context)
        sync(device)
        rows["eager"] = statistics.median(timed(lambda: unet(sample, timestep, context), args.evals, device))
        # eager, cached: one pass over the schedule per repetition
        reps = max(1, args.evals // len(table))
        per_step = []
        for _ in range(reps + 1):
            times = []
            for row in table:
                set_row(row)
                times += timed(lambda: unet(sample, timestep, context), 1, device)
            per_step.append(statistics.mean(times))
        rows["eager_cached"] = statistics.median(per_step[1:])

        if cuda:
            static_in = (sample.clone(), timestep.clone(), context.clone())
            graphs = {}

            def graph_for(row):
                key = tuple(bool(c) for c in row)
                if key not in graphs:
                    set_row(row)
                    s = torch.cuda.Stream()
                    s.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(s):
                        for _ in range(3):
                            unet(*static_in)
                    torch.cuda.current_stream().wait_stream(s)
                    g = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g):
                        out = unet(*static_in)
                    graphs[key] = (g, out)
                return graphs[key][0]

            def replay(row):
                static_in[0].copy_(sample)
                graph_for(row).replay()

            full = [True] * len(names)
            graph_for(full)
            for row in table:
                graph_for(row)
            rows["cuda_graph"] = statistics.median(timed(lambda: replay(full), args.evals, device))
            per_step = []
            for _ in range(reps + 1):
                times = []
                for row in table:
                    times += timed(lambda: replay(row), 1, device)
                per_step.append(statistics.mean(times))
            rows["cuda_graph_cached"] = statistics.median(per_step[1:])

    result = {
        "bench": "gpu_torch",
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "dtype": args.dtype,
        "unet_params": params,
        "batch": 2,
        "schedule": args.schedule,
        "skipped_fraction": schedule["skippedFraction"],
        "evals": args.evals,
        "ms_per_eval": {k: round(v, 3) for k, v in rows.items()},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
