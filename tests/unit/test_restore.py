"""The restoration lab (Lesson 7): the crappifier, the U-Net and its identity start, the critic, the feature loss,
one step of each stage lowering its loss, the GAN switcher, the job with its rows, triptychs, weights and Cancel,
a user's photo folder, the held-out photos, bad specs refused with a reason, a restored photo, the architecture
table and the code panel's snippets."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.nn.utils import parametrize
from torchvision.models import MobileNet_V2_Weights

from core import snippets
from core.errors import RunCancelled, UserError
from core.models.restore_critic import blocks_for, gan_critic
from core.models.unet import UPSAMPLERS, unet
from core.vision import backbone as backbones
from core.train import DeviceConfig
from core.vision import images, restore, restore_data
from core.vision.crappify import Recipe, crappify
from core.vision.feature_loss import FeatureLoss
from core.vision.restore import (AdaptiveSwitcher, architecture_table, critic_loss, generator_loss, preset_spec,
                                 restore_photo, run_restore, spec_from_dict, trained_unet, validate)
from tests.unit.conftest import CancelAfter, RecordingContext

CROP = 32
TINY_RUN = {"encoder": "mobilenet_v2", "feature_backbone": "mobilenet_v2", "train_crops": 8, "valid_crops": 4,
            "batch_size": 4, "mse_steps": 2, "feature_steps": 1, "critic_steps": 1, "gan_steps": 1}


def tiny_spec(**changes):
    return preset_spec("quick", **{**TINY_RUN, **changes})


def small_critic() -> nn.Sequential:
    return gan_critic(width=8, blocks=blocks_for(CROP), dropout=0.0)


def save_pictures(folder, count: int, seed: int = 0) -> None:
    folder.mkdir(parents=True)
    draw = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(draw.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(folder / f"photo_{i}.png")


@pytest.fixture(scope="module")
def pairs() -> restore_data.Pairs:
    """Four (crappy, original) crops of two shipped training photos: a tiny fixed batch."""
    training, _ = restore_data.split(restore_data.photo_files(restore_data.SHIPPED))
    return restore_data.make_pairs(training[:2], CROP, 4, Recipe(), 0.75, seed=0)


@pytest.fixture(scope="module")
def net() -> backbones.Backbone:
    return backbones.load("mobilenet_v2")


@pytest.fixture(scope="module")
def untrained() -> nn.Module:
    """An untrained U-Net for the tests that only look at it (a build costs about a second)."""
    return unet("mobilenet_v2")


@pytest.fixture(scope="module")
def tiny_run() -> tuple[dict, RecordingContext]:
    values, context = tiny_spec().to_dict(), RecordingContext()
    run_restore(values, context)
    return values, context


# ----- the crappifier ---------------------------------------------------------------------------------------
def test_crappify_gives_the_same_picture_again_for_a_seed_and_another_for_another_seed():
    photo = images.load_picture("coffee")
    first, again, other = crappify(photo, seed=3), crappify(photo, seed=3), crappify(photo, seed=4)
    assert (first.quality, first.position, first.jpeg_bytes) == (again.quality, again.position, again.jpeg_bytes)
    assert np.array_equal(np.asarray(first.picture), np.asarray(again.picture))
    assert (first.quality, first.position) != (other.quality, other.position)


def test_crappify_shrinks_the_short_side_keeps_the_aspect_and_draws_the_quality_in_range():
    photo = images.load_picture("coffee")  # 600 × 400
    recipe = Recipe(short_side=48, quality_low=20, quality_high=30)
    for seed in range(8):
        crappy = crappify(photo, recipe, seed)
        assert crappy.picture.size == (72, 48)
        assert 20 <= crappy.quality <= 30
        x, y = crappy.position
        assert 0 <= x <= 72 // 2 and 0 <= y <= 48 // 2  # the top-left quarter


def test_without_the_number_there_is_no_position_and_nothing_written():
    photo = images.load_picture("coffee")
    plain, numbered = crappify(photo, Recipe(number=False), 5), crappify(photo, Recipe(), 5)
    assert plain.position is None and plain.quality == numbered.quality
    assert not np.array_equal(np.asarray(plain.picture), np.asarray(numbered.picture))


@pytest.mark.parametrize("recipe, key", [(Recipe(quality_low=70, quality_high=10), "crappify.quality_order"),
                                         (Recipe(short_side=0), "spec.range")])
def test_a_bad_recipe_is_refused_with_a_reason(recipe, key):
    with pytest.raises(UserError) as refused:
        crappify(images.load_picture("coffee"), recipe)
    assert refused.value.key == key


# ----- the U-Net --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("upsample", UPSAMPLERS)
def test_the_unet_returns_pictures_of_its_input_size_even_odd_ones(upsample):
    model = unet("random", upsample).eval()  # shapes do not depend on the weights
    with torch.no_grad():
        for height, width in ((64, 64), (37, 50)):
            assert model(torch.rand(1, 3, height, width)).shape == (1, 3, height, width)


def test_the_untrained_unet_returns_its_input(pairs, untrained):
    with torch.no_grad():
        for mode in (True, False):
            # the logit's eps=1e-3 clamps the darkest and brightest values by up to 1e-3
            assert torch.allclose(untrained.train(mode)(pairs.crappy), pairs.crappy, atol=1.1e-3)


def test_a_frozen_encoder_neither_learns_nor_leaves_eval_mode():
    model = unet("random", frozen=True).train()
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert not any(m.training for m in model.encoder.modules())
    assert all(p.requires_grad for p in model.blocks.parameters()) and model.blocks.training
    model.freeze_encoder(False)
    assert all(p.requires_grad for p in model.encoder.parameters())
    assert all(m.training for m in model.encoder.modules())


# ----- the critic and the feature loss ----------------------------------------------------------------------
def test_the_critic_has_spectral_norm_on_every_conv_and_no_batchnorm():
    critic = gan_critic(width=16, blocks=blocks_for(64))
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) >= 5 and all(parametrize.is_parametrized(conv, "weight") for conv in convs)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())


@pytest.mark.parametrize("size, patches", [(32, 1), (64, 1), (128, 5 * 5)])
def test_the_critic_gives_one_logit_per_patch_a_single_one_up_to_64_px(size, patches):
    critic = gan_critic(width=8, blocks=blocks_for(size)).eval()
    with torch.no_grad():
        assert critic(torch.rand(2, 3, size, size)).shape == (2, patches)


def test_the_feature_loss_is_zero_for_the_same_picture_and_grows_with_noise(net):
    picture = images.square_tensor("chelsea", 64)
    noise = torch.randn(picture.shape, generator=torch.Generator().manual_seed(0))
    loss = FeatureLoss(net)
    with torch.no_grad():
        assert loss(picture, picture).item() == pytest.approx(0.0, abs=1e-6)
        slight = loss((picture + 0.05 * noise).clamp(0, 1), picture).item()
        slight_parts = dict(loss.parts)
        strong = loss((picture + 0.2 * noise).clamp(0, 1), picture).item()
    assert 0 < slight < strong
    assert set(slight_parts) == {"pixel", "features", "gram"} and all(v > 0 for v in slight_parts.values())
    assert sum(loss.parts.values()) == pytest.approx(strong, rel=1e-4)
    assert loss.parts["features"] > slight_parts["features"]


# ----- one step of each stage -----------------------------------------------------------------------------------
def loss_around_a_step(loss_of, parameters, lr: float = 1e-3) -> tuple[float, float]:
    """(loss before, loss after) one Adam step on the same batch."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    with torch.no_grad():
        before = loss_of().item()
    loss_of().backward()
    optimizer.step()
    with torch.no_grad():
        return before, loss_of().item()


def trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def test_an_mse_step_lowers_the_mse(pairs):
    torch.manual_seed(0)
    model = unet("mobilenet_v2").train()
    before, after = loss_around_a_step(lambda: F.mse_loss(model(pairs.crappy), pairs.original), trainable(model))
    assert after < before, (before, after)


def test_a_feature_loss_step_lowers_the_feature_loss(pairs, net):
    torch.manual_seed(0)
    model, loss = unet("mobilenet_v2").train(), FeatureLoss(net)
    before, after = loss_around_a_step(lambda: loss(model(pairs.crappy), pairs.original), trainable(model))
    assert after < before, (before, after)


def test_a_critic_step_lowers_the_critic_loss(pairs, untrained):
    torch.manual_seed(0)
    critic = small_critic().eval()  # in train mode each forward also moves spectral norm's power iteration
    with torch.no_grad():
        restored = untrained.eval()(pairs.crappy)
    before, after = loss_around_a_step(lambda: critic_loss(critic, pairs.original, restored), critic.parameters())
    assert after < before, (before, after)


def test_a_generator_step_lowers_the_generator_loss(pairs):
    torch.manual_seed(0)
    model, critic = unet("mobilenet_v2").train(), small_critic().eval()
    before, after = loss_around_a_step(lambda: generator_loss(critic, model(pairs.crappy), pairs.original)[0],
                                       trainable(model))
    assert after < before, (before, after)


# ----- the switcher -------------------------------------------------------------------------------------------
def test_the_switcher_hands_over_after_each_generator_step_and_back_under_the_critic_threshold():
    switcher = AdaptiveSwitcher()
    assert switcher.training == "generator"
    assert switcher.after_step(100.0) == "critic"  # no generator threshold: always
    assert switcher.after_step(0.66) == "critic"
    assert switcher.after_step(0.65) == "critic"  # strictly under the threshold, as fastai's
    assert switcher.after_step(0.649) == "generator"
    assert switcher.after_step(0.0) == "critic"


