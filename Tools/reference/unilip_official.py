"""UniLIP in the published checkpoint layout (`UniLIP_InternVLForCausalLM`), in PyTorch, with
random weights: a small fixture with reference outputs, and full-size random checkpoints.

What is built
-------------
`build_reference(cfg)` returns a module whose `state_dict()` names are exactly those of the
published UniLIP-1B / UniLIP-3B safetensors (the `model.` layout):

  model.vision_tower.*            InternViT, original InternVL remote-code names (internvit_reference.py)
  model.multi_modal_projector.*   mlp1: LayerNorm(4·vit) -> Linear -> GELU -> Linear (indices 0/1/3)
  model.language_model.*          transformers Qwen2Model (embed_tokens, layers.N.*, norm)
  lm_head.weight                  Linear d -> vocab, no bias (saved even when tied)
  model.latent_queries            [1, n_query, d]
  model.llm_connector.*           Qwen2 layers 0..K-1 + norm, no embed_tokens (fixtures/unilip_generator.py)
  model.projector.*               Linear d -> caption_channels
  model.dit.*                     diffusers SanaTransformer2DModel
  model.vae_decoder.decoder.*     diffusers AutoencoderDC(...).decoder
  model.vae_decoder.down_blocks.{0,1,2}.mlp.{0,1,3}.*, model.vae_decoder.down_mlp.{0,1,3}.*
                                  UniLIP's latent head (fixtures/dcae.py: DownBlock / Latent)

Usage
-----
    python3 Tools/reference/unilip_official.py small
        Writes Tests/Fixtures/unilip_official/: config.json (official fields plus the
        documented extension `dit_config`, `vae_decoder_config`, `scheduler_config`),
        model.safetensors (BF16), tokenizer.json, reference.safetensors (F32). Deterministic.

    python3 Tools/reference/unilip_official.py full 1b OUT_DIR     (or 3b)
        Writes a random-weight checkpoint with the exact UniLIP-1B (3B) names and shapes:
        config.json (official fields only), model-0000K-of-0000N.safetensors shards (BF16,
        about 2 GB each), model.safetensors.index.json and tokenizer.json (a small byte-level
        BPE padded with filler tokens so the special tokens sit at the real ids). Tensors are
        drawn one at a time (normal std 0.02, norm weights 1, norm biases 0) from a module
        tree built on the meta device, so the model never exists in memory as a whole. Prints
        the parameter count and the time taken. Nothing it writes belongs in the repository.

The small fixture
-----------------
Geometry of the full pipeline at toy widths: ViT 56 px, patch 14 (4x4 patches, pixel shuffle
-> 2x2 = 4 image tokens, latent 2x2x32), Qwen2 d=32 with 3 layers over a 326-token BPE,
n_query 4, connector 2 layers, SANA width 16 (2 layers, caption 24), DC-AE decoder with the
published 6-stage x32 layout (ResBlock x3 + EfficientViT x3, 1 layer each, widths 8..32), so a
2x2 latent decodes to 64 px and is resized to 56 px as 512 -> 448 is. Weights are drawn,
rounded to bfloat16 and stored as BF16; every reference is computed in float64 from those
rounded weights (diffusers itself forces float32 in the SANA linear attention, the timestep
features, and the DPM-Solver sample update).

reference.safetensors (every tensor F32; ids and uint8 pixels as exact floats; images HWC;
prompt strings in the metadata under the same key names):
  generate.*    text-to-image: prompt "Generate an image: {caption}", negative
                "Generate an image.", both in the chat template
                `<|im_start|>user\\n{text}<|im_end|>\\n<|im_start|>assistant\\n<img>` with the
                n_query latent queries appended as embeddings; CFG 4.5 over [uncond, cond];
                DPM-Solver++ (SANA scheduler config, flow_shift 3) for 20 steps; decode
                z / unilip_factor -> decoder -> clamp [-1,1] -> (x+1)/2 -> bilinear resize to
                the x28 size (cv2 INTER_LINEAR == torch bilinear, align_corners False, no
                antialias) -> x255, round.
  edit.*        the same with "Edit the image: {instr}\\n<image>" / "Edit the image.\\n<image>",
                `<image>` -> `<img>` + n_query x `<IMG_CONTEXT>` + `</img>`; the image tokens
                (ViT -> pixel shuffle -> mlp1) replace the `<IMG_CONTEXT>` embeddings in both rows
                and overwrite the LLM's hidden states at those positions before the connector.
  reconstruct.* the autoencoder: ViT -> mlp1 -> down_blocks -> down_mlp -> z -> decoder ->
                bilinear resize to the input size -> (x+1)/2 -> clamp [0,1] -> x255 -> truncate
                (`.byte()`, tokenizer/scripts/inference.py).
  understand.*  InternVL chat: `<|im_start|>user\\n<img><IMG_CONTEXT>x4</img>\\n{question}<|im_end|>\\n
                <|im_start|>assistant\\n` (no system turn), next-token logits at the last
                position, 8 greedy ids (no stop at <|im_end|>), and the logits of each greedy step.
Cond and uncond rows are run as two unpadded batch-1 sequences; the official code batches them
with padding="longest", which gives the same values (padding is masked in the LLM, the
connector and the DiT cross-attention, and positions are cumsum(mask) - 1).
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from internvit_reference import InternViT, VisionConfig, make_mlp1, pixel_shuffle  # noqa: E402
from fixtures.dcae import Latent  # noqa: E402
from fixtures.schedulers import SANA_DPM  # noqa: E402
from fixtures.tokenizer import CORPUS, QWEN2_PATTERN  # noqa: E402
from fixtures.unilip_generator import Connector  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
SMALL_DIR = os.path.join(ROOT, "Tests", "Fixtures", "unilip_official")

# The InternVL3 / Qwen2.5 special tokens after the 151643 regular ids, in id order.
FULL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                 "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
                 "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                 "<|repo_name|>", "<|file_sep|>", "<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>",
                 "<ref>", "</ref>", "<box>", "</box>"]
FULL_REGULAR = 151643
SMALL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CFG_SCALE = 4.5
STEPS = 20
TEMPLATE = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n<img>"


# ---------------------------------------------------------------------------------------------
# Configurations

def dcae_f32c32():
    """mit-han-lab/dc-ae-f32c32-sana-1.x-diffusers (the 1.0 config; 1.1 has the same layout)."""
    return dict(in_channels=3, latent_channels=32, attention_head_dim=32,
                encoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
                decoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
                encoder_block_out_channels=[128, 256, 512, 512, 1024, 1024],
                decoder_block_out_channels=[128, 256, 512, 512, 1024, 1024],
                encoder_layers_per_block=[2, 2, 2, 3, 3, 3], decoder_layers_per_block=[3, 3, 3, 3, 3, 3],
                encoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
                decoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
                upsample_block_type="interpolate", downsample_block_type="Conv",
                decoder_norm_types="rms_norm", decoder_act_fns="silu", encoder_out_shortcut=True,
                decoder_in_shortcut=True, decoder_conv_act_fn="relu", scaling_factor=0.41407)


def sana(layers, heads, cross_heads, cross_head_dim):
    """Sana_{600M,1600M}_512px_diffusers transformer config."""
    return dict(in_channels=32, out_channels=32, num_attention_heads=heads, attention_head_dim=32,
                num_layers=layers, num_cross_attention_heads=cross_heads,
                cross_attention_head_dim=cross_head_dim, cross_attention_dim=heads * 32,
                caption_channels=2304, mlp_ratio=2.5, dropout=0.0, attention_bias=False, sample_size=16,
                patch_size=1, norm_elementwise_affine=False, norm_eps=1e-6, interpolation_scale=None,
                guidance_embeds=False, qk_norm=None)


INTERNVIT_300M = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                      image_size=448, patch_size=14, layer_norm_eps=1e-6, layer_scale_init_value=0.1)

FULL = {
    "1b": dict(vision=INTERNVIT_300M,
               text=dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1e6, vocab_size=151674,
                         max_position_embeddings=32768, tie_word_embeddings=False),
               n_query=256, connect_layer=6, unilip_factor=10.6, dit=sana(28, 36, 16, 72), dcae=dcae_f32c32(),
               mllm_path="OpenGVLab/InternVL3-1B", mllm_hf_path="OpenGVLab/InternVL3-1B-hf",
               dit_path="Efficient-Large-Model/Sana_600M_512px_diffusers"),
    "3b": dict(vision=INTERNVIT_300M,
               text=dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1e6, vocab_size=151674,
                         max_position_embeddings=32768, tie_word_embeddings=False),
               n_query=256, connect_layer=6, unilip_factor=9.5, dit=sana(20, 70, 20, 112), dcae=dcae_f32c32(),
               mllm_path="OpenGVLab/InternVL3-2B", mllm_hf_path="OpenGVLab/InternVL3-2B-hf",
               dit_path="Efficient-Large-Model/Sana_1600M_512px_diffusers"),
}
for _v in FULL.values():
    _v.update(vae_path="mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers", image_token_id=151667)


def small_config(vocab_size, image_token_id):
    return dict(
        vision=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    image_size=56, patch_size=14, layer_norm_eps=1e-6, layer_scale_init_value=0.1),
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1e6, vocab_size=vocab_size,
                  max_position_embeddings=256, tie_word_embeddings=False),
        n_query=4, connect_layer=2, unilip_factor=10.6,
        dit=dict(in_channels=32, out_channels=32, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                 num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16,
                 caption_channels=24, mlp_ratio=2.5, dropout=0.0, attention_bias=False, sample_size=2,
                 patch_size=1, norm_elementwise_affine=False, norm_eps=1e-6, interpolation_scale=None,
                 guidance_embeds=False, qk_norm=None),
        dcae=dict(in_channels=3, latent_channels=32, attention_head_dim=8,
                  encoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
                  decoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
                  encoder_block_out_channels=[8, 8, 16, 16, 32, 32],
                  decoder_block_out_channels=[8, 8, 16, 16, 32, 32],
                  encoder_layers_per_block=[1] * 6, decoder_layers_per_block=[1] * 6,
                  encoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
                  decoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
                  upsample_block_type="interpolate", downsample_block_type="Conv",
                  decoder_norm_types="rms_norm", decoder_act_fns="silu", encoder_out_shortcut=True,
                  decoder_in_shortcut=True, decoder_conv_act_fn="relu", scaling_factor=0.41407),
        mllm_path="random/small", mllm_hf_path="random/small-hf", dit_path="random/small-sana",
        vae_path="random/small-dcae", image_token_id=image_token_id)


# ---------------------------------------------------------------------------------------------
# The module tree

def qwen2_config(text):
    from transformers import Qwen2Config
    cfg = Qwen2Config(hidden_act="silu", **text)
    try:
        cfg.rope_parameters = {"rope_type": "default", "rope_theta": text["rope_theta"]}
    except Exception:
        pass
    # SDPA keeps the softmax in float64 (transformers' eager path takes it in float32).
    cfg._attn_implementation = "sdpa"
    return cfg


class VaeDecoder(Latent):
    """UniLIP's `DCAE_Decoder`: the latent head (down_blocks, down_mlp) and the DC-AE decoder."""

    def __init__(self, d, dcae):
        super().__init__(d, 32)
        from diffusers import AutoencoderDC
        self.decoder = AutoencoderDC(**dcae).decoder

    def clip_down(self, tokens):
        """[B, hw, d] -> [B, 32, h, w] (square grid, as the official `clip_down` assumes)."""
        side = int(math.isqrt(tokens.shape[1]))
        return self.forward(tokens, side, side)


class UniLIPModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        from diffusers import SanaTransformer2DModel
        from transformers import Qwen2Model
        v, t = cfg["vision"], cfg["text"]
        vcfg = VisionConfig(image_size=v["image_size"], patch_size=v["patch_size"], hidden_size=v["hidden_size"],
                            num_attention_heads=v["num_attention_heads"], intermediate_size=v["intermediate_size"],
                            num_hidden_layers=v["num_hidden_layers"], layer_norm_eps=v["layer_norm_eps"])
        d = t["hidden_size"]
        qcfg = qwen2_config(t)
        self.vision_tower = InternViT(vcfg)
        self.multi_modal_projector = make_mlp1(v["hidden_size"], d)
        self.language_model = Qwen2Model(qcfg)
        self.latent_queries = nn.Parameter(torch.zeros(1, cfg["n_query"], d))
        self.llm_connector = Connector(qcfg, cfg["connect_layer"])
        self.projector = nn.Linear(d, cfg["dit"]["caption_channels"])
        self.dit = SanaTransformer2DModel(**cfg["dit"])
        self.vae_decoder = VaeDecoder(d, cfg["dcae"])
        # The AutoencoderDC encoder half is not part of the checkpoint.


class UniLIPReference(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.model = UniLIPModel(cfg)
        self.lm_head = nn.Linear(cfg["text"]["hidden_size"], cfg["text"]["vocab_size"], bias=False)
        self.cfg = cfg


def build_reference(cfg):
    """The UniLIP module tree; `state_dict()` names are the official checkpoint's."""
    return UniLIPReference(cfg)


def _is_norm(module):
    return isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or "RMSNorm" in type(module).__name__


def parameter_kinds(model):
    """name -> 'norm_weight' | 'norm_bias' | 'scale' | 'bias' | 'weight' for every state-dict entry."""
    kinds = {}
    for mod_name, m in model.named_modules():
        for p_name, _ in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)):
            name = f"{mod_name}.{p_name}" if mod_name else p_name
            if _is_norm(m):
                kinds[name] = "norm_weight" if p_name == "weight" else "norm_bias"
            elif p_name in ("ls1", "ls2"):
                kinds[name] = "scale"
            elif p_name == "bias":
                kinds[name] = "bias"
            else:
                kinds[name] = "weight"
    return {k: kinds[k] for k in model.state_dict().keys()}


