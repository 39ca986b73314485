r"""The two attention modules of the complementary model: CAAM and SSAM.

Both follow the DANet recipe (Fu et al., *Dual Attention Network for Scene Segmentation*, CVPR
2019), which the paper's modules most likely descend from. Each ``forward`` is the equation of its
class docstring, line for line; notebooks 04 and 05 teach these equations and training runs them.

Both modules start as the identity: their learnable scale (:math:`\gamma` for CAAM, :math:`\beta`
for SSAM) is a raw parameter :math:`\theta` initialised to 0, read through :func:`bounded_scale`.

Numerics: the attention energies are inner products over all positions (CAAM) or all reduced
channels (SSAM). With large activations they overflow float16 long before the features do, so both
modules compute the energy and the softmax in float32 with autocast off and cast back.

What the paper does not pin down (the scale parametrisation, SSAM as a gate or an additive mix) is a
named option; ``docs/reconstruction.md`` gives each default, its reason and the evidence.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import nn

from cirlib.utils.choices import validate_choice

__all__ = [
    "SCALES",
    "SSAM_MODES",
    "ChannelAssistedAttention",
    "SpatialSelfAttention",
    "bounded_scale",
]

#: Parametrisations of the learnable scales :math:`\gamma` and :math:`\beta`.
SCALES = ("tanh", "linear")
#: How SSAM uses its position attention.
SSAM_MODES = ("gate", "additive")


def bounded_scale(theta: torch.Tensor, scale: str) -> torch.Tensor:
    r"""The scale applied by a module from its raw parameter :math:`\theta`.

    * ``"tanh"`` (our default): :math:`s = \tanh\theta \in (-1, 1)`;
    * ``"linear"`` (the literal DANet reading): :math:`s = \theta`, unbounded.

    Both equal :math:`\theta` to first order near 0, so they start alike.
    """
    validate_choice("scale", scale, SCALES, prefix="bounded_scale: ")
    return torch.tanh(theta) if scale == "tanh" else theta


def _float32(device: torch.device) -> AbstractContextManager:
    """Autocast off on ``device``: the energies and the softmax run in float32."""
    return torch.autocast(device_type=device.type, enabled=False)


class ChannelAssistedAttention(nn.Module):
    r"""Channel-wise Assisted Attention Module (CAAM): channel attention *across* the two branches.

    With the branch features reshaped to :math:`X, X_2 \in \mathbb{R}^{C \times N}` (:math:`N = hw`),

    .. math::

        Q_x = \operatorname{softmax}(X X_2^\top), \qquad F^c_x = F_x + \gamma\, Q_x X_2,

        Q_{x_2} = \operatorname{softmax}(X_2 X^\top), \qquad F^c_{x_2} = F_{x_2} + \gamma\, Q_{x_2} X.

    The softmax runs over the last axis: row :math:`i` of the :math:`C \times C` matrix :math:`Q_x`
    sums to 1, so channel :math:`i` of branch 1 receives a convex combination of branch 2's channels,
    weighted by how strongly they co-activate with it over the image. ``torch.softmax`` subtracts the
    row maximum internally, so it never overflows. :math:`\gamma` is one scalar shared by both
    directions, :math:`\gamma = \tanh\theta` by default (see :func:`bounded_scale`).

    Args:
        scale: ``"tanh"`` (bounded, default) or ``"linear"`` (literal).

    Attributes:
        gamma: the raw parameter :math:`\theta` (shape ``(1,)``), 0 at initialisation;
            :attr:`effective_gamma` is the :math:`\gamma` applied.
    """

    def __init__(self, scale: str = "tanh") -> None:
        super().__init__()
        self.scale = validate_choice("scale", scale, SCALES, prefix="ChannelAssistedAttention: ")
        self.gamma = nn.Parameter(torch.zeros(1))

    @property
    def effective_gamma(self) -> torch.Tensor:
        r""":math:`\gamma`, the scale applied to the attended features."""
        return bounded_scale(self.gamma, self.scale)

    def forward(
        self, f1: torch.Tensor, f2: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, ...]:
        r"""``(F^c_x, F^c_x2)``, or ``(F^c_x, F^c_x2, Q_x, Q_x2)`` with ``return_attention``.

        Args:
            f1: ``(B, C, h, w)`` features :math:`F_x` of branch 1.
            f2: ``(B, C, h, w)`` features :math:`F_{x_2}` of branch 2.
            return_attention: also return :math:`Q_x, Q_{x_2}`, ``(B, C, C)`` float32 each.
        """
        if f1.dim() != 4 or f1.shape != f2.shape:
            raise ValueError(
                "ChannelAssistedAttention: f1 and f2 must be (B, C, h, w) tensors of the same shape, "
                f"got {tuple(f1.shape)} and {tuple(f2.shape)}."
            )
        b, c, h, w = f1.shape
        with _float32(f1.device):
            x = f1.reshape(b, c, h * w).float()  # X   (B, C, N)
            x2 = f2.reshape(b, c, h * w).float()  # X_2 (B, C, N)
            q_x = torch.softmax(x @ x2.transpose(1, 2), dim=-1)  # Q_x   = softmax(X X_2^T)
            q_x2 = torch.softmax(x2 @ x.transpose(1, 2), dim=-1)  # Q_x2  = softmax(X_2 X^T)
            gamma = self.effective_gamma.float()
            fc_x = x + gamma * (q_x @ x2)  # F^c_x  = F_x  + gamma Q_x  X_2
            fc_x2 = x2 + gamma * (q_x2 @ x)  # F^c_x2 = F_x2 + gamma Q_x2 X
        fc_x = fc_x.reshape(b, c, h, w).to(f1.dtype)
        fc_x2 = fc_x2.reshape(b, c, h, w).to(f2.dtype)
        if return_attention:
            return fc_x, fc_x2, q_x, q_x2
        return fc_x, fc_x2

    def extra_repr(self) -> str:
        return f"scale={self.scale!r}"


class SpatialSelfAttention(nn.Module):
    r"""Spatial Self-Attention Module (SSAM): position attention within one branch (DANet's PAM).

    With :math:`Q = W_q F` and :math:`K = W_k F` (1x1 convolutions to :math:`C/8` channels), reshaped to
    :math:`(C/8) \times N`,

    .. math::

        S = \operatorname{softmax}(Q^\top K) \in \mathbb{R}^{N \times N}

    (softmax over the keys: row :math:`i` says where query position :math:`i` looks). Two uses:

    * ``mode="gate"`` (our default): the attention each position *receives*,
      :math:`r_j = \sum_i S_{ij}` (mean 1 over positions), gates the features in place,
      :math:`F^s_j = F_j \,\bigl(1 + \beta (r_j - 1)\bigr)`. Nothing moves across positions, so a
      feature stays where the object is.
    * ``mode="additive"`` (the literal DANet reading): with :math:`V = W_v F` (1x1 convolution,
      :math:`C` channels), :math:`F^s = F + \beta\, V S^\top`: every position receives a mix of the
      whole image's values. The value convolution exists only in this mode.

    :math:`\beta = \tanh\theta` by default (see :func:`bounded_scale`), 0 at initialisation.

    Memory: :math:`S` has :math:`N^2` float32 entries per image, :math:`N = hw`; it grows as the fourth
    power of the feature-map side (``benchmarks/ssam_memory.py`` measures it per backbone).

    Args:
        channels: :math:`C`, channels of the input features.
        mode: ``"gate"`` or ``"additive"``.
        scale: ``"tanh"`` or ``"linear"``.
    """

    def __init__(self, channels: int, mode: str = "gate", scale: str = "tanh") -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"SpatialSelfAttention: channels must be >= 1, got {channels}.")
        self.mode = validate_choice("mode", mode, SSAM_MODES, prefix="SpatialSelfAttention: ")
        self.scale = validate_choice("scale", scale, SCALES, prefix="SpatialSelfAttention: ")
        self.channels = channels
        self.query = nn.Conv2d(channels, max(1, channels // 8), kernel_size=1)
        self.key = nn.Conv2d(channels, max(1, channels // 8), kernel_size=1)
        # The gate reads no values; a value conv without gradients would also upset DDP.
        self.value = nn.Conv2d(channels, channels, kernel_size=1) if mode == "additive" else None
        self.beta = nn.Parameter(torch.zeros(1))

    @property
    def effective_beta(self) -> torch.Tensor:
        r""":math:`\beta`, the scale applied to the attention term."""
        return bounded_scale(self.beta, self.scale)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`S = \operatorname{softmax}(Q^\top K)`, ``(B, N, N)`` float32 (rows: queries, row-major over ``(h, w)``)."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"SpatialSelfAttention: expected (B, {self.channels}, h, w) features, got {tuple(x.shape)}. "
                "Build the module with channels equal to the feature channels."
            )
        q = self.query(x).flatten(2)  # Q (B, C/8, N)
        k = self.key(x).flatten(2)  # K (B, C/8, N)
        with _float32(x.device):
            return torch.softmax(q.float().transpose(1, 2) @ k.float(), dim=-1)

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``F^s`` with the shape and dtype of ``x`` (``(B, C, h, w)``), or ``(F^s, S)`` with ``return_attention``."""
        s = self.attention(x)
        b, c, h, w = x.shape
        v = self.value(x).reshape(b, c, h * w) if self.value is not None else None  # V (B, C, N), under autocast
        with _float32(x.device):
            f = x.reshape(b, c, h * w).float()  # F (B, C, N)
            beta = self.effective_beta.float()
            if self.mode == "gate":
                r = s.sum(dim=1, keepdim=True)  # r_j = sum_i S_ij, (B, 1, N)
                fs = f * (1.0 + beta * (r - 1.0))  # F^s_j = F_j (1 + beta (r_j - 1))
            else:
                fs = f + beta * (v.float() @ s.transpose(1, 2))  # F^s = F + beta V S^T
        fs = fs.reshape(b, c, h, w).to(x.dtype)
        return (fs, s) if return_attention else fs

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mode={self.mode!r}, scale={self.scale!r}"
