"""The recipe's networks, named like diffusers/transformers modules so that `torch.onnx.export`
gives Stable-Diffusion-shaped node names (`/down_blocks.0/attentions.0/...`).

Every size comes from a model config: the constants below are the default model's (emoji-ldm);
another model's recipe passes its own JSON file to `load_config` (models/emoji-128/recipe/config.json).

Written for torch 1.13 (no SDPA): attention is spelled out, which also exports cleanly; on torch
2.x (the GPU machine) training uses `F.scaled_dot_product_attention`, the same function.
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------- configuration
UNET_CONFIG = {
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [32, 64, 64],
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "layers_per_block": 1,
    "cross_attention_dim": 128,
    "attention_head_dim": 32,
    "norm_num_groups": 16,
    "ff_mult": 2,
}
TEXT_CONFIG = {"vocab_size": 1800, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "max_position_embeddings": 16, "intermediate_size": 256}
VAE_CONFIG = {"in_channels": 3, "latent_channels": 4, "block_out_channels": [16, 32, 64], "norm_num_groups": 8}
CLASSIFIER_CONFIG = {"channels": [32, 64, 96, 128]}
# How the default model was trained and is exported: image side, caption layout, grid styles.
DATA_CONFIG = {"image_size": 64, "max_tokens": 16, "styles": ["google", "twitter"], "style_drop": 0.0,
               "caption_drop": 0.1}
DEFAULT_CONFIG = {"name": "emoji-ldm", "unet": UNET_CONFIG, "text": TEXT_CONFIG, "vae": VAE_CONFIG,
                  "classifier": CLASSIFIER_CONFIG, "data": DATA_CONFIG}


def load_config(path=None):
    """The default model's config with the sections of the JSON file at `path` laid over it, key by
    key (a section the file leaves out stays the default's). Checks that the image side is the
    latent side times the autoencoder's factor."""
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_CONFIG.items()}
    if path:
        for k, v in json.load(open(path)).items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
    side = cfg["unet"]["sample_size"] * vae_factor(cfg["vae"])
    if side != cfg["data"]["image_size"]:
        raise ValueError(f"config: latent {cfg['unet']['sample_size']} x VAE factor {vae_factor(cfg['vae'])} "
                         f"is {side}, not the image size {cfg['data']['image_size']}")
    return cfg


def vae_factor(vae_cfg):
    """The autoencoder's downsampling factor: one stride-2 convolution per level but the last."""
    return 2 ** (len(vae_cfg["block_out_channels"]) - 1)


# ---------------------------------------------------------------- shared pieces
_SDPA = getattr(F, "scaled_dot_product_attention", None)  # torch >= 2.0


class Attention(nn.Module):
    def __init__(self, dim, context_dim, head_dim):
        super().__init__()
        self.heads = dim // head_dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, context=None):
        context = x if context is None else context
        b, n, c = x.shape
        h = self.heads
        q = self.to_q(x).reshape(b, n, h, c // h).transpose(1, 2)
        k = self.to_k(context).reshape(b, context.shape[1], h, c // h).transpose(1, 2)
        v = self.to_v(context).reshape(b, context.shape[1], h, c // h).transpose(1, 2)
        if _SDPA is not None and not torch.onnx.is_in_onnx_export():
            out = _SDPA(q, k, v)
        else:
            # scale q, not the (tokens x tokens) scores: one pass over 1/N of the data (32x32 latent:
            # the scores are 1024x1024 per head), the same function
            out = torch.softmax((q * (1.0 / math.sqrt(c // h))) @ k.transpose(-1, -2), dim=-1) @ v
        return self.to_out[0](out.transpose(1, 2).reshape(b, n, c))


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, context_dim, head_dim, ff_mult):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, dim, head_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, context_dim, head_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class Transformer2DModel(nn.Module):
    """SD-1.x SpatialTransformer: the block's output is `proj_out(...) + input` (the residual C_i)."""

    def __init__(self, ch, cfg, depth=1):
        super().__init__()
        self.norm = nn.GroupNorm(cfg["norm_num_groups"], ch, eps=1e-6)
        self.proj_in = nn.Conv2d(ch, ch, 1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(ch, cfg["cross_attention_dim"], cfg["attention_head_dim"], cfg["ff_mult"])
             for _ in range(depth)])
        self.proj_out = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x, context):
        b, c, hh, ww = x.shape
        h = self.proj_in(self.norm(x))
        h = h.reshape(b, c, hh * ww).transpose(1, 2)
        for blk in self.transformer_blocks:
            h = blk(h, context)
        h = h.transpose(1, 2).reshape(b, c, hh, ww)
        return self.proj_out(h) + x


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, groups, temb=None):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout) if temb else None
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Downsample2D(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


# ---------------------------------------------------------------- UNet
class DownBlock(nn.Module):
    def __init__(self, cin, cout, cfg, temb, attn, last, depth=1):
        super().__init__()
        n = cfg["layers_per_block"]
        g = cfg["norm_num_groups"]
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, g, temb) for i in range(n)])
        self.attentions = nn.ModuleList([Transformer2DModel(cout, cfg, depth) for _ in range(n)]) if attn else None
        self.downsamplers = None if last else nn.ModuleList([Downsample2D(cout)])

    def forward(self, x, temb, context):
        skips = []
        for i, r in enumerate(self.resnets):
            x = r(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class UpBlock(nn.Module):
    def __init__(self, cin, cout, prev, cfg, temb, attn, last, depth=1):
        super().__init__()
        n = cfg["layers_per_block"] + 1
        g = cfg["norm_num_groups"]
        self.resnets = nn.ModuleList()
        for i in range(n):
            skip = cin if i == n - 1 else cout
            rin = prev if i == 0 else cout
            self.resnets.append(ResnetBlock2D(rin + skip, cout, g, temb))
        self.attentions = nn.ModuleList([Transformer2DModel(cout, cfg, depth) for _ in range(n)]) if attn else None
        self.upsamplers = None if last else nn.ModuleList([Upsample2D(cout)])

    def forward(self, x, skips, temb, context):
        for i, r in enumerate(self.resnets):
            x = r(torch.cat([x, skips.pop()], dim=1), temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class MidBlock(nn.Module):
    def __init__(self, ch, cfg, temb, depth=1):
        super().__init__()
        g = cfg["norm_num_groups"]
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, g, temb), ResnetBlock2D(ch, ch, g, temb)])
        self.attentions = nn.ModuleList([Transformer2DModel(ch, cfg, depth)])

    def forward(self, x, temb, context):
        x = self.resnets[0](x, temb)
        x = self.attentions[0](x, context)
        return self.resnets[1](x, temb)


