r"""The two-branch complementary model: shared backbone, optional CAAM / SSAM, fusion loss.

Training (one batch). A patch side :math:`s` is drawn per batch and each image is split into
a complementary pair (:func:`~cirlib.methods.masks.complementary_pair`),
:math:`I_1 = M \odot I + (1 - M)\mu`, :math:`I_2 = (1 - M) \odot I + M \mu`. Both go through the
shared backbone :math:`f`; optionally the two branches exchange channel information (CAAM,
:class:`~cirlib.models.attention.ChannelAssistedAttention`) and each attends over its own
positions (SSAM, :class:`~cirlib.models.attention.SpatialSelfAttention`, one module shared by the
branches). The two are aggregated per branch,

.. math::

    F^t = F^c + F^s \quad (\text{``sum''}), \qquad F^t = \tfrac12 (F^c + F^s) \quad (\text{``mean''}),

with :math:`F^c = F` when CAAM is off and :math:`F^s = F` when SSAM is off (and :math:`F^t = F`
when both are off). Each branch has its own CAM classifier (1x1 conv + GAP; ``classifier="two"``)
or both share one (``"shared"``), and

.. math::

    \mathcal{L} = \mathrm{CE}(y_1, y) + \mathrm{CE}(y_2, y) + \lambda \, \mathcal{L}_{af},

:math:`\mathcal{L}_{af}` the attention-based fusion loss of :mod:`cirlib.methods.fusion_loss` on the
ground-truth-class maps (``"stitched"`` and ``"max"`` add a third pass with the full image).

Inference. No mask: the full image goes through the network, as *both* branches (CAAM then
attends from the image's channels to its own channels). The logits are the mean of the
classifiers' logits; the CAM of each classifier is min-max normalised per image and class and
the maps are fused (``cam_fusion="max"``, ACoL-style, or ``"mean"``). Nothing random happens at
inference.

The paper does not pin down placement, scales, the SSAM variant, the aggregation, the CAM source
or the fusion loss: every such choice is a named option below, listed with its default, reason
and evidence in ``docs/reconstruction.md``. The defaults avoid what the literal reading does on
the synthetic data (docs/design.md#the-earlier-prototype: unbounded scales and an additive SSAM after the last conv
block wreck the CAM): the modules sit after the last conv block as in the paper, but their scales
are bounded with ``tanh``, SSAM acts as a spatial gate, and the class maps are read from the
backbone's features, which the attention trains but does not rewrite (``cam_from="backbone"``; on
3 seeds this beat the modules placed before the last block by 5 points of MaxBoxAccV2).
``attention_scale="linear"``, ``ssam_mode="additive"``, ``aggregation="sum"``,
``cam_from="attended"`` give the literal reading.

Cost. With ``cam_from="backbone"`` and the modules after the last block, :math:`F^t` is read only by
the logits, GAP then a linear layer, i.e. only through its mean over positions; the model then asks
the modules for that mean directly (:attr:`ComplementaryModel.pools_attention`), the same function
up to float rounding at a fraction of the cost (``benchmarks/step_cost.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from cirlib.config import validate_choice
from cirlib.methods.base import WSOLModel
from cirlib.methods.fusion_loss import FUSION_LOSSES, attention_fusion_loss, needs_full_map
from cirlib.methods.masks import check_patch_options, complementary_pair, patch_sizes_for, sample_patch_size
from cirlib.models.attention import (
    CAAM_ENERGIES,
    DEFAULT_SCALE,
    DEFAULT_SSAM_MODE,
    SCALES,
    SSAM_MODES,
    ChannelAssistedAttention,
    SpatialSelfAttention,
)
from cirlib.models.heads import CAMHead, minmax_normalize

__all__ = [
    "AGGREGATIONS",
    "ATTENTION_PLACEMENTS",
    "CAM_FUSIONS",
    "CAM_SOURCES",
    "CLASSIFIERS",
    "ComplementaryModel",
    "FusionMaps",
]

ATTENTION_PLACEMENTS = ("early", "late")
CAM_SOURCES = ("attended", "backbone")
CLASSIFIERS = ("two", "shared")
CAM_FUSIONS = ("max", "mean")
AGGREGATIONS = ("mean", "sum")


def _choice(name: str, value: Any, valid: tuple[str, ...]) -> str:
    return validate_choice(name, value, valid, prefix="ComplementaryModel: ", suffix=" (see docs/reconstruction.md).")


class FusionMaps(NamedTuple):
    r"""The maps the attention-based fusion loss compares, for one batch (:meth:`ComplementaryModel.fusion_maps`).

    Every map is a ground-truth-class map at feature resolution ``(h, w)`` and *raw*: the
    classifier's class map as it comes out (``CAMHead.maps``), not normalised.
    :func:`~cirlib.methods.fusion_loss.attention_fusion_loss` min-max normalises each one per image,
    :math:`\hat A = (A - \min A) / (\max A - \min A + \epsilon)`, before comparing them. The maps
    come from the features ``cam_from`` selects, as the loss reads them.

    Attributes:
        a1: ``(B, h, w)`` :math:`A_1`, classifier 1 on :math:`I_1`.
        a2: ``(B, h, w)`` :math:`A_2`, classifier 2 on :math:`I_2`.
        a_full: ``(n_classifiers, B, h, w)`` :math:`A_{full}`, each classifier on the full image (the
            third pass; the loss is averaged over the classifiers), or ``None`` when no third pass ran.
        mask: ``(B, 1, H, W)`` bool :math:`M`, True where :math:`I_1` shows the image.
    """

    a1: torch.Tensor
    a2: torch.Tensor
    a_full: torch.Tensor | None
    mask: torch.Tensor


class ComplementaryModel(WSOLModel):
    r"""Two complementary branches with a shared backbone (see the module docstring).

    Args:
        backbone: a :class:`~cirlib.models.backbones.Backbone` (``early``, ``late``,
            ``early_channels``, ``out_channels``).
        num_classes: number of classes :math:`K`.
        use_caam: add the cross-branch channel attention (CAAM).
        use_ssam: add the spatial self-attention (SSAM).
        fusion_loss: ``None`` (no fusion loss) or a kind of
            :data:`~cirlib.methods.fusion_loss.FUSION_LOSSES` (``"stitched"``, ``"consistency"``, ``"max"``).
        fusion_weight: :math:`\lambda`, weight of the fusion loss.
        patch_sizes: patch sides in pixels; ``None`` = HaS's ``(0, 16, 32, 44, 56)`` scaled from
            224 px to each batch's shorter side (``(0, 5, 9, 13, 16)`` at 64 px). A side of 0 means
            :math:`I_1 = I`, :math:`I_2 = \mu`.
        hide_prob: probability :math:`p` that a patch is hidden from :math:`I_1` (shown in :math:`I_2`).
        fill: :math:`\mu`, value of hidden pixels (0 for normalised images), scalar or per channel.
        classifier: ``"two"`` parallel classifiers (one per branch) or one ``"shared"``.
        cam_fusion: fusion of the classifiers' normalised CAMs at inference, ``"max"`` or ``"mean"``.
        attention_at: ``"late"``: CAAM/SSAM after the whole backbone (the paper's placement);
            ``"early"``: between ``backbone.early`` and ``backbone.late`` (the last conv block then
            works on attended features).
        cam_from: ``"backbone"``: CAMs (inference and fusion loss) from the classifier applied to
            the features the attention did not touch (``late(early(x))``), while the logits come
            from the aggregated features :math:`F^t`; ``"attended"``: from the classifier applied
            to :math:`F^t` (literal).
        ssam_mode: ``"gate"`` (SSAM's attention as a multiplicative spatial gate, no mixing across
            positions) or ``"additive"`` (literal DANet position attention).
        attention_scale: parametrisation of ``gamma`` and ``beta``: ``"tanh"`` (bounded to
            ``(-scale_bound, scale_bound)``) or ``"linear"`` (literal, unbounded).
        scale_bound: the bound of the ``"tanh"`` scale.
        aggregation: ``"mean"`` (:math:`(F^c + F^s)/2`, the identity at initialisation) or
            ``"sum"`` (literal :math:`F^c + F^s`, :math:`2F` at initialisation); only used when
            at least one module is on.
        caam_energy: ``"softmax"`` of :math:`X X_2^T` (default) or DANet's ``"danet"`` (``max - E``).
        caam_temperature: ``"none"`` (literal) or ``"sqrt_n"`` (CAAM energy divided by :math:`\sqrt{N}`).
        ssam_reduction: query/key channel reduction of SSAM (8 in DANet).

    Attributes:
        caam: the CAAM module or ``None``; ``ssam``: the SSAM module or ``None``.
        heads: ``nn.ModuleList`` of one or two :class:`~cirlib.models.heads.CAMHead`.
        generator: optional CPU ``torch.Generator`` for patch sizes and masks (``None``: global).
        last_mask: the ``(B, 1, H, W)`` mask of the latest training batch (for notebooks).
        last_patch_size: the patch side of the latest training batch.
    """

    method = "complementary"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        use_caam: bool = False,
        use_ssam: bool = False,
        fusion_loss: str | None = None,
        fusion_weight: float = 1.0,
        patch_sizes: Sequence[int] | None = None,
        hide_prob: float = 0.5,
        fill: float | Sequence[float] = 0.0,
        classifier: str = "two",
        cam_fusion: str = "max",
        attention_at: str = "late",
        cam_from: str = "backbone",
        ssam_mode: str = DEFAULT_SSAM_MODE,
        attention_scale: str = DEFAULT_SCALE,
        scale_bound: float = 1.0,
        aggregation: str = "mean",
        caam_energy: str = "softmax",
        caam_temperature: str = "none",
        ssam_reduction: int = 8,
    ) -> None:
        super().__init__(backbone, num_classes)
        _choice("fusion_loss", fusion_loss, (None, *FUSION_LOSSES))
        patch_sizes, hide_prob = check_patch_options(patch_sizes, hide_prob, "ComplementaryModel")
        if float(fusion_weight) < 0:
            raise ValueError(f"ComplementaryModel: fusion_weight (lambda) must be >= 0, got {fusion_weight!r}.")
        self.use_caam, self.use_ssam = bool(use_caam), bool(use_ssam)
        self.fusion_loss = fusion_loss
        self.fusion_weight = float(fusion_weight)
        self.patch_sizes: tuple[int, ...] | None = patch_sizes
        self.hide_prob = float(hide_prob)
        self.fill = fill
        self.classifier = _choice("classifier", classifier, CLASSIFIERS)
        self.cam_fusion = _choice("cam_fusion", cam_fusion, CAM_FUSIONS)
        self.attention_at = _choice("attention_at", attention_at, ATTENTION_PLACEMENTS)
        self.cam_from = _choice("cam_from", cam_from, CAM_SOURCES)
        self.ssam_mode = _choice("ssam_mode", ssam_mode, SSAM_MODES)
        self.attention_scale = _choice("attention_scale", attention_scale, SCALES)
        self.aggregation = _choice("aggregation", aggregation, AGGREGATIONS)
        _choice("caam_energy", caam_energy, CAAM_ENERGIES)

        channels = self.attention_channels
        self.caam = (
            ChannelAssistedAttention(
                scale=attention_scale, scale_bound=scale_bound, energy=caam_energy, temperature=caam_temperature
            )
            if self.use_caam else None
        )
        self.ssam = (
            SpatialSelfAttention(
                channels, reduction=ssam_reduction, mode=ssam_mode, scale=attention_scale, scale_bound=scale_bound
            )
            if self.use_ssam else None
        )
        n_heads = 2 if self.classifier == "two" else 1
        self.heads = nn.ModuleList(CAMHead(backbone.out_channels, self.num_classes) for _ in range(n_heads))
        self.generator: torch.Generator | None = None
        self.last_mask: torch.Tensor | None = None
        self.last_patch_size: int | None = None
        if self.use_caam and self.use_ssam:
            self.method = "full" if fusion_loss else "caam+ssam"
        elif self.use_caam or self.use_ssam:
            self.method = "caam" if self.use_caam else "ssam"

    # -- pieces ---------------------------------------------------------------------------------
    @property
    def has_attention(self) -> bool:
        """Whether CAAM or SSAM is on."""
        return self.caam is not None or self.ssam is not None

    @property
    def attention_channels(self) -> int:
        """Channels :math:`C` of the features CAAM and SSAM work on (depends on ``attention_at``)."""
        return self.backbone.early_channels if self.attention_at == "early" else self.backbone.out_channels

    def attention_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features of images ``x`` at the attention point: ``backbone.early(x)`` or ``backbone(x)``."""
        return self.backbone.early(x) if self.attention_at == "early" else self.backbone(x)

    def head(self, branch: int) -> CAMHead:
        """The classifier of ``branch`` (0 or 1); the same module twice when ``classifier="shared"``."""
        return self.heads[branch % len(self.heads)]

    def patch_sizes_for(self, height: int, width: int) -> tuple[int, ...]:
        """The candidate patch sides for ``height x width`` training images."""
        return patch_sizes_for(self.patch_sizes, height, width)

    def split(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Draw a patch side and split the batch: ``(I1, I2, M, patch_size)``, ``M`` True where ``I1`` shows."""
        size = sample_patch_size(self.patch_sizes_for(*images.shape[-2:]), generator=self.generator)
        fill = torch.as_tensor(self.fill, dtype=images.dtype)
        i1, i2, mask = complementary_pair(images, size, self.hide_prob, fill=fill, generator=self.generator)
        return i1, i2, mask, size

    def attend(self, f1: torch.Tensor, f2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregated features :math:`F^t` of both branches from their features at the attention point."""
        if not self.has_attention:
            return f1, f2
        c1, c2 = self.caam(f1, f2) if self.caam is not None else (f1, f2)
        if self.ssam is not None:
            s1, s2 = self.ssam(torch.cat([f1, f2])).chunk(2)
        else:
            s1, s2 = f1, f2
        return self._aggregate(c1, s1), self._aggregate(c2, s2)

    def _aggregate(self, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """:math:`F^t` from :math:`F^c` and :math:`F^s` (``aggregation``)."""
        t = c + s
        return 0.5 * t if self.aggregation == "mean" else t

    def _attend_single(self, f: torch.Tensor) -> torch.Tensor:
        """:math:`F^t` of a full image fed as both branches (CAAM of ``f`` with itself)."""
        if not self.has_attention:
            return f
        c = self.caam(f, f)[0] if self.caam is not None else f
        s = self.ssam(f) if self.ssam is not None else f
        return self._aggregate(c, s)

    @property
    def pools_attention(self) -> bool:
        r"""Whether the attention computes only the spatial mean of :math:`F^t` (:meth:`attend_pooled`).

        True with CAAM or SSAM after the last block and ``cam_from="backbone"`` (the defaults): the
        class maps then read the backbone's own features, and the logits, GAP then a linear layer,
        read only :math:`\overline{F^t}`. The modules give that mean directly
        (:meth:`ChannelAssistedAttention.pooled`, :meth:`SpatialSelfAttention.pooled`), which spares
        CAAM's :math:`C \times C \times N` product and every ``(B, C, h, w)`` attended tensor.
        """
        return self.has_attention and self.attention_at == "late" and self.cam_from == "backbone"

    def attend_pooled(self, f1: torch.Tensor, f2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`\overline{F^t}` of both branches, ``(B, C)`` each: :meth:`attend`'s outputs averaged over positions."""
        c1, c2 = self.caam.pooled(f1, f2) if self.caam is not None else (f1.mean((2, 3)), f2.mean((2, 3)))
        if self.ssam is not None:
            s1, s2 = self.ssam.pooled(torch.cat([f1, f2])).chunk(2)
        else:
            s1, s2 = f1.mean((2, 3)), f2.mean((2, 3))
        return self._aggregate(c1, s1), self._aggregate(c2, s2)

    def _attend_single_pooled(self, f: torch.Tensor) -> torch.Tensor:
        """:meth:`_attend_single` averaged over positions, ``(B, C)``."""
        c = self.caam.pooled(f, f)[0] if self.caam is not None else f.mean((2, 3))
        s = self.ssam.pooled(f) if self.ssam is not None else f.mean((2, 3))
        return self._aggregate(c, s)

    def branch_features(
        self, x1: torch.Tensor, x2: torch.Tensor, need_plain: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(F^t_1, F^t_2, plain_1, plain_2)``: aggregated features of both branches, one backbone pass.

        ``plain_*`` (features the attention did not touch, ``late(early(x))``) are computed only
        when ``need_plain`` is true, else ``None``.
        """
        x = torch.cat([x1, x2])
        plain = None
        if self.attention_at == "late" or not self.has_attention:
            f = self.backbone(x)
            t1, t2 = self.attend(*f.chunk(2))
            plain = f
        else:
            e1, e2 = self.backbone.early(x).chunk(2)
            a1, a2 = self.attend(e1, e2)
            t1, t2 = self.backbone.late(torch.cat([a1, a2])).chunk(2)
            if need_plain:
                plain = self.backbone.late(torch.cat([e1, e2]))
        if not need_plain:
            return t1, t2, None, None
        p1, p2 = plain.chunk(2)
        return t1, t2, p1, p2

    def full_features(self, x: torch.Tensor, need_plain: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(F^t, plain)`` of full images (no mask); ``plain`` only when ``need_plain``."""
        if self.attention_at == "late" or not self.has_attention:
            f = self.backbone(x)
            return self._attend_single(f), (f if need_plain else None)
        e = self.backbone.early(x)
        t = self.backbone.late(self._attend_single(e))
        return t, (self.backbone.late(e) if need_plain else None)

    def _full_training_cam_features(self, images: torch.Tensor, need_plain: bool) -> torch.Tensor:
        """Features of the full-image (third) training pass that its CAMs are read from.

        With ``cam_from="backbone"`` and the modules after the last block (the defaults), the CAMs
        come from the backbone's features and the attended features :math:`F^t` of this pass would
        be thrown away: skip CAAM and SSAM here (they hold no state and draw no random numbers, so
        the loss, the gradients and the weights are bit for bit those of computing and discarding
        them; ``tests/test_complementary.py`` checks it). With ``attention_at="early"`` the last
        block runs on both the attended and the plain features and its BatchNorm statistics see
        both, so everything is computed as before.
        """
        if need_plain and self.attention_at == "late":
            return self.backbone(images)
        t, plain = self.full_features(images, need_plain=need_plain)
        return self._cam_features(t, plain)

    def _cam_features(self, attended: torch.Tensor, plain: torch.Tensor | None) -> torch.Tensor:
        return plain if (self.cam_from == "backbone" and plain is not None) else attended

    @property
    def _need_plain(self) -> bool:
        return self.cam_from == "backbone" and self.has_attention

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor, x2: torch.Tensor | None = None) -> dict[str, Any]:
        """The attention of CAAM and SSAM for inspection (notebooks 04 and 05); no gradients.

        Args:
            x: images ``(B, 3, H, W)``; with ``x2`` the first branch's images (e.g. ``I1``).
            x2: the second branch's images (e.g. ``I2``); ``None`` = the full image ``x`` as both
                branches, as at inference.

        Returns:
            ``{"caam": (Q_x, Q_x2) each (B, C, C) or None, "ssam": (B, N, N) attention of branch 1
            (rows: query positions, row-major over the ``feature_size`` grid) or None,
            "feature_size": (h, w) of the map the attention works on}``.
        """
        x2 = x if x2 is None else x2
        f1 = self.attention_features(x)
        f2 = f1 if x2 is x else self.attention_features(x2)
        caam = ssam = None
        if self.caam is not None:
            _, _, q12, q21 = self.caam(f1, f2, return_attention=True)
            caam = (q12, q21)
        if self.ssam is not None:
            ssam = self.ssam.attention(f1)
        return {"caam": caam, "ssam": ssam, "feature_size": tuple(f1.shape[-2:])}

    def classifier_maps(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each classifier's logits ``(B, K)`` and raw class maps ``(B, K, h, w)`` on full images.

        The logits read :math:`F^t`; the maps read the features ``cam_from`` selects (the backbone's
        own with the default ``"backbone"``), as inference does. Not normalised, not fused.
        """
        if self.pools_attention:
            f = self.backbone(x)
            pooled = self._attend_single_pooled(f)
            return [head.classify(pooled) for head in self.heads], [head.maps(f) for head in self.heads]
        t, plain = self.full_features(x, need_plain=self._need_plain)
        src = self._cam_features(t, plain)
        return [head(t) for head in self.heads], [head.maps(src) for head in self.heads]

    # -- contract -------------------------------------------------------------------------------
    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, K)`` (mean over classifiers) and the fused class maps ``(B, K, h, w)``.

        With two classifiers each one's maps are min-max normalised per image and class, then
        fused by ``cam_fusion``; with a shared classifier its raw (bias-free) maps are returned.
        """
        logits, maps = self.classifier_maps(x)
        logit = torch.stack(logits).mean(0)
        if len(maps) == 1:
            return logit, maps[0]
        normed = torch.stack([minmax_normalize(m) for m in maps])
        fused = normed.amax(0) if self.cam_fusion == "max" else normed.mean(0)
        return logit, fused

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, return_cam: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Inference on the full image (see :meth:`WSOLModel.forward`); deterministic, no masking."""
        if not return_cam:
            if self.pools_attention:
                pooled = self._attend_single_pooled(self.backbone(x))
                return torch.stack([head.classify(pooled) for head in self.heads]).mean(0)
            t, _ = self.full_features(x)
            return torch.stack([head(t) for head in self.heads]).mean(0)
        return super().forward(x, labels=labels, return_cam=True)

    def fusion_maps(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        pair: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        full_image: bool | None = None,
    ) -> FusionMaps:
        r"""The maps :math:`A_1, A_2, A_{full}` and the mask :math:`M` that the fusion loss compares.

        The very code :meth:`training_loss` builds its fusion loss with, so what a notebook shows
        is what training optimises. Gradients flow unless the caller disables them; in train mode
        the BatchNorm layers update their running statistics, as in a training step.

        Args:
            images: ``(B, 3, H, W)`` normalised full images.
            labels: ``(B,)`` ground-truth classes (the maps are those of these classes).
            pair: ``(I1, I2, M)`` as :func:`~cirlib.methods.masks.complementary_pair` returns them,
                on the model's device; ``None`` draws the split as a training step does
                (:meth:`split`, with :attr:`generator`).
            full_image: whether to run the third, full-image pass; ``None`` = when the model's
                ``fusion_loss`` needs it (:func:`~cirlib.methods.fusion_loss.needs_full_map`), and
                always for a model without a fusion loss.

        Returns:
            :class:`FusionMaps` (shapes and normalisation there).
        """
        i1, i2, mask = pair if pair is not None else self.split(images)[:3]
        if full_image is None:
            full_image = self.fusion_loss is None or needs_full_map(self.fusion_loss)
        need_plain = self._need_plain
        if self.pools_attention:  # the maps read the backbone's features only
            p1, p2 = self.backbone(torch.cat([i1, i2])).chunk(2)
            branches = (p1, p2, p1, p2)
        else:
            branches = self.branch_features(i1, i2, need_plain=need_plain)
        return self._fusion_maps_from(images, labels, mask, branches, need_plain, full_image)

    def _fusion_maps_from(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mask: torch.Tensor,
        branches: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None],
        need_plain: bool,
        full_image: bool,
    ) -> FusionMaps:
        """:class:`FusionMaps` from the branches' features ``(F^t_1, F^t_2, plain_1, plain_2)`` of one split."""
        t1, t2, p1, p2 = branches
        a1 = self.head(0).label_maps(self._cam_features(t1, p1), labels)
        a2 = self.head(1).label_maps(self._cam_features(t2, p2), labels)
        a_full = None
        if full_image:
            src = self._full_training_cam_features(images, need_plain)
            a_full = torch.stack([head.label_maps(src, labels) for head in self.heads])
        return FusionMaps(a1, a2, a_full, mask)

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        r"""Complementary split, both branches, :math:`\mathrm{CE}_1 + \mathrm{CE}_2 + \lambda \mathcal{L}_{af}`.

        :math:`\mathcal{L}_{af}` is computed on the :class:`FusionMaps` of this step (see
        :meth:`fusion_maps`), averaged over the classifiers when it uses the full-image pass.

        Returns:
            ``{"loss", "logits" (mean of the two branches, detached), "loss_cls", "loss_fusion",
            "gamma", "beta", "patch_size"}``; ``gamma`` / ``beta`` are the effective scales
            (0.0 when the module is off), ``loss_fusion`` is 0.0 without a fusion loss.
        """
        i1, i2, mask, size = self.split(images)
        self.last_mask, self.last_patch_size = mask.detach(), size
        use_fusion = self.fusion_loss is not None and self.fusion_weight > 0
        need_plain = use_fusion and self._need_plain
        if self.pools_attention:
            p1, p2 = self.backbone(torch.cat([i1, i2])).chunk(2)
            m1, m2 = self.attend_pooled(p1, p2)
            y1, y2 = self.head(0).classify(m1), self.head(1).classify(m2)
            t1, t2 = p1, p2  # F^t itself is never formed: the maps read the plain features
        else:
            t1, t2, p1, p2 = self.branch_features(i1, i2, need_plain=need_plain)
            y1, y2 = self.head(0)(t1), self.head(1)(t2)
        loss_cls = F.cross_entropy(y1, labels) + F.cross_entropy(y2, labels)
        loss = loss_cls
        loss_fusion = torch.zeros((), device=images.device)
        if use_fusion:
            maps = self._fusion_maps_from(
                images, labels, mask, (t1, t2, p1, p2), need_plain, needs_full_map(self.fusion_loss)
            )
            if maps.a_full is not None:
                losses = [
                    attention_fusion_loss(self.fusion_loss, a_full, maps.a1, maps.a2, maps.mask)
                    for a_full in maps.a_full
                ]
                loss_fusion = torch.stack(losses).mean()
            else:
                loss_fusion = attention_fusion_loss(self.fusion_loss, None, maps.a1, maps.a2, maps.mask)
            loss = loss_cls + self.fusion_weight * loss_fusion
        return {
            "loss": loss,
            "logits": (0.5 * (y1 + y2)).detach(),
            "loss_cls": float(loss_cls.detach()),
            "loss_fusion": float(loss_fusion.detach()),
            "gamma": float(self.caam.effective_gamma.detach()) if self.caam is not None else 0.0,
            "beta": float(self.ssam.effective_beta.detach()) if self.ssam is not None else 0.0,
            "patch_size": float(size),
        }

    def extra_repr(self) -> str:
        sizes = "auto (HaS set scaled to the image)" if self.patch_sizes is None else self.patch_sizes
        return (
            f"{super().extra_repr()}, fusion_loss={self.fusion_loss!r}, fusion_weight={self.fusion_weight}, "
            f"patch_sizes={sizes}, hide_prob={self.hide_prob}, classifier={self.classifier!r}, "
            f"cam_fusion={self.cam_fusion!r}, attention_at={self.attention_at!r}, cam_from={self.cam_from!r}, "
            f"ssam_mode={self.ssam_mode!r}, attention_scale={self.attention_scale!r}, "
            f"aggregation={self.aggregation!r}"
        )
