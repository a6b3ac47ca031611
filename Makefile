# Quick start: `make run` (installs, builds in release mode, runs the demo on the shipped model)
# and `make test` (the Swift tests, then the browser and load tests of `unilip serve`).
SWIFT ?= swift
THREADS ?=
# Classifier-free guidance of the generation and editing evaluations (1.5 scored best on the
# shipped head among 1.5, 3 and 4.5; see docs/RESULTS.md).
GUIDANCE ?= 1.5
# The heads the generation and editing tables compare: the shipped one, each head of the chain
# it continues, the 16,000-step continuation with half the batches editing and the ablation pair.
GENERATION_ROWS = --row "UniLIP, shipped (… + 6,000 steps with the text-embedding offset + 6,000 more)=Models/unilip-gen-tiny" \
	--row "UniLIP (… + 6,000 steps with the text-embedding offset, 70% editing)=runs/unilip-gen-tiny-dual-43000/model" \
	--row "UniLIP (8,000 + 8,000 + 6,000 + 3,000 + 6,000 + 6,000 steps, 80% editing)=runs/unilip-gen-tiny-dual-37000/model" \
	--row "UniLIP (8,000 + 8,000 + 6,000 + 3,000 + 6,000 steps, placed captions)=runs/unilip-gen-tiny-dual-31000/model" \
	--row "UniLIP (8,000 + 8,000 + 6,000 + 3,000 steps)=runs/unilip-gen-tiny-dual-25000/model" \
	--row "UniLIP (8,000 + 8,000 + 6,000 steps)=runs/unilip-gen-tiny-dual-22000/model" \
	--row "UniLIP (8,000 + 8,000 steps, 80% editing)=runs/unilip-gen-tiny-dual-16000/model" \
	--row "UniLIP (8,000 + 8,000 steps, 50% editing)=runs/unilip-gen-tiny-dual-16000-half/model" \
	--row "UniLIP (8,000 steps)=runs/unilip-gen-tiny-dual-8000/model" \
	--row "UniLIP (5,000 steps)=runs/unilip-gen-tiny-dual/model" \
	--row "queries only (5,000 steps)=runs/unilip-gen-tiny-queries_only/model"

.PHONY: deps build release run serve test swift-test browser-test bench fixtures model-understanding model-autoencoder model-generation results clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: release
	.build/release/unilip demo $(if $(THREADS),--threads $(THREADS),)

serve: release
	.build/release/unilip serve $(if $(THREADS),--threads $(THREADS),)

# Serial on purpose: both steps build with SwiftPM.
test: swift-test
	$(MAKE) --no-print-directory browser-test

swift-test: deps
	$(SWIFT) test

# The page driven in headless Chromium through all four features (screenshot: out/serve.png),
# then 50 concurrent job posts against a queue of 4. Installs Chromium, its driver and Selenium
# when missing.
browser-test: build
	@scripts/install-browser-deps.sh
	python3 Tests/Browser/test_page.py --screenshot out/serve.png
	python3 Tests/Browser/load_test.py --posts 50 --max-queue 4

# Our timings next to PyTorch CPU's on the same work; writes docs/PERFORMANCE.md.
bench: release
	python3 Tools/reference/performance.py

# Golden values from PyTorch (needs: pip install "torch==2.13.0+cpu" numpy safetensors scikit-image).
fixtures:
	python3 Tools/reference/make_fixtures.py

# Reproduces the shipped base model Models/internvl-tiny (seeded; resumes if interrupted). It was
# made with the token-averaged loss, 2,000 MLLM and 3,000 fine-tuning steps; the recipe now
# averages as InternVL 2.5 does (square) and fine-tunes for 4,000 steps.
model-understanding: release
	.build/release/unilip train understanding --loss-reduction token --mllm-steps 2000 --finetune-steps 3000 --run runs/internvl-tiny --output Models/internvl-tiny

