"""Model configurations: one dataclass per model, and the named presets.

A config holds every hyperparameter that shapes a model's weights; it is saved as
`config.json` beside the weights and rebuilds the model on load. Training settings
(steps, batch, token curriculum) live in `vle_core.train`, not here.
"""

from dataclasses import dataclass, fields, replace

DOWNSAMPLING = 8  # pixels per latent cell along each side (Section 3.1: the token is 1/64 of the pixels)


@dataclass(frozen=True)
class VLEConfig:
    """Vanilla VLE (Algorithm 1): a convolutional autoencoder without skip connections."""

    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 4, 4)  # one level per entry, a 2x downsampling between levels
    # Space-to-depth factor before the first convolution; 2 skips the full-resolution stage, which dominates CPU time
    stem: int = 1
    blocks_per_level: int = 1
    # The decoder's upsampling convolution runs at the finer level's resolution: True makes it narrow
    # to the finer level's width there (as the encoder's downsampling keeps the coarser width), which
    # halves its cost and lets the finer level's blocks run at their own width (bench.py).
    narrow_upsampling: bool = False
    latent_channels: int = 4  # the authors' log: 3 latent channels collapsed the masks, 4 worked
    # authors' mid-stage self-attention; it couples all positions, so token relocation becomes approximate
    attention: bool = False
    dropout: float = 0.0
    psnr_loss: bool = False  # train on mean log-MSE (= -PSNR) over token counts instead of Eq. (3); see losses.py
    # 0: one E and D for every token, as the paper. k > 0: a *staged* VLE, whose E and D know which token
    # they code (stage n = 1..k, later tokens k): a shared code must draw token 1's image and token 8's faint
    # texture with the same weights (docs/design.md). Each stage: a linear patch code + a learned stage vector.
    stages: int = 0
    # A staged VLE's stages otherwise differ in their linear code and one learned vector at the
    # first layer, so its non-linear path is nearly one for all tokens. With stage_film, every
    # residual block also scales and shifts its channels per stage (nets.StageFiLM): each token
    # can use the shared channels its own way, for 2 x channels parameters per block and stage.
    stage_film: bool = False
    # A late token's residual lies in few places (edges, texture) and E and D see about 7 latent
    # cells around each one. With context, both also run a bottleneck of two dilated 3x3
    # convolutions (dilations 2 and 4, `context` channels) at the latent level, beside the
    # identity, so they see about 4 times farther: a quiet cell's values can code a busy
    # neighbour's detail. Dilated, not strided, so moving a token by one cell still moves its
    # decode by 8 px. Its output starts at zero (train.py --init continues a model without it). 0: none.
    context: int = 0
    # k > 0: tokens 1..k each have an E and a D of their own (VanillaVLE.own_encoders / own_decoders), later
    # tokens share one pair: same FLOPs per token, k + 1 times the weights, as a late token's faint texture is
    # unlike token 1's whole image (docs/design.md). `train.py --init` starts each copy as the shared pair. 0: none.
    own_stages: int = 0

    def __post_init__(self):
        object.__setattr__(self, "channel_mults", tuple(self.channel_mults))
        if self.stem not in (1, 2, 4, 8) or self.stem * 2 ** (len(self.channel_mults) - 1) != DOWNSAMPLING:
            raise ValueError(
                f"stem {self.stem} and {len(self.channel_mults)} levels (channel_mults) must make {DOWNSAMPLING}x "
                f"downsampling: stem x 2^(levels-1) = {DOWNSAMPLING}"
            )
        if min(self.base_channels, self.blocks_per_level + 1, self.latent_channels, *self.channel_mults) < 1:
            raise ValueError(f"channel counts and multipliers must be positive: {self}")
        if self.context < 0:
            raise ValueError(f"context is a channel count, 0 for none, got {self.context}")
        if self.stages < 0:
            raise ValueError(f"stages must be 0 (E and D shared by every token) or positive, got {self.stages}")
        if self.own_stages < 0:
            raise ValueError(
                f"own_stages counts tokens with an E and D of their own, 0 for none, got {self.own_stages}"
            )
        if self.stage_film and not self.stages:
            raise ValueError("stage_film scales features per token stage: it needs a staged VLE (stages > 0)")

    @property
    def kind(self) -> str:
        return "vanilla"

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class MaskedVLEConfig(VLEConfig):
    """Masked VLE (Algorithm 2): adds the precursor S, a conv-LSTM memory and a mask per token."""

    # conv-LSTM hidden channels, right after the encoder's first convolution (authors: 32 in, 64 hidden)
    memory_channels: int = 64
    # S: "grown", a weightless region grower (nets.Precursor, the precursor_* settings below), or
    # "learned", the paper's small network trained with E and D (nets.LearnedPrecursor).
    precursor: str = "grown"
    # Where S starts a region: the "strongest" residual (matching pursuit), the "largest" colour cluster
    # (photos), or the colour cluster with the most residual "energy"
    precursor_seed: str = "strongest"
    precursor_sigma: float = 0.8  # S joins neighbours whose residual colours differ by less (normalised units)
    precursor_tau: float = 1e3  # S's colour tolerance to the seed; large: none
    # S sees the residual box-blurred over this many pixels, so texture does not break regions
    precursor_smoothing: int = 1
    # S passes over a seed whose region covers less of the image than this while another grows larger (nets.Precursor)
    precursor_min_area: float = 0.0
    # with min_area: seeds S tries for a region that large before it falls back to the largest colour group
    precursor_tries: int = 4
    # Where the region S grows would cover less of the image than this, S proposes all that is left
    # free instead: the rest of the image in one token, so that what no region claimed (a photo's many
    # small regions) is coded too, not left as the whole-image tokens drew it. 0: never.
    precursor_rest_area: float = 0.0
    # What S groups: the "residual" (matching pursuit) or the "image" itself (regions of the photo,
    # whatever is left to rebuild in them)
    precursor_input: str = "residual"
    # Once earlier tokens' proposals cover this share of the image, S starts a new pass: it forgets
    # what was taken, and later tokens refine regions already coded (loop.residual_loop). 0: never;
    # S then has nothing left to propose once the image is covered.
    precursor_new_pass: float = 0.0
    # Tokens 1..whole_tokens propose the whole image: they code global colour, layout and detail,
    # as the first token of the paper's Fig. 3, and S's regions refine them. Their proposals cover
    # the image, so S's pass starts after them (needs precursor_new_pass).
    whole_tokens: int = 0
    # A staged model's region tokens otherwise share one stage past the whole-image tokens' (stage
    # whole_tokens + 1), so S's second pass over a region codes it with the code that already took
    # what it could there, and adds next to nothing. With stage_by_pass, a region token's stage is
    # its pass of S (whole_tokens + 1, + 2, ...): each pass codes what the earlier ones left.
    stage_by_pass: bool = False
    mask_loss_k: float = 5.0  # k in exp(-k * MSE), the authors' value
    mask_loss_weight: float = 1.0  # the distinctness terms, Eq. (5) and the authors' fix
    # a token's decoded mask against S's proposal (as MONet ties its decoded masks to its attention)
    mask_match_weight: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if self.own_stages:
            raise ValueError("own_stages is a vanilla VLE's: a masked VLE's tokens share one E and D")
        if self.whole_tokens < 0:
            raise ValueError(f"whole_tokens must be 0 or more, got {self.whole_tokens}")
        if self.whole_tokens and not self.precursor_new_pass:
            raise ValueError(
                "whole-image tokens cover the image: set precursor_new_pass (e.g. 0.9) so S starts over after them"
            )
        if self.stage_by_pass and not (self.stages > self.whole_tokens and self.precursor_new_pass):
            raise ValueError(
                "stage_by_pass gives each pass of S a stage: it needs precursor_new_pass and more stages than "
                "whole_tokens"
            )
        if not 0.0 <= self.precursor_new_pass <= 1.0:
            raise ValueError(f"precursor_new_pass is a share of the image in [0, 1], got {self.precursor_new_pass}")
        if not 0.0 <= self.precursor_rest_area <= 1.0:
            raise ValueError(f"precursor_rest_area is a share of the image in [0, 1], got {self.precursor_rest_area}")
        if self.precursor_tries < 1:
            raise ValueError(f"precursor_tries must be 1 or more, got {self.precursor_tries}")
        if self.precursor not in ("grown", "learned"):
            raise ValueError(f"precursor must be 'grown' (weightless) or 'learned', got {self.precursor!r}")
        if self.precursor_input not in ("residual", "image"):
            raise ValueError(f"precursor_input must be 'residual' or 'image', got {self.precursor_input!r}")
        if self.precursor_seed not in ("strongest", "largest", "energy"):
            raise ValueError(f"precursor_seed must be 'strongest', 'largest' or 'energy', got {self.precursor_seed!r}")

    @property
    def kind(self) -> str:
        return "masked"


