"""The encoder in a process of its own, at a lower CPU priority.

Optional (settings.ENCODE_WORKER, VLE_ENCODE_WORKER=1; docs/performance.md says why it is off by default).
An encode holds both cores and the GIL for seconds; in the server process, the cheap events
(a slider step, ~10 ms) waited behind it. In a child process niced to settings.ENCODE_NICE, the
OS scheduler and the server's GIL serve them first, and the encode takes what is left.

The child is `python -c "...serve(FD, NICE)"`, started with subprocess, not multiprocessing:
multiprocessing's spawn unpickles its start-up data in the child and runs app.py's top level
there again (which builds a whole demo). The two talk over a multiprocessing.Pipe with
send_bytes/recv_bytes only: a JSON header, then raw array bytes. Nothing is ever unpickled.

The child answers only for the checkpoint files the parent loaded: it recomputes their id
(checkpoint_id) and refuses ("mismatch") when they changed. Whatever goes wrong (a dead or hung
child, a mismatch, an error), `encode` returns None and the caller encodes in-process, where a
user's error is raised as it always was.
"""

import atexit
import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import torch

import vle_core
from vle_core.tokens import latent_grid
from vle_core.vle import image_to_array

from . import settings

MAX_DEATHS = 3  # children that died or hung one after another; past it this process encodes in-process only


def checkpoint_id(folder: Path) -> str:
    """What a checkpoint's files are now: its name and a hash of their mtimes and sizes. Raises OSError.
    models.get_model keys loaded models by it, and the child checks it before it encodes."""
    stats = [(folder / f).stat() for f in ("config.json", "model.safetensors")]
    return f"{folder.name}@" + hashlib.sha1(repr([(s.st_mtime_ns, s.st_size) for s in stats]).encode()).hexdigest()[:12]


# The parent's side.

_lock = threading.Lock()  # one request at a time on the pipe (the app's encoder queue already runs one)
_process: subprocess.Popen | None = None
_conn: Connection | None = None
_deaths = 0  # in a row


def usable() -> bool:
    """Whether encodes go to the child: switched on, on the CPU (a GPU encode is fast and frees the
    CPU anyway), and the child has not kept dying."""
    return settings.ENCODE_WORKER and settings.DEVICE.type == "cpu" and _deaths < MAX_DEATHS


def start() -> None:
    """Start the child unless it runs; app.py calls it at start, so torch is imported before the first encode."""
    if usable():
        with _lock:
            _start()


def _start() -> None:
    global _process, _conn
    if _process is not None and _process.poll() is None:
        return
    _stop()
    parent_end, child_end = multiprocessing.Pipe()
    serve_call = "import sys; from explorer.worker import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"
    command = [sys.executable, "-c", serve_call, str(child_end.fileno()), str(settings.ENCODE_NICE)]
    # cwd: the child imports this checkout's explorer, as the parent did
    _process = subprocess.Popen(command, pass_fds=[child_end.fileno()], cwd=settings.ROOT, stdin=subprocess.DEVNULL)
    child_end.close()  # the parent keeps one end only, so the child reads EOF when the parent is gone
    _conn = parent_end


def _stop() -> None:
    global _process, _conn
    if _conn is not None:
        _conn.close()
    if _process is not None and _process.poll() is None:
        _process.kill()
        _process.wait()
    _process, _conn = None, None


def stop() -> None:
    """Stop the child (at exit, and in tests). Without the lock: at exit an encode may hold it,
    and it falls back in-process when its child goes."""
    _stop()


atexit.register(stop)


def pid() -> int | None:
    return None if _process is None else _process.pid


def encode(vle: vle_core.VLE, folder: Path, model_id: str, image: np.ndarray, n: int) -> vle_core.Encoding | None:
    """vle.encode(image, n) made by the child from the files of `folder`, which must still be those
    `vle` was loaded from (model_id); None where the child did not make it: encode in-process then."""
    global _deaths
    if not (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and isinstance(n, int)
    ):
        return None  # the app encodes uint8 images; anything else goes in-process, which checks it
    with _lock:
        if not usable():
            return None
        try:
            _start()
            encoding = _ask(vle, folder, model_id, image, n)
        except (OSError, EOFError, ValueError, KeyError) as e:  # dead, hung, or an answer that does not fit
            _deaths += 1
            print(
                f"explorer: the encode worker failed ({type(e).__name__}: {e}); encoding in-process"
                + ("" if usable() else ", from now on")
            )
            _stop()  # started again on the next encode
            return None
        _deaths = 0
        return encoding


