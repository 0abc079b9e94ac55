"""The context model: the mean-scale hyperprior's transforms with a space-channel context.

The latent ``y`` is split into uneven channel groups (ELIC, He et al. 2022, arXiv 2203.10886),
each coded in two checkerboard passes (He et al. 2021, arXiv 2103.15306). A group's entropy
parameters come from the hyper-synthesis output, from the groups decoded before it (channel
context) and, for the second checkerboard half, from its own first half (spatial context).

Everything the mean-scale model has stays: transforms, gains (one model for every rate),
hyper-transforms. Each group's parameters are the hyper-synthesis' own scales and means plus a
correction whose last layer starts at zero, so a model warm-started from mean-scale weights
codes exactly as they did before its first step, and training only has to find the gain.

Channels are ordered so the first groups carry the most information (``channel_order``): the
warm start sorts the mean-scale model's channels by the bits they cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .ladder import DEFAULT_LAMBDAS
from .msh_gain import GainedMeanScaleHyperprior, ste_round

ARCHITECTURE = "elic-gain"
#: Channel groups for M = 192, small first: the first groups are few channels that carry most
#: of the information, and every later group sees all earlier ones.
GROUPS: tuple[int, ...] = (16, 16, 32, 64, 64)


def groups_for(M: int) -> tuple[int, ...]:
    """ELIC's channel groups for an M-channel latent: 16, 16, 32 and 64, then the rest (192 for
    M = 320, as ELIC has them), so that ``--M`` can train a wider model."""
    head = GROUPS[:-1]
    if M < sum(GROUPS):
        raise ValueError(f"the context model's channel groups need M of at least 192, got {M}")
    return (*head, M - sum(head))


#: The networks a context model adds to the mean-scale one (its state-dict prefixes).
CONTEXT_NETWORKS = ("channel_context", "spatial_context", "aggregation")
CHANNEL_HIDDEN = 64
PARAM_HIDDEN = 96


def checkerboard(h: int, w: int, device=None) -> Tensor:
    """(1, 1, h, w) boolean mask of the anchors, the first half coded: (i + j) even."""
    i = torch.arange(h, device=device)[:, None]
    j = torch.arange(w, device=device)[None, :]
    return ((i + j) % 2 == 0)[None, None]


class CheckerboardConv(nn.Conv2d):
    """5x5 convolution that sees only anchors: taps at odd offsets from the centre."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, kernel_size=5, padding=2)
        self.register_buffer("mask", ~checkerboard(5, 5), persistent=False)

    def masked_weight(self) -> Tensor:
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.masked_weight(), self.bias, padding=2)


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=k, padding=k // 2)