# ---------------------------------------------------------------------------------------------
# Config and tokenizer files

def config_json(cfg, extension):
    v, t = cfg["vision"], cfg["text"]
    out = {
        "architectures": ["UniLIP_InternVLForCausalLM"],
        "model_type": "unilip_internvl",
        "downsample_ratio": 0.5,
        "image_token_id": cfg["image_token_id"],
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "default",
        "projector_hidden_act": "gelu",
        "vision_config": {
            "model_type": "internvl_vision",
            "hidden_size": v["hidden_size"], "num_hidden_layers": v["num_hidden_layers"],
            "num_attention_heads": v["num_attention_heads"], "intermediate_size": v["intermediate_size"],
            "image_size": [v["image_size"], v["image_size"]], "patch_size": [v["patch_size"], v["patch_size"]],
            "layer_norm_eps": v["layer_norm_eps"], "norm_type": "layer_norm", "attention_bias": True,
            "use_qk_norm": False, "hidden_act": "gelu", "layer_scale_init_value": v["layer_scale_init_value"],
            "num_channels": 3, "use_mean_pooling": True,
        },
        "text_config": {"model_type": "qwen2", "hidden_act": "silu", "architectures": ["Qwen2ForCausalLM"], **t},
        "n_query": cfg["n_query"],
        "connect_layer": cfg["connect_layer"],
        "unilip_factor": cfg["unilip_factor"],
        "mllm_path": cfg["mllm_path"], "mllm_hf_path": cfg["mllm_hf_path"],
        "dit_path": cfg["dit_path"], "vae_path": cfg["vae_path"],
        "torch_dtype": "bfloat16",
    }
    if extension:
        out["dit_config"] = {"_class_name": "SanaTransformer2DModel", **cfg["dit"]}
        out["vae_decoder_config"] = {"_class_name": "AutoencoderDC", **cfg["dcae"]}
        out["scheduler_config"] = {"_class_name": "DPMSolverMultistepScheduler",
                                   **{k: (None if isinstance(v_, float) and math.isinf(v_) else v_)
                                      for k, v_ in SANA_DPM.items()}}
    return out


