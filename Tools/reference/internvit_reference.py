"""A plain PyTorch InternViT (InternVL's remote-code `InternVisionModel` semantics and tensor
names) plus InternVL's pixel shuffle and `mlp1` projector, used to write golden fixtures.

Eager attention only, no flash attention, no QK norm, drop path 0.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class VisionConfig:
    def __init__(self, image_size=448, patch_size=14, hidden_size=1024, num_attention_heads=16,
                 intermediate_size=4096, num_hidden_layers=24, layer_norm_eps=1e-6, qkv_bias=True,
                 norm_type="layer_norm", initializer_range=0.02, initializer_factor=1.0, num_channels=3):
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.layer_norm_eps = layer_norm_eps
        self.qkv_bias = qkv_bias
        self.norm_type = norm_type
        self.initializer_range = initializer_range
        self.initializer_factor = initializer_factor
        self.num_channels = num_channels


class Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.grid = cfg.image_size // cfg.patch_size
        d = cfg.hidden_size
        self.class_embedding = nn.Parameter(torch.randn(1, 1, d))
        self.patch_embedding = nn.Conv2d(cfg.num_channels, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.position_embedding = nn.Parameter(torch.randn(1, 1 + self.grid * self.grid, d))

    def resized_positions(self, h, w):
        d = self.position_embedding.shape[-1]
        grid = self.position_embedding[:, 1:, :].reshape(1, self.grid, self.grid, d).permute(0, 3, 1, 2)
        # InternVL always interpolates (an identity at the native grid).
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        grid = grid.reshape(1, d, h * w).transpose(1, 2)
        return torch.cat([self.position_embedding[:, :1, :], grid], dim=1)

    def forward(self, pixels):
        p = self.patch_embedding(pixels)              # B, D, h, w
        b, _, h, w = p.shape
        p = p.flatten(2).transpose(1, 2)              # B, hw, D
        cls = self.class_embedding.expand(b, 1, -1)
        return torch.cat([cls, p], dim=1) + self.resized_positions(h, w)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.heads = cfg.num_attention_heads
        d = cfg.hidden_size
        self.qkv = nn.Linear(d, 3 * d, bias=cfg.qkv_bias)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, n, c = x.shape
        hd = c // self.heads
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        scores = (q * hd ** -0.5) @ k.transpose(-2, -1)
        out = scores.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg.hidden_size
        assert cfg.norm_type == "layer_norm"
        self.attn = Attention(cfg)
        self.mlp = Mlp(cfg)
        self.norm1 = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.norm2 = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.ls1 = nn.Parameter(cfg.initializer_factor * torch.ones(d))
        self.ls2 = nn.Parameter(cfg.initializer_factor * torch.ones(d))

    def forward(self, x):
        x = x + self.attn(self.norm1(x)) * self.ls1
        return x + self.mlp(self.norm2(x)) * self.ls2


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class InternViT(nn.Module):
    """Returns the last hidden state [B, 1 + N, D]; no final norm."""

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)

    def forward(self, pixels):
        return self.encoder(self.embeddings(pixels))


def init_weights(model, cfg):
    """The from-scratch initialisation the Swift `InternViT(config:rng:)` uses: truncated normal
    (std initializer_range, bounds ±2) for the CLS and position embeddings and every weight,
    zero biases, norms at one/zero, layer scales at initializer_factor. (InternVL's own modules
    start from randn embeddings and PyTorch's default Linear/Conv init; checkpoints overwrite both.)
    """
    std = cfg.initializer_range
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ls1") or name.endswith("ls2"):
                p.fill_(cfg.initializer_factor)
            elif "norm" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                nn.init.trunc_normal_(p, std=std)


def pixel_shuffle(x, scale_factor=0.5, version="v2"):
    """InternVL's pixel shuffle on [N, rows, cols, C] (its own variable names call them w, h)."""
    n, w, h, c = x.size()
    x = x.reshape(n, w, int(h * scale_factor), int(c / scale_factor))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.reshape(n, int(h * scale_factor), int(w * scale_factor), int(c / (scale_factor * scale_factor)))
    if version != "v1":
        x = x.permute(0, 2, 1, 3).contiguous()
    return x


def make_mlp1(vit_hidden, llm_hidden, downsample_ratio=0.5):
    width = vit_hidden * int(1 / downsample_ratio) ** 2
    return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, llm_hidden), nn.GELU(),
                         nn.Linear(llm_hidden, llm_hidden))


def image_tokens(vit, mlp1, pixels, patch_size):
    """ViT → drop CLS → [B, h, w, D] → pixel shuffle (v2) → flatten → mlp1."""
    hidden = vit(pixels)[:, 1:, :]
    b = hidden.shape[0]
    h, w = pixels.shape[2] // patch_size, pixels.shape[3] // patch_size
    x = pixel_shuffle(hidden.reshape(b, h, w, -1))
    return mlp1(x.reshape(b, -1, x.shape[-1]))
