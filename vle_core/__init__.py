"""VLE Explorer's library: Variable Length Embeddings (Chiu, Gu and Zhou, 2023) in PyTorch.

import vle_core
vle = vle_core.load_vle("vanilla-natural")      # a shipped checkpoint's name, or any checkpoint folder
encoding = vle.encode("photo.png", n_tokens=8)  # tokens, contributions, reconstructions, masks
edited = vle_core.edit.translate(encoding.tokens, 2, dx=16, dy=0)
picture = vle.decode(edited)                     # HxWx3 float32 in [0, 1]
"""

from . import edit, metrics
from .checkpoint import load_vle, read_checkpoint, save_checkpoint, shipped_checkpoints
from .config import PRESETS, MaskedVLEConfig, VLEConfig, preset
from .loop import LoopOutput, decode_tokens, residual_loop
from .losses import vle_loss
from .tokens import EMPTY, Encoding, Rendering, Tokens
from .vle import VLE, build_model, pick_device

__all__ = [
    "EMPTY",
    "Encoding",
    "LoopOutput",
    "MaskedVLEConfig",
    "PRESETS",
    "Rendering",
    "Tokens",
    "VLE",
    "VLEConfig",
    "build_model",
    "decode_tokens",
    "edit",
    "load_vle",
    "metrics",
    "pick_device",
    "preset",
    "read_checkpoint",
    "residual_loop",
    "save_checkpoint",
    "shipped_checkpoints",
    "vle_loss",
]