def transformer_depth(cfg, level, up=False):
    """BasicTransformerBlocks per Transformer2DModel at a resolution level (0 = full latent size):
    diffusers' `transformer_layers_per_block`, one number or one per level (default 1); for the up
    blocks `reverse_transformer_layers_per_block` (one per level, from the full size) where given."""
    d = cfg.get("reverse_transformer_layers_per_block") if up else None
    d = cfg.get("transformer_layers_per_block", 1) if d is None else d
    return d[level] if isinstance(d, list) else d


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.linear_1 = nn.Linear(cin, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


def timestep_proj(t, dim):
    """diffusers Timesteps(flip_sin_to_cos=True, downscale_freq_shift=0)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class UNet2DConditionModel(nn.Module):
    def __init__(self, cfg=UNET_CONFIG):
        super().__init__()
        self.cfg = cfg
        ch = cfg["block_out_channels"]
        temb = ch[0] * 4
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch[0], temb)
        self.down_blocks = nn.ModuleList()
        for i, kind in enumerate(cfg["down_block_types"]):
            cin = ch[i - 1] if i > 0 else ch[0]
            self.down_blocks.append(DownBlock(cin, ch[i], cfg, temb, kind.startswith("CrossAttn"), i == len(ch) - 1,
                                              transformer_depth(cfg, i)))
        self.mid_block = MidBlock(ch[-1], cfg, temb, transformer_depth(cfg, len(ch) - 1))
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(ch))
        for i, kind in enumerate(cfg["up_block_types"]):
            prev = rev[i - 1] if i > 0 else rev[0]
            cin = rev[min(i + 1, len(ch) - 1)]
            self.up_blocks.append(UpBlock(cin, rev[i], prev, cfg, temb, kind.startswith("CrossAttn"), i == len(ch) - 1,
                                          transformer_depth(cfg, len(ch) - 1 - i, up=True)))
        self.conv_norm_out = nn.GroupNorm(cfg["norm_num_groups"], ch[0], eps=1e-5)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(ch[0], cfg["out_channels"], 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        t = timestep.reshape(-1).expand(sample.shape[0]) if timestep.numel() == 1 else timestep
        temb = self.time_embedding(timestep_proj(t, self.cfg["block_out_channels"][0]))
        return self.body(sample, temb, encoder_hidden_states)

    def body(self, sample, temb, context):
        """The network after the time embedding `temb` (tests/fixtures/make_sd_folder.py embeds the
        timestep its own way and calls this)."""
        x = self.conv_in(sample)
        skips = [x]
        for blk in self.down_blocks:
            x, s = blk(x, temb, context)
            skips.extend(s)
        x = self.mid_block(x, temb, context)
        for blk in self.up_blocks:
            n = len(blk.resnets)
            x = blk(x, skips[-n:], temb, context)
            del skips[-n:]
        return self.conv_out(self.conv_act(self.conv_norm_out(x)))


# ---------------------------------------------------------------- text encoder (CLIP-like)
class CLIPAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        h = self.heads
        q = self.q_proj(x).reshape(b, n, h, c // h).transpose(1, 2)
        k = self.k_proj(x).reshape(b, n, h, c // h).transpose(1, 2)
        v = self.v_proj(x).reshape(b, n, h, c // h).transpose(1, 2)
        w = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(c // h)), dim=-1)
        return self.out_proj((w @ v).transpose(1, 2).reshape(b, n, c))


class CLIPMLP(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.fc1 = nn.Linear(dim, inner)
        self.fc2 = nn.Linear(inner, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.layer_norm1 = nn.LayerNorm(d)
        self.self_attn = CLIPAttention(d, cfg["num_attention_heads"])
        self.layer_norm2 = nn.LayerNorm(d)
        self.mlp = CLIPMLP(d, cfg["intermediate_size"])

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class CLIPEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])


class CLIPEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.position_embedding = nn.Embedding(cfg["max_position_embeddings"], cfg["hidden_size"])


class CLIPTextModel(nn.Module):
    """input_ids (B, 16) -> last_hidden_state (B, 16, 128). Bidirectional (no causal mask)."""

    def __init__(self, cfg=TEXT_CONFIG):
        super().__init__()
        self.embeddings = CLIPEmbeddings(cfg)
        self.encoder = CLIPEncoder(cfg)
        self.final_layer_norm = nn.LayerNorm(cfg["hidden_size"])

    def forward(self, input_ids):
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embeddings.token_embedding(input_ids.long()) + self.embeddings.position_embedding(pos)[None]
        for layer in self.encoder.layers:
            x = layer(x)
        return self.final_layer_norm(x)


# ---------------------------------------------------------------- autoencoder (64x64x3 <-> 16x16x4)
class Encoder(nn.Module):
    def __init__(self, cfg=VAE_CONFIG):
        super().__init__()
        ch, g = cfg["block_out_channels"], cfg["norm_num_groups"]
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        for i in range(len(ch)):
            cin = ch[i - 1] if i else ch[0]
            blk = nn.Module()
            blk.resnets = nn.ModuleList([ResnetBlock2D(cin, ch[i], g)])
            blk.downsamplers = nn.ModuleList([Downsample2D(ch[i])]) if i < len(ch) - 1 else None
            self.down_blocks.append(blk)
        self.mid_block = ResnetBlock2D(ch[-1], ch[-1], g)
        self.conv_norm_out = nn.GroupNorm(g, ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], cfg["latent_channels"], 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for blk in self.down_blocks:
            x = blk.resnets[0](x)
            if blk.downsamplers is not None:
                x = blk.downsamplers[0](x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg=VAE_CONFIG):
        super().__init__()
        ch, g = list(reversed(cfg["block_out_channels"])), cfg["norm_num_groups"]
        self.conv_in = nn.Conv2d(cfg["latent_channels"], ch[0], 3, padding=1)
        self.mid_block = ResnetBlock2D(ch[0], ch[0], g)
        self.up_blocks = nn.ModuleList()
        for i in range(len(ch)):
            cin = ch[i - 1] if i else ch[0]
            blk = nn.Module()
            blk.resnets = nn.ModuleList([ResnetBlock2D(cin, ch[i], g), ResnetBlock2D(ch[i], ch[i], g)])
            blk.upsamplers = nn.ModuleList([Upsample2D(ch[i])]) if i < len(ch) - 1 else None
            self.up_blocks.append(blk)
        self.conv_norm_out = nn.GroupNorm(g, ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], cfg["in_channels"], 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for blk in self.up_blocks:
            for r in blk.resnets:
                x = r(x)
            if blk.upsamplers is not None:
                x = blk.upsamplers[0](x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    """A deterministic autoencoder (no KL term) with SD's module names; images in [-1, 1]."""

    def __init__(self, cfg=VAE_CONFIG):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)


class VaeDecoderExport(nn.Module):
    """`latent_sample` -> `sample`, as optimum's vae_decoder (latents already divided by the scaling factor)."""

    def __init__(self, vae):
        super().__init__()
        self.decoder = vae.decoder

    def forward(self, latent_sample):
        return self.decoder(latent_sample)


# ---------------------------------------------------------------- evaluation network
class EmojiClassifier(nn.Module):
    """Category classifier on RGB images in [-1, 1] (any side: the features are pooled); its pooled
    features (the last of `channels`, 128 for the default) feed FD/KID."""

    def __init__(self, classes=9, channels=(32, 64, 96, 128)):
        super().__init__()
        layers, cin = [], 3
        for cout in channels:
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, classes)

    def embed(self, x):
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x):
        f = self.embed(x)
        return self.head(f), f
