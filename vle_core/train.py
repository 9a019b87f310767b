"""Train a VLE on the CPU, one GPU, or many through torchrun.

    python -m vle_core.train --preset vanilla-cpu --data bsds --out runs/vanilla --steps 20000
    python -m vle_core.train --preset vanilla-cpu --data bsds --out runs/vanilla --steps 30000 --resume
    python -m vle_core.train --preset vanilla-cpu --data bsds --out runs/vanilla-more --init checkpoints/vanilla-natural
    torchrun --nproc_per_node=4 -m vle_core.train --preset vanilla-paper --data folder:/laion --crop 512 --batch 4 ...

On CUDA a run uses bf16 autocast (`--precision`), channels-last weights and inputs, DataLoader
workers with pinned memory (`--workers`), and optionally `torch.compile` (`--compile`). On the CPU
it loads crops in the training process by default, so that a resumed run continues exactly as an
uninterrupted one would; with workers, a resumed run draws other crops than it would have.

The run folder `--out` holds:
    state.pt        resumable state: weights, optimiser, step, RNG states (torch.load weights_only)
    model/          the latest weights as a checkpoint folder (config.json, model.safetensors, README.md)
    log.jsonl       one JSON line of losses per `--log-every` steps
    samples/        sheets of per-token reconstructions, contributions and masks (Figs. 3, 5, 6)
Only rank 0 writes; every rank draws the same token count each step, so the ranks stay in step.
A loss that is not finite stops the run at that step, unsaved: state.pt keeps the last save.

`train` composes the steps: `start_process` (DDP, device, precision), `new_run` (model, --init,
optimiser, data), `seed_or_resume`, `prepare_model`, then `optimisation_step`, `log_step`, `save`
and `sample_sheet` until --steps.
"""

import argparse
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm import tqdm

from .checkpoint import read_checkpoint, save_checkpoint
from .config import PRESETS, VLEConfig, preset
from .data import SPEC_FORMS, resolve_data
from .figures import token_strip
from .loop import to_pixels
from .losses import vle_loss
from .pca import PatchPCA
from .vle import VLE, build_model, pick_device


