"""Checkpoint folders: `config.json` + `model.safetensors` + `README.md` (the model card).

A checkpoint rebuilds its model from its own folder, and loading never unpickles. Anything
malformed is a ValueError that names the problem. Resumable training state (optimiser, step,
RNG) is not part of a checkpoint; `vle_core.train` keeps it apart.

config.json:
    {"format": "vle-checkpoint/1", "kind": "vanilla" | "masked",
     "config": {VLEConfig fields}, "training": {free-form: data, steps, max_tokens, ...}}
"""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import config_from_dict
from .vle import VLE, build_model

FORMAT = "vle-checkpoint/1"
FILES = ("config.json", "model.safetensors", "README.md")


def save_checkpoint(model, folder, card: str, training: dict | None = None, dtype=torch.float16) -> Path:
    """Write `model` (a VanillaVLE/MaskedVLE, or a VLE) to `folder`. Weights are stored as `dtype`:
    float16 halves the size and changes outputs by far less than a token's worth (see tests)."""
    model = getattr(model, "model", model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = model.config
    meta = {"format": FORMAT, "kind": config.kind, "config": config.to_dict(), "training": training or {}}
    (folder / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    state = {name: t.detach().to("cpu", dtype).contiguous() for name, t in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": FORMAT})
    (folder / "README.md").write_text(card if card.endswith("\n") else card + "\n")
    return folder


def read_checkpoint(folder):
    """(model with weights loaded, on the CPU, in eval mode; meta dict incl. 'card')."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a checkpoint folder (no such directory)")
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"checkpoint {folder} is missing {', '.join(missing)}")
    try:
        meta = json.loads((folder / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{folder}/config.json is not valid JSON: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f'{folder}/config.json is not a VLE checkpoint config (expected "format": "{FORMAT}")')
    unknown = sorted(set(meta) - {"format", "kind", "config", "training"})
    if unknown:
        raise ValueError(f"{folder}/config.json has unknown keys {unknown}")
    config = config_from_dict(meta.get("kind"), meta.get("config", {}))
    model = build_model(config)

    try:
        state = load_file(str(folder / "model.safetensors"))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{folder}/model.safetensors is unreadable (truncated or corrupt?): {e}") from e
    expected = model.state_dict()
    absent, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if absent or extra:
        raise ValueError(
            f"{folder}/model.safetensors does not match its config: "
            f"missing tensors {absent[:5]}, unexpected tensors {extra[:5]}"
        )
    for name, tensor in expected.items():
        if state[name].shape != tensor.shape:
            raise ValueError(
                f"{folder}/model.safetensors: tensor {name} has shape {tuple(state[name].shape)}, "
                f"the config needs {tuple(tensor.shape)}"
            )
    model.load_state_dict({name: t.float() for name, t in state.items()})
    meta["card"] = (folder / "README.md").read_text()
    return model.eval(), meta


SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"  # the checkpoints that ship beside the library


def shipped_checkpoints() -> list[str]:
    """The names of the shipped checkpoints (`load_vle` takes these as well as folders)."""
    return sorted(p.name for p in SHIPPED.iterdir() if (p / "config.json").is_file()) if SHIPPED.is_dir() else []


def resolve(source) -> Path:
    """The folder `load_vle` reads for `source`: a folder; else a shipped checkpoint's name; else,
    for an "owner/name" that names nothing local, a Hugging Face Hub snapshot (if huggingface_hub
    is installed). A path that is not there is one ValueError line, never a Hub lookup."""
    path = Path(source)
    if path.is_dir():
        return path
    if isinstance(source, str) and source in shipped_checkpoints():
        return SHIPPED / source
    parts = path.parts
    local = (
        not isinstance(source, str) or len(parts) != 2 or source.startswith((".", "/", "~")) or Path(parts[0]).exists()
    )
    if local:
        names = ", ".join(shipped_checkpoints()) or "none"
        raise ValueError(
            f"no checkpoint folder {source}: give a folder holding config.json, "
            f"or a shipped checkpoint's name ({names})"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ValueError(
            f"{source} is not a folder, and huggingface_hub is not installed to fetch it from the Hub"
        ) from None
    try:
        return Path(snapshot_download(source, allow_patterns=list(FILES)))
    except Exception as e:  # offline, unknown repo, no access: all mean "not loadable"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{source} is not a folder and could not be fetched from the Hub: {first}") from None


def load_vle(source, device: str = "auto") -> VLE:
    """A VLE from a checkpoint folder, a shipped checkpoint's name ("vanilla-natural") or a
    Hugging Face Hub repo id (`resolve`). device: "auto" (cuda, mps, cpu) or a torch device."""
    path = resolve(source)
    model, meta = read_checkpoint(path)
    # Channels-last (NHWC) weights: oneDNN's CPU convolutions, 80% of an encode, run faster on them
    # (8 tokens at 256x256: 478 -> 340 ms on 2 cores, see benchmarks/benchmark.py). Only here, where a model
    # is built for inference: a training model keeps the layout its optimiser state was made with.
    model = model.to(memory_format=torch.channels_last)
    return VLE(model, device=device, card=meta["card"], training=meta["training"])