# ----- the job ------------------------------------------------------------------------------------------------
def test_a_tiny_run_numbers_its_rows_and_goes_through_the_stages_in_order(tiny_run):
    _, context = tiny_run
    rows = context.of("metrics")
    total = 2 + 1 + 1 + 1
    assert [row["step"] for row in rows] == list(range(total + 1))
    assert all(row["total_steps"] == total for row in rows)
    assert [row["stage"] for row in rows] == ["bicubic", "mse", "mse", "feature", "gan", "gan"]
    critic_alone, turn = rows[4:]
    assert "critic" in critic_alone and "training" not in critic_alone
    assert "generator" in turn and turn["training"] == "generator"


def test_each_stage_ends_with_a_quality_check_that_the_result_repeats(tiny_run):
    _, context = tiny_run
    rows, result = context.of("metrics"), context.of("result")[0]
    assert {"psnr", "ssim"} <= set(result["bicubic"])
    assert result["bicubic"]["psnr"] == rows[0]["psnr"]
    assert set(result["stages"]) == {"mse", "feature", "gan"}
    for stage in ("mse", "feature", "gan"):
        last = [row for row in rows if row["stage"] == stage][-1]
        assert result["stages"][stage] == {"psnr": last["psnr"], "ssim": last["ssim"]}
        assert 10 < last["psnr"] < 60 and 0 < last["ssim"] <= 1
    assert result["train_photos"] > result["valid_photos"] == 3


def test_the_triptychs_are_pngs_three_crops_wide(tiny_run):
    _, context = tiny_run
    frames = context.of("samples")
    assert frames
    scale, cell = 128 // CROP, CROP + 2  # enlarged to about 128 px a crop; make_grid pads 2 px around each
    for frame in frames:
        picture = Image.open(io.BytesIO(frame["png"]))
        assert picture.format == "PNG"
        assert picture.size == (scale * (3 * cell + 2), scale * (4 * cell + 2))  # 4 held-out crops, 3 columns


def test_the_run_weights_load_back_trained_with_the_encoder_untouched(tiny_run, net):
    values, context = tiny_run
    model = trained_unet(values, context.of("weights")[0]["state"])
    assert model is not None
    assert model.head[-1].weight.abs().sum() > 0  # it started at zero
    encoder = [value for stage in model.encoder for value in stage.state_dict().values()]
    imagenet = list(net.features.state_dict().values())
    assert len(encoder) == len(imagenet) and all(torch.equal(a, b) for a, b in zip(encoder, imagenet))


def test_the_gpu_path_mixed_precision_and_channels_last_runs_every_stage(monkeypatch):
    """What a GPU gets (autocast, channels_last, a GradScaler per optimizer), tried on the CPU with bfloat16."""
    gpu_like = DeviceConfig(torch.device("cpu"), amp_dtype=torch.bfloat16, channels_last=True)
    monkeypatch.setattr(restore.DeviceConfig, "auto", classmethod(lambda cls: gpu_like))
    context = RecordingContext()
    run_restore(tiny_spec().to_dict(), context)
    rows = context.of("metrics")
    assert rows[-1]["stage"] == "gan" and all(np.isfinite(row.get("psnr", 0)) for row in rows)
    assert set(context.of("result")[0]["stages"]) == {"mse", "feature", "gan"}


@pytest.mark.parametrize("changes, stage", [({}, "mse"), ({"mse_steps": 0, "feature_steps": 0}, "gan")])
def test_cancel_stops_the_run_before_its_next_step(changes, stage):
    context = CancelAfter(2)  # the bicubic row and one step's
    with pytest.raises(RunCancelled):
        run_restore(tiny_spec(**changes).to_dict(), context)
    assert [row["stage"] for row in context.of("metrics")] == ["bicubic", stage]
    assert not context.of("weights") and not context.of("result")


# ----- photos -------------------------------------------------------------------------------------------------
def test_a_folder_of_my_photos_is_listed_accepted_and_a_broken_file_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_DATA", str(tmp_path))
    folder = tmp_path / "photos" / "mine"
    save_pictures(folder, 5)
    (folder / "broken.png").write_bytes(b"not a picture at all")
    assert restore_data.own_folders() == ["mine"]
    assert validate(preset_spec("quick", photos="mine")).photos == "mine"
    made = restore_data.make_pairs(restore_data.photo_files("mine"), CROP, 8, Recipe(), 0.75, seed=0)
    assert (made.photos, made.skipped) == (5, 1)
    assert made.crappy.shape == made.original.shape == (8, 3, CROP, CROP)


