"""PyTorch CPU timings of the work `unilip bench core` measures, at the same thread count.

    python3 Tools/reference/bench_core.py --threads 2 [--repeats 7] [--json out.json]

Workloads (keep in step with Sources/unilip/Bench/CoreWorkloads.swift):
  sgemm n×n×n at 256/512/1024 (GFLOP/s)
  (a) ViT block forward+backward: batch 32, 64 tokens, width 256, 4 heads, MLP 1024,
      and its 12 GEMMs alone
  (b) 3×3 conv forward+backward: batch 8, 64→64 channels, 64×64, padding 1
  (c) attention over 1024 tokens, 8 heads of 64: forward, and forward+backward
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def median_ms(fn, repeats, stat="median"):
    """Milliseconds of `fn` after one warm-up run: the median of `repeats` runs, or the fastest
    with stat="min" (steadier on a busy machine, like UNILIP_BENCH_STAT=min)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[0] if stat == "min" else times[len(times) // 2]


class ViTBlock(torch.nn.Module):
    def __init__(self, width=256, heads=4, mlp=1024):
        super().__init__()
        self.heads = heads
        self.norm1 = torch.nn.LayerNorm(width, eps=1e-6)
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.proj = torch.nn.Linear(width, width)
        self.norm2 = torch.nn.LayerNorm(width, eps=1e-6)
        self.fc1 = torch.nn.Linear(width, mlp)
        self.fc2 = torch.nn.Linear(mlp, width)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, c))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []

    def report(name, value, unit):
        results.append({"name": name, "value": value, "unit": unit})
        print(f"{name}: {value:.2f} {unit}")

    for n in (256, 512, 1024):
        a, b = torch.randn(n, n), torch.randn(n, n)
        ms = median_ms(lambda: a @ b, args.repeats)
        report(f"sgemm {n} torch", 2 * n ** 3 / ms / 1e6, "GFLOP/s")

    block = ViTBlock()
    x = torch.randn(32, 64, 256, requires_grad=True)

    def vit():
        block.zero_grad(set_to_none=True)
        block(x).sum().backward()
    report("vit block fwd+bwd", median_ms(vit, args.repeats), "ms")

    # The block's 12 GEMMs alone (no bias), as its autograd runs them: x·Wᵀ, g·W, gᵀ·x.
    rows, c, hidden = 32 * 64, 256, 1024
    layers = [(torch.randn(rows, i), torch.randn(o, i), torch.randn(rows, o))
              for i, o in ((c, 3 * c), (c, c), (c, hidden), (hidden, c))]

    def gemms():
        for lx, lw, lg in layers:
            lx @ lw.t()
            lg @ lw
            lg.t() @ lx
    with torch.no_grad():
        report("vit block gemms", median_ms(gemms, args.repeats), "ms")

    conv_x = torch.randn(8, 64, 64, 64, requires_grad=True)
    conv_w = torch.randn(64, 64, 3, 3, requires_grad=True)
    conv_b = torch.randn(64, requires_grad=True)

    def conv():
        F.conv2d(conv_x, conv_w, conv_b, padding=1).sum().backward()
    report("conv3x3 fwd+bwd", median_ms(conv, args.repeats), "ms")

    q, k, v = (torch.randn(1, 8, 1024, 64, requires_grad=True) for _ in range(3))
    with torch.no_grad():
        report("attention fwd", median_ms(lambda: F.scaled_dot_product_attention(q, k, v), args.repeats), "ms")
    report("attention fwd+bwd",
           median_ms(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward(), args.repeats), "ms")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "torch": torch.__version__, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
