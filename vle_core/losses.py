"""Training losses, computed from one pass of the residual loop. x: [B, 3, H, W] in [-1, 1]."""

import torch
import torch.nn.functional as F

from .loop import LoopOutput


def per_image_mse(a, b):
    """[B, ...] -> [B]: the mean squared error of each image."""
    return (a - b).pow(2).flatten(1).mean(1)


def vanilla_loss(x, out: LoopOutput, psnr_loss: bool = False, weights: tuple[float, ...] = ()) -> dict:
    """Eq. (3): the mean over steps of MSE(X, X^_n).

    With psnr_loss, each step's MSE is replaced by its logarithm, i.e. the loss is the mean PSNR
    over token counts, negated and rescaled. Eq. (3)'s gradient from token n is proportional to
    the error left at step n, which shrinks with every token, so late tokens barely train (the CPU
    probe's tokens 5-8 added 0.1-0.25 dB each); log-MSE weighs every token's relative
    improvement equally, whatever the error it starts from.

    weights (train.py --token-weights): a weight per token count 1, 2, ..., the last repeating for
    later counts; the loss is the weighted mean over counts. Empty: every count weighs 1.
    """
    mses = torch.stack([per_image_mse(x, r) for r in out.reconstructions])  # (N, B)
    terms = mses.clamp_min(1e-8).log() if psnr_loss else mses
    w = count_weights(weights, len(out.reconstructions)).to(terms)
    loss = (w[:, None] * terms).sum(0).mean() / w.sum()
    return {"loss": loss, "mse_final": mses[-1].mean().detach()}


def count_weights(weights: tuple[float, ...], n: int) -> torch.Tensor:
    """[n]: weights[k - 1] for token counts k = 1..n, the last weight repeating; all 1 if empty."""
    if not weights:
        return torch.ones(n)
    return torch.tensor([weights[min(k, len(weights)) - 1] for k in range(1, n + 1)], dtype=torch.float32)


def masked_loss(
    x,
    out: LoopOutput,
    k: float = 5.0,
    mask_weight: float = 1.0,
    match_weight: float = 1.0,
    psnr_loss: bool = False,
    learned_s: bool = False,
) -> dict:
    """Eq. (7) with the authors' fix, tied to S's proposals, plus Eq. (3)'s reconstruction terms.

    stepwise_n = MSE(X, X^_n)                                                     Eq. (3)
    rec_n   = mean(M_n * (X - X^_n)^2)                                            Eq. (6)
    mask_n  = exp(-k MSE(M_n, M_{n-1})) + exp(-k MSE(M_n, min(1, sum_{j<n} M_j)))  Eq. (5) + fix
    match_n = BCE(M_n, P_n), P_n being S's proposal (the target a token's mask learns to rebuild)
    loss    = mean_n (stepwise_n + rec_n + mask_weight * mask_n + match_weight * match_n) + MSE(X, X^_N)

    M_n is the mask the token decodes to. Eq. (5) compares a mask only with the previous one; the
    authors' log found that this let masks alternate full and empty, and added the term against
    the sum of all earlier masks. With M_0 = 0, token 1's terms are their "no empty mask" term.

    With psnr_loss, stepwise_n and the final term are log-MSEs per image, for the reason in
    vanilla_loss: late tokens on photos refine a small residual, and plain MSE hardly trains them.
    With a learned S (learned_s), the distinctness terms apply to S's proposals, which they train,
    instead of the decoded masks, which follow the proposals through the match term; a
    weightless S's proposals are the match term's fixed targets either way.
    """
    terms = {"stepwise": [], "rec": [], "distinct": [], "match": []}
    previous = taken = torch.zeros_like(out.masks[0])
    for decoded, proposal, reconstruction in zip(out.masks, out.proposals, out.reconstructions):
        mask = proposal if learned_s else decoded
        error = (x - reconstruction).pow(2)
        terms["stepwise"].append(error.flatten(1).mean(1).clamp_min(1e-8).log().mean() if psnr_loss else error.mean())
        terms["rec"].append((decoded * error).mean())
        terms["distinct"].append(
            (
                torch.exp(-k * per_image_mse(mask, previous))
                + torch.exp(-k * per_image_mse(mask, taken.clamp(max=1.0)))
            ).mean()
        )
        terms["match"].append(F.binary_cross_entropy(decoded.clamp(1e-6, 1 - 1e-6), proposal.detach()))
        previous, taken = mask, taken + mask
    terms = {name: torch.stack(values).mean() for name, values in terms.items()}
    final_mse = F.mse_loss(out.reconstructions[-1], x)
    final = per_image_mse(x, out.reconstructions[-1]).clamp_min(1e-8).log().mean() if psnr_loss else final_mse
    loss = terms["stepwise"] + terms["rec"] + mask_weight * terms["distinct"] + match_weight * terms["match"] + final
    return {"loss": loss, **{name: value.detach() for name, value in terms.items()}, "mse_final": final_mse.detach()}


def vle_loss(config, x, out: LoopOutput, weights: tuple[float, ...] = ()) -> dict:
    """The loss of the model that `config` describes; weights per token count as in vanilla_loss."""
    if config.kind == "masked":
        if weights:
            raise ValueError("token weights are for a vanilla VLE's loss; a masked VLE's terms weigh every token alike")
        return masked_loss(
            x,
            out,
            config.mask_loss_k,
            config.mask_loss_weight,
            config.mask_match_weight,
            config.psnr_loss,
            config.precursor == "learned",
        )
    return vanilla_loss(x, out, config.psnr_loss, weights)
