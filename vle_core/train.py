"""Train a VLE on the CPU, one GPU, or many through torchrun.

    python -m vle_core.train --preset vanilla-cpu --data bsds --out runs/vanilla --steps 20000
    python -m vle_core.train --preset vanilla-cpu --data bsds --out runs/vanilla --steps 30000 --resume
    python -m vle_core.train --preset vanilla-cpu --data bsds --out runs/vanilla-more --init checkpoints/vanilla-natural
    torchrun --nproc_per_node=4 -m vle_core.train --preset vanilla-paper --data folder:/laion --crop 512 --batch 4 ...

The run folder `--out` holds:
    state.pt        resumable state: weights, optimiser, step, RNG states (torch.load weights_only)
    model/          the latest weights as a checkpoint folder (config.json, model.safetensors, README.md)
    log.jsonl       one JSON line of losses per `--log-every` steps
    samples/        sheets of per-token reconstructions, contributions and masks (Figs. 3, 5, 6)
Only rank 0 writes; every rank draws the same token count each step, so the ranks stay in step.
"""

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .checkpoint import read_checkpoint, save_checkpoint
from .config import preset
from .data import resolve_data
from .figures import token_strip
from .losses import vle_loss
from .pca import PatchPCA
from .vle import VLE, build_model, pick_device


@dataclass
class TrainConfig:
    preset: str = "vanilla-cpu"
    data: str = "bsds"
    out: str = "runs/vle"
    steps: int = 20_000
    batch: int = 16  # per process
    crop: int = 64
    lr: float = 1e-3  # Adam, as the authors
    min_lr_ratio: float = 0.1  # cosine decay to lr * min_lr_ratio at `steps`
    warmup: int = 200
    grad_clip: float = 1.0  # authors: 0.1 (vanilla), none (masked)
    min_tokens: int = 0  # 0: 1 for vanilla, 2 for masked (Section 3.2)
    max_tokens: int = 4
    tokens_every: int = 2000  # the folded normal's centre moves up one token every this many steps
    tokens_spread: float = 1.0  # its standard deviation
    seed: int = 2023  # the authors' seed
    device: str = "auto"
    log_every: int = 10
    save_every: int = 500
    sample_every: int = 1000
    init: str = ""  # a checkpoint folder whose weights a new run starts from (its config must be the preset's); the optimiser starts afresh


def token_count(step: int, cfg: TrainConfig, low: int) -> int:
    """Section 3.2's curriculum: the number of tokens for this step, drawn from a folded normal
    whose centre moves up with the step. Seeded by the step alone, so every rank draws alike and
    a resumed run draws what it would have."""
    centre = min(step / cfg.tokens_every, cfg.max_tokens - low)
    draw = abs(np.random.default_rng([cfg.seed, step]).normal(centre, cfg.tokens_spread))
    return int(min(low + round(draw), cfg.max_tokens))