def make_tokenizer(merges_vocab, specials, pad_regular_to=None):
    """A byte-level BPE with Qwen2's normaliser and pre-tokenizer, trained on the shared corpus;
    optionally padded with unreachable filler tokens so the specials start at `pad_regular_to`."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=merges_vocab, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS + [
        "Generate an image: a red circle on a blue square.", "Generate an image.", "Edit the image.",
        "Edit the image: make the circle green.", "What color is the circle?"] * 10, trainer)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    if pad_regular_to is not None:
        n = len(vocab)
        for i in range(n, pad_regular_to):
            vocab[f"<filler_{i}>"] = i   # never produced: no merge builds these strings
    base = len(vocab)
    data["added_tokens"] = [dict(id=base + i, content=s, single_word=False, lstrip=False, rstrip=False,
                                 normalized=False, special=True) for i, s in enumerate(specials)]
    return Tokenizer.from_str(json.dumps(data))


# ---------------------------------------------------------------------------------------------
# Random weights

def randomise_small(model, gen):
    """Values that make every tensor matter, rounded to bfloat16."""
    kinds = parameter_kinds(model)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, kind in kinds.items():
            p = params[name]
            r = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if kind == "norm_weight" or kind == "scale":
                v = 1 + 0.2 * r
            elif kind in ("norm_bias", "bias"):
                v = 0.1 * r
            elif name.endswith("scale_shift_table"):
                v = 0.5 * r
            elif name.endswith(("class_embedding", "position_embedding")):
                v = 0.5 * r
            elif name.endswith(("embed_tokens.weight", "latent_queries")):
                v = r
            else:
                fan_in = p[0].numel() if p.dim() > 1 else p.numel()
                v = r / math.sqrt(fan_in)
            p.copy_(v.to(torch.bfloat16).double())


def full_tensor(kind, shape, gen):
    if kind == "norm_weight" or kind == "scale":
        return torch.ones(shape, dtype=torch.bfloat16)
    if kind == "norm_bias":
        return torch.zeros(shape, dtype=torch.bfloat16)
    return torch.empty(shape, dtype=torch.float32).normal_(0.0, 0.02, generator=gen).to(torch.bfloat16)


# ---------------------------------------------------------------------------------------------
# The four tasks (float64, batch 1 per sequence)

def image_tokens(m, pixels):
    """ViT -> drop CLS -> pixel shuffle 0.5 -> mlp1 (InternVLModel.get_image_features)."""
    hidden = m.vision_tower(pixels)[:, 1:, :]
    b, n, c = hidden.shape
    side = int(math.isqrt(n))
    x = pixel_shuffle(hidden.reshape(b, side, side, c))
    return m.multi_modal_projector(x.reshape(b, -1, x.shape[-1]))


def normalise(u8_hwc):
    x = u8_hwc.double().permute(2, 0, 1)[None] / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64)[None, :, None, None]
    return (x - mean) / std


def condition(model, ids, ctx_id, image_embeds=None):
    """generate_image's conditioning for one unpadded row: [1, L + n_query, caption_channels]."""
    m = model.model
    ids_t = torch.tensor([ids])
    emb = m.language_model.embed_tokens(ids_t).clone()
    slots = ids_t == ctx_id
    if image_embeds is not None:
        emb[slots] = image_embeds.reshape(-1, emb.shape[-1])
    emb = torch.cat([emb, m.latent_queries], dim=1)
    length = emb.shape[1]
    pos = torch.arange(length)[None]
    hidden = m.language_model(inputs_embeds=emb, position_ids=pos).last_hidden_state.clone()
    if image_embeds is not None:
        full_slots = torch.cat([slots, torch.zeros(1, m.latent_queries.shape[1], dtype=torch.bool)], dim=1)
        hidden[full_slots] = image_embeds.reshape(-1, emb.shape[-1])
    bidir = torch.zeros(1, 1, length, length, dtype=emb.dtype)   # no padding: every pair allowed
    connected = m.llm_connector(hidden, bidir, pos)
    return m.projector(connected)