def option(default, help: str):
    """A TrainConfig field with its command-line help."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    preset: str = option("vanilla-cpu", f"the model: one of {', '.join(sorted(PRESETS))} (vle_core/config.py)")
    data: str = option(
        "bsds", f"training data: {SPEC_FORMS}; 'bsds' is BSDS500 train + val under $VLE_DATA (default ../shared/data)"
    )
    out: str = option("runs/vle", "the run folder: state.pt, model/, log.jsonl, samples/")
    steps: int = option(20_000, "train until this step (a resumed run may raise it)")
    batch: int = option(16, "images per step, per process")
    crop: int = option(64, "side of the square random training crops, px")
    lr: float = option(1e-3, "peak learning rate (Adam, as the authors)")
    min_lr_ratio: float = option(0.1, "the cosine schedule decays to lr x this at --steps")
    warmup: int = option(200, "steps of linear learning-rate warm-up")
    grad_clip: float = option(1.0, "gradient-norm clipping; 0: none (authors: 0.1 vanilla, none masked)")
    min_tokens: int = option(0, "fewest tokens per image; 0: 1 for vanilla, 2 for masked (Section 3.2)")
    max_tokens: int = option(4, "most tokens per image")
    tokens_every: int = option(2000, "the token count's centre moves up one token every this many steps (Section 3.2)")
    tokens_spread: float = option(1.0, "standard deviation of the token count around its centre")
    token_weights: str = option(
        "", "loss weights of token counts 1, 2, ..., comma-separated, the last repeating (a vanilla VLE); empty: all 1"
    )
    seed: int = option(2023, "random seed (the authors')")
    device: str = option("auto", "auto (cuda, then mps, then cpu), or a torch device")
    precision: str = option("auto", "auto: bf16 autocast on CUDA, float32 elsewhere; or fp32, bf16")
    workers: int = option(
        -1,
        "DataLoader worker processes; -1: 8 on CUDA, 0 (crops drawn in the training process, exact resumption) "
        "elsewhere",
    )
    compile: bool = option(False, "torch.compile the encoder and decoder (GPU runs; the first steps are slow)")
    log_every: int = option(10, "steps between lines of log.jsonl")
    save_every: int = option(500, "steps between saves of state.pt and model/")
    sample_every: int = option(1000, "steps between sample sheets in samples/")
    init: str = option(
        "", "a checkpoint folder whose weights a new run starts from (same preset); the optimiser starts afresh"
    )
    minutes: float = option(
        0.0, "stop, saved, after this many minutes of training in this process (a lent GPU's time); 0: no limit"
    )


def token_count(step: int, cfg: TrainConfig, low: int) -> int:
    """Section 3.2's curriculum: the number of tokens for this step, drawn from a folded normal
    whose centre moves up with the step. Seeded by the step alone, so every rank draws alike and
    a resumed run draws what it would have."""
    centre = min(step / cfg.tokens_every, cfg.max_tokens - low)
    draw = abs(np.random.default_rng([cfg.seed, step]).normal(centre, cfg.tokens_spread))
    return int(min(low + round(draw), cfg.max_tokens))


def parse_weights(text: str) -> tuple[float, ...]:
    """--token-weights "0.25,1,1" -> (0.25, 1.0, 1.0); "" -> (). Each weight must be >= 0, one > 0."""
    if not text.strip():
        return ()
    try:
        weights = tuple(float(w) for w in text.split(","))
    except ValueError:
        raise ValueError(f"--token-weights must be comma-separated numbers, got {text!r}") from None
    if min(weights) < 0 or max(weights) <= 0 or not all(math.isfinite(w) for w in weights):
        raise ValueError(f"--token-weights must be finite, none negative and one positive, got {text!r}")
    return weights


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
        arrays = [to_pixels(data[int(i)]) for i in torch.randint(len(data), (crops,))]
    return torch.from_numpy(PatchPCA(arrays).unshuffled_components().copy()).float()


def out_of_time(started: float, minutes: float, ddp: bool, device: torch.device) -> bool:
    """Whether `minutes` have passed since `started`; under DDP, whether they have on any rank, so
    that every rank stops at the same step."""
    late = torch.tensor([float(time.perf_counter() - started > 60 * minutes)], device=device)
    if ddp:
        dist.all_reduce(late, op=dist.ReduceOp.MAX)
    return bool(late.item())


def weight_shapes(model) -> dict:
    """Each weight's name and shape: what --init needs to match (S's settings have no weights)."""
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def new_identity_weights(initial, model) -> list[str] | None:
    """The weights `model` has and the checkpoint `initial` lacks, where the model's own start keeps
    the checkpoint's model exactly: stage FiLM (zero), a context block (its output at zero), and a
    token's own E and D (own_stages: copies of the shared pair, which coded that token before), so
    a vanilla-cpu-light checkpoint continues as vanilla-cpu-light-film, and that as
    vanilla-cpu-light-context or vanilla-cpu-light-own. None if anything else differs: a weight
    missing from `model`, a shape (other than a stage table's rows: `grown_stage_tables`)."""
    have, want = weight_shapes(initial), weight_shapes(model)
    added = sorted(set(want) - set(have))
    grown = set(grown_stage_tables(initial, model))
    starts_alike = (".film", ".context.", "own_encoders.", "own_decoders.")
    if (
        set(have) - set(want)
        or any(have[name] != want[name] for name in have if name not in grown)
        or not all(any(part in name for part in starts_alike) for name in added)
    ):
        return None
    return added


# one row per stage (nets.Stage*)
STAGE_TABLES = ("stage_embedding.weight", "linear.weight", ".film1.weight", ".film2.weight", ".film.weight")


def grown_stage_tables(initial, model) -> list[str]:
    """The per-stage weights (one row per stage) of which `model` has more rows than the checkpoint
    `initial`, the rest of their shape alike: a model with more stages than the checkpoint."""
    have, want = weight_shapes(initial), weight_shapes(model)
    return sorted(
        name
        for name in set(have) & set(want)
        if name.endswith(STAGE_TABLES) and want[name][1:] == have[name][1:] and want[name][0] > have[name][0]
    )


@torch.no_grad()
def load_with_grown_stages(initial, model, grown: list[str]) -> None:
    """Load the checkpoint's weights into `model`, which has more stages: each grown table keeps the
    checkpoint's rows, and a new stage starts as the checkpoint's last stage in the convolutional
    path (its embedding and FiLM rows) and with the model's own linear code (the next patch-PCA
    components, `start_as_linear_code`), so it codes what the earlier stages left. A token's own E
    and D that the checkpoint lacks (own_stages) start as copies of its shared pair, grown tables
    included, which coded that token in the checkpoint."""
    state = initial.state_dict()
    own = model.state_dict()
    for name in grown:
        old, rows = state[name], own[name].clone()
        rows[: len(old)] = old
        if not name.endswith("linear.weight"):
            rows[len(old) :] = old[-1]
        state[name] = rows
    model.load_state_dict(state, strict=False)
    for i, (encoder, decoder) in enumerate(model.coders()[1:]):
        # a token the checkpoint coded with its shared pair
        if not any(name.startswith(f"own_encoders.{i}.") for name in state):
            encoder.load_state_dict(model.encoder.state_dict())
            decoder.load_state_dict(model.decoder.state_dict())


def batches(data, batch: int, sampler: torch.Generator, workers: int, pin_memory: bool):
    """Endless batches [batch, 3, crop, crop] of random items (drawn with replacement by `sampler`).
    workers 0: built in this process, so torch's global RNG (crops, flips) and `sampler` are all
    the state a resumed run needs. workers > 0: a DataLoader, faster on a GPU, whose workers draw
    crops from seeds of their own."""
    if workers == 0:
        while True:
            yield torch.stack([data[int(i)] for i in torch.randint(len(data), (batch,), generator=sampler)])
    indices = RandomSampler(data, replacement=True, num_samples=2**62, generator=sampler)
    yield from DataLoader(
        data,
        batch_size=batch,
        sampler=indices,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=True,
        drop_last=True,
    )


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


@dataclass
class Process:
    """This process's place in a run: rank `rank` of `world` (DDP under torchrun, else 0 of 1), its
    device, and how it computes there: bf16 autocast or float32, DataLoader workers or none."""

    ddp: bool
    rank: int
    world: int
    device: torch.device
    bf16: bool
    workers: int

    @property
    def master(self) -> bool:
        """Rank 0, the only process that writes."""
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


@dataclass
class Run:
    """One process's training state: what a step changes and what `save` writes to state.pt."""

    cfg: TrainConfig
    process: Process
    model_config: VLEConfig
    weights: tuple[float, ...]  # --token-weights, parsed: loss weights of token counts 1, 2, ...
    low: int  # fewest tokens per image
    raw_model: nn.Module  # the VLE itself: its state_dict is the checkpoint's
    optimiser: torch.optim.Optimizer
    sampler: torch.Generator  # which images each step draws
    model: nn.Module | None = None  # what a step runs: raw_model, or its DDP wrapper
    step: int = 0  # steps done
    elapsed: float = 0.0  # seconds spent in steps, summed over every session of the run

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)