class GainedContextHyperprior(GainedMeanScaleHyperprior):
    """Gained mean-scale hyperprior whose latent is coded with a space-channel context."""

    def __init__(
        self,
        N: int = 128,
        M: int = 192,
        lambdas: tuple[float, ...] = DEFAULT_LAMBDAS,
        groups: tuple[int, ...] | None = None,
    ):
        super().__init__(N=N, M=M, lambdas=lambdas)
        groups = groups_for(M) if groups is None else groups
        if sum(groups) != M:
            raise ValueError(f"channel groups {groups} do not add up to M = {M}")
        self.groups = tuple(int(c) for c in groups)
        self.offsets = tuple(sum(self.groups[:k]) for k in range(len(self.groups)))
        H, P = CHANNEL_HIDDEN, PARAM_HIDDEN
        self.channel_context = nn.ModuleList(
            nn.Sequential(_conv(o, H, 3), nn.ReLU(), _conv(H, H, 3), nn.ReLU(), _conv(H, 2 * c, 3))
            for o, c in zip(self.offsets[1:], self.groups[1:])
        )
        self.spatial_context = nn.ModuleList(CheckerboardConv(c, 2 * c) for c in self.groups)
        self.aggregation = nn.ModuleList(
            nn.Sequential(
                _conv(4 * c + (2 * c if k else 0), P, 1),
                nn.ReLU(),
                _conv(P, P, 1),
                nn.ReLU(),
                _conv(P, 2 * c, 1),
            )
            for k, c in enumerate(self.groups)
        )
        for agg in self.aggregation:  # start as the mean-scale model
            nn.init.zeros_(agg[-1].weight)
            nn.init.zeros_(agg[-1].bias)

    def group_params(
        self, k: int, hyper: Tensor, y_hat_before: Tensor | None, spatial: Tensor | None
    ) -> Tensor:
        """Scales then means of group ``k`` (2c channels): the hyper-synthesis' own (from its
        2M-channel output), corrected from the decoded earlier groups and the spatial context
        (``None``: the anchor pass)."""
        o, c, M = self.offsets[k], self.groups[k], self.M
        base = torch.cat([hyper[:, o : o + c], hyper[:, M + o : M + o + c]], 1)
        if spatial is None:
            spatial = hyper.new_zeros(hyper.shape[0], 2 * c, *hyper.shape[2:])
        feats = [base, spatial]
        if k:
            feats.append(self.channel_context[k - 1](y_hat_before))
        return base + self.aggregation[k](torch.cat(feats, 1))

    def entropy_forward(self, y: Tensor, hard: bool = False) -> dict:
        """Likelihoods of ``y`` and ``z`` and the decoded ``y_hat`` (straight-through rounded
        around the predicted means), for a gained latent ``y``: training and the encoder's
        refinement both go through here.

        ``hard``: the rate is what the coder pays, each latent's likelihood taken at its rounded
        residual, not the noisy training proxy (docs/CONTEXT.md: what that phase gained). The
        scales learn from the hard rate alone; the means keep the proxy's gradient, since the
        hard rate is flat in the means between rounding steps.
        """
        z = self.h_a(y)
        with torch.autocast(device_type=y.device.type, enabled=False):
            z_hat, z_likelihoods = self.entropy_bottleneck(
                z.float(), training=False if hard else None
            )
            hyper = self.h_s(z_hat).float()
            y = y.float()
            anchor = checkerboard(*y.shape[-2:], device=y.device)
            decoded, likelihoods = [], []
            for k, (o, c) in enumerate(zip(self.offsets, self.groups)):
                yk = y[:, o : o + c]
                before = torch.cat(decoded, 1) if k else None
                first = self.group_params(k, hyper, before, None)
                _, means = first.chunk(2, 1)
                anchors = (ste_round(yk - means) + means) * anchor
                second = self.group_params(k, hyper, before, self.spatial_context[k](anchors))
                scales, means = torch.where(anchor, first, second).chunk(2, 1)
                if hard:
                    lk = self._hard_likelihood(yk, scales, means)
                else:
                    _, lk = self.gaussian_conditional(yk, scales, means=means)
                likelihoods.append(lk)
                decoded.append(ste_round(yk - means) + means)
        return {
            "y_hat": torch.cat(decoded, 1),
            "likelihoods": {"y": torch.cat(likelihoods, 1), "z": z_likelihoods},
        }

    def _hard_likelihood(self, y: Tensor, scales: Tensor, means: Tensor) -> Tensor:
        """The coder's likelihood of ``y``, its gradient to the scales, carrying the noisy
        proxy's gradient to the means."""
        gc = self.gaussian_conditional
        residual = torch.round(y - means).detach()
        lk = gc.likelihood_lower_bound(gc._likelihood(residual, scales))
        _, means_only = gc(y, scales.detach(), means=means)
        return lk * (means_only / means_only.detach())

    def forward(self, x: Tensor, rate: Tensor | None = None, hard: bool = False) -> dict:
        if rate is None:
            rate = torch.full((x.shape[0],), float(self.levels - 1), device=x.device)
        g, ig = self.gains(rate)
        out = self.entropy_forward(self.g_a(x) * g, hard=hard)
        x_hat = self.g_s(out["y_hat"] * ig).float()
        return {"x_hat": x_hat, "likelihoods": out["likelihoods"]}


@torch.no_grad()
def permute_latent_channels(model: GainedMeanScaleHyperprior, order: Tensor) -> None:
    """Reorder the latent channels of a mean-scale model in place: the network computes the
    same function, with channel ``order[i]`` now at position ``i``."""
    M = model.M
    last = model.g_a[-1]
    last.weight.copy_(last.weight[order])
    last.bias.copy_(last.bias[order])
    first = model.g_s[0]  # transposed: (in = M, out, k, k)
    first.weight.copy_(first.weight[order])
    model.h_a[0].weight.copy_(model.h_a[0].weight[:, order])
    out = model.h_s[-1]
    both = torch.cat([order, order + M])
    out.weight.copy_(out.weight[both])
    out.bias.copy_(out.bias[both])
    model.log_gain.copy_(model.log_gain[:, order])
    model.log_inv_gain.copy_(model.log_inv_gain[:, order])


def from_mean_scale(
    state: dict,
    order: Tensor | None,
    lambdas: tuple[float, ...],
    groups: tuple[int, ...] | None = None,
) -> GainedContextHyperprior:
    """A context model that starts as the mean-scale model of ``state`` (a state dict), its
    latent channels reordered by ``order``. A context model's own state is refused: its
    hyper-synthesis feeds the context networks and predicts no means and scales by itself."""
    if any(k.startswith(CONTEXT_NETWORKS) for k in state):
        raise ValueError("these are a context model's weights; start from mean-scale weights")
    N = state["h_a.0.weight"].shape[0]
    M = state["h_a.0.weight"].shape[1]
    base = GainedMeanScaleHyperprior(N=N, M=M, lambdas=lambdas)
    base.load_state_dict(state, strict=False)
    if order is not None:
        permute_latent_channels(base, order)
    model = GainedContextHyperprior(N=N, M=M, lambdas=lambdas, groups=groups)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or any(not k.startswith(CONTEXT_NETWORKS) for k in missing):
        raise ValueError(f"mean-scale weights do not fit: {missing} {unexpected}")
    return model
