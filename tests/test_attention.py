"""Tests for CAAM (ChannelAssistedAttention) and SSAM (SpatialSelfAttention)."""

from __future__ import annotations

import pytest
import torch

from cirlib.models.attention import (
    ChannelAssistedAttention,
    SpatialSelfAttention,
    bounded_scale,
)

torch.set_num_threads(1)

B, C, H, W = 2, 16, 5, 7


def _features(seed: int = 0, shape=(B, C, H, W)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


def _ssam(mode: str = "additive", scale: str = "linear", seed: int = 0) -> SpatialSelfAttention:
    torch.manual_seed(seed)
    return SpatialSelfAttention(C, mode=mode, scale=scale)


# ----------------------------------------------------------------------------- CAAM


def test_caam_shapes_and_identity_at_init():
    caam = ChannelAssistedAttention(scale="linear")
    f1, f2 = _features(0), _features(1)
    out1, out2, q12, q21 = caam(f1, f2, return_attention=True)
    assert out1.shape == f1.shape and out2.shape == f2.shape
    assert q12.shape == (B, C, C) and q21.shape == (B, C, C)
    assert caam.gamma.item() == 0.0
    torch.testing.assert_close(out1, f1)
    torch.testing.assert_close(out2, f2)


def test_caam_rows_sum_to_one_and_match_formula():
    caam = ChannelAssistedAttention(scale="linear")
    f1, f2 = _features(0), _features(1)
    with torch.no_grad():
        caam.gamma.fill_(0.7)
    out1, out2, q12, q21 = caam(f1, f2, return_attention=True)
    torch.testing.assert_close(q12.sum(-1), torch.ones(B, C))
    torch.testing.assert_close(q21.sum(-1), torch.ones(B, C))
    x, x2 = f1.flatten(2), f2.flatten(2)
    expected_q = torch.softmax(x @ x2.transpose(1, 2), dim=-1)
    torch.testing.assert_close(q12, expected_q)
    torch.testing.assert_close(out1, f1 + 0.7 * (expected_q @ x2).view_as(f1))
    expected_q21 = torch.softmax(x2 @ x.transpose(1, 2), dim=-1)
    torch.testing.assert_close(out2, f2 + 0.7 * (expected_q21 @ x).view_as(f2))


def test_caam_gamma_changes_output_and_receives_gradient():
    caam = ChannelAssistedAttention(scale="linear")
    f1 = _features(0).requires_grad_(True)
    f2 = _features(1).requires_grad_(True)
    out1, out2 = caam(f1, f2)
    (out1.square().sum() + out2.sum()).backward()
    assert caam.gamma.grad is not None and caam.gamma.grad.abs().item() > 0
    assert f1.grad is not None and f2.grad is not None


def test_caam_large_activations_under_bf16_autocast():
    caam = ChannelAssistedAttention(scale="linear")
    with torch.no_grad():
        caam.gamma.fill_(0.5)
    conv = torch.nn.Conv2d(C, C, 1)
    f1, f2 = _features(0) * 1e3, _features(1) * 1e3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g1, g2 = conv(f1), conv(f2)
        assert g1.dtype == torch.bfloat16
        out1, out2, q12, _ = caam(g1, g2, return_attention=True)
    assert out1.dtype == torch.bfloat16
    assert torch.isfinite(out1.float()).all() and torch.isfinite(out2.float()).all()
    assert torch.isfinite(q12).all()
    torch.testing.assert_close(q12.sum(-1), torch.ones(B, C))


def test_caam_fp16_inputs_large_energy_no_overflow():
    # The energy sum_n x_n x2_n = 1e6 * N overflows float16 (max 65504); computed in float32 it does not.
    caam = ChannelAssistedAttention(scale="linear")
    with torch.no_grad():
        caam.gamma.fill_(1.0)
    f1 = (_features(0) * 1e3).half()
    f2 = (_features(1) * 1e3).half()
    out1, out2 = caam(f1, f2)
    assert out1.dtype == torch.float16
    assert torch.isfinite(out1.float()).all() and torch.isfinite(out2.float()).all()


def test_caam_tanh_scale_is_bounded():
    caam = ChannelAssistedAttention(scale="tanh")
    with torch.no_grad():
        caam.gamma.fill_(1.0)
    assert caam.effective_gamma.item() == pytest.approx(torch.tanh(torch.tensor(1.0)).item())
    with torch.no_grad():
        caam.gamma.fill_(1e4)
    assert caam.effective_gamma.item() <= 1.0
    assert float(bounded_scale(torch.tensor(3.0), "linear")) == 3.0
    assert float(bounded_scale(torch.tensor(0.01), "tanh")) == pytest.approx(0.01, rel=1e-3)


def test_caam_rejects_bad_options_and_shapes():
    with pytest.raises(ValueError, match="scale"):
        ChannelAssistedAttention(scale="sigmoid")
    with pytest.raises(ValueError, match="same"):
        ChannelAssistedAttention()(_features(0), _features(1, shape=(B, C, H, W + 1)))


# ----------------------------------------------------------------------------- SSAM


@pytest.mark.parametrize("mode", ["additive", "gate"])
def test_ssam_shapes_identity_at_init_and_rows_sum_to_one(mode):
    ssam = _ssam(mode)
    x = _features(0)
    out, s = ssam(x, return_attention=True)
    assert out.shape == x.shape
    assert s.shape == (B, H * W, H * W)
    assert ssam.beta.item() == 0.0
    torch.testing.assert_close(out, x)
    torch.testing.assert_close(s.sum(-1), torch.ones(B, H * W))
    assert ssam.query.out_channels == C // 8 and ssam.key.out_channels == C // 8


def test_ssam_additive_matches_formula():
    ssam = _ssam("additive")
    with torch.no_grad():
        ssam.beta.fill_(0.3)
    x = _features(0)
    out, s = ssam(x, return_attention=True)
    q = ssam.query(x).flatten(2)
    k = ssam.key(x).flatten(2)
    v = ssam.value(x).flatten(2)
    expected_s = torch.softmax(q.transpose(1, 2) @ k, dim=-1)
    torch.testing.assert_close(s, expected_s)
    torch.testing.assert_close(out, x + 0.3 * (v @ expected_s.transpose(1, 2)).view_as(x))


def test_ssam_gate_keeps_locality():
    # In gate mode each output position is its own input feature times a scalar gate.
    ssam = _ssam("gate")
    with torch.no_grad():
        ssam.beta.fill_(1.0)
    x = _features(0)
    out = ssam(x)
    ratio = out / x
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))  # same gate for every channel
    assert ssam.value is None