def start_process(cfg: TrainConfig) -> Process:
    """Join the torchrun group if there is one (RANK set), pick the device and the precision."""
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
    cuda = device.type == "cuda"
    if cfg.precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"--precision must be auto, fp32 or bf16, got {cfg.precision!r}")
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
    workers = cfg.workers if cfg.workers >= 0 else (8 if cuda else 0)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # what float32 work remains
    return Process(ddp, rank, world, device, bf16, workers)


def new_run(cfg: TrainConfig, process: Process) -> tuple[Run, Dataset]:
    """The model (new, as the linear code, or from --init), its optimiser, and the training data.
    Every rank builds the same weights."""
    model_config = preset(cfg.preset)
    weights = parse_weights(cfg.token_weights)
    if weights and model_config.kind == "masked":
        raise ValueError(
            "--token-weights weighs a vanilla VLE's token counts; a masked VLE's loss has terms of other kinds"
        )
    low = cfg.min_tokens or (2 if model_config.kind == "masked" else 1)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    raw_model = build_model(model_config).to(process.device)
    data = resolve_data(cfg.data, crop=cfg.crop, length=None)
    initial = read_checkpoint(cfg.init)[0] if cfg.init else None
    grown = grown_stage_tables(initial, raw_model) if initial is not None else []
    # A new staged VLE starts as the linear code; a resumed run loads its own weights
    if model_config.stages and (not cfg.init or grown) and not (Path(cfg.out) / "state.pt").exists():
        raw_model.init_linear_code(linear_code(data).to(process.device))
    if initial is not None:  # every rank loads the same weights, so the ranks start in sync
        start_from(initial, raw_model, grown, cfg, process.master)
    optimiser = torch.optim.Adam(raw_model.parameters(), lr=cfg.lr)
    return Run(cfg, process, model_config, weights, low, raw_model, optimiser, torch.Generator()), data


