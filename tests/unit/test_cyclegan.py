"""The CycleGAN of Lesson 12: the generator and PatchGAN's shapes, the losses, the image pool, the synthetic
domains, the settings and the job runner."""
from __future__ import annotations

import io

import pytest
import torch
from PIL import Image
from torch import nn

from core.data.domains import folder_pair, synthetic_pair
from core.errors import RunCancelled, UserError
from core.gan import cyclegan as lab
from core.gan.pool import ImagePool
from core.models.cyclegan import patch_discriminator, receptive_field, resnet_generator
from core.train import DeviceConfig
from tests.unit.conftest import CancelAfter, RecordingContext

TINY = {"preset": "quick", "size": 16, "blocks": 1, "width": 4, "steps": 3, "batch_size": 2, "pool_size": 2,
        "seed": 0}


# ----- the networks --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 64])
def test_the_generator_keeps_the_pictures_size(size):
    pictures = torch.randn(2, 3, size, size)
    output = resnet_generator(width=4, n_blocks=1)(pictures)
    assert output.shape == pictures.shape and output.abs().max() <= 1


def test_the_generator_refuses_a_size_it_cannot_restore():
    with pytest.raises(ValueError, match="multiples of 4"):
        resnet_generator(width=4, n_blocks=1)(torch.randn(1, 3, 30, 30))


@pytest.mark.parametrize("size, grid", [(32, 2), (64, 6)])
def test_the_patchgan_scores_a_grid_of_patches(size, grid):
    assert patch_discriminator(width=4)(torch.randn(2, 3, size, size)).shape == (2, 1, grid, grid)


def test_each_patchgan_score_sees_70_pixels():
    assert receptive_field(3) == 70
    assert receptive_field(1) == 16  # pix2pix's 16×16 PatchGAN


def test_pictures_under_24_px_get_a_shallower_patchgan_that_still_fits():
    assert [lab.discriminator_layers(size) for size in (16, 20, 24, 32, 256)] == [2, 2, 3, 3, 3]
    for size in (16, 20, 24):
        patch_discriminator(width=4, n_layers=lab.discriminator_layers(size))(torch.randn(2, 3, size, size))


# ----- the losses ----------------------------------------------------------------------------------------
def test_identity_generators_have_no_cycle_or_identity_loss():
    real_a, real_b = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    assert lab.cycle_loss(real_a, real_b, nn.Identity(), nn.Identity()).item() == 0
    assert lab.identity_loss(real_a, real_b, nn.Identity(), nn.Identity()).item() == 0
    assert lab.cycle_loss(real_a, real_b, nn.Identity(), nn.Tanh()).item() > 0


def test_one_step_changes_all_four_networks():
    spec = lab.spec_from_dict(TINY)
    device = DeviceConfig(torch.device("cpu"))
    gan = lab.build_cyclegan(spec, device)
    networks = {"g_ab": gan.g_ab, "g_ba": gan.g_ba, "d_a": gan.d_a, "d_b": gan.d_b}
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in networks.items()}
    losses = lab.train_step(gan, torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1, spec, device)
    assert set(losses) == set(lab.LOSSES) and all(isinstance(value, float) for value in losses.values())
    for name, net in networks.items():
        assert any(not torch.equal(old, new) for old, new in zip(before[name], net.parameters())), name


# ----- the image pool ------------------------------------------------------------------------------------
def test_the_pool_returns_the_new_fakes_while_it_fills():
    pool = ImagePool(3, torch.Generator().manual_seed(0))
    batch = torch.randn(3, 3, 4, 4, requires_grad=True)
    returned = pool.query(batch)
    assert torch.equal(returned, batch.detach()) and not returned.requires_grad
    assert len(pool.images) == 3 and not any(image.requires_grad for image in pool.images)


def test_a_full_pool_returns_an_old_fake_half_the_time():
    pool = ImagePool(5, torch.Generator().manual_seed(0))
    pool.query(torch.full((5, 1, 2, 2), -1.0))  # fill it: every old fake is below 0, every new one above
    old = sum(bool(pool.query(torch.full((1, 1, 2, 2), float(i + 1)))[0, 0, 0, 0] != i + 1) for i in range(2000))
    assert 0.45 < old / 2000 < 0.55


def test_the_pool_draws_the_same_fakes_for_the_same_seed():
    def draws() -> list[float]:
        pool = ImagePool(2, torch.Generator().manual_seed(7))
        return [float(pool.query(torch.full((1, 1, 1, 1), float(i))).item()) for i in range(30)]
    assert draws() == draws()


def test_a_pool_of_size_0_passes_the_fakes_through():
    batch = torch.randn(2, 3, 4, 4)
    assert ImagePool(0).query(batch) is batch


