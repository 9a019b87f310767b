"""Settings from the environment, and the limits that keep one request cheap and safe."""

import os
import tempfile
from pathlib import Path

import vle_core

ROOT = Path(__file__).resolve().parents[1]  # the repository: assets/, checkpoints/
ASSETS = ROOT / "assets"
CHECKPOINTS = Path(os.environ.get("VLE_CHECKPOINTS", ROOT / "checkpoints"))
DEFAULT_CHECKPOINT = os.environ.get("VLE_DEFAULT_CHECKPOINT", "vanilla-natural")
# The checkpoint an example opens in, by file name prefix: scenes in the masked VLE that found their
# objects; the parrots in the photo masked VLE, whose tokens are regions (token 7: the red parrot).
# the page opens on it, encoded, where it is the default checkpoint's example (tokens_tab.default_example)
DEFAULT_EXAMPLE = ASSETS / "kodak-hats.png"
EXAMPLE_CHECKPOINTS = (("scene-", "masked-scenes"), ("kodak-parrots", "masked-natural"))
CACHE_DIR = Path(os.environ.get("VLE_CACHE_DIR", ROOT / ".cache" / "encodings"))
CACHE_MB = int(os.environ.get("VLE_CACHE_MB", "2048"))  # bound of the on-disk encodings cache; 0 switches it off
EXPORTS = Path(tempfile.gettempdir()) / "vle-explorer-exports"
DEVICE = vle_core.pick_device("auto")  # cuda, then mps, then cpu
# 1: on the CPU, encodes run in a niced child process (worker.py); off by default, as in-process
# encodes were faster under load (docs/performance.md).
ENCODE_WORKER = os.environ.get("VLE_ENCODE_WORKER", "0") == "1"
ENCODE_NICE = 10  # the child's niceness: below the server's CPU priority, which serves the slider and views
ENCODE_TIMEOUT_S = 300  # a child that takes longer is killed and the image encoded in-process

N_TOKENS = 16  # tokens encoded per image where the checkpoint does not record how many it was trained with
MIN_DEFAULT_TOKENS = 4  # the default count for a checkpoint trained with fewer (models.default_tokens)
N_TOKENS_MAX = 32
LENGTH_MODES = ("N tokens", "Until PSNR")  # a fixed count, or each image its own length (VLE.encode's target_psnr)
TARGET_PSNR = (
    33.0  # dB, the default target: the default checkpoint's median held-out photo needs 8 tokens for it at WORKING_SIZE
)
TARGET_PSNR_RANGE = (10.0, 60.0)  # dB: below, one token reaches it; above, no checkpoint gets there in N_TOKENS_MAX
# the results page's measurements, which an image's length is compared with
RESULTS = ROOT / "docs" / "results" / "results.json"
MAX_EDITED_TOKENS = 64  # transplants append tokens; this bounds what one edit can cost
# Long side, px: larger images are scaled down to it (the user picks 128..768); the default model
# encodes 8 tokens at this size in under a second (docs/performance.md).
WORKING_SIZE = 512
WORKING_SIZE_RANGE = (128, 768)
MIN_SIDE = 8  # px; one latent cell
MAX_PIXELS = 40_000_000  # refused before decoding; Pillow's own bomb limit (~179 MP) is far above what we need
MAX_FILE_SIZE = "25mb"
IMAGE_FORMATS = {"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF"}  # MPO: JPEGs from some phones
MAX_EDITS = 200  # ops in one session's history: each edit replays the history, so it bounds an edit's cost
MAX_DONORS = 3  # transplant donor images a session keeps (each a working-size image in its state)
MAX_SESSIONS = 100  # sessions whose state the server keeps (gradio's state_session_capacity); the oldest go first
STATE_TTL_S = 3 * 3600  # a session's state is dropped this long after its last change (API clients never close)
QUEUE_SIZE = 32  # requests waiting at once, all users together; past it a request is refused: "busy, try again"
MAX_VIEW_FILES = 5000  # view PNGs kept on disk (a view removed is drawn again when shown again)
MAX_EXPORTS = 500  # exported files kept on disk (each removed after an hour anyway)
MAX_GIF_PIXELS = 40_000_000  # all frames of an exported GIF together
MEMORY_MB = 512  # decoded entries kept in RAM in front of the disk cache
LOSSY_VIEWS = (
    True  # views as JPEG, far faster to write and smaller than PNG (docs/performance.md); the strip and text stay PNG
)
VIEW_QUALITY = 92  # JPEG quality of the views (chroma not subsampled)
DISPLAY_SIDE = 256  # px: views smaller than this on their long side are enlarged by a whole factor (nearest) to be seen
