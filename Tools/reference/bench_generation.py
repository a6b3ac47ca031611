"""PyTorch CPU timing of the sampling work `unilip bench generation` measures.

    python3 Tools/reference/bench_generation.py --threads 1 2 [--repeats 5] [--json out.json]

Workload (keep in step with Sources/unilip/Bench/GenerationBench.swift): diffusers'
SanaTransformer2DModel with SanaConfig.tiny's settings (random weights), 20 steps of
DPM-Solver++ (SANA's scheduler config) with classifier-free guidance: each step runs the DiT
once on the batched [uncond; cond] latents [2B, 32, 4, 4] against caption tokens
[2B, 48, 128] (the uncond rows left-padded: 28 real tokens), then guides and steps.
B = 1 (one image) and B = 4 (the 4 samples per prompt of `unilip eval generation`).

OMP_WAIT_POLICY defaults to PASSIVE here: on a shared machine whose cores other jobs hold,
OpenMP's spinning workers wait at every op's barrier and multi-threaded times collapse (seconds
instead of milliseconds for this small model). Set OMP_WAIT_POLICY=ACTIVE to see the default.
"""
import argparse
import json
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP runtime

import torch
from diffusers import DPMSolverMultistepScheduler, SanaTransformer2DModel

from bench_core import median_ms

TINY = dict(in_channels=32, out_channels=32, num_attention_heads=4, attention_head_dim=32, num_layers=4,
            num_cross_attention_heads=4, cross_attention_head_dim=32, cross_attention_dim=128,
            caption_channels=128, mlp_ratio=2.5, attention_bias=False, sample_size=4, patch_size=1,
            norm_elementwise_affine=False, norm_eps=1e-6, interpolation_scale=None)
SANA_DPM = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                solver_order=2, prediction_type="flow_prediction", thresholding=False,
                algorithm_type="dpmsolver++", solver_type="midpoint", lower_order_final=True,
                euler_at_final=False, use_karras_sigmas=False, use_lu_lambdas=False, use_flow_sigmas=True,
                flow_shift=3.0, final_sigmas_type="zero", lambda_min_clipped=-float("inf"),
                variance_type=None, timestep_spacing="linspace", steps_offset=0)
STEPS, GUIDANCE, TOKENS, UNCOND_TOKENS = 20, 4.5, 48, 28


def workload(model, b):
    g = torch.Generator().manual_seed(0)
    cap = torch.randn(2 * b, TOKENS, TINY["caption_channels"], generator=g)
    mask = torch.ones(2 * b, TOKENS)
    mask[:b, : TOKENS - UNCOND_TOKENS] = 0
    scheduler = DPMSolverMultistepScheduler(**SANA_DPM)

    def run():
        with torch.no_grad():
            x = torch.randn(b, 32, 4, 4, generator=torch.Generator().manual_seed(42))
            scheduler.set_timesteps(STEPS)
            for t in scheduler.timesteps:
                out = model(torch.cat([x, x]), encoder_hidden_states=cap, timestep=t.expand(2 * b),
                            encoder_attention_mask=mask).sample
                vu, vc = out.chunk(2)
                x = scheduler.step(vu + GUIDANCE * (vc - vu), t, x).prev_sample
        return x

    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, nargs="+", default=[2])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json")
    args = p.parse_args()
    torch.manual_seed(0)
    model = SanaTransformer2DModel(**TINY).eval()
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for b in (1, 4):
            ms = median_ms(workload(model, b), args.repeats)
            name = f"sample {STEPS} steps DPM-Solver++ CFG, batch {2 * b} ({b} image{'s' if b > 1 else ''})"
            results.append({"name": name, "threads": threads, "value": ms, "unit": "ms"})
            print(f"{threads} thread(s) {name}: {ms:.2f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