def start_from(initial, raw_model, grown: list[str], cfg: TrainConfig, master: bool) -> None:
    """--init: load the checkpoint `initial` into `raw_model`, which may have weights the checkpoint
    lacks (new_identity_weights) or more stages (grown: grown_stage_tables)."""
    added = new_identity_weights(initial, raw_model)
    if type(initial.config) is not type(raw_model.config) or added is None:
        raise SystemExit(
            f"--init {cfg.init} holds a different model than preset {cfg.preset}: {initial.config} != "
            f"{raw_model.config}"
        )
    load_with_grown_stages(initial, raw_model, grown)  # settings without weights (S's) are the preset's
    if added and master:
        print(
            f"--init: {len(added)} weights the checkpoint lacks start where the model is the checkpoint's exactly "
            "(stage FiLM, context)"
        )
    if grown and master:
        print(
            f"--init: {initial.config.stages} stages grown to {raw_model.config.stages}: new stages start as the last "
            "one, with the next patch-PCA components"
        )


def sample_images(data) -> torch.Tensor:
    """[4, 3, crop, crop]: the images each sample sheet shows, the same in every run of a data set,
    drawn without touching the training stream."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torch.stack([data[i] for i in range(0, len(data), max(1, len(data) // 4))][:4])


def seed_or_resume(run: Run, resume: bool) -> None:
    """Seed this rank's streams; if --out holds a run, continue it (with --resume only) from its
    state.pt: weights, optimiser, step and, on rank 0, the random streams, so that a resumed run
    goes on exactly as an uninterrupted one."""
    cfg, rank = run.cfg, run.process.rank
    torch.manual_seed(cfg.seed + 1000 * rank)  # each rank draws its own images and crops
    run.sampler.manual_seed(cfg.seed + 1000 * rank)
    if not (run.out / "state.pt").exists():
        return
    if not resume:
        raise SystemExit(f"{run.out} already holds a run: pass --resume to continue it, or choose another --out")
    state = torch.load(run.out / "state.pt", map_location=run.process.device, weights_only=True)
    if state["preset"] != cfg.preset:
        raise SystemExit(f"{run.out} holds a {state['preset']} run, not {cfg.preset}")
    run.raw_model.load_state_dict(state["model"])
    run.optimiser.load_state_dict(state["optimiser"])
    run.step, run.elapsed = state["step"], state["elapsed"]
    if run.process.master:  # rank 0's stream continues exactly; the others start a fresh stream of their own
        set_rng_states(state["rng"], run.sampler)
    else:
        torch.manual_seed(cfg.seed + 1000 * rank + run.step)
        run.sampler.manual_seed(cfg.seed + 1000 * rank + run.step)


def prepare_model(run: Run) -> None:
    """run.model: channels-last on CUDA, compiled with --compile, wrapped in DDP under torchrun."""
    if run.process.cuda:  # cuDNN's fast convolutions want NHWC
        run.raw_model = run.raw_model.to(memory_format=torch.channels_last)
    if run.cfg.compile:  # in place, so state_dict keys (and checkpoints) stay the same
        for encoder, decoder in run.raw_model.coders():
            encoder.compile()
            decoder.compile()
    # A step with fewer tokens than own_stages leaves the later tokens' own E and D without gradients
    unused = bool(run.model_config.own_stages)
    run.model = (
        DistributedDataParallel(run.raw_model, find_unused_parameters=unused) if run.process.ddp else run.raw_model
    )


def optimisation_step(run: Run, stream, autocast) -> tuple[dict, int, float]:
    """One step: a batch from `stream`, this step's token count and learning rate, the residual
    loop, the loss and an Adam update. Returns (losses, the token count, the step's seconds)."""
    cfg, process = run.cfg, run.process
    t0 = time.perf_counter()
    n_tokens = token_count(run.step, cfg, run.low)
    for group in run.optimiser.param_groups:
        group["lr"] = learning_rate(run.step, cfg)
    layout = torch.channels_last if process.cuda else torch.preserve_format
    x = next(stream).to(process.device, non_blocking=True, memory_format=layout)
    with autocast:  # E and D in bf16; the loop's sums and the losses stay float32 (loop.py, losses.py)
        passes = run.model(x, n_tokens)
    losses = vle_loss(run.model_config, x, passes, run.weights)
    run.optimiser.zero_grad(set_to_none=True)
    losses["loss"].backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.raw_model.parameters(), cfg.grad_clip)
    run.optimiser.step()
    run.step += 1
    seconds = time.perf_counter() - t0
    run.elapsed += seconds
    return losses, n_tokens, seconds


