r"""The two-branch complementary model: shared backbone, optional CAAM and SSAM, fusion loss.

One training step, as the methods below run it:

1. **Split** (:meth:`ComplementaryModel.split`). A patch side :math:`s` is drawn per batch and each
   image becomes a complementary pair, :math:`I_1 = M \odot I + (1 - M)\mu`,
   :math:`I_2 = (1 - M) \odot I + M \mu`, each patch hidden from :math:`I_1` with probability
   :data:`HIDE_PROB`.
2. **Backbone**: :math:`F_x = f(I_1)`, :math:`F_{x_2} = f(I_2)`, one shared network.
3. **Attention** (:meth:`ComplementaryModel.attend`): CAAM lets the branches exchange channels,
   :math:`(F^c_x, F^c_{x_2}) = \mathrm{CAAM}(F_x, F_{x_2})`; SSAM attends over each branch's own
   positions, :math:`F^s = \mathrm{SSAM}(F)`; the two are aggregated per branch (:meth:`aggregate`),

   .. math:: F^t = \tfrac12 (F^c + F^s) \ (\text{``mean''}) \quad \text{or} \quad F^t = F^c + F^s \ (\text{``sum''}),

   with :math:`F^c = F` when CAAM is off and :math:`F^s = F` when SSAM is off.
4. **Two classifiers**, one per branch (1x1 conv + GAP, :class:`~cirlib.models.heads.CAMHead`), read
   :math:`F^t`: :math:`y_1, y_2`.
5. **Loss** (:meth:`training_loss`):
   :math:`\mathcal{L} = \mathrm{CE}(y_1, y) + \mathrm{CE}(y_2, y) + \lambda \mathcal{L}_{af}`, with
   :math:`\mathcal{L}_{af}` the attention-based fusion loss (:mod:`cirlib.methods.fusion_loss`) on the
   ground-truth-class maps :math:`A_1, A_2` and, for ``"max"`` and ``"stitched"``, the map
   :math:`A_{full}` of a third pass with the full image (:meth:`fusion_maps`).

Inference (:meth:`classifier_maps`): no mask; the full image goes through the backbone and, as both
branches, through the attention. The logits are the mean of the two classifiers'; each classifier's
class maps are min-max normalised and fused by their maximum (ACoL-style,
:func:`cirlib.maps.fuse`).

Where the class maps come from (``cam_from``): ``"backbone"`` (our default) reads them from
:math:`F`, the features the attention trains (through the classification loss) but does not
rewrite; ``"attended"`` (literal) reads them from :math:`F^t`. The paper pins down neither this nor
the scales, the SSAM variant or the aggregation; ``docs/reconstruction.md`` gives every default
with its reason, and the ``literal`` row of ``results/results.md`` shows what the literal reading
(``attention_scale="linear"``, ``ssam_mode="additive"``, ``aggregation="sum"``,
``cam_from="attended"``) does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from cirlib.methods.base import WSOLModel
from cirlib.methods.fusion_loss import FUSION_LOSSES, attention_fusion_loss, needs_full_map
from cirlib.methods.masks import check_patch_options, complementary_pair, patch_sizes_for, sample_patch_size
from cirlib.models.attention import SCALES, SSAM_MODES, ChannelAssistedAttention, SpatialSelfAttention
from cirlib.maps import fuse
from cirlib.models.heads import CAMHead
from cirlib.utils.choices import validate_choice

__all__ = ["AGGREGATIONS", "CAM_SOURCES", "HIDE_PROB", "ComplementaryModel", "FusionMaps"]

#: How :math:`F^c` and :math:`F^s` are aggregated into :math:`F^t`.
AGGREGATIONS = ("mean", "sum")
#: Which features the class maps are read from.
CAM_SOURCES = ("backbone", "attended")
#: Probability that a patch is hidden from :math:`I_1` (and shown in :math:`I_2`): with 0.5 the two
#: images of a pair are drawn from the same distribution, so neither branch is the "easy" one.
HIDE_PROB = 0.5


def _choice(name: str, value: Any, valid: tuple) -> Any:
    return validate_choice(name, value, valid, prefix="ComplementaryModel: ", suffix=" (see docs/reconstruction.md).")


class FusionMaps(NamedTuple):
    r"""The maps the attention-based fusion loss compares, for one batch (:meth:`ComplementaryModel.fusion_maps`).

    Every map is a raw ground-truth-class map at feature resolution (``CAMHead.label_maps``);
    :func:`~cirlib.methods.fusion_loss.attention_fusion_loss` normalises them.

    Attributes:
        a1: ``(B, h, w)`` :math:`A_1`, classifier 1 on :math:`I_1`.
        a2: ``(B, h, w)`` :math:`A_2`, classifier 2 on :math:`I_2`.
        a_full: ``(2, B, h, w)`` :math:`A_{full}`, each classifier on the full image, or ``None``
            when no third pass ran.
        mask: ``(B, 1, H, W)`` bool :math:`M`, True where :math:`I_1` shows the image.
    """

    a1: torch.Tensor
    a2: torch.Tensor
    a_full: torch.Tensor | None
    mask: torch.Tensor


class ComplementaryModel(WSOLModel):
    r"""Two complementary branches with a shared backbone (see the module docstring).

    Args:
        backbone: a :class:`~cirlib.models.backbones.Backbone`.
        num_classes: number of classes :math:`K`.
        use_caam: add the cross-branch channel attention (CAAM; presets ``caam``, ``full``).
        use_ssam: add the spatial self-attention (SSAM; presets ``ssam``, ``full``).
        fusion_loss: ``None`` or a kind of :data:`~cirlib.methods.fusion_loss.FUSION_LOSSES`
            (preset ``full``: ``"max"``; notebook 06 ablates the kinds).
        fusion_weight: :math:`\lambda` (notebook 06's ``FUSION_WEIGHT``).
        patch_sizes: patch sides in pixels; ``None`` = HaS's ``(0, 16, 32, 44, 56)`` scaled from 224 px
            to each batch's shorter side. A side of 0 means :math:`I_1 = I`, :math:`I_2 = \mu`.
        attention_scale: :math:`\gamma, \beta` as ``"tanh"`` (bounded) or ``"linear"`` (preset ``literal``).
        ssam_mode: ``"gate"`` or ``"additive"`` (preset ``literal``), see
            :class:`~cirlib.models.attention.SpatialSelfAttention`.
        aggregation: ``"mean"`` (:math:`F^t = F` at initialisation) or ``"sum"`` (preset ``literal``).
        cam_from: ``"backbone"`` or ``"attended"`` (preset ``literal``), see the module docstring.

    Attributes:
        caam: the CAAM module or ``None``; ``ssam``: the SSAM module or ``None`` (one module, shared by
            the branches).
        heads: the two classifiers, ``nn.ModuleList`` of :class:`~cirlib.models.heads.CAMHead`.
        hide_prob: :data:`HIDE_PROB`, the probability that a patch is hidden from :math:`I_1`.
        generator: optional CPU ``torch.Generator`` for patch sides and masks (``None``: global RNG).
        last_mask, last_patch_size: the mask and patch side of the latest training batch (notebooks).
    """

    method = "complementary"
    hide_prob = HIDE_PROB

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
        attention_scale: str = "tanh",
        ssam_mode: str = "gate",
        aggregation: str = "mean",
        cam_from: str = "backbone",
    ) -> None:
        super().__init__(backbone, num_classes)
        self.fusion_loss = _choice("fusion_loss", fusion_loss, (None, *FUSION_LOSSES))
        if not float(fusion_weight) >= 0:
            raise ValueError(f"ComplementaryModel: fusion_weight (lambda) must be >= 0, got {fusion_weight!r}.")
        self.fusion_weight = float(fusion_weight)
        self.patch_sizes, _ = check_patch_options(patch_sizes, HIDE_PROB, "ComplementaryModel")
        self.attention_scale = _choice("attention_scale", attention_scale, SCALES)
        self.ssam_mode = _choice("ssam_mode", ssam_mode, SSAM_MODES)
        self.aggregation = _choice("aggregation", aggregation, AGGREGATIONS)
        self.cam_from = _choice("cam_from", cam_from, CAM_SOURCES)
        self.caam = ChannelAssistedAttention(attention_scale) if use_caam else None
        self.ssam = SpatialSelfAttention(backbone.out_channels, ssam_mode, attention_scale) if use_ssam else None
        self.heads = nn.ModuleList(CAMHead(backbone.out_channels, self.num_classes) for _ in range(2))
        self.generator: torch.Generator | None = None
        self.last_mask: torch.Tensor | None = None
        self.last_patch_size: int | None = None
        if use_caam and use_ssam:
            self.method = "full" if fusion_loss else "caam+ssam"
        elif use_caam or use_ssam:
            self.method = "caam" if use_caam else "ssam"

    # -- the steps of the method ----------------------------------------------------------------
    def patch_sizes_for(self, height: int, width: int) -> tuple[int, ...]:
        """The candidate patch sides for ``height x width`` training images."""
        return patch_sizes_for(self.patch_sizes, height, width)

    def split(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Draw a patch side and split the batch: ``(I1, I2, M, patch_size)``, ``M`` True where ``I1`` shows."""
        size = sample_patch_size(self.patch_sizes_for(*images.shape[-2:]), generator=self.generator)
        i1, i2, mask = complementary_pair(images, size, HIDE_PROB, generator=self.generator)
        return i1, i2, mask, size

    def aggregate(self, fc: torch.Tensor, fs: torch.Tensor) -> torch.Tensor:
        r""":math:`F^t` from :math:`F^c` and :math:`F^s`: their mean or their sum (``aggregation``)."""
        return 0.5 * (fc + fs) if self.aggregation == "mean" else fc + fs

    def attend(self, f1: torch.Tensor, f2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`(F^t_x, F^t_{x_2})` from the branches' backbone features :math:`(F_x, F_{x_2})`."""
        if self.caam is None and self.ssam is None:
            return f1, f2
        fc1, fc2 = self.caam(f1, f2) if self.caam is not None else (f1, f2)
        # SSAM acts on each image alone: one call on both branches' features.
        fs1, fs2 = self.ssam(torch.cat([f1, f2])).chunk(2) if self.ssam is not None else (f1, f2)
        return self.aggregate(fc1, fs1), self.aggregate(fc2, fs2)

    def attend_full(self, f: torch.Tensor) -> torch.Tensor:
        r""":math:`F^t` of full images, fed as both branches (CAAM attends from their channels to their own)."""
        if self.caam is None and self.ssam is None:
            return f
        fc = self.caam(f, f)[0] if self.caam is not None else f
        fs = self.ssam(f) if self.ssam is not None else f
        return self.aggregate(fc, fs)

    def map_features(self, f: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        r"""The features the class maps read: :math:`F` (``cam_from="backbone"``) or :math:`F^t` (``"attended"``)."""
        return f if self.cam_from == "backbone" else t

    # -- training -------------------------------------------------------------------------------
    def fusion_maps(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        pair: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        full_image: bool | None = None,
    ) -> FusionMaps:
        r"""The maps :math:`A_1, A_2, A_{full}` and the mask :math:`M` the fusion loss compares.

        The same code as :meth:`training_loss`, so what a notebook shows is what training optimises.
        In train mode BatchNorm updates its running statistics, as in a training step.

        Args:
            images: ``(B, 3, H, W)`` normalised full images.
            labels: ``(B,)`` ground-truth classes.
            pair: ``(I1, I2, M)`` as :func:`~cirlib.methods.masks.complementary_pair` returns them;
                ``None`` draws the split as a training step does.
            full_image: run the third, full-image pass; ``None`` = when the fusion loss needs it
                (always without a fusion loss).
        """
        i1, i2, mask = pair if pair is not None else self.split(images)[:3]
        if full_image is None:
            full_image = self.fusion_loss is None or needs_full_map(self.fusion_loss)
        f1, f2 = self.backbone(torch.cat([i1, i2])).chunk(2)
        t1, t2 = self.attend(f1, f2)
        return self._fusion_maps(images, labels, mask, (f1, f2, t1, t2), full_image)

    def _fusion_maps(self, images, labels, mask, branches, full_image: bool) -> FusionMaps:
        f1, f2, t1, t2 = branches
        a1 = self.heads[0].label_maps(self.map_features(f1, t1), labels)
        a2 = self.heads[1].label_maps(self.map_features(f2, t2), labels)
        a_full = None
        if full_image:
            f = self.backbone(images)
            src = f if self.cam_from == "backbone" else self.attend_full(f)  # F^t only when the maps read it
            a_full = torch.stack([head.label_maps(src, labels) for head in self.heads])
        return FusionMaps(a1, a2, a_full, mask)

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        r""":math:`\mathrm{CE}(y_1, y) + \mathrm{CE}(y_2, y) + \lambda \mathcal{L}_{af}` for one batch.

        Returns:
            ``{"loss", "logits" (mean of the two branches, detached), "loss_cls", "loss_fusion",
            "gamma", "beta", "patch_size"}``; ``gamma`` / ``beta`` are the applied scales (0.0 when the
            module is off), ``loss_fusion`` is 0.0 without a fusion loss.
        """
        i1, i2, mask, size = self.split(images)
        self.last_mask, self.last_patch_size = mask.detach(), size
        f1, f2 = self.backbone(torch.cat([i1, i2])).chunk(2)  # F_x, F_x2: one pass through the shared backbone
        t1, t2 = self.attend(f1, f2)  # F^t_x, F^t_x2
        y1, y2 = self.heads[0](t1), self.heads[1](t2)
        loss_cls = F.cross_entropy(y1, labels) + F.cross_entropy(y2, labels)
        loss_fusion = torch.zeros((), device=images.device)
        if self.fusion_loss is not None and self.fusion_weight > 0:
            maps = self._fusion_maps(images, labels, mask, (f1, f2, t1, t2), needs_full_map(self.fusion_loss))
            full_maps = maps.a_full if maps.a_full is not None else [None]
            loss_fusion = torch.stack([
                attention_fusion_loss(self.fusion_loss, a_full, maps.a1, maps.a2, maps.mask) for a_full in full_maps
            ]).mean()  # averaged over the two classifiers' full-image maps
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

    # -- inference ------------------------------------------------------------------------------
    def classifier_maps(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each classifier's logits ``(B, K)`` and raw class maps ``(B, K, h, w)`` on full images (not fused)."""
        f = self.backbone(x)
        t = self.attend_full(f)
        src = self.map_features(f, t)
        return [head(t) for head in self.heads], [head.maps(src) for head in self.heads]

    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, K)`` (mean of the classifiers') and the fused class maps ``(B, K, h, w)``."""
        logits, maps = self.classifier_maps(x)
        return torch.stack(logits).mean(0), fuse(maps)

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor, x2: torch.Tensor | None = None) -> dict[str, Any]:
        """CAAM's and SSAM's attention for inspection (notebooks 04 and 05); no gradients.

        Args:
            x: images ``(B, 3, H, W)``; with ``x2`` the first branch's images (e.g. ``I1``).
            x2: the second branch's images; ``None`` = ``x`` as both branches, as at inference.

        Returns:
            ``{"caam": (Q_x, Q_x2) each (B, C, C) or None, "ssam": (B, N, N) attention of branch 1
            (rows: query positions, row-major over the feature grid) or None, "feature_size": (h, w)}``.
        """
        f1 = self.backbone(x)
        f2 = f1 if x2 is None else self.backbone(x2)
        caam = tuple(self.caam(f1, f2, return_attention=True)[2:]) if self.caam is not None else None
        ssam = self.ssam.attention(f1) if self.ssam is not None else None
        return {"caam": caam, "ssam": ssam, "feature_size": tuple(f1.shape[-2:])}

    def extra_repr(self) -> str:
        sizes = "auto (HaS set scaled to the image)" if self.patch_sizes is None else self.patch_sizes
        return (
            f"{super().extra_repr()}, fusion_loss={self.fusion_loss!r}, fusion_weight={self.fusion_weight}, "
            f"patch_sizes={sizes}, attention_scale={self.attention_scale!r}, ssam_mode={self.ssam_mode!r}, "
            f"aggregation={self.aggregation!r}, cam_from={self.cam_from!r}"
        )