def sample(model, cond, uncond, noise):
    """sample_images: 20 DPM-Solver++ steps, CFG over [uncond, cond], integer timesteps."""
    from diffusers import DPMSolverMultistepScheduler
    dit = model.model.dit
    scheduler = DPMSolverMultistepScheduler(**SANA_DPM)
    scheduler.set_timesteps(STEPS)
    x = noise.clone()
    trajectory = []
    for t in scheduler.timesteps:
        tt = t.reshape(1).to(torch.long)
        vc = dit(x, encoder_hidden_states=cond, timestep=tt,
                 encoder_attention_mask=torch.ones(1, cond.shape[1], dtype=x.dtype)).sample
        vu = dit(x, encoder_hidden_states=uncond, timestep=tt,
                 encoder_attention_mask=torch.ones(1, uncond.shape[1], dtype=x.dtype)).sample
        v = vu + CFG_SCALE * (vc - vu)
        x = scheduler.step(v, t, x).prev_sample
        trajectory.append(x)
    return x, torch.stack(trajectory), scheduler.timesteps


def decode_generated(model, latent, out_size):
    """vae_decode(z / unilip_factor) -> clamp -> (x+1)/2 -> bilinear (cv2 INTER_LINEAR) -> x255 round."""
    dec = model.model.vae_decoder.decoder(latent / model.cfg["unilip_factor"])
    img = (dec[0].clamp(-1, 1) + 1) / 2
    img = F.interpolate(img[None], size=(out_size, out_size), mode="bilinear", align_corners=False)[0]
    img = img.permute(1, 2, 0)
    return dec, img, (img * 255).round()