def _ask(vle, folder: Path, model_id: str, image: np.ndarray, n: int) -> vle_core.Encoding | None:
    # abspath, not resolve: a symlinked checkpoint folder keeps its name, which its id begins with
    request = dict(folder=os.path.abspath(folder), model_id=model_id, n=n, shape=image.shape)
    _conn.send_bytes(json.dumps(request).encode())
    # flat: send_bytes counts a 3-d view by its rows
    _conn.send_bytes(memoryview(np.ascontiguousarray(image)).cast("B"))
    if not _conn.poll(settings.ENCODE_TIMEOUT_S):
        raise TimeoutError(f"no answer in {settings.ENCODE_TIMEOUT_S} s")
    answer = json.loads(_conn.recv_bytes(1 << 16))
    if answer["status"] != "ok":  # "mismatch", or "error": the in-process encode says it again
        return None
    # The shapes are known here: an answer of any other size is refused (ValueError), never reshaped.
    H, W = image.shape[:2]
    arrays = dict(
        latents=np.empty((n, vle.config.latent_channels, *latent_grid((H, W))), np.float32),
        mean=np.empty((n, 3), np.float32),
        std=np.empty((n, 3), np.float32),
        stage=np.empty((n,), np.int64),
        contributions=np.empty((n, H, W, 3), np.float32),
        reconstructions=np.empty((n, H, W, 3), np.float32),
    ) | ({"masks": np.empty((n, H, W), np.float32)} if answer["masks"] else {})
    for name, array in arrays.items():
        if _conn.recv_bytes_into(memoryview(array).cast("B")) != array.nbytes:
            raise ValueError(f"the worker's {name} is not {array.dtype}{array.shape}")
    t = {name: torch.from_numpy(arrays[name]) for name in ("latents", "mean", "std", "stage")}
    tokens = vle_core.Tokens(t["latents"], t["mean"], t["std"], (H, W), t["stage"])
    return vle_core.Encoding(
        tokens, arrays["contributions"], arrays["reconstructions"], arrays.get("masks"), image=image_to_array(image)
    )


# The child's side.


def serve(fd: int, nice: int) -> None:
    """Answer encode requests on the pipe until the parent closes it."""
    os.nice(nice)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal stops the parent; the child then reads EOF
    conn = Connection(fd)
    loaded: dict[str, tuple[str, vle_core.VLE]] = {}  # folder -> (checkpoint id, model): the newest files of each
    while True:
        try:
            request = json.loads(conn.recv_bytes(1 << 16))
            image = np.empty(request["shape"], np.uint8)
            if conn.recv_bytes_into(memoryview(image).cast("B")) != image.nbytes:
                raise ValueError("image of the wrong size")
        except (EOFError, OSError):
            return
        try:
            answer, arrays = _encode(loaded, Path(request["folder"]), request["model_id"], image, request["n"])
        except Exception as e:  # a bad request, a file that does not load, out of memory: the parent retries in-process
            answer, arrays = {"status": "error", "message": f"{type(e).__name__}: {e}"}, {}
        try:
            conn.send_bytes(json.dumps(answer).encode())
            for array in arrays:
                conn.send_bytes(memoryview(np.ascontiguousarray(array)).cast("B"))
        except OSError:
            return


def _encode(loaded: dict, folder: Path, model_id: str, image: np.ndarray, n: int) -> tuple[dict, list]:
    """(answer, its arrays in the order the parent reads them) for one request."""
    try:
        if checkpoint_id(folder) != model_id:
            return {"status": "mismatch"}, []
    except OSError:
        return {"status": "mismatch"}, []
    if loaded.get(str(folder), ("",))[0] != model_id:
        vle = vle_core.load_vle(folder, device="cpu")
        if checkpoint_id(folder) != model_id:  # the files changed while they were read
            return {"status": "mismatch"}, []
        loaded[str(folder)] = (model_id, vle)
    encoding = loaded[str(folder)][1].encode(image, n)
    t = encoding.tokens
    arrays = [t.latents, t.mean, t.std, t.stage, encoding.contributions, encoding.reconstructions]
    arrays = [a.contiguous().numpy() if isinstance(a, torch.Tensor) else a for a in arrays]
    masks = encoding.masks is not None
    return {"status": "ok", "masks": masks}, arrays + ([encoding.masks] if masks else [])
