"""VLE Explorer, the app: look inside Variable Length Embeddings (Chiu, Gu and Zhou, 2023).

The files follow a request's path (the model itself lives in vle_core; nothing here does model math):

    settings.py     environment and limits (every bound on a request, a session, the disk)
    layout.py       the page, which handler each event calls (each an API endpoint) and in which
                    queue (encodes, edits, exports and views apart); the bounded queue
    *_tab.py        the handlers, one file per tab: tokens (with upload and the checkpoint menu),
                    quality, edit, export, compare; a tab imports the modules below, never another tab
    pages.py        what the events of several tabs show: a new or refused session, the Edit tab's views
    images.py       an upload read and checked; views written as JPEG (or PNG) files
    session.py      what gr.State holds (a Session), and the model and cache entry it points at
    models.py       checkpoints found in a folder, loaded once; the only calls into the model
    worker.py       optional (VLE_ENCODE_WORKER=1): the encoder in a child process at a lower CPU priority
    cache.py        encodings cached on disk and in memory, and their quality figures
    edits.py        the edit operations, their history replayed into the edited tokens, decoded once each
    views.py        pictures of tokens, masks and regions; plots.py the quality chart
"""

import os

# Before torch loads OpenMP: idle threads sleep instead of spinning. On a 2-core machine shared
# with other work (a training run, other users), spinning threads made an encode 7x slower
# (7.2 s instead of 0.9 s for 8 tokens at 256 px); alone on the machine it costs nothing noticeable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402 (after the OpenMP setting)

from . import cache, models, settings  # noqa: E402
from .layout import build_demo, launch_options, queue  # noqa: E402


def configure(checkpoints=None, cache_dir=None, cache_mb=None) -> None:
    """Point the app at other folders (tests, benchmark); forgets loaded models and cached views."""
    settings.CHECKPOINTS = Path(checkpoints) if checkpoints is not None else settings.CHECKPOINTS
    settings.CACHE_DIR = Path(cache_dir) if cache_dir is not None else settings.CACHE_DIR
    settings.CACHE_MB = cache_mb if cache_mb is not None else settings.CACHE_MB
    cache.reset()
    models.forget()


__all__ = ["build_demo", "configure", "launch_options", "queue", "settings"]
