"""Settings from the environment, and the limits that keep one request cheap and safe."""

import os
import tempfile
from pathlib import Path

import vle_core

ROOT = Path(__file__).resolve().parents[1]  # the repository: assets/, checkpoints/
ASSETS = ROOT / "assets"
CHECKPOINTS = Path(os.environ.get("VLE_CHECKPOINTS", ROOT / "checkpoints"))
DEFAULT_CHECKPOINT = os.environ.get("VLE_DEFAULT_CHECKPOINT", "vanilla-natural")
CACHE_DIR = Path(os.environ.get("VLE_CACHE_DIR", ROOT / ".cache" / "encodings"))
CACHE_MB = int(os.environ.get("VLE_CACHE_MB", "2048"))  # bound of the on-disk encodings cache
EXPORTS = Path(tempfile.gettempdir()) / "vle-explorer-exports"
DEVICE = vle_core.pick_device("auto")  # cuda, then mps, then cpu

N_TOKENS = 16  # tokens encoded per image where the checkpoint does not record how many it was trained with
MIN_DEFAULT_TOKENS = 4  # the default count for a checkpoint trained with fewer (models.default_tokens)
N_TOKENS_MAX = 32
MAX_EDITED_TOKENS = 64  # transplants append tokens; this bounds what one edit can cost
WORKING_SIZE = 512  # long side, px: larger images are scaled down to it (the user picks 128..768); the light default encodes 8 tokens at 512 px in under 1 s (vle_core.bench)
WORKING_SIZE_RANGE = (128, 768)
MIN_SIDE = 8  # px; one latent cell
MAX_PIXELS = 40_000_000  # refused before decoding; Pillow's own bomb limit (~179 MP) is far above what we need
MAX_FILE_SIZE = "25mb"
IMAGE_FORMATS = {"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF"}  # MPO: JPEGs from some phones
MEMORY_MB = 512  # decoded entries kept in RAM in front of the disk cache
DISPLAY_SIDE = 256  # px: views smaller than this on their long side are enlarged by a whole factor (nearest) to be seen