# ----- the domains ---------------------------------------------------------------------------------------
def test_the_synthetic_pair_is_unpaired_grey_digits_and_coloured_zebra_digits():
    domains = synthetic_pair(size=32, count=50, seed=0)
    assert domains.synthetic and domains.names == ("digits", "zebra digits")
    assert domains.a.shape == domains.b.shape == (50, 3, 32, 32)
    for pictures in (domains.a, domains.b):
        assert pictures.min() >= -1 and pictures.max() <= 1
    assert not set(domains.a_ids.tolist()) & set(domains.b_ids.tolist())
    assert torch.equal(domains.a[:, 0], domains.a[:, 1]) and torch.equal(domains.a[:, 1], domains.a[:, 2])
    assert (domains.b[:, 0] - domains.b[:, 2]).abs().mean() > 0.1  # the savanna is green-brown, not grey
    assert torch.equal(synthetic_pair(size=32, count=50, seed=0).b, domains.b)
    assert synthetic_pair(size=16, count=3).a.shape == (3, 3, 16, 16)


def test_a_missing_or_empty_folder_is_refused_clearly(tmp_path):
    with pytest.raises(UserError, match="missing"):
        folder_pair(tmp_path / "nowhere", 32, 4, 0)
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    (tmp_path / "trainA" / "broken.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (40, 30), (200, 100, 0)).save(tmp_path / "trainA" / "good.jpg")
    with pytest.raises(UserError, match="trainB holds no readable picture"):
        folder_pair(tmp_path, 16, 4, 0)
    Image.new("RGB", (30, 40), (0, 0, 0)).save(tmp_path / "trainB" / "zebra.png")
    domains = folder_pair(tmp_path, 16, 4, 0)
    assert domains.a.shape == domains.b.shape == (1, 3, 16, 16) and not domains.synthetic


# ----- settings ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"lr": -1e-3}, "above 0"), ({"lr": 0.5}, "at most 0.1"), ({"lr": float("nan")}, "must be a number"),
    ({"size": 30}, "multiple of 4"), ({"size": 260}, "between 16 and 256"), ({"source": "cats"}, "Unknown picture"),
    ({"cycle_weight": -1}, "at least 0"), ({"identity_weight": float("inf")}, "at least 0"),
    ({"blocks": 0}, "blocks must be between"), ({"steps": 2.5}, "whole number"), ({"preset": "huge"}, "preset"),
])
def test_settings_that_make_no_sense_are_refused_with_what_to_change(change, message):
    with pytest.raises(UserError, match=message):
        lab.spec_from_dict({**lab.preset_spec("demo").to_dict(), **change})


def test_the_presets_are_valid_and_grow():
    specs = [lab.preset_spec(preset) for preset in lab.PRESETS]
    assert all(lab.validate(spec) for spec in specs)
    assert [lab.size_of_values(spec.to_dict()) for spec in specs] == list(lab.PRESETS)
    lecture = lab.preset_spec("lecture")
    assert (lecture.size, lecture.blocks, lecture.width, lecture.batch_size, lecture.lr) == (256, 9, 64, 1, 2e-4)
    warm = {"cyclegan_seconds_per_step": 0.1}
    assert lab.estimate_seconds(lab.preset_spec("demo"), warm, [], "CPU") == pytest.approx(0.1 * specs[1].steps)
    assert lab.estimate_seconds(lab.preset_spec("demo"), {}, [], "CPU") is None
    assert [run["spec"]["size"] for run in lab.readable_runs([{"spec": TINY}, {"spec": {"size": 3}}])] == [16]


# ----- the runner --------------------------------------------------------------------------------------
def test_a_tiny_run_reports_the_four_losses_pictures_weights_and_a_result():
    context = RecordingContext()
    lab.run_cyclegan(TINY, context)
    rows = context.of("metrics")
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert all(set(lab.LOSSES) <= set(row) and row["total_steps"] == 3 for row in rows)
    samples = context.of("samples")
    assert samples[0]["step"] == 0 and samples[-1]["step"] == 3
    picture = Image.open(io.BytesIO(samples[-1]["png"]))
    assert picture.format == "PNG" and picture.width > 4 * 16 * 4 and picture.height > 6 * 16 * 4
    [weights] = context.of("weights")
    state = torch.load(io.BytesIO(weights["state"]), weights_only=True)
    generator = resnet_generator(width=4, n_blocks=1)
    generator.load_state_dict(state["g_ba"])
    [result] = context.of("result")
    assert result["steps"] == 3 and result["synthetic"] and result["domains"] == ["digits", "zebra digits"]
    assert set(result["final_losses"]) == set(lab.LOSSES) and result["seconds"] > 0 and result["device"]


def test_cancel_stops_the_run_within_a_step():
    context = CancelAfter(1)
    with pytest.raises(RunCancelled):
        lab.run_cyclegan({**TINY, "steps": 50}, context)
    assert len(context.of("metrics")) == 1 and not context.of("result")
