"""PyTorch CPU timings of the encoder rows of `unilip bench training`, at the same thread count:
the tiny InternViT (64×64 images, patch 8, width 128, 4 heads, MLP 512, 4 layers) on a batch
of 64, forward (no grad) and forward+backward of the output's sum.

    python3 Tools/reference/bench_training.py --threads 2 [--repeats 20] [--stat median|min]

The encoder is Tools/reference/internvit_reference.py's, with attention through
`F.scaled_dot_product_attention` (PyTorch's fastest CPU path) instead of its eager softmax.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import internvit_reference as ref  # noqa: E402
from bench_core import median_ms  # noqa: E402


def sdpa_forward(self, x):
    b, n, c = x.shape
    hd = c // self.heads
    q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(q, k, v)
    return self.proj(out.transpose(1, 2).reshape(b, n, c))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--stat", choices=["median", "min"], default="median")
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ref.Attention.forward = sdpa_forward
    cfg = ref.VisionConfig(image_size=64, patch_size=8, hidden_size=128, num_attention_heads=4,
                           intermediate_size=512, num_hidden_layers=4)
    model = ref.InternViT(cfg)
    pixels = torch.randn(64, 3, 64, 64)

    def forward():
        with torch.no_grad():
            model(pixels)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        model(pixels).sum().backward()

    results = {
        "encoder forward": median_ms(forward, args.repeats, args.stat),
        "encoder fwd+bwd": median_ms(forward_backward, args.repeats, args.stat),
    }
    for name, ms in results.items():
        print(f"{name}: {ms:.2f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "torch": torch.__version__,
                       "results": [{"name": k, "value": v, "unit": "ms"} for k, v in results.items()]}, f, indent=2)


if __name__ == "__main__":
    main()