def test_a_folder_of_two_photos_and_a_name_outside_the_folder_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_DATA", str(tmp_path))
    save_pictures(tmp_path / "photos" / "two", 2)
    for name, key in (("two", "restore.few_photos"), ("../../etc", "restore.no_folder"),
                      ("missing", "restore.no_folder")):
        with pytest.raises(UserError) as refused:
            validate(preset_spec("quick", photos=name))
        assert refused.value.key == key


def test_a_folder_of_the_fewest_photos_allowed_still_holds_one_out(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_DATA", str(tmp_path))
    save_pictures(tmp_path / "photos" / "four", restore_data.MIN_FOLDER_PHOTOS)
    validate(preset_spec("quick", photos="four"))
    training, validation = restore_data.split(restore_data.photo_files("four"))
    assert training and validation


def test_the_shipped_split_holds_out_chelsea_butterfly_and_home():
    training, validation = restore_data.split(restore_data.photo_files(restore_data.SHIPPED))
    assert sorted(f.stem for f in validation) == ["butterfly", "chelsea", "home"]
    assert not {f.stem for f in training} & {"butterfly", "chelsea", "home"}
    assert len(training) + len(validation) == len(restore_data.SHIPPED_FILES)


# ----- bad specs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, key", [
    ({"lr": -0.001}, "restore.lr_range"),
    ({"gan_lr": 0.5}, "restore.lr_range"),
    ({"mse_steps": 0, "feature_steps": 0, "gan_steps": 0}, "restore.no_stage"),
    ({"batch_size": 16, "train_crops": 8}, "restore.batch_too_big"),
    ({"upsample": "sideways"}, "style.bad_choice"),
    ({"size": 16}, "spec.range"),
    ({"quality_low": 80, "quality_high": 20}, "crappify.quality_order"),
])
def test_a_bad_spec_is_refused_with_a_reason(changes, key):
    with pytest.raises(UserError) as refused:
        spec_from_dict({**tiny_spec().to_dict(), **changes})
    assert refused.value.key == key


# ----- a restored photo, the architecture table, the snippets ---------------------------------------------------
def test_the_untrained_unet_restores_a_photo_exactly_as_bicubic_upsampling_does(untrained):
    photo = images.load_picture("coffee")  # 600 × 400: restored at 192 × 128, 4 crops of 32 px on its short side
    restored = restore_photo(untrained, tiny_spec(), photo)
    assert restored["bicubic"].shape == restored["restored"].shape == restored["original"].shape == (3, 128, 192)
    assert torch.allclose(restored["restored"], restored["bicubic"], atol=1.1e-3)
    scores = restored["quality"]
    assert 15 < scores["bicubic"]["psnr"] < 50
    assert scores["restored"]["psnr"] == pytest.approx(scores["bicubic"]["psnr"], abs=0.05)


def test_the_architecture_table_halves_down_to_4_px_and_doubles_back():
    table = architecture_table("mobilenet_v2", "pixel_shuffle", 128)
    encoder, decoder = table[table["kind"] == "enc"], table[table["kind"] == "dec"]
    assert list(encoder["height"]) == [64, 32, 16, 8, 4]
    assert list(table.loc[table["kind"] == "mid", "height"]) == [4]
    assert list(decoder["height"]) == [8, 16, 32, 64]
    assert list(table.loc[table["kind"] == "up", "height"]) == [128]
    assert table.loc[table["kind"] == "head", "shape"].item() == "3×128×128"
    assert (encoder["trainable"] == 0).all() and (encoder["params"] > 0).all()
    assert (decoder["trainable"] == decoder["params"]).all() and (decoder["trainable"] > 0).all()


@pytest.fixture
def offline_torch_hub(tmp_path, monkeypatch):
    """torchvision's cache holding the packaged MobileNetV2 file, so the snippet's weights='IMAGENET1K_V1'
    loads without a download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    packaged = backbones.packaged_mobilenet_file()
    cached = backbones.cached_weights_file(MobileNet_V2_Weights.IMAGENET1K_V1)
    cached.parent.mkdir(parents=True)
    cached.symlink_to(packaged)


@pytest.mark.parametrize("stage", ["mse", "feature", "gan"])
def test_the_code_panel_snippet_of_each_stage_runs_and_trains_the_unet(stage, pairs, offline_torch_hub):
    torch.manual_seed(0)
    model = unet("random").train()
    code = snippets.restore_snippet(stage, "mobilenet_v2")
    exec(code, {"model": model, "critic": small_critic(), "batches": [(pairs.crappy, pairs.original)]})
    assert model.head[-1].weight.abs().sum() > 0  # one step moved the head off its zero start
