"""Building blocks: the encoder E, the decoder D, the conv-LSTM memory and the precursor S.

E and D are a U-Net with its skip connections removed (Section 3.1): residual blocks per level,
stride-2 convolutions down, nearest-neighbour upsampling + convolution up.

Normalisation is per pixel across channels (`ChannelNorm`), not the authors' GroupNorm(1): a
GroupNorm's statistics span the whole image, so the decoder would not be translation-equivariant
and moving a token by 8 px would not move its contribution by exactly 8 px. Per-pixel
normalisation keeps E and D local; only the optional attention block couples positions.
"""

import math
from collections import Counter

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import DOWNSAMPLING, MaskedVLEConfig, VLEConfig
from .regions import StepGraph


class ChannelNorm(nn.Module):
    """LayerNorm over channels at each pixel. x: [B, C, H, W]."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x, film=None, stage=None):
        """film: a StageFiLM to apply after, with the tokens' stage [B]. For one image (an encode in
        the app or the library) it is folded into the normalisation's own scale and shift, which
        saves two passes over x; for a batch it runs after, without asking the device whether the
        batch shares a stage."""
        weight, bias = self.weight, self.bias
        if film is not None and stage.numel() == 1:
            gamma, beta = _stage_rows(film.weight, stage)[0]
            weight, bias, film = weight * (1 + gamma), bias * (1 + gamma) + beta, None
        x = F.layer_norm(x.movedim(1, -1), x.shape[1:2], weight, bias, eps=1e-5).movedim(-1, 1)
        return x if film is None else film(x, stage)


class ResBlock(nn.Module):
    """Two 3x3 convolutions and a skip. With `stages`, each normalisation is followed by a scale
    and shift of each channel per token stage (StageFiLM), so that every stage can weigh the
    block's channels its own way."""

    def __init__(self, cin: int, cout: int, dropout: float = 0.0, stages: int = 0):
        super().__init__()
        self.norm1, self.conv1 = ChannelNorm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = ChannelNorm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.film1 = StageFiLM(stages, cin) if stages else None
        self.film2 = StageFiLM(stages, cout) if stages else None
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity: deep stacks train from step 0
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x, stage=None):
        h = self.norm2(self.conv1(F.silu(self.norm1(x, self.film1, stage))), self.film2, stage)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head attention over all positions of the lowest-resolution stage (authors' config)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = ChannelNorm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=-1)  # (B, HW, C) each
        h = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(h.transpose(1, 2).reshape(B, C, H, W))


class ConvLSTM(nn.Module):
    """A 1-layer convolutional LSTM; its state carries what earlier tokens of one image looked at."""

    def __init__(self, cin: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(cin + hidden, 4 * hidden, 3, padding=1)

    def forward(self, x, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden, *x.shape[2:])
            state = (zeros, zeros)
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class StageLinear(nn.Module):
    """A linear map of its own for each token stage, applied at every latent cell: a staged VLE's
    linear code. x: [B, cin, h, w]; stage: [B] token steps, 1-based (past the last stage, the last)."""

    def __init__(self, stages: int, cin: int, cout: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(stages, cout, cin))

    def forward(self, x, stage):
        return torch.einsum("bchw,boc->bohw", x, _stage_rows(self.weight, stage))


class StageEmbedding(nn.Module):
    """A learned vector per token stage, added to every pixel of a feature map; zero at first."""

    def __init__(self, stages: int, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(stages, channels))

    def forward(self, h, stage):
        return h + _stage_rows(self.weight, stage)[:, :, None, None]


class StageFiLM(nn.Module):
    """A scale and a shift of each channel per token stage (FiLM): h * (1 + gamma_n) + beta_n.
    Zero at first, so a block with it computes what it computed without (a checkpoint trained
    without it loads unchanged, train.py --init)."""

    def __init__(self, stages: int, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(stages, 2, channels))

    def forward(self, h, stage):
        gamma, beta = _stage_rows(self.weight, stage)[:, :, :, None, None].unbind(1)
        return h * (1 + gamma) + beta


class Context(nn.Module):
    """h + a bottleneck of two dilated 3x3 convolutions (dilations 2 and 4) over h's latent-level
    features: E and D see about 4 times farther, at a tenth of a residual block's cost there.
    Dilated rather than strided, so a decode still moves exactly with its latent. The output
    convolution starts at zero: the block is the identity until trained (config.context)."""

    def __init__(self, channels: int, width: int, stages: int = 0):
        super().__init__()
        self.norm = ChannelNorm(channels)
        self.film = StageFiLM(stages, channels) if stages else None
        self.reduce = nn.Conv2d(channels, width, 1)
        self.near = nn.Conv2d(width, width, 3, padding=2, dilation=2)
        self.far = nn.Conv2d(width, width, 3, padding=4, dilation=4)
        self.expand = nn.Conv2d(width, channels, 1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, h, stage=None):
        g = self.norm(h, self.film, stage)
        g = self.far(F.silu(self.near(F.silu(self.reduce(F.silu(g))))))
        return h + self.expand(F.silu(g))


def run_layers(layers, h, stage):
    """Apply a stack of layers in order, passing the token stage to the residual blocks. A nearest
    upsampling runs together with the 3x3 convolution after it (`upsample_conv`)."""
    upsample = False
    for layer in layers:
        if isinstance(layer, nn.Upsample):
            if layer.mode != "nearest" or layer.scale_factor != 2:
                raise ValueError(f"run_layers runs only a nearest 2x upsampling with its convolution, got {layer}")
            upsample = True
        elif upsample:
            h, upsample = upsample_conv(h, layer), False
        else:
            h = layer(h, stage) if isinstance(layer, ResBlock) else layer(h)
    return h


# Row taps of the four output phases of a 3x3 convolution after nearest 2x upsampling, at the low
# resolution: an even output row sees low rows (i - 1, i) with kernel rows (0, 1 + 2), an odd one
# rows (i, i + 1) with kernel rows (0 + 1, 2). [phase, tap, kernel row]; the same for columns.
_PHASE_TAPS = ((1, 0, 0), (0, 1, 1)), ((1, 1, 0), (0, 0, 1))


def upsample_conv(x, conv: nn.Conv2d):
    """conv(nearest 2x upsampling of x) for a 3x3 convolution with padding 1, computed at x's
    resolution: each output phase (row and column parity) is a 2x2 convolution of x with sums of
    the kernel's rows and columns, so one 2x2 convolution with 4 x cout channels gives all four.
    16 multiplications per input pixel and channel pair instead of 36; the same sums up to rounding."""
    if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.stride != (1, 1) or conv.groups != 1:
        raise ValueError(f"upsample_conv needs a 3x3 convolution with padding 1, got {conv}")
    B, _, H, W = x.shape
    cout = conv.out_channels
    taps = conv.weight.new_tensor(_PHASE_TAPS)
    kernel = torch.einsum("atk,bsl,oikl->oabits", taps, taps, conv.weight).reshape(4 * cout, conv.in_channels, 2, 2)
    bias = None if conv.bias is None else conv.bias.repeat_interleave(4)
    y = F.conv2d(F.pad(x, (1, 1, 1, 1)), kernel, bias)  # [B, 4 cout, H + 1, W + 1]: phase (a, b) at offset (a, b)
    y = y.view(B, cout, 2, 2, H + 1, W + 1)
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    out = torch.empty(B, cout, 2 * H, 2 * W, dtype=y.dtype, device=y.device, memory_format=layout)
    phases = out.view(B, cout, H, 2, W, 2)
    for a in (0, 1):
        for b in (0, 1):
            phases[:, :, :, a, :, b] = y[:, :, a, b, a : a + H, b : b + W]
    return out


def _stage_rows(weight, stage):
    """weight[n - 1] for each token's stage n, in a batch: [B, ...]; past the last stage, the last."""
    return weight[stage.clamp(1, len(weight)) - 1]


@torch.no_grad()
def start_as_linear_code(model, components: torch.Tensor) -> None:
    """Start a staged VLE as a linear code: stage n encodes and decodes with components
    4(n-1)..4n-1 (columns of `components`, [192, 192] in PixelUnshuffle's order, strongest first;
    pca.PatchPCA.unshuffled_components). Its convolutional paths start at zero, so the model is
    then that code exactly, up to the loop's per-channel normalisation. A masked VLE's extra
    channels (the proposal in, the mask out) start unused by the linear code: the RGB channels
    come first in PixelUnshuffle's order, so the code fills the first 192 rows."""
    if not model.config.stages:
        raise ValueError("only a staged VLE (config.stages > 0) has a linear code")
    C = model.config.latent_channels
    rgb = components.shape[0]
    for encoder, decoder in model.coders():
        for n in range(min(model.config.stages, components.shape[1] // C)):
            basis = components[:, n * C : (n + 1) * C].to(encoder.linear.weight)  # [192, C]
            encoder.linear.weight[n].zero_()[:, :rgb] = basis.T
            decoder.linear.weight[n].zero_()[:rgb] = basis


def _widths(config: VLEConfig) -> list[int]:
    return [config.base_channels * m for m in config.channel_mults]


class Encoder(nn.Module):
    """E: [B, in_channels, H, W] -> latent [B, latent_channels, H/8, W/8].

    With `memory_channels`, a conv-LSTM right after the first convolution carries state across
    the token steps of one image (where the authors' lab log found memory works best).
    With `config.stages`, the latent is a linear patch code of the stage plus the convolutional
    path's output, which starts at zero (see StageLinear, and `stages` in config.py).
    """

    def __init__(self, config: VLEConfig, in_channels: int, memory_channels: int = 0):
        super().__init__()
        widths = _widths(config)
        self.stem = nn.PixelUnshuffle(config.stem)
        self.conv_in = nn.Conv2d(in_channels * config.stem**2, widths[0], 3, padding=1)
        self.memory = ConvLSTM(widths[0], memory_channels) if memory_channels else None
        self.memory_out = nn.Conv2d(memory_channels, widths[0], 1) if memory_channels else None
        film = config.stages if config.stage_film else 0
        layers, cin = [], widths[0]
        for level, width in enumerate(widths):
            for _ in range(config.blocks_per_level):
                layers.append(ResBlock(cin, width, config.dropout, film))
                cin = width
            if level < len(widths) - 1:
                layers.append(nn.Conv2d(cin, cin, 3, stride=2, padding=1))
        if config.attention:
            layers += [SelfAttention(cin), ResBlock(cin, cin, config.dropout, film)]
        self.layers = nn.Sequential(*layers)
        self.context = Context(cin, config.context, film) if config.context else None
        self.norm_out = ChannelNorm(cin)
        self.conv_out = nn.Conv2d(cin, config.latent_channels, 3, padding=1)
        self.staged = config.stages > 0
        if self.staged:
            self.stage_embedding = StageEmbedding(config.stages, widths[0])
            self.linear = StageLinear(config.stages, in_channels * DOWNSAMPLING**2, config.latent_channels)
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, state=None, stage=None):
        h = self.conv_in(self.stem(x))
        if self.staged:
            h = self.stage_embedding(h, stage)
        if self.memory is not None:
            m, state = self.memory(h, state)
            h = h + self.memory_out(m)
        h = run_layers(self.layers, h, stage)
        if self.context is not None:
            h = self.context(h, stage)
        z = self.conv_out(F.silu(self.norm_out(h)))
        if self.staged:
            z = z + self.linear(F.pixel_unshuffle(x, DOWNSAMPLING), stage)
        return z, state


class Decoder(nn.Module):
    """D: latent [B, latent_channels, h, w] -> [B, out_channels, 8h, 8w]. Staged as the Encoder."""

    def __init__(self, config: VLEConfig, out_channels: int):
        super().__init__()
        widths = _widths(config)[::-1]
        cin = widths[0]
        film = config.stages if config.stage_film else 0
        layers = [nn.Conv2d(config.latent_channels, cin, 3, padding=1)]
        self.context = Context(cin, config.context, film) if config.context else None
        if config.attention:
            layers += [ResBlock(cin, cin, config.dropout, film), SelfAttention(cin)]
        for level, width in enumerate(widths):
            for _ in range(config.blocks_per_level):
                layers.append(ResBlock(cin, width, config.dropout, film))
                cin = width
            if level < len(widths) - 1:
                cout = widths[level + 1] if config.narrow_upsampling else cin
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1)]
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.norm_out = ChannelNorm(cin)
        self.conv_out = nn.Conv2d(cin, out_channels * config.stem**2, 3, padding=1)
        self.unstem = nn.PixelShuffle(config.stem)
        self.staged = config.stages > 0
        if self.staged:
            self.stage_embedding = StageEmbedding(config.stages, widths[0])
            self.linear = StageLinear(config.stages, config.latent_channels, out_channels * DOWNSAMPLING**2)
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

    def forward(self, z, stage=None):
        h = self.layers[0](z)  # the convolution from the latent
        if self.staged:
            h = self.stage_embedding(h, stage)
        if self.context is not None:
            h = self.context(h, stage)
        y = self.unstem(self.conv_out(F.silu(self.norm_out(run_layers(self.layers[1:], h, stage)))))
        if self.staged:
            y = y + F.pixel_shuffle(self.linear(z, stage), DOWNSAMPLING)
        return y


# S's constants; residual colours and energies are in normalised units (loop.normalise).
# TAKEN_PENALTY: log-energy a taken pixel's seed score loses: a seed lands on a taken pixel only if
# nothing else is left. ENERGY_FLOOR: added to the energy before its log, finite where the residual
# is 0, so the taken penalty still ranks those pixels. TAKEN_LEVEL: a pixel counts as taken from this
# share on, and as in a proposal's region above it. FREE_FLOOR: how free a taken pixel, or one beyond
# tau of the seed, is; S's paths do not pass it (a gate, not a toll).
TAKEN_PENALTY, ENERGY_FLOOR, TAKEN_LEVEL, FREE_FLOOR = 10.0, 1e-3, 0.5, 1e-6
CANDIDATE_GRID = 12  # the "largest" and "energy" rules seed at the best of a 12 x 12 grid of candidates
SHARE_PIXELS = 4096  # colour shares are counted on a grid of about this many pixels: a good enough estimate
SHARE_PAIRS = 2**17  # colour distances computed at once in _colour_share: they stay in the CPU's cache
# Rounds of growing (rows, then columns), paths of up to 64 straight runs: the shipped checkpoints
# were trained and scored with this cap.
MAX_ROUNDS = 32


class Precursor(nn.Module):
    """S in Algorithm 2: picks what the next token should encode, as a proposal mask in [0, 1].

    As matching pursuit picks the atom that best matches the residual (Section 1), S picks a seed
    (`seed`) and proposes the region connected to it through neighbours of similar residual colour
    (`grow`), blocked by what earlier tokens took. An object, a region bounded by colour edges, is
    such a region.

    S has no weights, and its proposals are good enough to learn from: if each token rebuilt
    exactly the residual inside its proposal, the proposals would segment generated scenes with a
    foreground ARI above 0.85 (tests/test_precursor.py). The token's own mask is decoded from its
    latent and learns to reproduce the proposal (losses.masked_loss).

    Its work per call is bounded whatever the image: at most `tries` + 2 grows (the fallback's
    two), each at most one labelling of the image and MAX_ROUNDS rounds of growing
    (regions.StepGraph) and, where a region is only partly free, one shortest-path search in it;
    and per grow at most one colour share, of the coarse grid's candidates or, once, of the
    SHARE_PIXELS grid's, against that grid's pixels. `work` counts them (tests/test_precursor.py
    checks the bound on worst-case images).
    """

    def __init__(self, config: MaskedVLEConfig):
        super().__init__()
        self.sigma = config.precursor_sigma
        self.tau = config.precursor_tau
        self.smoothing = config.precursor_smoothing
        self.seed_rule = config.precursor_seed
        self.min_area = config.precursor_min_area
        # seeds tried for a region of min_area; each try is one grow
        self.tries = config.precursor_tries if self.min_area > 0 else 1
        self.rest_area = config.precursor_rest_area
        # grows, labellings, rounds (of growing), path_pixels (searched for best paths), colour_pairs compared
        self.work = Counter()

    @torch.no_grad()  # a selection, not a function to learn through: gradients reach E and D, not earlier tokens via S
    def forward(self, residual, taken, image=None):
        """residual: [B, 3, H, W] normalised; taken: [B, 1, H, W] in [0, 1]; image: [B, 3, H, W] or
        None (see `region`). Returns [B, 1, H, W]: the region S grows, or with rest_area, where that
        covers less of the image, all that is left free: the rest of the image in one token."""
        proposal = self.region(residual, taken, image)
        if not self.rest_area:
            return proposal
        small = _area(proposal) < self.rest_area
        return torch.where(small[:, None, None, None], 1 - taken, proposal)

    def region(self, residual, taken, image=None):
        """residual: [B, 3, H, W] normalised; taken: [B, 1, H, W] in [0, 1]; image: [B, 3, H, W],
        the normalised image, which S then groups instead of the residual (the residual still
        weighs the "energy" seed). Returns [B, 1, H, W].

        With min_area, a seed whose region covers less of the image (a speck: an anti-aliased rim, a
        highlight) is passed over for the next seed, up to `tries` seeds; if none grows that large,
        S proposes the region of the largest free colour group (the "largest" seed), or the largest
        speck found if that is smaller. Specks are still proposed once nothing larger is left."""
        energy = residual.pow(2).sum(1, keepdim=True)  # what is left to rebuild at each pixel
        colours = _box_blur(residual if image is None else image, self.smoothing)  # what S groups
        graphs = self.step_graphs(colours)  # the steps S may take: the same for every seed of this call
        blocked, proposal, area, done = taken, None, None, None
        for _ in range(self.tries):
            seed, seed_colour = self.seed(colours, blocked, energy)
            region = self.grow(colours, taken, seed, seed_colour, graphs)
            region_area = _area(region)
            if proposal is None:
                proposal, area, done = region, region_area, region_area >= self.min_area
            else:
                proposal, area = _keep_larger(proposal, area, region, region_area, ~done)
                done = done | (region_area >= self.min_area)
            if bool(done.all()):
                return proposal
            blocked = blocked + region  # the next seed starts elsewhere
        # Every try grew a speck: the strongest residual sits on rims and highlights, while a large
        # region (a flat background, which normalisation brings near zero) is left. Propose the
        # free colour group that most free pixels share instead, if it grows larger: that group's
        # pixel on the coarse grid of candidates, or on the SHARE_PIXELS grid, which also finds a
        # small object between the coarse grid's points but may pick scattered rim pixels of one
        # colour whose connected region is a speck. The larger of the two regions wins.
        for every_pixel in (False, True):
            seed, seed_colour = self.seed(colours, taken, energy, rule="largest", every_pixel=every_pixel)
            region = self.grow(colours, taken, seed, seed_colour, graphs)
            proposal, area = _keep_larger(proposal, area, region, _area(region), ~done)
        return proposal

    def seed(self, residual, taken, energy=None, rule=None, every_pixel=False):
        """Where the next region starts, and its colour. residual: the colours S groups; energy:
        [B, 1, H, W] what is left to rebuild per pixel (the "energy" rule); rule: the seed rule,
        S's own (precursor_seed) unless given. Returns (seed [B, 1], the flat index of a pixel;
        seed_colour [B, 3, 1, 1]).

        "strongest" (matching pursuit): the free pixel where the residual is strongest, and its
        colour; objects on a background are found first.
        "largest": of a grid of candidate pixels, the free one whose colour most free pixels share;
        on a photo the strongest residual is a small high-contrast thing, while the regions people
        outline (sky, ground) sit near the mean colour, where the normalised residual is weakest.
        "energy": of the same candidates, the free one whose colour group holds the most residual
        energy: matching pursuit over regions. The largest region of a photo is often its smoothest,
        where a whole-image first token has left little to rebuild.
        every_pixel: candidates on the grid of ~SHARE_PIXELS pixels instead of the coarse one (S's
        fallback, in `region`).
        """
        B, _, H, W = residual.shape
        rule = rule or self.seed_rule
        if rule == "strongest":
            energy = residual.pow(2).sum(1, keepdim=True)
            seed = (torch.log(energy + ENERGY_FLOOR) - TAKEN_PENALTY * taken).flatten(1).argmax(1, keepdim=True)
            return seed, residual.flatten(2).gather(2, seed[:, None].expand(B, 3, 1))[..., None]
        stride = max(1, round(math.sqrt(H * W / SHARE_PIXELS)))
        # each pixel of that grid is a candidate too: a small region between the coarse grid's points is found
        if every_pixel:
            ys, xs = (
                torch.arange(0, H, stride, device=residual.device),
                torch.arange(0, W, stride, device=residual.device),
            )
        else:
            ys = torch.linspace(0, H - 1, min(H, CANDIDATE_GRID), device=residual.device).round().long()
            xs = torch.linspace(0, W - 1, min(W, CANDIDATE_GRID), device=residual.device).round().long()
        candidates = (ys[:, None] * W + xs[None, :]).flatten().expand(B, -1)  # (B, K) flat indices
        candidate_colours = residual.flatten(2).gather(2, candidates[:, None].expand(B, 3, -1))  # (B, 3, K)
        colours = residual[..., ::stride, ::stride].flatten(2)  # (B, 3, P)
        free = (taken[..., ::stride, ::stride].flatten(1) < TAKEN_LEVEL).float()  # (B, P)
        weight = free if rule == "largest" else free * energy[..., ::stride, ::stride].flatten(1)
        taken_candidates = taken.flatten(1).gather(1, candidates) >= TAKEN_LEVEL  # (B, K)
        share = _colour_share(
            candidate_colours, colours, weight, min(self.tau, self.sigma), taken_candidates, self.work
        )
        share = share - (share.max(1, keepdim=True).values + 1) * taken_candidates.float()  # taken candidates last
        best = share.argmax(1, keepdim=True)
        return candidates.gather(1, best), candidate_colours.gather(2, best[:, None].expand(B, 3, 1))[..., None]

    def step_graphs(self, colours) -> list:
        """colours: [B, 3, H, W] -> per image, the regions.StepGraph of its steps between neighbours
        whose colours differ by less than sigma."""
        # [B, H-1, W], [B, H, W-1]
        similar = [(colours.diff(dim=dim).pow(2).sum(1) < self.sigma**2).cpu().numpy() for dim in (2, 3)]
        return [StepGraph(similar_y, similar_x) for similar_y, similar_x in zip(*similar)]

    def grow(self, residual, taken, seed, seed_colour, graphs=None):
        """The region connected to the seed through steps between similar neighbours (|r_a - r_b|^2 <
        sigma^2) and pixels within tau of the seed's colour, as far as MAX_ROUNDS rounds of growing
        reach: max over such paths of the product of how free each pixel on the path is (1 - the
        masks earlier tokens took). A pixel at most FREE_FLOOR free, or beyond tau, is a gate:
        paths through it (worth FREE_FLOOR or less) are left at 0. graphs: `step_graphs(residual)`,
        when the caller grows several seeds."""
        graphs = self.step_graphs(residual) if graphs is None else graphs
        near_seed = (residual - seed_colour).pow(2).sum(1) < self.tau**2  # [B, H, W]
        free = torch.where(near_seed, (1 - taken[:, 0]).clamp(min=FREE_FLOOR), FREE_FLOOR).cpu().numpy()  # [B, H, W]
        regions = []
        for graph, free_b, seed_b in zip(graphs, free, seed[:, 0].tolist()):
            labellings = graph.labellings
            inside = graph.reach(free_b > FREE_FLOOR, seed_b, MAX_ROUNDS)
            self.work["labellings"] += graph.labellings - labellings
            self.work["rounds"] += graph.rounds
            partly_free = inside & (free_b < 1)
            partly_free.flat[seed_b] = False  # paths start at the seed: its own freeness weighs only its own value
            if partly_free.any():
                paths = graph.best_paths(inside, free_b, seed_b)
                self.work["path_pixels"] += int(inside.sum())
            else:
                paths = inside
            regions.append(torch.from_numpy((paths * free_b).astype(free_b.dtype)))
        self.work["grows"] += 1
        return torch.stack(regions)[:, None].to(taken)


class LearnedPrecursor(nn.Module):
    """The paper's S: a small network from the residual to a proposal, trained with E and D
    (Section 3.1: "just a residual block"; the authors' log found two stacked residual blocks
    best, and a larger S collapsing). It sees the residual and what earlier tokens took, and its
    proposal is gated by what is still free, so taken pixels are not proposed again, as with the
    weightless S. Its only training signals are the reconstruction through the loop's gate and the
    authors' distinctness terms (losses.masked_loss)."""

    def __init__(self, config: MaskedVLEConfig, width: int = 16):
        super().__init__()
        self.conv_in = nn.Conv2d(4, width, 3, padding=1)
        self.blocks = nn.Sequential(ResBlock(width, width), ResBlock(width, width))
        self.conv_out = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, residual, taken, image=None):
        """residual: [B, 3, H, W] normalised; taken: [B, 1, H, W] in [0, 1]; image: unused (the
        paper's S sees the residual). Returns [B, 1, H, W] in [0, 1]."""
        logits = self.conv_out(F.silu(self.blocks(self.conv_in(torch.cat([residual, taken], dim=1)))))
        return torch.sigmoid(logits) * (1 - taken)