PRESETS: dict[str, VLEConfig] = {
    # Section 3.1's ~7M-parameter models (6.7M here): base width 32, multipliers 1,2,4,4, the
    # authors' 4 residual blocks per level, dropout and mid-stage attention; Eq. (3) as written.
    "vanilla-paper": VLEConfig(blocks_per_level=4, attention=True, dropout=0.1),
    "masked-paper": MaskedVLEConfig(blocks_per_level=4, attention=True, dropout=0.1),
    # Sized to learn in a few CPU-hours and to encode a 256x256 image in about half a second on
    # 2 cores: space-to-depth by 2 replaces the full-resolution stage (figures: benchmarks/benchmark.py).
    "vanilla-cpu": VLEConfig(base_channels=48, channel_mults=(1, 2, 4), stem=2, psnr_loss=True),
    # The same, staged: 48 stages of 4 components are a whole 192-value patch basis, so token 48 can
    # still add what no earlier one coded. Training starts it as patch-PCA (train.py).
    "vanilla-cpu-staged": VLEConfig(base_channels=48, channel_mults=(1, 2, 4), stem=2, psnr_loss=True, stages=48),
    # A quarter of vanilla-cpu-staged's FLOPs per pixel (3.4 instead of 15.4 GFLOP per token at 256x256):
    # space-to-depth by 4 replaces both fine levels, so every convolution runs at 1/4 or 1/8 resolution,
    # and the decoder narrows as it upsamples. Staged and started as patch-PCA, as vanilla-cpu-staged.
    "vanilla-cpu-light": VLEConfig(
        base_channels=64, channel_mults=(1, 2), stem=4, narrow_upsampling=True, psnr_loss=True, stages=48
    ),
    # The same, with a scale and shift per stage in every residual block (stage_film): a non-linear path of
    # each token's own, for the late tokens. Continues a vanilla-cpu-light checkpoint (train.py --init),
    # unchanged at first.
    "vanilla-cpu-light-film": VLEConfig(
        base_channels=64,
        channel_mults=(1, 2),
        stem=4,
        narrow_upsampling=True,
        psnr_loss=True,
        stages=48,
        stage_film=True,
    ),
    # The same, with an E and D of its own for each of tokens 1-8 (own_stages): same FLOPs per token,
    # 9x the weights. Continues a vanilla-cpu-light-film checkpoint (train.py --init), unchanged at first.
    "vanilla-cpu-light-own": VLEConfig(
        base_channels=64,
        channel_mults=(1, 2),
        stem=4,
        narrow_upsampling=True,
        psnr_loss=True,
        stages=48,
        stage_film=True,
        own_stages=8,
    ),
    # The same, seeing farther at the latent level (context), to compare: measured and left out (docs/experiments.md).
    # Continues a vanilla-cpu-light-film checkpoint (train.py --init), unchanged at first.
    "vanilla-cpu-light-context": VLEConfig(
        base_channels=64,
        channel_mults=(1, 2),
        stem=4,
        narrow_upsampling=True,
        psnr_loss=True,
        stages=48,
        stage_film=True,
        context=64,
    ),
    # mask_loss_weight 0: S's regions never enter what earlier tokens took, so Eq. (5)'s distinctness is built in,
    # and its "no empty mask" half pushes a small object's mask to cover the image (docs/design.md).
    "masked-cpu": MaskedVLEConfig(
        base_channels=32, channel_mults=(1, 2, 4), stem=2, memory_channels=32, mask_loss_weight=0.0
    ),
    # The same weights, and an S that passes over specks (anti-aliased rims, highlights) while a
    # larger region is left, so objects and the background get tokens first. Its threshold, 1.5%,
    # keeps a margin over the 1% the scenes suite calls a speck: a decoded mask comes out a little
    # smaller than its proposal. After 8 seeds that all grew specks, S proposes the largest free
    # colour group, which on a scene is the background (normalised, the weakest residual).
    "masked-cpu-scenes": MaskedVLEConfig(
        base_channels=32,
        channel_mults=(1, 2, 4),
        stem=2,
        memory_channels=32,
        mask_loss_weight=0.0,
        precursor_min_area=0.015,
        precursor_tries=8,
    ),
    # For photos: S starts at the largest colour cluster, sees through a 9-pixel blur and stays within 0.7 of the
    # seed's colour, so that regions follow what people outline (settings chosen on BSDS500 train: docs/experiments.md).
    "masked-cpu-photos": MaskedVLEConfig(
        base_channels=32,
        channel_mults=(1, 2, 4),
        stem=2,
        memory_channels=32,
        mask_loss_weight=0.0,
        precursor_seed="largest",
        precursor_sigma=3.0,
        precursor_tau=0.7,
        precursor_smoothing=9,
    ),
    # For photos (masked-natural): tokens 1 and 2 code the whole image, as a photo has more regions than tokens;
    # every later token refines one of S's regions of the photo itself, the largest free colour group first,
    # passing over regions under 1% while larger ones are left, and a new pass once 90% is covered.
    # E and D are vanilla-cpu-light's, staged: a stage per whole-image token and one for the region tokens
    # (train.py starts them as patch-PCA). S's seed and tolerance were chosen on BSDS500 train + val
    # (docs/experiments.md).
    "masked-cpu-light-photos": MaskedVLEConfig(
        base_channels=64,
        channel_mults=(1, 2),
        stem=4,
        narrow_upsampling=True,
        stages=3,
        psnr_loss=True,
        memory_channels=32,
        mask_loss_weight=0.0,
        precursor_seed="largest",
        precursor_sigma=3.0,
        precursor_tau=0.7,
        precursor_smoothing=9,
        precursor_input="image",
        precursor_min_area=0.01,
        precursor_new_pass=0.9,
        whole_tokens=2,
    ),
    # For tests: a few thousand parameters, trains in seconds.
    "vanilla-tiny": VLEConfig(base_channels=8, channel_mults=(1, 1, 2, 2)),
    "vanilla-tiny-staged": VLEConfig(base_channels=8, channel_mults=(1, 1, 2, 2), stages=3),
    "vanilla-tiny-staged-film": VLEConfig(base_channels=8, channel_mults=(1, 1, 2, 2), stages=3, stage_film=True),
    "vanilla-tiny-staged-context": VLEConfig(
        base_channels=8, channel_mults=(1, 1, 2, 2), stages=3, stage_film=True, context=8
    ),
    "vanilla-tiny-staged-own": VLEConfig(
        base_channels=8, channel_mults=(1, 1, 2, 2), stages=3, stage_film=True, own_stages=2
    ),
    "masked-tiny": MaskedVLEConfig(base_channels=8, channel_mults=(1, 1, 2, 2), memory_channels=8),
    "masked-tiny-photos": MaskedVLEConfig(
        base_channels=8,
        channel_mults=(1, 1, 2, 2),
        memory_channels=8,
        stages=2,
        psnr_loss=True,
        mask_loss_weight=0.0,
        precursor_seed="largest",
        precursor_sigma=3.0,
        precursor_tau=0.7,
        precursor_smoothing=3,
        precursor_input="image",
        precursor_new_pass=0.9,
        whole_tokens=1,
    ),
}