def stop_unless_finite(run: Run, loss: torch.Tensor) -> None:
    """Stop the run, unsaved, if a step's loss is nan or infinite on any rank (every rank stops at
    the same step): its update has spoilt the weights, and state.pt keeps the last save."""
    finite = torch.isfinite(loss.detach()).float().reshape(1)
    if run.process.ddp:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if not finite.item():
        saved = f"; --resume continues {run.out} from its last save" if (run.out / "state.pt").exists() else ""
        raise SystemExit(
            f"the loss is not finite ({float(loss.detach()):g}) at step {run.step}: training stops unsaved{saved} (a "
            "lower --lr or a --grad-clip may help)"
        )


def log_step(run: Run, bar, losses: dict, n_tokens: int, seconds: float) -> None:
    """Rank 0: the progress bar, and every --log-every steps a line of log.jsonl."""
    cfg, process = run.cfg, run.process
    bar.update(1)
    speed = f"{cfg.batch * process.world / seconds:.1f}"
    bar.set_postfix(loss=f"{losses['loss'].item():.4f}", tokens=n_tokens, img_per_s=speed)
    if run.step % cfg.log_every:
        return
    record = {
        "step": run.step,
        "tokens": n_tokens,
        "lr": learning_rate(run.step - 1, cfg),
        "seconds": round(seconds, 3),
    }
    record.update({k: round(float(v.detach()), 6) for k, v in losses.items()})
    if process.cuda:
        record["gpu_peak_gib"] = round(torch.cuda.max_memory_allocated(process.device) / 2**30, 2)
    with open(run.out / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def rank_checksums(run: Run) -> list[float]:
    """Every rank's sum of its parameters (float64), gathered on every rank: equal if the ranks
    are in step."""
    checksum = torch.stack([p.detach().double().sum() for p in run.raw_model.parameters()]).sum()
    checksum = checksum.reshape(1).to(run.process.device)
    if not run.process.ddp:
        return [float(checksum)]
    gathered = [torch.zeros_like(checksum) for _ in range(run.process.world)]
    dist.all_gather(gathered, checksum)
    return [float(c) for c in gathered]


def save(run: Run) -> None:
    """Rank 0 writes state.pt (atomically), model/ and a "save" line in log.jsonl, after checking
    that the ranks' weights agree. Every rank must call it: the checksums are gathered."""
    checksums = rank_checksums(run)
    if not run.process.master:
        return
    if max(checksums) - min(checksums) > 1e-6 * max(1.0, abs(checksums[0])):
        raise RuntimeError(f"ranks diverged: parameter checksums {checksums}")
    cfg, out, world = run.cfg, run.out, run.process.world
    state = {
        "preset": cfg.preset,
        "model": run.raw_model.state_dict(),
        "optimiser": run.optimiser.state_dict(),
        "step": run.step,
        "elapsed": run.elapsed,
        "rng": rng_states(run.sampler),
    }
    torch.save(state, out / "state.tmp")
    os.replace(out / "state.tmp", out / "state.pt")  # never leave a half-written state behind
    training = {
        "data": cfg.data,
        "steps": run.step,
        "max_tokens": cfg.max_tokens,
        "crop": cfg.crop,
        "batch": cfg.batch * world,
        "hours": round(run.elapsed / 3600, 3),
    }
    card = model_card(cfg, run.step, run.elapsed, run.process.device, world)
    save_checkpoint(run.raw_model, out / "model", card, training, dtype=torch.float32)
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps({"step": run.step, "event": "save", "rank_checksums": checksums}) + "\n")


