"""Faults on the encodings cache: corrupt entries, another entry under a key, a pickle planted in
its database, a full disk, a writer killed mid-write, two app processes on one cache folder, and
the cache switched off. Whatever happens, a wrong picture is never served."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import errno
import hashlib
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import app_helpers
import numpy as np
import pytest
from app_helpers import encode, pixels, save_png
from conftest import synthetic_image

import explorer
from explorer import cache, settings, tokens_tab

# Fixtures: tiny checkpoints, the app pointed at them, the images its encoder runs on.
checkpoints, fresh, encodes = app_helpers.checkpoints, app_helpers.fresh, app_helpers.encodes
ROOT = Path(__file__).resolve().parents[1]
PWNED = Path("/tmp/vle-explorer-cache-pwned")


class Planted:
    def __reduce__(self):
        return (os.system, (f"touch {PWNED}",))


def two_sessions(folder):
    """Two images of one size encoded (so an entry of one fits the other's shape), their views."""
    a, b = (
        save_png(folder, "a.png", synthetic_image(64, 64, seed=1)),
        save_png(folder, "b.png", synthetic_image(64, 64, seed=2)),
    )
    out_a, out_b = encode(a), encode(b)
    return a, out_a, out_b


def corrupt(how: str, key: str, other: str, folder: Path) -> None:
    disk = cache._disk()
    stored = disk.get(key)
    if how == "bit flipped":
        flipped = bytearray(stored)
        flipped[len(flipped) * 2 // 3] ^= 0x10  # deep in the pixels: the archive still parses
        disk.set(key, bytes(flipped))
    elif how == "another image's entry":
        disk.set(key, disk.get(other))
    elif how == "cut short":
        disk.set(key, stored[: len(stored) // 2])
    elif how == "file cut short":  # as a writer killed mid-write leaves the value's file
        files = [p for p in Path(settings.CACHE_DIR).rglob("*.val")]
        for path in files:
            path.write_bytes(path.read_bytes()[:1000])
    elif how == "pickle planted in the database":
        with sqlite3.connect(Path(settings.CACHE_DIR) / "cache.db") as db:
            db.execute(
                "UPDATE Cache SET mode = 4, filename = NULL, value = ? WHERE key = ?", (pickle.dumps(Planted()), key)
            )


@pytest.mark.parametrize(
    "how", ["bit flipped", "another image's entry", "cut short", "file cut short", "pickle planted in the database"]
)
def test_a_damaged_entry_is_never_served(fresh, how, encodes):
    PWNED.unlink(missing_ok=True)
    a, out_a, out_b = two_sessions(fresh)
    key, other = f"entry/{out_a[0].key}", f"entry/{out_b[0].key}"
    corrupt(how, key, other, fresh)
    cache._entries.clear()  # as after a restart: from disk
    runs = len(encodes)
    again = encode(a)
    assert len(encodes) == runs + 1  # recomputed, not served
    assert np.array_equal(pixels(again[3]), pixels(out_a[3])) and np.array_equal(pixels(again[7]), pixels(out_a[7]))
    assert not PWNED.exists()
    cache._entries.clear()
    assert "from the cache" in encode(a)[1]  # and repaired on disk


def test_a_full_disk_costs_a_recompute_and_nothing_else(fresh, monkeypatch, encodes):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache.BytesOnly, "store", full)
    a, out_a, out_b = two_sessions(fresh)
    assert cache.disk_failures >= 2 and len(cache._disk()) == 0
    assert "First 3 of" in tokens_tab.on_token(3, out_a[0])[-1]  # served from memory
    cache._entries.clear()
    runs = len(encodes)
    assert np.array_equal(pixels(encode(a)[3]), pixels(out_a[3])) and len(encodes) == runs + 1


def test_the_app_works_with_the_cache_switched_off(fresh, encodes):
    explorer.configure(cache_dir=fresh / "off", cache_mb=0)
    a, out_a, _ = two_sessions(fresh)
    assert cache._disk() is None and not (fresh / "off").exists()
    assert "from the cache" in encode(a)[1]  # the memory cache still serves a second encode
    assert "First 2 of" in tokens_tab.on_token(2, out_a[0])[-1]
    cache._entries.clear()
    runs = len(encodes)
    assert np.array_equal(pixels(encode(a)[3]), pixels(out_a[3])) and len(encodes) == runs + 1


# Real processes on one cache folder. Each value is derived from its key, so any reader can tell a
# right value from a wrong one; big enough (1 MB) that diskcache writes it to its own file.
WORKER = """
import hashlib, sys, time
import explorer
from explorer import cache
explorer.configure(cache_dir=sys.argv[1], cache_mb=64)
name, seconds = sys.argv[2], float(sys.argv[3])

def value(key):
    return hashlib.sha256(key.encode()).digest() * 32768

print("ready", flush=True)
end, i, seen = time.time() + seconds, 0, 0
while time.time() < end:
    cache._disk_set(f"{name}/{i % 40}", value(f"{name}/{i % 40}"))
    for other in ("w0", "w1", "killed"):
        got = cache._disk_get(f"{other}/{i % 40}", lambda data: data)
        if got is not None:
            seen += 1
            assert got == value(f"{other}/{i % 40}"), f"{name} read a wrong value for {other}/{i % 40}"
    i += 1
print(f"ok {name} wrote {i} read {seen}", flush=True)
"""


def worker(folder: Path, name: str, seconds: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(folder), name, str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def check_all(folder: Path) -> int:
    """Every value in the cache folder read back: right or absent, never wrong. Returns how many."""
    explorer.configure(cache_dir=folder, cache_mb=64)
    found = 0
    for name in ("w0", "w1", "killed"):
        for i in range(40):
            key = f"{name}/{i}"
            got = cache._disk_get(key, lambda data: data)
            if got is not None:
                found += 1
                assert got == hashlib.sha256(key.encode()).digest() * 32768, key
    return found


def test_writers_killed_mid_write_and_two_processes_sharing_one_cache(tmp_path):
    folder = tmp_path / "shared-cache"
    for delay in (0.3, 0.7, 1.1):  # a writer killed at three moments (each 1 MB write takes a while)
        killed = worker(folder, "killed", 60)
        assert killed.stdout.readline().strip() == "ready", killed.stdout.read()
        time.sleep(delay)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert check_all(folder) > 0
    both = [worker(folder, f"w{i}", 4) for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in both]
    for p, output in zip(both, outputs):
        assert p.returncode == 0 and "ok" in output, output
    assert check_all(folder) > 40
    explorer.configure()
