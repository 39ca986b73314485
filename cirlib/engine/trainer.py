r"""The training loop: :class:`Trainer` (bring your own model and loaders).

Nothing is lost: ``last.pt`` is written atomically at the end of every epoch and every
``checkpoint_every_steps`` steps mid-epoch, with everything needed to continue exactly where the
run stopped (model, optimizer, scheduler, epoch, step, running statistics, RNG states). The data
order of epoch ``e`` depends only on ``(seed, e)`` (:class:`ResumableDistributedSampler`), and the
DataLoader's own generator is reseeded from ``(seed, e)`` at the start of each epoch, so on the
CPU a resumed run ends with the same numbers as an uninterrupted one. The real datasets' random
crops and flips are seeded per image from ``(seed, epoch, index)`` (``set_augmentation_seed``), so
they do not depend on the loader worker or the ``torchrun`` rank that reads the image either.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from cirlib.config import ExperimentConfig, config_to_dict, save_config
from cirlib.engine.builders import base_dataset, build_optimizer, build_scheduler
from cirlib.engine.checkpoint import (
    CHECKPOINT_FORMAT,
    capture_rng_state,
    check_same_run,
    load_model_state,
    read_checkpoint,
    restore_rng_state,
)
from cirlib.engine.distributed import (
    LossAdapter,
    ResumableDistributedSampler,
    all_reduce_sum,
    barrier,
    gather_objects,
    get_rank,
    get_world_size,
    is_distributed,
    is_main_process,
)
from cirlib.engine.evaluation import evaluate_model, progress_disabled
from cirlib.engine.signals import Interrupted, StopSignals, batches
from cirlib.utils import atomic_torch_save, atomic_write_json, resolve_device
from cirlib.utils.memory import keep_freed_cpu_memory

__all__ = ["NonFiniteLossError", "RunResult", "Trainer"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


@dataclass
class RunResult:
    """What a training run returns.

    Attributes:
        output_dir: the run folder (``config.yaml``, ``last.pt``, ``final.pt``, ``best.pt`` with a val split,
            ``metrics.json``).
        history: one dict per epoch (``epoch``, ``lr``, ``train`` stats, ``val`` metrics, ``time_s``).
        test: metrics of the final model on ``eval.split`` (None when not evaluated).
        best: ``{"metric", "value", "epoch"}`` of ``best.pt`` (None without validation).
        metrics_path: path of ``metrics.json`` (None when nothing was written).
        model: the trained model (unwrapped), for notebooks.
    """

    output_dir: Path | None
    history: list[dict] = field(default_factory=list)
    test: dict | None = None
    best: dict | None = None
    metrics_path: Path | None = None
    model: nn.Module | None = None


class Trainer:
    """Train a WSOL model with checkpoints, resume, validation and optional DDP.

    Usable from notebooks with an already-built model and loaders::

        trainer = Trainer(model, train_loader, config, val_loader=val_loader, write=False)
        result = trainer.fit()

    With ``write=False`` nothing is written (no checkpoints, no resume). For exact resume build the
    training loader with :func:`cirlib.engine.builders.build_train_loader`.

    Args:
        model: a WSOL model (model contract: ``training_loss``, ``forward(..., return_cam)``,
            ``param_groups``).
        train_loader: yields ``collate_wsol`` batches.
        config: the experiment config (only ``seed``, ``train`` and ``eval`` are used here);
            defaults to :class:`ExperimentConfig`'s.
        val_loader: evaluated every ``train.eval_every`` epochs to select ``best.pt``.
        output_dir: run folder; ``None`` means ``config.resolved_output_dir()``.
        device: overrides ``config.device``.
        progress: tqdm progress bars (also off with ``TQDM_DISABLE``).
        write: write files (rank 0 only in any case); ``False`` keeps everything in memory.
    """

    def __init__(
        self,
        model: nn.Module,
        train_loader,
        config: ExperimentConfig | None = None,
        val_loader=None,
        output_dir: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
        write: bool = True,
    ) -> None:
        self.config = config if config is not None else ExperimentConfig()
        self.tcfg = self.config.train
        self.device = resolve_device(device if device is not None else self.config.device)
        self.on_cuda = self.device.type == "cuda"
        if self.device.type == "cpu":
            keep_freed_cpu_memory()  # no page faults on every step's large buffers; numbers unchanged
        self.amp = self.tcfg.amp == "bf16" and self.on_cuda
        self.channels_last = self.tcfg.channels_last and self.on_cuda
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.progress = progress
        self.write = write and is_main_process()
        self.output_dir = Path(output_dir) if output_dir is not None else self.config.resolved_output_dir()
        if not write:
            self.output_dir = None
        self.sampler = getattr(train_loader, "sampler", None)
        if getattr(train_loader, "generator", None) is None:
            generator = torch.Generator()
            generator.manual_seed(self.config.seed)
            train_loader.generator = generator
        self.steps_per_epoch = len(train_loader)
        if self.steps_per_epoch == 0:
            raise ValueError(
                "Trainer: the training loader has no batches (dataset smaller than data.batch_size with "
                "drop_last?). Lower data.batch_size or raise data.train_limit."
            )
        self.optimizer = build_optimizer(self.model, self.tcfg)
        self.scheduler = build_scheduler(self.optimizer, self.tcfg, self.steps_per_epoch)
        self.needs_boxes = bool(getattr(self.model, "needs_boxes", False))
        self.loss_module: nn.Module = LossAdapter(self.model)
        if is_distributed():
            self.loss_module = nn.parallel.DistributedDataParallel(
                self.loss_module,
                device_ids=[self.device.index if self.device.index is not None else 0] if self.on_cuda else None,
            )
        self.epoch = 0  # index of the epoch in progress
        self.step_in_epoch = 0  # batches of the current epoch already trained on
        self.global_step = 0
        self.stats: dict[str, float] = {}
        self.history: list[dict] = []
        self.best: dict | None = None
        self.last_checkpoint: Path | None = None
        self.checkpoint_step: int | None = None  # global step of last.pt
        self.signals = StopSignals()
        self._in_step = False  # inside an optimisation step: its state is not one to checkpoint
        self._stop_agreed = False  # every rank saw a stop request (see _train_step)

    # --------------------------------------------------------------- checkpoints

    def _path(self, name: str) -> Path | None:
        return None if self.output_dir is None else self.output_dir / name

    def state_dict(self, kind: str) -> dict:
        """Everything needed to continue training (see module docs)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "kind": kind,
            "config": config_to_dict(self.config),
            "num_classes": int(getattr(self.model, "num_classes", 0)),
            "method": getattr(self.model, "method", None),
            "model_options": getattr(self.model, "resolved_options", None),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "stats": dict(self.stats),
            "history": list(self.history),
            "best": self.best,
            "world_size": get_world_size(),
            "rng": None,  # filled by save_checkpoint (every rank's state)
        }

    def _model_generators(self) -> dict[str, torch.Generator]:
        """``torch.Generator`` attributes of the model's modules (e.g. a method's mask generator)."""
        found = {}
        for name, module in self.model.named_modules():
            for attr, value in vars(module).items():
                if isinstance(value, torch.Generator):
                    found[f"{name}.{attr}" if name else attr] = value
        return found

    def _capture_rng(self) -> dict:
        state = capture_rng_state()
        state["model_generators"] = {k: g.get_state() for k, g in self._model_generators().items()}
        return state

    def _restore_rng(self, state: dict) -> None:
        restore_rng_state(state)
        generators = self._model_generators()
        for key, value in (state.get("model_generators") or {}).items():
            if key in generators:
                generators[key].set_state(value)

    def save_checkpoint(self, name: str = "last.pt", kind: str = "last") -> Path | None:
        """Write a checkpoint atomically (rank 0); every rank contributes its RNG state."""
        rngs = gather_objects(self._capture_rng())
        if not self.write or self.output_dir is None:
            return None
        state = self.state_dict(kind)
        state["rng"] = rngs
        path = atomic_torch_save(state, self.output_dir / name)
        if name == "last.pt":
            self.last_checkpoint = path
            self.checkpoint_step = self.global_step
        return path

    def load_state(self, ckpt: dict, path: str | os.PathLike = "<checkpoint>") -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint`."""
        load_model_state(self.model, ckpt["model"], path)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch = int(ckpt["epoch"])
        self.step_in_epoch = int(ckpt["step_in_epoch"])
        self.global_step = int(ckpt["global_step"])
        self.stats = dict(ckpt.get("stats") or {})
        self.history = list(ckpt.get("history") or [])
        self.best = ckpt.get("best")
        rngs = ckpt.get("rng") or []
        if rngs:
            rank = get_rank()
            self._restore_rng(rngs[rank] if rank < len(rngs) else rngs[0])

    def resume(self, path: str | os.PathLike | None = None) -> bool:
        """Continue from ``path`` (default ``<output_dir>/last.pt``); False when there is none."""
        path = Path(path) if path is not None else self._path("last.pt")
        if path is None or not path.is_file():
            return False
        ckpt = read_checkpoint(path, map_location=self.device)
        check_same_run(ckpt, self.config, self.model, path)
        self.load_state(ckpt, path)
        self.last_checkpoint = path
        self.checkpoint_step = self.global_step
        self.log(
            f"Resumed from {path}: epoch {self.epoch + 1}, step {self.step_in_epoch}/{self.steps_per_epoch} "
            f"(global step {self.global_step})."
        )
        return True

    # --------------------------------------------------------------- helpers

    def log(self, message: str) -> None:
        if is_main_process():
            tqdm.write(f"[cirlib] {message}")

    def _autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def write_metrics(self, status: str, test: dict | None = None, extra: dict | None = None) -> Path | None:
        if not self.write or self.output_dir is None:
            return None
        payload = {
            "name": self.config.name,
            "status": status,
            "epochs_completed": self.epoch,
            "global_step": self.global_step,
            "device": str(self.device),
            "world_size": get_world_size(),
            "best": self.best,
            "history": self.history,
            "test": test,
        }
        if extra:
            payload.update(extra)
        return atomic_write_json(self.output_dir / "metrics.json", payload)

    def _start_epoch(self) -> None:
        dataset = base_dataset(self.train_loader.dataset)
        if hasattr(dataset, "set_epoch"):  # per-item augmentation seeds (real datasets)
            dataset.set_epoch(self.epoch)
        if isinstance(self.sampler, ResumableDistributedSampler):
            self.sampler.set_epoch(self.epoch)
            self.sampler.set_start(self.step_in_epoch * self.train_loader.batch_size)
        elif hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self.epoch)
        if self.train_loader.generator is not None:
            self.train_loader.generator.manual_seed(self.config.seed * 100003 + self.epoch)

    def _check_finite(self, loss: torch.Tensor) -> None:
        """Stop on a non-finite loss (any rank) before the step changes the weights; the same all-reduce
        tells every rank whether any has a deferred Ctrl-C / SIGTERM (acted on at the next step)."""
        bad = 0.0 if bool(torch.isfinite(loss.detach()).all()) else 1.0
        stop = 1.0 if self.signals.pending is not None else 0.0
        flags = all_reduce_sum(torch.tensor([bad, stop], device=self.device)).tolist()
        self._stop_agreed = flags[1] > 0
        if flags[0] == 0.0:
            return
        where = (
            f"epoch {self.epoch + 1}, step {self.step_in_epoch + 1}/{self.steps_per_epoch} "
            f"(global step {self.global_step + 1})"
        )
        if self.last_checkpoint is not None:
            kept = f"The last good checkpoint, {self.last_checkpoint}, is kept unchanged."
        else:
            kept = "No checkpoint had been written yet."
        message = (
            f"Training stopped: the loss became {float(loss.detach().float())} at {where}. {kept} "
            "Try a lower train.lr, train.amp=none, or check the inputs for NaN; `--resume` continues "
            "from the last checkpoint."
        )
        self.write_metrics("stopped: non-finite loss", extra={"error": message})
        raise NonFiniteLossError(message)

    def _stop_for_signal(self) -> None:
        """A deferred Ctrl-C / SIGTERM: checkpoint this step boundary, then raise :class:`Interrupted`."""
        signum = self.signals.pending if self.signals.pending is not None else 2
        self.log(f"{Interrupted(signum).name}: stopping at epoch {self.epoch + 1}, step "
                 f"{self.step_in_epoch}/{self.steps_per_epoch}; writing last.pt.")
        raise Interrupted(signum)

    def _save_interrupted(self) -> None:
        """After an interruption between steps: ``last.pt`` of this step (unless it holds it already) and
        ``metrics.json`` saying ``"interrupted"``."""
        if self.global_step != self.checkpoint_step:
            self.save_checkpoint("last.pt", kind="mid-epoch" if self.step_in_epoch else "epoch")
        self.write_metrics("interrupted")

    def stop_on_signals(self) -> StopSignals:
        """The context in which Ctrl-C and SIGTERM stop this run cleanly (see :mod:`cirlib.engine.signals`)."""
        return self.signals

    def epoch_start_lr(self) -> float:
        """The learning rate of the current epoch's first step: what ``metrics.json`` records per epoch,
        the same after a resume mid-epoch: the per-step schedule at the epoch's first step,
        ``base_lr * factor(epoch * steps_per_epoch)`` (see :func:`cirlib.engine.builders.build_scheduler`)."""
        lambdas = getattr(self.scheduler, "lr_lambdas", None)
        if lambdas:
            return self.scheduler.base_lrs[0] * lambdas[0](self.epoch * self.steps_per_epoch)
        return self.optimizer.param_groups[0]["lr"]

    # --------------------------------------------------------------- training

    def train_one_epoch(self) -> dict:
        """Train on the rest of the current epoch; returns the epoch's statistics (all ranks)."""
        self.model.train()
        self._start_epoch()
        every = self.tcfg.checkpoint_every_steps
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.step_in_epoch,
            desc=f"epoch {self.epoch + 1}/{self.tcfg.epochs}",
            leave=False,
            disable=progress_disabled(self.progress),
        )
        with self.signals.deferred(), batches(self.train_loader) as loader:
            for batch in loader:
                self._train_step(batch, bar, every)
        bar.close()
        return self._epoch_stats()

    def _train_step(self, batch: dict, bar, every: int) -> None:
        """One optimisation step. A deferred Ctrl-C / SIGTERM stops the run here, before the forward pass
        touches anything (BatchNorm statistics, random streams), so ``last.pt`` is exactly this step
        boundary. Under DDP every rank stops at the same step: the flag travels with the all-reduce of
        :meth:`_check_finite`, so a signal is acted on one step later there."""
        if self._stop_agreed or (not is_distributed() and self.signals.pending is not None):
            self._stop_for_signal()
        self._in_step = True
        images = batch["image"].to(self.device, non_blocking=True)
        labels = torch.as_tensor(batch["label"]).to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        boxes = None
        if self.needs_boxes:  # only models that say so get the GT boxes (see WSOLModel.needs_boxes)
            boxes = [torch.as_tensor(b, dtype=torch.float32).to(self.device) for b in batch["boxes"]]
        with self._autocast():
            out = self.loss_module(images, labels, boxes)
        loss = out["loss"]
        self._check_finite(loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step_in_epoch += 1
        self.global_step += 1
        self._accumulate(out, labels)
        if (self.step_in_epoch % self.tcfg.log_every == 0) or self.step_in_epoch == self.steps_per_epoch:
            bar.set_postfix(loss=f"{self.stats['loss_sum'] / max(1, self.stats['n']):.4f}")
        bar.update(1)
        if every and self.global_step % every == 0 and self.step_in_epoch < self.steps_per_epoch:
            self.save_checkpoint("last.pt", kind="mid-epoch")
        self._in_step = False

    def _accumulate(self, out: dict, labels: torch.Tensor) -> None:
        n = int(labels.shape[0])
        s = self.stats
        s["n"] = s.get("n", 0.0) + n
        s["loss_sum"] = s.get("loss_sum", 0.0) + float(out["loss"].detach().float()) * n
        logits = out.get("logits")
        if logits is not None:
            s["correct"] = s.get("correct", 0.0) + float((logits.detach().argmax(1) == labels).sum())
        for key, value in out.items():
            if key in ("loss", "logits"):
                continue
            if isinstance(value, torch.Tensor):
                if value.numel() != 1:
                    continue
                value = float(value.detach().float())
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                s[f"sum:{key}"] = s.get(f"sum:{key}", 0.0) + float(value) * n

    def _epoch_stats(self) -> dict:
        keys = sorted(self.stats)
        totals = torch.tensor([self.stats[k] for k in keys], dtype=torch.float64)
        if is_distributed():
            totals = all_reduce_sum(totals.to(self.device)).cpu()
        agg = dict(zip(keys, totals.tolist()))
        n = max(1.0, agg.get("n", 0.0))
        out = {"loss": agg.get("loss_sum", 0.0) / n, "images": int(agg.get("n", 0))}
        if "correct" in agg:
            out["top1"] = 100.0 * agg["correct"] / n
        for key, value in agg.items():
            if key.startswith("sum:"):
                out[key[4:]] = value / n
        return out

    def _sync_from_rank0(self) -> None:
        """Give every rank rank 0's weights *and buffers*.

        DDP broadcasts buffers at the start of each forward, so after the last training step each
        rank still holds the BatchNorm running statistics of its own last batch; a sharded
        evaluation must use rank 0's (the ones saved in the checkpoint).
        """
        if not is_distributed():
            return
        with torch.no_grad():
            for tensor in list(self.model.parameters()) + list(self.model.buffers()):
                torch.distributed.broadcast(tensor.data, src=0)

    def evaluate(self, loader, desc: str = "eval") -> dict:
        """Evaluate the current model on ``loader`` (see :func:`evaluate_model`)."""
        self._sync_from_rank0()
        return evaluate_model(
            self.model,
            loader,
            device=self.device,
            iou_thresholds=tuple(self.config.eval.iou_thresholds),
            cam_interval=self.config.eval.cam_interval,
            amp=self.amp,
            channels_last=self.channels_last,
            progress=self.progress,
            desc=desc,
        )

    def fit(self, resume: bool = False, final_status: str = "completed") -> RunResult:
        """Train for ``train.epochs`` epochs (from the last checkpoint with ``resume=True``).

        With ``resume=True`` the checkpoint is checked against this run's config first, every key
        but ``device`` and ``output_dir`` (:func:`cirlib.engine.checkpoint.check_same_run`); nothing,
        ``config.yaml`` included, is written before that check passes. ``final_status`` is what
        ``metrics.json`` says at the end (:func:`fit` passes ``"evaluating"`` and writes
        ``"completed"`` once the test split is scored).

        Ctrl-C and SIGTERM stop the run at the next step boundary: ``last.pt`` is written there,
        ``metrics.json`` says ``"interrupted"`` and :class:`cirlib.engine.signals.Interrupted` (a
        ``KeyboardInterrupt``) is raised; ``--resume`` continues exactly from that step.
        """
        if resume and not self.resume():
            self.log(f"resume asked for but there is no checkpoint in {self.output_dir}; starting from scratch.")
        if self.write and self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.output_dir / "config.yaml")
        barrier()
        with self.signals:
            try:
                self._train_epochs()
            except KeyboardInterrupt:
                if not self._in_step:  # a state between steps: worth a checkpoint
                    self._save_interrupted()
                else:
                    self.write_metrics("interrupted")
                raise
        self.save_checkpoint("final.pt", kind="final")
        path = self.write_metrics(final_status)
        return RunResult(
            output_dir=self.output_dir, history=self.history, best=self.best, metrics_path=path, model=self.model
        )

    def _train_epochs(self) -> None:
        while self.epoch < self.tcfg.epochs:
            start = time.perf_counter()
            lr = self.epoch_start_lr()
            train_stats = self.train_one_epoch()
            entry: dict[str, Any] = {"epoch": self.epoch + 1, "lr": lr, "train": train_stats}
            evaluate_now = (
                self.val_loader is not None
                and self.tcfg.eval_every > 0
                and ((self.epoch + 1) % self.tcfg.eval_every == 0 or self.epoch + 1 == self.tcfg.epochs)
            )
            if evaluate_now:
                entry["val"] = self.evaluate(self.val_loader, desc="val")
            entry["time_s"] = time.perf_counter() - start
            self.history.append(entry)
            self.epoch += 1
            self.step_in_epoch = 0
            self.stats = {}
            improved = False
            if "val" in entry:
                metric = self.config.eval.best_metric
                value = entry["val"].get(metric)
                if value is not None and (self.best is None or value > self.best["value"]):
                    self.best = {"metric": metric, "value": value, "epoch": self.epoch}
                    improved = True
            self.save_checkpoint("last.pt", kind="epoch")
            if improved:
                self.save_checkpoint("best.pt", kind="best")
            self.write_metrics("running")
            msg = f"epoch {self.epoch}/{self.tcfg.epochs}: loss {train_stats['loss']:.4f}"
            if "top1" in train_stats:
                msg += f", train top-1 {train_stats['top1']:.1f}"
            if "val" in entry:
                val = entry["val"]
                msg += f", val top-1 {val['top1']:.1f}, MaxBoxAccV2 {val.get('maxboxacc_v2', float('nan')):.1f}"
            self.log(msg)
            # A signal during the epoch's last step was deferred past the loop: stop here (all ranks).
            pending = 1.0 if self.signals.pending is not None else 0.0
            if float(all_reduce_sum(torch.tensor([pending], device=self.device)).item()) > 0:
                self._stop_for_signal()