def learning_rate(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def linear_code(data, crops: int = 2000) -> torch.Tensor:
    """Patch-PCA of `crops` training crops, as the components a staged VLE starts from ([192, 192],
    PixelUnshuffle order). The crops are drawn from a fixed seed, outside the training stream, so
    every rank of a run fits the same code."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        arrays = [((data[int(i)].permute(1, 2, 0).numpy() + 1) / 2) for i in torch.randint(len(data), (crops,))]
    return torch.from_numpy(PatchPCA(arrays).unshuffled_components().copy()).float()


def rng_states(sampler: torch.Generator) -> dict:
    """Everything random in a step: which images (sampler), their crops and flips (torch).
    The token count is seeded by the step, and scenes by their index, so nothing else is."""
    return {"torch": torch.get_rng_state(), "sampler": sampler.get_state()}


def set_rng_states(states: dict, sampler: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    sampler.set_state(states["sampler"])


def model_card(cfg: TrainConfig, step: int, elapsed: float, device: torch.device, world: int) -> str:
    return (
        f"# {cfg.preset} trained on {cfg.data}\n\n"
        f"An intermediate training checkpoint: step {step} of {cfg.steps}, {elapsed / 3600:.2f} hours on "
        f"{world} x {device.type}, {cfg.crop}x{cfg.crop} crops, batch {cfg.batch} per process, "
        f"{cfg.max_tokens} tokens at most. Not evaluated.\n"
    )


def train(cfg: TrainConfig, resume: bool = False) -> None:
    ddp = int(os.environ.get("RANK", -1)) != -1
    if ddp:
        local_rank = int(os.environ["LOCAL_RANK"])
        use_cuda = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
    else:
        rank, world, device = 0, 1, pick_device(cfg.device)
    master = rank == 0
    out = Path(cfg.out)

    model_config = preset(cfg.preset)
    low = cfg.min_tokens or (2 if model_config.kind == "masked" else 1)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    raw_model = build_model(model_config).to(device)
    data = resolve_data(cfg.data, crop=cfg.crop, length=None)
    if model_config.stages and not cfg.init and not (out / "state.pt").exists():  # a new staged VLE starts as the linear code; a resumed run loads its own weights
        raw_model.init_linear_code(linear_code(data).to(device))
    if cfg.init:  # every rank loads the same weights, so the ranks start in sync
        initial, _ = read_checkpoint(cfg.init)
        if initial.config != model_config:
            raise SystemExit(f"--init {cfg.init} holds a different model than preset {cfg.preset}: {initial.config} != {model_config}")
        raw_model.load_state_dict(initial.state_dict())
    optimiser = torch.optim.Adam(raw_model.parameters(), lr=cfg.lr)
    samples = None
    if master:  # the same sample images in every run, drawn without touching the training stream
        with torch.random.fork_rng():
            torch.manual_seed(0)
            samples = torch.stack([data[i] for i in range(0, len(data), max(1, len(data) // 4))][:4])

    step, elapsed = 0, 0.0
    torch.manual_seed(cfg.seed + 1000 * rank)  # each rank draws its own images and crops
    sampler = torch.Generator().manual_seed(cfg.seed + 1000 * rank)
    if (out / "state.pt").exists():
        if not resume:
            raise SystemExit(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
        state = torch.load(out / "state.pt", map_location=device, weights_only=True)
        if state["preset"] != cfg.preset:
            raise SystemExit(f"{out} holds a {state['preset']} run, not {cfg.preset}")
        raw_model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, elapsed = state["step"], state["elapsed"]
        if master:  # rank 0's stream continues exactly; the others start a fresh stream of their own
            set_rng_states(state["rng"], sampler)
        else:
            torch.manual_seed(cfg.seed + 1000 * rank + step)
            sampler.manual_seed(cfg.seed + 1000 * rank + step)
    model = DistributedDataParallel(raw_model) if ddp else raw_model
    if master:
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")

    def save():
        checksum = torch.stack([p.detach().double().sum() for p in raw_model.parameters()]).sum().reshape(1).to(device)
        if ddp:
            gathered = [torch.zeros_like(checksum) for _ in range(world)]
            dist.all_gather(gathered, checksum)
            checksums = [float(c) for c in gathered]
        else:
            checksums = [float(checksum)]
        if not master:
            return
        if max(checksums) - min(checksums) > 1e-6 * max(1.0, abs(checksums[0])):
            raise RuntimeError(f"ranks diverged: parameter checksums {checksums}")
        state = {
            "preset": cfg.preset,
            "model": raw_model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "step": step,
            "elapsed": elapsed,
            "rng": rng_states(sampler),
        }
        torch.save(state, out / "state.tmp")
        os.replace(out / "state.tmp", out / "state.pt")  # never leave a half-written state behind
        training = {
            "data": cfg.data,
            "steps": step,
            "max_tokens": cfg.max_tokens,
            "crop": cfg.crop,
            "batch": cfg.batch * world,
            "hours": round(elapsed / 3600, 3),
        }
        save_checkpoint(raw_model, out / "model", model_card(cfg, step, elapsed, device, world), training, dtype=torch.float32)
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "event": "save", "rank_checksums": checksums}) + "\n")

    def sample_sheet():
        raw_model.eval()
        vle = VLE(raw_model, device=device)
        sheets = []
        for image in samples:
            array = ((image.permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)
            sheets.append(token_strip(vle.encode(array, cfg.max_tokens + 2), array))
        Image.fromarray(np.concatenate(sheets, axis=0)).save(out / "samples" / f"step{step:07d}.png")
        raw_model.train()

    raw_model.train()
    bar = tqdm(total=cfg.steps, initial=step, disable=not master, dynamic_ncols=True)
    while step < cfg.steps:
        t0 = time.perf_counter()
        n_tokens = token_count(step, cfg, low)
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(step, cfg)
        x = torch.stack([data[int(i)] for i in torch.randint(len(data), (cfg.batch,), generator=sampler)]).to(device)
        losses = vle_loss(model_config, x, model(x, n_tokens))
        optimiser.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)
        optimiser.step()
        step += 1
        seconds = time.perf_counter() - t0
        elapsed += seconds
        if master:
            bar.update(1)
            bar.set_postfix(loss=f"{losses['loss'].item():.4f}", tokens=n_tokens, img_per_s=f"{cfg.batch * world / seconds:.1f}")
            if step % cfg.log_every == 0:
                record = {"step": step, "tokens": n_tokens, "lr": learning_rate(step - 1, cfg), "seconds": round(seconds, 3)}
                record.update({k: round(float(v.detach()), 6) for k, v in losses.items()})
                with open(out / "log.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
        if step % cfg.save_every == 0 or step == cfg.steps:
            save()
        if master and (step % cfg.sample_every == 0 or step == cfg.steps):
            sample_sheet()
    bar.close()
    if ddp:
        dist.barrier()  # rank 0 may still be drawing samples; tearing gloo down under it aborted rank 1 once in a loaded test
        dist.destroy_process_group()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in asdict(TrainConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    args = vars(parser.parse_args(argv))
    resume = args.pop("resume")
    train(TrainConfig(**args), resume=resume)


if __name__ == "__main__":
    main()
