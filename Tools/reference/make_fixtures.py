"""Regenerates the golden-value fixtures in Tests/Fixtures from PyTorch.

    pip install "torch==2.13.0+cpu" numpy safetensors scikit-image
    python3 Tools/reference/make_fixtures.py            # every area
    python3 Tools/reference/make_fixtures.py matmul     # one area

Each area is a module in Tools/reference/fixtures/ with a main() that writes
Tests/Fixtures/<area>.safetensors. Inputs are seeded, so a rerun reproduces the files.
"""
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    areas = sys.argv[1:] or sorted(
        f[:-3] for f in os.listdir(os.path.join(HERE, "fixtures"))
        if f.endswith(".py") and not f.startswith("_"))
    for area in areas:
        importlib.import_module(f"fixtures.{area}").main()


if __name__ == "__main__":
    main()