def _colour_share(candidate_colours, colours, weight, width: float, passed=None, work=None):
    """(B, 3, K) candidate colours, (B, 3, P) pixel colours and (B, P) weights -> (B, K): the weight
    of the pixels within `width` of each candidate's colour (its colour group: no wider than a
    step). passed: (B, K) bool, candidates whose share is not needed (0) while another is left;
    `Precursor.seed` ranks them last. Each distinct colour is compared once, and only pixels of
    some weight count: a share is a count of such pixels, or a sum of their energies.
    work: a Counter whose colour_pairs grows by the comparisons made."""
    share = torch.zeros(
        candidate_colours.shape[0], candidate_colours.shape[2], dtype=colours.dtype, device=colours.device
    )
    for b in range(len(share)):
        wanted = torch.ones_like(passed[b]) if passed is None or bool(passed[b].all()) else ~passed[b]
        weighed = weight[b] > 0
        if not bool(weighed.any()):
            continue
        pixel_colours, pixel_group = _distinct(colours[b][:, weighed])  # (3, U)
        group_weight = torch.zeros(pixel_colours.shape[1], dtype=weight.dtype, device=weight.device).index_add_(
            0, pixel_group, weight[b][weighed]
        )
        wanted_colours, candidate_group = _distinct(candidate_colours[b][:, wanted])  # (3, k)
        chunks = wanted_colours.split(max(1, SHARE_PAIRS // pixel_colours.shape[1]), dim=1)
        counts = torch.cat([_near(chunk, pixel_colours, width).float() @ group_weight for chunk in chunks])
        share[b, wanted] = counts[candidate_group]
        if work is not None:
            work["colour_pairs"] += wanted_colours.shape[1] * pixel_colours.shape[1]
    return share


def _distinct(colours):
    """(3, n) colours -> (the distinct ones (3, u), each colour's index among them (n,)). numpy's
    unique of each colour's bytes: a tenth of torch.unique(dim=1)'s time."""
    rows = np.ascontiguousarray(colours.T.cpu().numpy())  # (n, 3)
    _, first, inverse = np.unique(
        rows.view(np.dtype((np.void, rows.itemsize * 3))).ravel(), return_index=True, return_inverse=True
    )
    return colours[:, torch.from_numpy(first).to(colours.device)], torch.from_numpy(inverse.ravel()).to(colours.device)


def _near(candidate_colours, colours, width: float):
    """(3, k) and (3, P) colours -> (k, P) bool: within width of each other (squared distance,
    summed channel by channel as torch sums a channel dimension)."""
    distance = (candidate_colours[0, :, None] - colours[0]).pow(2)
    for channel in range(1, len(colours)):
        distance = distance + (candidate_colours[channel, :, None] - colours[channel]).pow(2)
    return distance < width**2


def _keep_larger(proposal, area, region, region_area, open_):
    """Per image where `open_` ([B] bool), the region (its area: region_area) instead of the
    proposal if it covers more. Returns (proposal, area)."""
    better = open_ & (region_area > area)
    return torch.where(better[:, None, None, None], region, proposal), torch.where(better, region_area, area)


def _area(region):
    """[B, 1, H, W] proposals -> [B]: the share of the image each covers (> TAKEN_LEVEL)."""
    return (region > TAKEN_LEVEL).flatten(1).float().mean(1)


def _box_blur(x, side: int):
    """Mean over a side x side window around each pixel (edges replicated); side 1: x itself."""
    if side <= 1:
        return x
    before, after = (side - 1) // 2, side // 2
    padded = F.pad(x, (before, after, before, after), mode="replicate")
    H, W = x.shape[-2:]
    total = torch.zeros_like(x)
    # in avg_pool2d's order, so the means are its own to the bit, in a third of its time on a CPU
    for dy in range(side):
        for dx in range(side):
            total += padded[..., dy : dy + H, dx : dx + W]
    return total / side**2