@pytest.mark.parametrize("mode", ["additive", "gate"])
def test_ssam_gradients_reach_beta_and_convs(mode):
    ssam = _ssam(mode)
    x = _features(0).requires_grad_(True)
    ssam(x).square().sum().backward()
    assert ssam.beta.grad is not None and ssam.beta.grad.abs().item() > 0
    # With beta = 0 the convs get no gradient yet (the term is multiplied by beta): step once.
    with torch.no_grad():
        ssam.beta.fill_(0.5)
    ssam.zero_grad()
    ssam(x).square().sum().backward()
    convs = [ssam.query, ssam.key] + ([ssam.value] if mode == "additive" else [])
    for conv in convs:
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum().item() > 0


@pytest.mark.parametrize("mode", ["additive", "gate"])
def test_ssam_equivariant_to_permuting_positions(mode):
    ssam = _ssam(mode)
    with torch.no_grad():
        ssam.beta.fill_(0.8)
    x = _features(0)
    n = H * W
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(3))
    x_perm = x.flatten(2)[:, :, perm].view_as(x)
    out, s = ssam(x, return_attention=True)
    out_perm, s_perm = ssam(x_perm, return_attention=True)
    torch.testing.assert_close(out_perm.flatten(2), out.flatten(2)[:, :, perm])
    torch.testing.assert_close(s_perm, s[:, perm][:, :, perm])


@pytest.mark.parametrize("mode", ["additive", "gate"])
def test_ssam_large_activations_under_bf16_autocast(mode):
    ssam = _ssam(mode)
    with torch.no_grad():
        ssam.beta.fill_(0.5)
    x = _features(0) * 1e3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, s = ssam(x.bfloat16(), return_attention=True)
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out.float()).all()
    assert torch.isfinite(s).all()
    torch.testing.assert_close(s.sum(-1), torch.ones(B, H * W))


def test_ssam_bad_input():
    ssam = _ssam()
    with pytest.raises(ValueError, match="channels"):
        ssam(_features(0, shape=(B, C + 1, H, W)))
    with pytest.raises(ValueError, match="mode"):
        SpatialSelfAttention(C, mode="local")


def test_ssam_tanh_scale_is_bounded():
    ssam = SpatialSelfAttention(C, scale="tanh")
    with torch.no_grad():
        ssam.beta.fill_(-3.0)
    assert -1.0 < ssam.effective_beta.item() < -0.99
