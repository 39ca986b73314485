"""Attention modules of the two-branch model: CAAM (cross-branch channel attention) and SSAM.

Both modules follow the DANet recipe (Fu et al., *Dual Attention Network for Scene
Segmentation*, CVPR 2019) that the paper's CAAM/SSAM most likely descend from, and both
start as the identity: their learnable scale (``gamma`` for CAAM, ``beta`` for SSAM) is
initialised to 0, so a freshly built two-branch model computes exactly what the plain
complementary model computes.

Numerics. The attention energies are inner products over all positions (CAAM, length
:math:`N = hw`) or all reduced channels (SSAM); with large activations they overflow
float16 (max 65504) long before the features do. Both modules therefore compute the energy
and the softmax in float32 with autocast switched off, and cast the result back to the
dtype of the input features.

What the paper does not pin down (scale parametrisation, SSAM as an additive mix or a
multiplicative gate, the softmax stabilisation) is a named option here; the list, with
defaults, reasons and evidence, is in ``docs/reconstruction.md``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

__all__ = [
    "CAAM_ENERGIES",
    "SCALES",
    "SSAM_MODES",
    "ChannelAssistedAttention",
    "SpatialSelfAttention",
    "bounded_scale",
]

#: Parametrisations of the learnable residual scales ``gamma`` / ``beta``.
SCALES = ("linear", "tanh")
#: How CAAM turns the channel energy into attention weights.
CAAM_ENERGIES = ("softmax", "danet")
#: How SSAM uses its position attention.
SSAM_MODES = ("additive", "gate")
#: The defaults of the modules and of ComplementaryModel (one place; docs/reconstruction.md gives the reasons).
DEFAULT_SCALE = "tanh"
DEFAULT_SSAM_MODE = "gate"

ScaleName = Literal["linear", "tanh"]


def _check_choice(name: str, value: str, valid: tuple[str, ...], where: str) -> str:
    if value not in valid:
        raise ValueError(
            f"{where}: unknown {name}={value!r}. Valid values: {', '.join(map(repr, valid))}."
        )
    return value


def bounded_scale(raw: torch.Tensor, scale: str, bound: float = 1.0) -> torch.Tensor:
    r"""The effective residual scale from its raw learnable parameter.

    * ``"linear"`` (literal DANet / paper): :math:`s = \theta`, unbounded.
    * ``"tanh"``: :math:`s = b \tanh(\theta / b)`, bounded to :math:`(-b, b)`; identical to
      ``"linear"`` near 0 (same value and gradient at initialisation).

    Args:
        raw: the learnable parameter :math:`\theta` (any shape).
        scale: ``"linear"`` or ``"tanh"``.
        bound: :math:`b > 0`, only used by ``"tanh"``.
    """
    _check_choice("scale", scale, SCALES, "bounded_scale")
    if scale == "linear":
        return raw
    return bound * torch.tanh(raw / bound)


def _no_autocast(device_type: str):
    """A context that disables autocast on ``device_type`` (no-op where autocast is unknown)."""
    try:
        return torch.autocast(device_type=device_type, enabled=False)
    except RuntimeError:  # pragma: no cover - exotic device types
        return torch.autocast(device_type="cpu", enabled=False)


class ChannelAssistedAttention(nn.Module):
    r"""Channel-wise Assisted Attention Module (CAAM): channel attention *across* the two branches.

    With the branch features reshaped to :math:`X, X_2 \in \mathbb{R}^{C \times N}`,

    .. math::

        Q_x = \operatorname{softmax}(X X_2^\top), \qquad
        F^c_x = F_x + \gamma \, \operatorname{reshape}(Q_x X_2),

    and symmetrically :math:`F^c_{x_2} = F_{x_2} + \gamma\,\operatorname{reshape}(
    \operatorname{softmax}(X_2 X^\top) X)`. The softmax runs over the last axis (each row of
    the :math:`C \times C` matrix :math:`Q_x` sums to 1), so channel :math:`i` of branch 1 is
    assisted by a convex combination of branch 2's channels, weighted by how strongly they
    co-activate with channel :math:`i` over the image. :math:`\gamma` is one learnable scalar
    shared by both directions, initialised to 0 (the module starts as the identity).

    Stabilisation. ``energy="softmax"`` (default) computes the exact softmax of
    :math:`E = X X_2^\top` with the usual max subtraction,
    :math:`\operatorname{softmax}(E)_{ij} = e^{E_{ij} - \max_k E_{ik}} / \sum_k e^{E_{ik} - \max_k E_{ik}}`,
    which never overflows. DANet's channel attention instead applies the softmax to
    :math:`\max_k E_{ik} - E_{ij}` (``energy="danet"``): also overflow-free, but a *different*
    function that favours the least correlated channels. The summary of the paper writes
    :math:`\operatorname{softmax}(X X_2^\top)`, hence the default. Both run in float32 with
    autocast off. With ``temperature="sqrt_n"`` the energy is divided by :math:`\sqrt{N}`
    (a reconstruction option that keeps the softmax from saturating to one-hot rows on large
    feature maps; the literal default is ``"none"``).

    Args:
        scale: parametrisation of :math:`\gamma`: ``"linear"`` (literal) or ``"tanh"``
            (bounded to ``(-scale_bound, scale_bound)``), see :func:`bounded_scale`.
        scale_bound: bound of the ``"tanh"`` scale.
        energy: ``"softmax"`` (default) or ``"danet"``, see above.
        temperature: ``"none"`` (default) or ``"sqrt_n"``.

    Attributes:
        gamma: the raw learnable scalar (shape ``(1,)``); :attr:`effective_gamma` is the scale
            actually applied.
        keep_attention: when set to ``True``, every forward stores the two attention matrices
            (detached) in :attr:`last_attention` for inspection (notebook 04).
    """

    def __init__(
        self,
        scale: ScaleName = DEFAULT_SCALE,
        scale_bound: float = 1.0,
        energy: Literal["softmax", "danet"] = "softmax",
        temperature: Literal["none", "sqrt_n"] = "none",
    ) -> None:
        super().__init__()
        self.scale = _check_choice("scale", scale, SCALES, "ChannelAssistedAttention")
        self.energy = _check_choice("energy", energy, CAAM_ENERGIES, "ChannelAssistedAttention")
        self.temperature = _check_choice(
            "temperature", temperature, ("none", "sqrt_n"), "ChannelAssistedAttention"
        )
        if not scale_bound > 0:
            raise ValueError(f"ChannelAssistedAttention: scale_bound must be > 0, got {scale_bound}.")
        self.scale_bound = float(scale_bound)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.keep_attention = False
        self.last_attention: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def effective_gamma(self) -> torch.Tensor:
        """The scale applied to the attended features (``gamma`` through :func:`bounded_scale`)."""
        return bounded_scale(self.gamma, self.scale, self.scale_bound)

    def attention(self, x: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        r"""The :math:`C \times C` attention of ``x``'s channels over ``x2``'s, float32, rows sum to 1.

        Args:
            x: ``(B, C, N)`` features of the attending branch.
            x2: ``(B, C, N)`` features of the other branch.
        """
        return self._weights(self._energy(x, x2))

    def attention_pair(self, x: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Both directions, ``(Q_x, Q_x2)``, from one energy: :math:`X_2 X^\top = (X X_2^\top)^\top`.

        Args:
            x, x2: ``(B, C, N)`` features of the two branches.
        """
        energy = self._energy(x, x2)
        return self._weights(energy), self._weights(energy.transpose(1, 2))

    def _energy(self, x: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        energy = torch.bmm(x, x2.transpose(1, 2))  # (B, C, C)
        if self.temperature == "sqrt_n":
            energy = energy / math.sqrt(x.shape[-1])
        return energy

    def _weights(self, energy: torch.Tensor) -> torch.Tensor:
        if self.energy == "danet":
            energy = energy.amax(dim=-1, keepdim=True) - energy
        return torch.softmax(energy, dim=-1)  # max-subtracted internally: overflow-free

    def pooled(self, f1: torch.Tensor, f2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The spatial means of :meth:`forward`'s outputs, ``(B, C)`` each, without the ``C x C x N`` product.

        A CAM head's logits read only the mean of the features over positions, and the attended
        term is linear in them: :math:`\overline{F^c_x} = \bar X + \gamma\, Q_x \bar X_2` (and
        symmetrically), :math:`\bar X` the mean of :math:`X` over its :math:`N` positions. Equal to
        ``forward(f1, f2)[i].mean((2, 3))`` up to float rounding (``tests/test_attention.py``).
        """
        self._check_pair(f1, f2)
        b, c, h, w = f1.shape
        with _no_autocast(f1.device.type):
            x = f1.reshape(b, c, h * w).float()
            x2 = f2.reshape(b, c, h * w).float()
            q12, q21 = self.attention_pair(x, x2)
            m1, m2 = x.mean(-1, keepdim=True), x2.mean(-1, keepdim=True)
            g = self.effective_gamma.float()
            p1 = m1 + g * torch.bmm(q12, m2)
            p2 = m2 + g * torch.bmm(q21, m1)
        if self.keep_attention:
            self.last_attention = (q12.detach(), q21.detach())
        return p1.squeeze(-1).to(f1.dtype), p2.squeeze(-1).to(f1.dtype)

    @staticmethod
    def _check_pair(f1: torch.Tensor, f2: torch.Tensor) -> None:
        if f1.dim() != 4 or f1.shape != f2.shape:
            raise ValueError(
                "ChannelAssistedAttention: f1 and f2 must be (B, C, h, w) tensors of the same "
                f"shape, got {tuple(f1.shape)} and {tuple(f2.shape)}."
            )

    def forward(
        self, f1: torch.Tensor, f2: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """Apply the cross-branch channel attention.

        Args:
            f1: ``(B, C, h, w)`` features of branch 1.
            f2: ``(B, C, h, w)`` features of branch 2 (same shape).
            return_attention: also return ``(Q_x, Q_x2)``, each ``(B, C, C)`` float32.

        Returns:
            ``(f1c, f2c)`` in the dtype of the inputs, or ``(f1c, f2c, Q_x, Q_x2)``.
        """
        self._check_pair(f1, f2)
        b, c, h, w = f1.shape
        out_dtype = f1.dtype
        with _no_autocast(f1.device.type):
            x = f1.reshape(b, c, h * w).float()
            x2 = f2.reshape(b, c, h * w).float()
            q12, q21 = self.attention_pair(x, x2)
            g = self.effective_gamma.float()
            y1 = x + g * torch.bmm(q12, x2)
            y2 = x2 + g * torch.bmm(q21, x)
        f1c = y1.reshape(b, c, h, w).to(out_dtype)
        f2c = y2.reshape(b, c, h, w).to(out_dtype)
        if self.keep_attention:
            self.last_attention = (q12.detach(), q21.detach())
        if return_attention:
            return f1c, f2c, q12, q21
        return f1c, f2c

    def extra_repr(self) -> str:
        return f"scale={self.scale!r}, energy={self.energy!r}, temperature={self.temperature!r}"


class SpatialSelfAttention(nn.Module):
    r"""Spatial Self-Attention Module (SSAM): position attention within one branch (DANet PAM).

    With :math:`Q = W_q F`, :math:`K = W_k F` (1x1 convs to :math:`C' = \max(1, C/r)`
    channels, :math:`r = 8`) and :math:`V = W_v F` (1x1 conv, :math:`C` channels), all
    reshaped to :math:`(\cdot) \times N`,

    .. math::

        S = \operatorname{softmax}(Q^\top K) \in \mathbb{R}^{N \times N}

    (softmax over the keys, each row sums to 1; :math:`S_{ij}` is how much query position
    :math:`i` attends to position :math:`j`). Two ways to use it:

    * ``mode="additive"`` (literal DANet / paper reconstruction):
      :math:`F^s = F + \beta \, \operatorname{reshape}(V S^\top)`: every position receives a
      mix of the value features of the whole image.
    * ``mode="gate"`` (reconstruction option): the attention each position *receives*,
      :math:`g_j = \sum_i S_{ij}` (mean 1 over positions), gates the features in place,
      :math:`F^s_j = F_j \, (1 + \beta (g_j - 1))`. Nothing is mixed across positions, so
      the map stays local; the value conv is not built in this mode.

    :math:`\beta` is initialised to 0 (identity at initialisation) and parametrised by
    ``scale`` (see :func:`bounded_scale`). Both modes are equivariant to permutations of the
    positions (1x1 convs act per position).

    Memory. :math:`S` has :math:`N^2` entries per image (:math:`N = hw`), in float32: the
    forward briefly holds two such matrices (energy and softmax) and autograd keeps one for
    the backward pass. It grows as :math:`N^2`, i.e. as the *fourth* power of the
    feature-map side. At 224 px: 14x14 maps (VGG16-GAP, ResNet50 with stride-1 ``layer4``)
    give :math:`N = 196`, 0.15 MiB per image; 28x28 (ResNet50 ``large_feature_map``)
    :math:`N = 784`, 2.3 MiB; 56x56 (the toy ``small_cnn`` at 224 px) 37.5 MiB per image,
    2.3 GiB for a batch of 64. ``benchmarks/ssam_memory.py`` computes and measures it for
    every backbone.

    Args:
        channels: :math:`C`, channels of the input features.
        reduction: :math:`r`, query/key channels are ``max(1, channels // reduction)``.
        mode: ``"additive"`` or ``"gate"``.
        scale: ``"linear"`` (literal) or ``"tanh"``.
        scale_bound: bound of the ``"tanh"`` scale.

    Attributes:
        beta: the raw learnable scalar (shape ``(1,)``); :attr:`effective_beta` is applied.
        keep_attention: when ``True``, every forward stores the detached ``(B, N, N)``
            attention in :attr:`last_attention` (notebook 05); off by default (memory).
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 8,
        mode: Literal["additive", "gate"] = DEFAULT_SSAM_MODE,
        scale: ScaleName = DEFAULT_SCALE,
        scale_bound: float = 1.0,
    ) -> None:
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(
                f"SpatialSelfAttention: channels and reduction must be >= 1, got channels={channels}, "
                f"reduction={reduction}."
            )
        if not scale_bound > 0:
            raise ValueError(f"SpatialSelfAttention: scale_bound must be > 0, got {scale_bound}.")
        self.mode = _check_choice("mode", mode, SSAM_MODES, "SpatialSelfAttention")
        self.scale = _check_choice("scale", scale, SCALES, "SpatialSelfAttention")
        self.scale_bound = float(scale_bound)
        self.channels = channels
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, kernel_size=1)
        self.key = nn.Conv2d(channels, inner, kernel_size=1)
        # The gate does not use values: building the conv anyway would leave parameters without
        # gradients, which DistributedDataParallel rejects.
        self.value = nn.Conv2d(channels, channels, kernel_size=1) if mode == "additive" else None
        self.beta = nn.Parameter(torch.zeros(1))
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None

    @property
    def effective_beta(self) -> torch.Tensor:
        """The scale applied to the attention term (``beta`` through :func:`bounded_scale`)."""
        return bounded_scale(self.beta, self.scale, self.scale_bound)

    def queries_and_keys(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`Q = W_q F` and :math:`K = W_k F`, ``(B, C', N)`` each, in the dtype autocast gives.

        The two 1x1 convolutions (:attr:`query`, :attr:`key`) as one batched matrix product over
        their stacked weights: one pass over the features forward and backward, and no
        convolution kernel for a few output channels (``benchmarks/step_cost.py --breakdown``).
        """
        b, c, h, w = x.shape
        weight = torch.cat([self.query.weight, self.key.weight]).reshape(1, -1, c)
        bias = torch.cat([self.query.bias, self.key.bias]).reshape(1, -1, 1)
        qk = torch.baddbmm(bias, weight.expand(b, -1, -1), x.reshape(b, c, h * w))
        return qk.split(self.query.out_channels, dim=1)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(B, N, N)`` position attention of ``x`` (``(B, C, h, w)``), float32, rows sum to 1."""
        q, k = self.queries_and_keys(x)
        with _no_autocast(x.device.type):
            energy = torch.bmm(q.float().transpose(1, 2), k.float())  # (B, N, N): queries x keys
            return torch.softmax(energy, dim=-1)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        r"""The spatial mean of :meth:`forward`'s output, ``(B, C)``, from the attention each position receives.

        Both modes read :math:`S` only through :math:`r_j = \sum_i S_{ij}`: the gate is
        :math:`\overline{F^s} = \frac1N \sum_j F_j (1 + \beta (r_j - 1))`, and the additive mix
        averages to :math:`\overline{F^s} = \bar F + \frac{\beta}{N} V r`. So the mean, which is all a
        CAM head's logits read, needs neither the ``(B, C, N)`` output nor the ``V S^T`` product.
        Equal to ``forward(x).mean((2, 3))`` up to float rounding (``tests/test_attention.py``).
        """
        self._check_input(x)
        b, c, h, w = x.shape
        s = self.attention(x)
        beta = self.effective_beta.float()
        v = self.value(x).reshape(b, c, h * w) if self.mode == "additive" else None
        with _no_autocast(x.device.type):
            received = s.sum(dim=1, keepdim=True).transpose(1, 2)  # (B, N, 1)
            xf = x.reshape(b, c, h * w).float()
            if v is None:
                out = torch.bmm(xf, 1.0 + beta * (received - 1.0)) / (h * w)
            else:
                out = xf.mean(-1, keepdim=True) + beta * torch.bmm(v.float(), received) / (h * w)
        if self.keep_attention:
            self.last_attention = s.detach()
        return out.squeeze(-1).to(x.dtype)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"SpatialSelfAttention: expected (B, {self.channels}, h, w) features, got "
                f"{tuple(x.shape)}. Build the module with channels equal to the feature channels."
            )

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Apply the position attention.

        Args:
            x: ``(B, C, h, w)`` features.
            return_attention: also return the ``(B, N, N)`` float32 attention ``S``.

        Returns:
            ``F^s`` with the shape and dtype of ``x``, or ``(F^s, S)``.
        """
        self._check_input(x)
        b, c, h, w = x.shape
        s = self.attention(x)
        beta = self.effective_beta.float()
        if self.mode == "additive":
            assert self.value is not None
            v = self.value(x).reshape(b, c, h * w)
            with _no_autocast(x.device.type):
                mixed = torch.bmm(v.float(), s.transpose(1, 2))  # (B, C, N): V S^T
                out = x.reshape(b, c, h * w).float() + beta * mixed
        else:
            with _no_autocast(x.device.type):
                received = s.sum(dim=1)  # (B, N): attention each key position receives, mean 1
                gate = 1.0 + beta * (received - 1.0)
                out = x.reshape(b, c, h * w).float() * gate.unsqueeze(1)
        out = out.reshape(b, c, h, w).to(x.dtype)
        if self.keep_attention:
            self.last_attention = s.detach()
        if return_attention:
            return out, s
        return out

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mode={self.mode!r}, scale={self.scale!r}"