def sample_sheet(run: Run, samples: torch.Tensor) -> None:
    """samples/stepNNNNNNN.png: each sample image's token strip (Figs. 3, 5, 6), up to two tokens
    past --max-tokens."""
    run.raw_model.eval()
    vle = VLE(run.raw_model, device=run.process.device)
    sheets = []
    for image in samples:
        array = to_pixels(image)
        sheets.append(token_strip(vle.encode(array, run.cfg.max_tokens + 2), array))
    Image.fromarray(np.concatenate(sheets, axis=0)).save(run.out / "samples" / f"step{run.step:07d}.png")
    run.raw_model.train()


def train(cfg: TrainConfig, resume: bool = False) -> None:
    """Train until --steps (or --minutes), saving every --save-every steps and at the end."""
    process = start_process(cfg)
    run, data = new_run(cfg, process)
    samples = sample_images(data) if process.master else None
    seed_or_resume(run, resume)
    prepare_model(run)
    if process.master:
        (run.out / "samples").mkdir(parents=True, exist_ok=True)
        (run.out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    run.raw_model.train()
    stream = batches(data, cfg.batch, run.sampler, process.workers, pin_memory=process.cuda)
    autocast = torch.autocast(process.device.type, dtype=torch.bfloat16) if process.bf16 else nullcontext()
    started = time.perf_counter()
    with tqdm(total=cfg.steps, initial=run.step, disable=not process.master, dynamic_ncols=True) as bar:
        while run.step < cfg.steps:
            losses, n_tokens, seconds = optimisation_step(run, stream, autocast)
            stop_unless_finite(run, losses["loss"])
            if process.master:
                log_step(run, bar, losses, n_tokens, seconds)
            last = run.step == cfg.steps or (
                cfg.minutes > 0 and out_of_time(started, cfg.minutes, process.ddp, process.device)
            )
            if run.step % cfg.save_every == 0 or last:
                save(run)
            if process.master and (run.step % cfg.sample_every == 0 or last):
                sample_sheet(run, samples)
            if last:
                break
    if process.ddp:
        dist.barrier()  # rank 0 may still be drawing samples: tearing gloo down under it can abort the others
        dist.destroy_process_group()


def resolve_config(given: dict, resume: bool) -> TrainConfig:
    """The run's settings from the flags `given`; with resume, the saved train_config.json of the
    run in --out, with the flags given on top (e.g. a larger --steps)."""
    if not resume:
        return TrainConfig(**given)
    out = Path(given.get("out", TrainConfig.out))
    if not (out / "state.pt").is_file():
        raise ValueError(
            f"no run to resume in {out} (no state.pt there): name the run's folder with --out, or start a new run "
            "without --resume"
        )
    saved_file = out / "train_config.json"
    saved = json.loads(saved_file.read_text()) if saved_file.is_file() else {}
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{**{k: v for k, v in saved.items() if k in known}, **given})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vle_core.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for f in fields(TrainConfig):
        flag, help = "--" + f.name.replace("_", "-"), f"{f.metadata['help']} (default: {f.default})"
        if f.type is bool or isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help)
        else:
            parser.add_argument(flag, type=type(f.default), default=argparse.SUPPRESS, help=help)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out with its saved settings; flags given with it override them",
    )
    given = vars(parser.parse_args(argv))
    resume = given.pop("resume")
    try:
        train(resolve_config(given, resume), resume=resume)
    except (ValueError, FileNotFoundError) as e:  # a user's mistake: one line, no traceback
        parser.exit(2, f"{parser.prog}: error: {e}\n")


if __name__ == "__main__":
    main()