def test_image(size, seed):
    """A smooth RGB pattern with a disc and a bar, plus a little noise: uint8 [H, W, 3]."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size, dtype=torch.float64),
                          torch.linspace(0, 1, size, dtype=torch.float64), indexing="ij")
    r = 0.2 + 0.6 * x
    gch = 0.8 - 0.5 * y
    b = 0.5 + 0.3 * torch.sin(6 * x + 3 * y)
    disc = ((x - 0.35) ** 2 + (y - 0.4) ** 2) < 0.04
    r = torch.where(disc, torch.full_like(r, 0.95), r)
    gch = torch.where(disc, torch.full_like(gch, 0.1), gch)
    bar = (y > 0.7) & (y < 0.82) & (x > 0.5)
    b = torch.where(bar, torch.full_like(b, 0.05), b)
    img = torch.stack([r, gch, b], dim=-1) + 0.03 * torch.randn(size, size, 3, generator=g, dtype=torch.float64)
    return (img.clamp(0, 1) * 255).round()


def save_stable(tensors, path, metadata):
    """safetensors with a sorted header, so that a rerun writes the same bytes (the library keeps
    the metadata in a hash map, whose order changes from run to run)."""
    from safetensors.torch import save
    blob = save(tensors, metadata=metadata)
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + blob[8 + n:])


def run_small():
    from safetensors.torch import save_file
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20261129)
    tok = make_tokenizer(320, SMALL_SPECIALS)
    ids_of = {s: tok.token_to_id(s) for s in SMALL_SPECIALS}
    cfg = small_config(tok.get_vocab_size(with_added_tokens=True), ids_of["<IMG_CONTEXT>"])
    model = build_reference(cfg).double().eval()
    randomise_small(model, gen)
    m = model.model
    with torch.no_grad():   # keep most decoded pixels inside [-1, 1] so the clamp bites only at the tails
        m.vae_decoder.decoder.conv_out.weight.mul_(0.5)
    ctx = ids_of["<IMG_CONTEXT>"]
    nq = cfg["n_query"]
    size = cfg["vision"]["image_size"]
    placeholder = "<img>" + "<IMG_CONTEXT>" * nq + "</img>"

    out, meta = {}, {}

    def put(name, t):
        out[name] = t.detach().to(torch.float32).contiguous()

    def put_ids(name, text):
        ids = tok.encode(text).ids
        meta[name.replace("ids", "text")] = text
        put(name, torch.tensor(ids, dtype=torch.float64))
        return ids

    with torch.no_grad():
        # Text-to-image.
        caption = "a red circle on a blue square"
        cond_ids = put_ids("generate.cond_ids", TEMPLATE.format(f"Generate an image: {caption}"))
        uncond_ids = put_ids("generate.uncond_ids", TEMPLATE.format("Generate an image."))
        cond = condition(model, cond_ids, ctx)
        uncond = condition(model, uncond_ids, ctx)
        side = int(math.isqrt(nq))
        noise = torch.randn(1, 32, side, side, generator=gen, dtype=torch.float64).to(torch.bfloat16).double()
        latent, traj, timesteps = sample(model, cond, uncond, noise)
        dec, img, u8 = decode_generated(model, latent, size)
        put("generate.cond", cond)
        put("generate.uncond", uncond)
        put("generate.noise", noise)
        put("generate.timesteps", timesteps.double())
        put("generate.trajectory", traj)
        put("generate.latent", latent)
        put("generate.decoded", dec)
        put("generate.image", img)
        put("generate.image_u8", u8)

        # Edit.
        image = test_image(size, 1)
        pixels = normalise(image)
        tokens = image_tokens(m, pixels)
        instr = "make the circle green"
        e_cond_ids = put_ids("edit.cond_ids",
                             TEMPLATE.format(f"Edit the image: {instr}\n<image>".replace("<image>", placeholder)))
        e_uncond_ids = put_ids("edit.uncond_ids",
                               TEMPLATE.format("Edit the image.\n<image>".replace("<image>", placeholder)))
        e_cond = condition(model, e_cond_ids, ctx, tokens)
        e_uncond = condition(model, e_uncond_ids, ctx, tokens)
        e_noise = torch.randn(1, 32, side, side, generator=gen, dtype=torch.float64).to(torch.bfloat16).double()
        e_latent, e_traj, _ = sample(model, e_cond, e_uncond, e_noise)
        e_dec, e_img, e_u8 = decode_generated(model, e_latent, size)
        put("edit.input_u8", image)
        put("edit.pixel_values", pixels)
        put("edit.image_tokens", tokens)
        put("edit.cond", e_cond)
        put("edit.uncond", e_uncond)
        put("edit.noise", e_noise)
        put("edit.trajectory", e_traj)
        put("edit.latent", e_latent)
        put("edit.decoded", e_dec)
        put("edit.image", e_img)
        put("edit.image_u8", e_u8)

        # Reconstruction (tokenizer/modeling/dc_ae_vit_stage2_448.py + scripts/inference.py).
        r_image = test_image(size, 2)
        r_pixels = normalise(r_image)
        r_tokens = image_tokens(m, r_pixels)
        z = m.vae_decoder.clip_down(r_tokens)
        r_dec = m.vae_decoder.decoder(z)
        r = F.interpolate(r_dec, size=(size, size), mode="bilinear", align_corners=False)
        r = ((r + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0)
        put("reconstruct.input_u8", r_image)
        put("reconstruct.pixel_values", r_pixels)
        put("reconstruct.image_tokens", r_tokens)
        put("reconstruct.z", z)
        put("reconstruct.decoded", r_dec)
        put("reconstruct.image", r)
        put("reconstruct.image_u8", (r * 255).floor())

        # Understanding (InternVL chat, stock LLM + lm_head).
        question = "What color is the circle?"
        u_ids = put_ids("understand.ids",
                        f"<|im_start|>user\n{placeholder}\n{question}<|im_end|>\n<|im_start|>assistant\n")
        seq = list(u_ids)
        step_logits = []
        for _ in range(8):
            ids_t = torch.tensor([seq])
            emb = m.language_model.embed_tokens(ids_t).clone()
            emb[ids_t == ctx] = r_tokens.reshape(-1, emb.shape[-1])
            h = m.language_model(inputs_embeds=emb, position_ids=torch.arange(len(seq))[None]).last_hidden_state
            logits = model.lm_head(h[0, -1])
            step_logits.append(logits)
            seq.append(int(logits.argmax()))
        put("understand.image_u8", r_image)
        put("understand.pixel_values", r_pixels)
        put("understand.logits", step_logits[0])
        put("understand.greedy_ids", torch.tensor(seq[len(u_ids):], dtype=torch.float64))
        put("understand.step_logits", torch.stack(step_logits))

    for k in ("generate", "edit"):
        u8 = out[f"{k}.image_u8"]
        assert torch.isfinite(out[f"{k}.latent"]).all()
        print(f"{k}: latent std {out[f'{k}.latent'].std():.3f}, decoded range "
              f"[{out[f'{k}.decoded'].min():.2f}, {out[f'{k}.decoded'].max():.2f}], "
              f"uint8 mean {u8.mean():.1f} std {u8.std():.1f}, saturated {(u8 == 0).float().mean() + (u8 == 255).float().mean():.2f}")
    print(f"reconstruct: decoded range [{out['reconstruct.decoded'].min():.2f}, {out['reconstruct.decoded'].max():.2f}]")
    top = out["understand.step_logits"].topk(2, dim=-1).values
    print(f"understand: greedy {seq[len(u_ids):]}, smallest top-2 margin {(top[:, 0] - top[:, 1]).min():.4f}")

    meta.update({
        "caption": caption, "instruction": instr, "question": question,
        "cfg_scale": str(CFG_SCALE), "steps": str(STEPS), "unilip_factor": str(cfg["unilip_factor"]),
        "special_ids": json.dumps(ids_of),
        "torch": torch.__version__, "generator": "Tools/reference/unilip_official.py small",
    })
    import diffusers
    import transformers
    meta.update({"diffusers": diffusers.__version__, "transformers": transformers.__version__})

    os.makedirs(SMALL_DIR, exist_ok=True)
    state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    for k, v in state.items():
        assert torch.equal(v.double(), model.state_dict()[k]), f"{k} not bf16-exact"
    save_file(state, os.path.join(SMALL_DIR, "model.safetensors"), metadata={"format": "pt"})
    save_stable(out, os.path.join(SMALL_DIR, "reference.safetensors"), meta)
    with open(os.path.join(SMALL_DIR, "config.json"), "w") as f:
        json.dump(config_json(cfg, extension=True), f, indent=2)
        f.write("\n")
    tok.save(os.path.join(SMALL_DIR, "tokenizer.json"))
    # The written weights load strictly into a fresh tree and give the same latent.
    from safetensors.torch import load_file
    fresh = build_reference(cfg).double().eval()
    fresh.load_state_dict({k: v.double() for k, v in load_file(os.path.join(SMALL_DIR, "model.safetensors")).items()},
                          strict=True)
    with torch.no_grad():
        assert torch.equal(fresh.model.vae_decoder.clip_down(image_tokens(fresh.model, r_pixels)), z)
    n_params = sum(v.numel() for v in state.values())
    print(f"{SMALL_DIR}: {len(state)} weights ({n_params} parameters), {len(out)} reference tensors")
    for f in sorted(os.listdir(SMALL_DIR)):
        print(f"  {f}: {os.path.getsize(os.path.join(SMALL_DIR, f))} bytes")


# ---------------------------------------------------------------------------------------------
# Full-size random checkpoints

SHARD_BYTES = 2 * 1000 ** 3


def run_full(variant, out_dir):
    from safetensors.torch import save_file
    start = time.time()
    cfg = FULL[variant]
    with torch.device("meta"):
        model = build_reference(cfg)
    kinds = parameter_kinds(model)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    n_params = sum(math.prod(s) for s in shapes.values())
    total = 2 * n_params
    print(f"UniLIP-{variant.upper()}: {len(shapes)} tensors, {n_params:,} parameters, {total / 1e9:.2f} GB in BF16")

    # Plan the shards (in state-dict order), then write them one at a time.
    shards, current, size = [], [], 0
    for name, shape in shapes.items():
        nbytes = 2 * math.prod(shape)
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = [], 0
        current.append(name)
        size += nbytes
    shards.append(current)
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    weight_map = {}
    for i, names in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        tensors = {n: full_tensor(kinds[n], shapes[n], gen) for n in names}
        save_file(tensors, os.path.join(out_dir, file), metadata={"format": "pt"})
        del tensors
        weight_map.update({n: file for n in names})
        print(f"  {file}: {len(names)} tensors ({time.time() - start:.0f} s)")
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config_json(cfg, extension=False), f, indent=2)
        f.write("\n")
    tok = make_tokenizer(1000, FULL_SPECIALS, pad_regular_to=FULL_REGULAR)
    for s, want in (("<|endoftext|>", 151643), ("<|im_start|>", 151644), ("<|im_end|>", 151645),
                    ("<img>", 151665), ("</img>", 151666), ("<IMG_CONTEXT>", 151667)):
        assert tok.token_to_id(s) == want, (s, tok.token_to_id(s))
    assert tok.get_vocab_size(with_added_tokens=True) == cfg["text"]["vocab_size"]
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    print(f"{out_dir}: {len(shards)} shards, {n_params:,} parameters, {time.time() - start:.0f} s")


def main():
    args = sys.argv[1:]
    if args == ["small"]:
        run_small()
    elif len(args) == 3 and args[0] == "full" and args[1] in FULL:
        run_full(args[1], args[2])
    else:
        sys.exit("usage: unilip_official.py small | full 1b|3b OUT_DIR")


if __name__ == "__main__":
    main()
