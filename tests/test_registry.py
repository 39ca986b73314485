"""The method registry is the one list of methods: every consumer reads it, no module restates it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cirlib
from cirlib.methods import registry
from cirlib.methods.registry import METHOD_SPECS, MethodSpec, get_spec

PACKAGE = Path(cirlib.__file__).parent


def test_the_table_is_consistent():
    names = [spec.name for spec in METHOD_SPECS]
    assert len(set(names)) == len(names) and registry.METHODS == tuple(names)
    assert registry.CHAIN_METHODS == ("cam", "has", "complementary", "caam", "ssam", "full")
    assert registry.RESULTS_METHODS == registry.CHAIN_METHODS + ("literal", "acol", "adl", "cutmix", "fewshot")
    assert get_spec("fewshot").needs_boxes and not any(get_spec(m).needs_boxes for m in registry.CHAIN_METHODS)
    for spec in METHOD_SPECS:
        cls = spec.model_class()  # every row imports
        assert isinstance(cls, type) and spec.description
        assert spec.relative_cost is None or spec.relative_cost >= 1.0
    assert get_spec("cam").relative_cost == 1.0  # the unit
    with pytest.raises(ValueError, match="did you mean 'acol'"):
        get_spec("acoll")
    with pytest.raises(TypeError):
        get_spec("full").presets["use_caam"] = False  # frozen: nobody edits a preset in place


def test_imported_lists_are_the_registrys():
    import inspect

    import cirlib.methods as methods
    import cirlib.runs.experiments as experiments
    from cirlib.runs.results import run_results, write_synthetic_configs

    assert methods.METHODS is registry.METHODS and methods.METHOD_SPECS is registry.METHOD_SPECS
    for fn in (run_results, write_synthetic_configs):  # make results' rows
        assert inspect.signature(fn).parameters["methods"].default is registry.RESULTS_METHODS
    assert experiments.METHODS is registry.METHODS and experiments.RESULTS_METHODS is registry.RESULTS_METHODS
    rows = [c.model.method for c in experiments.demo_configs()][:len(registry.RESULTS_METHODS)]
    assert rows == list(registry.RESULTS_METHODS)  # make demo trains every row the notebooks show


@pytest.fixture
def dummy_method(monkeypatch):
    """A registry with one more method, ``dummy`` (a CAM model with its own description)."""
    spec = MethodSpec("dummy", "cirlib.methods.cam:CAMModel", "a dummy method for the registry test",
                      relative_cost=3.0, chain=True, in_results=True)
    specs = (*METHOD_SPECS, spec)
    monkeypatch.setattr(registry, "METHOD_SPECS", specs)
    monkeypatch.setattr(registry, "_BY_NAME", {s.name: s for s in specs})
    monkeypatch.setattr(registry, "METHODS", tuple(s.name for s in specs))
    import cirlib.methods as methods

    monkeypatch.setattr(methods, "METHOD_SPECS", specs)
    monkeypatch.setattr(methods, "METHODS", registry.METHODS)
    return spec


def test_a_registered_method_reaches_every_call_time_consumer(dummy_method, tmp_path):
    from cirlib.cli import build_parser
    from cirlib.config import config_from_dict
    from cirlib.runs.experiments import CAM_DEMO_EPOCH_SECONDS, estimate_train_seconds
    from cirlib.methods import build_model, describe_methods, resolve_model_options

    assert "dummy  " in describe_methods() and dummy_method.description in describe_methods()
    model = build_model("dummy", num_classes=3, width=4)
    assert model.method == "dummy" and model.resolved_options == resolve_model_options("dummy", width=4)
    config = config_from_dict({"model": {"method": "dummy"}})  # config validation accepts it
    assert config.model.method == "dummy"
    config.data.image_size, config.model.options, config.device = 64, {"width": 16}, "cpu"
    config.data.train_limit, config.train.epochs = 2000, 1
    assert estimate_train_seconds(config, tmp_path / "none.json") == pytest.approx(3.0 * CAM_DEMO_EPOCH_SECONDS)
    train_help = build_parser()._subparsers._group_actions[0].choices["train"].format_help()  # noqa: SLF001
    assert dummy_method.description in " ".join(train_help.split())


def _literal_strings(node: ast.AST) -> list[str] | None:
    elements = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
    if elements is None or not all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elements):
        return None
    return [e.value for e in elements]


def test_no_other_module_restates_the_method_list():
    """No tuple, list, set or dict literal outside the registry names three or more methods."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "registry.py" and path.parent.name == "methods":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
                strings = _literal_strings(node)
                if strings and len(set(strings) & set(registry.METHODS)) >= 3:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == [], f"method lists outside cirlib/methods/registry.py: {offenders}"


def test_the_grep_test_would_catch_a_restated_list(tmp_path):
    tree = ast.parse('METHODS = ("cam", "has", "full")\nCOST = {"cam": 1, "has": 1, "caam": 2}\n')
    found = [n for n in ast.walk(tree) if isinstance(n, (ast.Tuple, ast.Dict))
             and len(set(_literal_strings(n) or ()) & set(registry.METHODS)) >= 3]
    assert len(found) == 2


def test_presets_only_state_what_differs_from_the_class_defaults():
    import inspect

    for spec in METHOD_SPECS:
        params = inspect.signature(spec.model_class().__init__).parameters
        for key, value in spec.presets.items():
            assert params[key].default != value, f"{spec.name}: preset {key}={value!r} restates the default"


def test_module_defaults_are_the_models_defaults():
    from cirlib.methods.complementary import ComplementaryModel
    from cirlib.models.attention import ChannelAssistedAttention, SpatialSelfAttention
    from cirlib.models.backbones import build_backbone

    model = ComplementaryModel(build_backbone("small_cnn", width=4), 3, use_caam=True, use_ssam=True)
    assert model.caam.scale == ChannelAssistedAttention().scale == model.attention_scale
    assert model.ssam.scale == SpatialSelfAttention(8).scale and model.ssam.mode == SpatialSelfAttention(8).mode
