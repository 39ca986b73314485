"""The one table of WSOL methods: every other module reads which methods exist from here.

One :class:`MethodSpec` per method says which model class builds it, the constructor options that
make the variant (its *preset*: only what differs from the class's defaults), a one-line
description, its relative training cost and where it belongs:

* ``chain=True``: a step of the paper's chain CAM -> HaS -> complementary -> CAAM -> SSAM -> full,
  the subject of notebooks 01-07;
* ``in_results=True``: a row of the ``make results`` ablation table (adding a method to that table
  is this one field);
* the rest are other WSOL methods, buildable by name (``cirlib train --set model.method=acol``).

A method whose training loss needs the batch's ground-truth boxes says so on its model class
(``needs_boxes = True``, see :class:`cirlib.methods.base.WSOLModel`; :attr:`MethodSpec.needs_boxes`
reads it, and :class:`cirlib.engine.Trainer` then calls ``training_loss(images, labels, boxes=...)``);
one that trains on a few images per class sets ``train_per_class`` (the config override
``data.train_per_class`` that :func:`cirlib.runs.experiments.experiment_config` writes into its runs).

Consumers: :func:`cirlib.methods.build_model` and :func:`cirlib.methods.describe_methods`, the config
validation of ``model.method`` (:mod:`cirlib.config`), the run budgets and time estimates
(:mod:`cirlib.runs.experiments`), the ablation table (:mod:`cirlib.runs.results`), ``make demo``'s
ordering (:mod:`cirlib.runs.pool`) and the CLI help (:mod:`cirlib.cli`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cirlib.methods.fusion_loss import DEFAULT_FUSION_LOSS
from cirlib.utils.choices import validate_choice

__all__ = [
    "CHAIN_METHODS",
    "METHODS",
    "METHOD_SPECS",
    "RESULTS_METHODS",
    "MethodSpec",
    "get_spec",
]


@dataclass(frozen=True)
class MethodSpec:
    """One WSOL method of the registry.

    Attributes:
        name: the name configs and :func:`cirlib.methods.build_model` use (``model.method``).
        model: the model class as ``"module:Class"``, imported on first use.
        description: one line for help texts, notebooks and the headers of the generated configs.
        presets: constructor options that make this variant (only those that differ from the
            class's defaults; options given to ``build_model`` override them).
        relative_cost: single-threaded training cost per image relative to CAM's (CAM = 1), measured
            under the ``demo`` budget (the CPU times of ``results/results.json``); ``None`` where not
            measured yet. Used only for the time estimates printed before a training.
        chain: a step of the paper's chain, the subject of notebooks 01-07.
        in_results: a row of the ``make results`` ablation table.
        train_per_class: trains on this many images per class (``data.train_per_class``); ``None``:
            the whole training split.
        demo_budget: settings this method changes in the synthetic ``demo`` budget (merged over
            :data:`cirlib.runs.experiments.BUDGETS` ``["demo"]``; the ``fast`` CI budget stays as it is),
            e.g. the few-shot baseline's batch and epochs for its 50 images.
    """

    name: str
    model: str
    description: str
    presets: Mapping[str, Any] = field(default_factory=dict)
    relative_cost: float | None = None
    chain: bool = False
    in_results: bool = False
    train_per_class: int | None = None
    demo_budget: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "presets", MappingProxyType(dict(self.presets)))
        object.__setattr__(self, "demo_budget", MappingProxyType(dict(self.demo_budget)))

    @property
    def needs_boxes(self) -> bool:
        """Whether the training loss needs the batch's boxes (the model class's ``needs_boxes``)."""
        return bool(getattr(self.model_class(), "needs_boxes", False))

    def model_class(self) -> type:
        """The model class, imported now (so ``cam`` works without the complementary modules)."""
        module, _, name = self.model.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"method {self.name!r} needs {self.model}, which could not be imported ({exc}).") from exc


_COMPLEMENTARY = "cirlib.methods.complementary:ComplementaryModel"

#: Every method, in the order of the ablation table and the help texts. The relative costs are the
#: per-run CPU times (``cpu_time_s``) of ``results/results.json`` over CAM's, rounded (CAM 82 s, full 261 s).
METHOD_SPECS: tuple[MethodSpec, ...] = (
    MethodSpec("cam", "cirlib.methods.cam:CAMModel",
               "CAM baseline: backbone + 1x1-conv classifier + GAP, cross-entropy on the full image",
               relative_cost=1.0, chain=True, in_results=True),
    MethodSpec("has", "cirlib.methods.has:HaSModel",
               "Hide-and-Seek: CAM trained on images with random square patches hidden (p = 0.5)",
               relative_cost=1.0, chain=True, in_results=True),
    MethodSpec("complementary", _COMPLEMENTARY,
               "two complementary images (M*I, (1-M)*I), shared backbone, two classifiers",
               relative_cost=1.9, chain=True, in_results=True),
    MethodSpec("caam", _COMPLEMENTARY,
               "complementary + channel-wise assisted attention module (CAAM) between the branches",
               presets={"use_caam": True}, relative_cost=1.9, chain=True, in_results=True),
    MethodSpec("ssam", _COMPLEMENTARY,
               "complementary + spatial self-attention module (SSAM) in each branch",
               presets={"use_ssam": True}, relative_cost=2.1, chain=True, in_results=True),
    MethodSpec("full", _COMPLEMENTARY,
               "complementary + CAAM + SSAM + attention-based fusion loss ('max')",
               presets={"use_caam": True, "use_ssam": True, "fusion_loss": DEFAULT_FUSION_LOSS},
               relative_cost=3.2, chain=True, in_results=True),
    # The summary of the paper read literally (docs/reconstruction.md): the full method with unbounded
    # scales, DANet's additive SSAM, F^t = F^c + F^s and the class maps read from F^t.
    MethodSpec("literal", _COMPLEMENTARY,
               "the full method as the summary reads literally: unbounded gamma/beta, additive SSAM, "
               "F^t = F^c + F^s, class maps from F^t",
               presets={"use_caam": True, "use_ssam": True, "fusion_loss": DEFAULT_FUSION_LOSS,
                        "attention_scale": "linear", "ssam_mode": "additive", "aggregation": "sum",
                        "cam_from": "attended"},
               relative_cost=3.6, in_results=True),
    # The other WSOL methods of the reference benchmark (docs/other_methods.md). Their costs: one
    # training step on one thread against CAM's in the same interleaved rounds (0.96-1.03), so 1.0.
    MethodSpec("acol", "cirlib.methods.acol:ACoLModel",
               "ACoL: two classifiers, the second on features with the first one's peak region erased",
               relative_cost=1.0, in_results=True),
    MethodSpec("adl", "cirlib.methods.adl:ADLModel",
               "ADL: CAM with attention-based dropout (drop mask or importance map) inside the backbone",
               relative_cost=1.0, in_results=True),
    MethodSpec("cutmix", "cirlib.methods.cutmix:CutMixModel",
               "CutMix: CAM trained on images with a pasted patch of another image, labels mixed by area",
               relative_cost=1.0, in_results=True),
    # Choe et al.'s lesson: a few fully annotated images beat WSOL. 5 images per class (50 here) in
    # batches of 10 for 36 epochs: 180 steps, about a demo CAM run's 186.
    MethodSpec("fewshot", "cirlib.methods.fewshot:FewShotBoxModel",
               "few-shot baseline: the CAM network trained with a box loss on 5 fully annotated images per class",
               relative_cost=1.0, in_results=True, train_per_class=5,
               demo_budget={"data": {"batch_size": 10}, "train": {"epochs": 36}}),
)

_BY_NAME: Mapping[str, MethodSpec] = MappingProxyType({spec.name: spec for spec in METHOD_SPECS})

#: Every method name :func:`cirlib.methods.build_model` understands.
METHODS: tuple[str, ...] = tuple(_BY_NAME)
#: The paper's chain, the subject of notebooks 01-07.
CHAIN_METHODS: tuple[str, ...] = tuple(s.name for s in METHOD_SPECS if s.chain)
#: The rows of the ``make results`` ablation table, in order.
RESULTS_METHODS: tuple[str, ...] = tuple(s.name for s in METHOD_SPECS if s.in_results)


def get_spec(method: str, name: str = "method") -> MethodSpec:
    """The :class:`MethodSpec` of ``method``.

    Raises:
        ValueError: unknown method (the message lists the valid names and the closest one).
    """
    validate_choice(name, method, METHODS)
    return _BY_NAME[method]