# Reproduces the shipped autoencoder Models/unilip-tiny (stage 1, stage 2 with λ = 1, then 3,000
# decoder-only steps under the stage-2 latent) and the λ = 0 ablation and the stage-1-continued
# control the results compare against (seeded; each stage resumes if interrupted). Needs
# Models/internvl-tiny.
model-autoencoder: release
	.build/release/unilip train autoencoder --stage 1
	.build/release/unilip train autoencoder --stage 2 --distill-weight 1
	.build/release/unilip train autoencoder --stage 1 --decoder-only --init-from runs/unilip-tiny/stage2-lambda1/model --output Models/unilip-tiny
	.build/release/unilip train autoencoder --stage 2 --distill-weight 0
	.build/release/unilip train autoencoder --stage 1 --steps 1000 --init-from runs/unilip-tiny/stage1/model --run runs/unilip-tiny/stage1-long

# Reproduces the shipped generation/editing head Models/unilip-gen-tiny (dual condition: 8,000
# steps; 8,000 more from those weights with a fresh schedule and 80% of the batches editing; then
# 6,000 more with half the batches editing and 80% of the captions placing every object; then
# 3,000 and 6,000 more with every caption placing its objects; then 6,000 more with 80% of the
# batches editing; then 6,000 more with a learnable offset to the LLM's token embeddings and 70%
# editing; then 6,000 more with half the batches editing and half the captions placed), the
# 16,000-step continuation with half the batches editing, and the ablation
# pair at 5,000 steps: dual vs queries only (seeded; resumable). Needs Models/internvl-tiny and
# Models/unilip-tiny.
model-generation: release
	.build/release/unilip train generation --mode dual --run runs/unilip-gen-tiny-dual-8000
	.build/release/unilip train generation --mode dual --init-from runs/unilip-gen-tiny-dual-8000/model --edit-fraction 0.8 --run runs/unilip-gen-tiny-dual-16000
	.build/release/unilip train generation --mode dual --init-from runs/unilip-gen-tiny-dual-16000/model --placed-captions 0.8 --steps 6000 --run runs/unilip-gen-tiny-dual-22000
	.build/release/unilip train generation --mode dual --init-from runs/unilip-gen-tiny-dual-22000/model --placed-captions 1 --steps 3000 --seed 2 --run runs/unilip-gen-tiny-dual-25000
	.build/release/unilip train generation --mode dual --init-from runs/unilip-gen-tiny-dual-25000/model --placed-captions 1 --steps 6000 --seed 3 --run runs/unilip-gen-tiny-dual-31000
	.build/release/unilip train generation --mode dual --init-from runs/unilip-gen-tiny-dual-31000/model --placed-captions 1 --edit-fraction 0.8 --steps 6000 --seed 4 --run runs/unilip-gen-tiny-dual-37000
	.build/release/unilip train generation --mode dual --init-from runs/unilip-gen-tiny-dual-37000/model --text-embedding-offset --placed-captions 1 --edit-fraction 0.7 --steps 6000 --seed 5 --run runs/unilip-gen-tiny-dual-43000
	.build/release/unilip train generation --mode dual --init-from runs/unilip-gen-tiny-dual-43000/model --placed-captions 0.5 --steps 6000 --seed 6 --run runs/unilip-gen-tiny-dual-49000 --output Models/unilip-gen-tiny
	.build/release/unilip train generation --mode dual --init-from runs/unilip-gen-tiny-dual-8000/model --run runs/unilip-gen-tiny-dual-16000-half
	.build/release/unilip train generation --mode dual --steps 5000
	.build/release/unilip train generation --mode queries_only --steps 5000

# Regenerates the tables of docs/RESULTS.md (needs the runs of model-autoencoder and
# model-generation for the ablation rows).
results: release
	.build/release/unilip eval understanding --markdown docs/RESULTS.md
	.build/release/unilip eval autoencoder --stage2 runs/unilip-tiny/stage2-lambda1/model --row "shipped: stage 2 + 3,000 decoder-only steps=Models/unilip-tiny" --markdown docs/RESULTS.md
	.build/release/unilip eval generation --guidance $(GUIDANCE) $(GENERATION_ROWS) --markdown docs/RESULTS.md --grid docs/images/generation.png
	.build/release/unilip eval editing --guidance $(GUIDANCE) $(GENERATION_ROWS) --markdown docs/RESULTS.md --grid docs/images/editing.png

clean:
	rm -rf .build