# masked-natural with a token for the rest of the image (where S's next region would cover under 2%, S proposes
# all that is left) and a stage per pass of S (stage_by_pass), so that what no region took is coded too. Continues
# masked-natural's weights (train.py --init); measured and not shipped (docs/experiments.md).
PRESETS["masked-cpu-light-photos-rest"] = replace(
    PRESETS["masked-cpu-light-photos"], precursor_rest_area=0.02, stages=6, stage_by_pass=True
)
PRESETS["masked-tiny-photos-rest"] = replace(
    PRESETS["masked-tiny-photos"], precursor_rest_area=0.05, stages=4, stage_by_pass=True
)

# The paper's design of S, for comparison with the weightless one: the same model and recipe with a
# learned S (a small network on the residual and what is taken), and the authors' distinctness
# terms on its proposals, its only push away from proposing everything that is left.
PRESETS["masked-cpu-light-photos-learned-s"] = replace(
    PRESETS["masked-cpu-light-photos"], precursor="learned", precursor_input="residual", mask_loss_weight=1.0
)
# The paper's masked VLE whole: Section 3.1's E and D and its learned S, for a GPU (256 px crops).
PRESETS["masked-paper-learned-s"] = replace(
    PRESETS["masked-paper"], precursor="learned", precursor_input="residual", mask_loss_weight=1.0
)


def preset(name: str, **overrides) -> VLEConfig:
    """The named preset, with any fields overridden: `preset("vanilla-cpu", base_channels=48)`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def config_from_dict(kind: str, values: dict) -> VLEConfig:
    """Rebuild a config from `config.json`; unknown keys are an error, missing ones take defaults."""
    cls = {"vanilla": VLEConfig, "masked": MaskedVLEConfig}.get(kind)
    if cls is None:
        raise ValueError(f"unknown model kind {kind!r}; expected 'vanilla' or 'masked'")
    if not isinstance(values, dict):
        raise ValueError(f"a config must be a JSON object, got {type(values).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown config keys for a {kind} VLE: {unknown}; known keys: {sorted(known)}")
    try:
        return cls(**values)
    except TypeError as e:  # a value of the wrong type, e.g. a string for a channel count
        raise ValueError(f"invalid {kind} VLE config {values}: {e}") from e
