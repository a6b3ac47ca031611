"""Shared helpers for the golden-value fixtures.

Each area module in fixtures/ builds a Fixture and calls .case(...) once per test case.
Tensors are saved as F32 safetensors under Tests/Fixtures/<area>.safetensors with the
torch version in the metadata, so the Swift tests need no Python.
"""
import os

import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "Tests", "Fixtures")


class Fixture:
    def __init__(self, area, seed=0):
        self.area = area
        self.tensors = {}
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.float64)  # reference values computed in float64

    def case(self, name, fn, *inputs, grad=None):
        """Stores inputs x0.., output y, a random upstream gradient gy, and input gradients gx.

        grad: indices of inputs that take a gradient (default: every floating input).
        """
        xs = []
        for i, x in enumerate(inputs):
            x = x.detach().clone()
            wants = x.is_floating_point() and (grad is None or i in grad)
            xs.append(x.double().requires_grad_(True) if wants else x)
        y = fn(*xs)
        self.tensors[f"{name}.y"] = y.detach().float()
        for i, x in enumerate(xs):
            self.tensors[f"{name}.x{i}"] = x.detach().float()
        if y.requires_grad:
            gy = torch.randn_like(y)
            y.backward(gy)
            self.tensors[f"{name}.gy"] = gy.float()
            for i, x in enumerate(xs):
                if x.requires_grad and x.grad is not None:
                    self.tensors[f"{name}.gx{i}"] = x.grad.float()
        return y

    def add(self, name, tensor):
        self.tensors[name] = tensor.detach().float().contiguous()

    def save(self):
        os.makedirs(OUT_DIR, exist_ok=True)
        path = os.path.join(OUT_DIR, f"{self.area}.safetensors")
        tensors = {k: v.contiguous() for k, v in self.tensors.items()}
        save_file(tensors, path, metadata={"torch": torch.__version__,
                                           "generator": f"Tools/reference/fixtures/{self.area}.py"})
        print(f"{path}: {len(tensors)} tensors")
