"""The style lab's core: the Gram matrix, hooks that are always removed, what shuffling does, the loss lowered
by both optimizers, the job with frames and Cancel, the backbones, and bad uploads refused with a reason."""
import io
import json

import pytest
import torch
from PIL import Image

from core.errors import RunCancelled, UserError
from core.vision import backbone as backbones
from core.vision import images, style
from core.vision.style_figures import feature_maps_png
from tests.unit.conftest import CancelAfter, RecordingContext


@pytest.fixture(scope="module")
def net() -> backbones.Backbone:
    return backbones.load("mobilenet_v2")


def picture(key: str = "chelsea", size: int = 64) -> torch.Tensor:
    return images.square_tensor(key, size)


# ----- the Gram matrix ---------------------------------------------------------------------------------------
def test_gram_matrix_of_a_hand_computed_case():
    # one picture, 2 channels of 1 × 2 positions: F = [[1, 2], [3, 4]]; F·Fᵀ = [[5, 11], [11, 25]]; C·H·W = 4
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    assert torch.allclose(style.gram_matrix(features), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)


def test_gram_matrix_has_one_c_by_c_matrix_per_picture_and_is_symmetric():
    gram = style.gram_matrix(torch.randn(3, 7, 5, 6))
    assert gram.shape == (3, 7, 7) and torch.allclose(gram, gram.transpose(1, 2))


def test_gram_matrix_ignores_where_but_the_features_do_not():
    features = torch.randn(1, 16, 9, 9)
    order = torch.randperm(81, generator=torch.Generator().manual_seed(1))
    moved = features.reshape(1, 16, 81)[:, :, order].reshape(1, 16, 9, 9)
    assert torch.allclose(style.gram_matrix(moved), style.gram_matrix(features), atol=1e-6)
    assert not torch.allclose(moved, features)


def test_shuffled_squares_change_the_content_far_more_than_the_gram_matrix(net):
    shuffled, grams, contents = style.shuffle_effect(net, picture(size=128), per_side=4)
    assert shuffled.shape == (1, 3, 128, 128)
    # the early blocks see strokes and colours, which shuffling keeps; the deepest see whole parts of objects
    assert all(content > 5 * gram for gram, content in zip(grams[:3], contents[:3])), (grams, contents)
    assert all(content > 1 for content in contents)
    unchanged, grams_one, contents_one = style.shuffle_effect(net, picture(size=128), per_side=1)
    assert max(grams_one + contents_one) < 1e-9


def test_shuffle_patches_keeps_every_pixel():
    original = torch.rand(1, 3, 30, 30)
    shuffled = style.shuffle_patches(original, 5, seed=3)
    assert torch.equal(shuffled.flatten().sort().values, original.flatten().sort().values)
    assert not torch.equal(shuffled, original)


def test_a_painting_is_further_from_a_photo_than_from_itself_in_gram_distance(net):
    painting, photo = picture("starry_night"), picture("chelsea")
    assert style.gram_distances(net, painting, painting) == pytest.approx([0.0] * 5, abs=1e-9)
    assert all(d > 0.1 for d in style.gram_distances(net, painting, photo))


# ----- hooks ---------------------------------------------------------------------------------------------------
def forward_hooks(net) -> int:
    return sum(len(module._forward_hooks) for module in net.features.modules())


def test_hooks_are_removed_after_use_and_after_an_exception(net):
    found = style.activations(net, picture(size=32))
    assert [f.shape[1] for f in found] == [16, 24, 32, 96, 320] and forward_hooks(net) == 0
    with pytest.raises(RuntimeError):
        style.activations(net, torch.rand(1, 5, 32, 32))  # 5 channels: the first conv refuses them
    assert forward_hooks(net) == 0
    with pytest.raises(ZeroDivisionError), style.SaveFeatures([net.features[1]]):
        assert forward_hooks(net) == 1
        raise ZeroDivisionError
    assert forward_hooks(net) == 0


def test_block_ends_are_the_last_layers_before_each_drop_in_resolution(net):
    sizes = [f.shape[-1] for f in style.activations(net, picture(size=64))]
    assert sizes == [32, 16, 8, 4, 2]
    assert backbones.BLOCK_ENDS["vgg16_bn"] == (5, 12, 22, 32, 42)  # the lesson's layers


def test_the_offline_backbone_has_the_real_imagenet_weights(net):
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2
    full = mobilenet_v2()
    full.load_state_dict(torch.load(backbones.packaged_mobilenet_file(), weights_only=True))
    preprocess = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    with torch.no_grad():
        top = full.eval()(preprocess(Image.open(images.IMAGES / "coffee.png").convert("RGB")).unsqueeze(0)).argmax()
    assert MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"][top] == "espresso"
    assert all(torch.equal(a, b) for a, b in zip(net.features.state_dict().values(),
                                                  full.features[:18].state_dict().values()))
    assert "mobilenet_v2" in backbones.available() and "random" in backbones.available()


def test_a_missing_backbone_is_refused_with_a_reason():
    if "vgg16_bn" in backbones.available():
        pytest.skip("VGG16-BN's weights are cached on this machine")
    with pytest.raises(UserError, match="not on this machine"):
        backbones.load("vgg16_bn")
    with pytest.raises(UserError, match="Unknown network"):
        backbones.load("resnet9000")


# ----- the optimisation ------------------------------------------------------------------------------------------
def tiny(**changes) -> style.StyleSpec:
    return style.preset_spec("quick", "mobilenet_v2", **{"size": 48, "steps": 12, **changes})


@pytest.mark.parametrize("optimizer", style.OPTIMIZERS)
def test_a_few_steps_lower_the_total_loss(optimizer):
    totals = []
    spec = tiny(optimizer=optimizer, lr=style.DEFAULT_LR[optimizer])
    painting = style.Painting(spec, style.DeviceConfig.auto(), lambda step, values, pic: totals.append(values["total"]))
    painting.run()
    assert painting.evaluations == spec.steps
    assert totals[-1] < 0.7 * totals[0]


def test_the_gpu_path_mixed_precision_and_channels_last_also_lowers_the_loss():
    """What a GPU gets (autocast and channels_last), tried on the CPU with bfloat16."""
    totals = []
    device = style.DeviceConfig(torch.device("cpu"), amp_dtype=torch.bfloat16, channels_last=True)
    painting = style.Painting(tiny(optimizer="adam", lr=0.03), device,
                              lambda step, values, pic: totals.append(values["total"]))
    painting.run()
    assert painting.picture.dtype == torch.float32 and painting.picture.is_contiguous(memory_format=torch.channels_last)
    assert totals[-1] < 0.7 * totals[0]
    backbones.load("mobilenet_v2").features.to(memory_format=torch.contiguous_format)  # as the other tests expect


@pytest.mark.parametrize("mode", ["content", "style"])
def test_rebuilding_from_one_layer_uses_only_that_loss(mode):
    parts = []
    spec = tiny(mode=mode, content_layer=1, style_layers=2, steps=3)
    style.Painting(spec, style.DeviceConfig.auto(), lambda step, values, pic: parts.append(values)).run()
    expected = {"content", "total"} if mode == "content" else {"style_1", "style_2", "total"}
    assert set(parts[0]) == expected


def test_the_lessons_noise_is_smooth_and_in_the_lower_half():
    noise = style.median_noise(64, seed=0)
    assert noise.shape == (1, 3, 64, 64) and 0 <= noise.min() and noise.max() <= 0.5
    neighbours = (noise[..., 1:] - noise[..., :-1]).abs().mean()
    assert neighbours < 0.5 * (torch.rand(1, 3, 64, 64)[..., 1:] - torch.rand(1, 3, 64, 64)[..., :-1]).abs().mean() / 2


def test_the_job_sends_losses_frames_and_a_result():
    context = RecordingContext()
    style.run_style(tiny(optimizer="adam", lr=0.03).to_dict(), context)
    rows = context.of("metrics")
    assert [row["step"] for row in rows] == list(range(1, 13))
    assert {"content", "total", "style_1", "style_5", "eta"} <= set(rows[0])
    frames = context.of("samples")
    assert frames[0]["step"] == 0 and frames[-1]["step"] == 12
    assert Image.open(io.BytesIO(frames[-1]["png"])).size == (48, 48)
    assert context.of("result")[0]["steps"] == 12


def test_cancel_stops_within_one_lbfgs_step():
    context = CancelAfter(3)
    with pytest.raises(RunCancelled):
        style.run_style(tiny(optimizer="lbfgs", steps=40).to_dict(), context)
    assert len(context.of("metrics")) == 3  # LBFGS's step evaluates up to 20 times; Cancel is heard between them


def test_a_diverging_run_says_what_to_change():
    spec = tiny(optimizer="adam", lr=0.03, style_weight=1e300, steps=3)
    with pytest.raises(UserError, match="10 times smaller"):
        style.run_style(spec.to_dict(), RecordingContext())


# ----- specs ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"lr": -0.5}, "above 0"), ({"lr": float("nan")}, "must be a number"), ({"optimizer": "sgd"}, "one of"),
    ({"size": 5000}, "between"), ({"layer_weights": (0, 0, 0, 0, 0)}, "at least one"),
    ({"layer_weights": (1, -1, 1, 1, 1)}, "negative"), ({"content": "upload:0000000000000000"}, "no picture"),
    ({"steps": 2.5}, "whole number"),
])
def test_bad_settings_are_refused_with_what_to_change(change, message):
    with pytest.raises(UserError, match=message):
        style.spec_from_dict({**tiny().to_dict(), **change})


def test_a_stored_spec_reads_back_with_its_layer_weights_as_a_tuple():
    stored = json.loads(json.dumps(tiny(layer_weights=(1, 0.5, 0, 0, 2)).to_dict()))
    assert style.spec_from_dict(stored) == tiny(layer_weights=(1, 0.5, 0, 0, 2))


def test_sizes_for_the_instructors_limit():
    assert style.size_of_values(style.preset_spec("quick", "mobilenet_v2").to_dict()) == "quick"
    assert style.size_of_values(style.preset_spec("demo", "mobilenet_v2").to_dict()) == "demo"
    assert style.size_of_values(style.preset_spec("large", "mobilenet_v2").to_dict()) == "lecture"


def test_feature_maps_are_drawn_in_a_row():
    png = feature_maps_png(torch.rand(20, 7, 7), channels=8, side=32)
    assert Image.open(io.BytesIO(png)).size == (8 * 32 + 9 * 4, 32 + 8)


# ----- uploads ----------------------------------------------------------------------------------------------------
def encoded(picture: Image.Image, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=format)
    return buffer.getvalue()


@pytest.mark.parametrize("data, message", [
    (b"", "empty"), (b"just some text, not a picture", "not a picture that can be read"),
    (encoded(Image.new("RGB", (300, 300), "red"), "JPEG")[:500], "not a picture that can be read"),
    (encoded(Image.new("RGB", (8, 8)), "GIF"), "GIF files are not accepted"),
])
def test_bad_uploads_are_refused_with_a_reason(data, message):
    with pytest.raises(UserError, match=message):
        images.checked_upload(data)


def test_a_decompression_bomb_is_refused_from_its_header():
    bomb = encoded(Image.new("1", (20000, 20000)))  # 400 megapixels in 48 kB
    assert len(bomb) < 100_000
    with pytest.raises(UserError, match="megapixels"):
        images.checked_upload(bomb)


@pytest.mark.parametrize("mode, fill", [("CMYK", (0, 255, 0, 0)), ("L", 128), ("P", 3), ("RGBA", (255, 0, 0, 0)),
                                        ("I;16", 30000)])
def test_other_colour_modes_become_rgb(mode, fill):
    format = "JPEG" if mode == "CMYK" else "PNG"
    converted = images.checked_upload(encoded(Image.new(mode, (40, 30), fill), format))
    assert converted.mode == "RGB" and converted.size == (40, 30)
    if mode == "RGBA":  # transparent: on white
        assert converted.getpixel((0, 0)) == (255, 255, 255)


def test_a_large_photo_is_shrunk_and_kept_by_its_content(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_DATA", str(tmp_path))
    photo = encoded(Image.new("RGB", (3000, 1500), "blue"), "JPEG")
    key = images.save_upload(photo)
    assert images.save_upload(photo) == key and images.is_known(key)
    assert images.load_picture(key).size == (1024, 512)
    assert images.square_tensor(key, 64).shape == (1, 3, 64, 64)
    assert not images.is_known("upload:../../etc/passwd") and not images.is_known("nothing")


def test_the_shipped_pictures_are_there_with_two_paintings_and_four_photos():
    assert len(images.PAINTINGS) >= 2 and len(images.PHOTOS) >= 4
    for key in images.SHIPPED:
        assert images.load_picture(key).mode == "RGB"
    readme = (images.IMAGES.parent / "README.md").read_text()
    assert all(item.file in readme for item in images.SHIPPED.values())


@pytest.mark.parametrize("optimizer", style.OPTIMIZERS)
def test_the_code_panel_runs_as_plain_pytorch(optimizer):
    from core.snippets import style_snippet
    source = style_snippet("mobilenet_v2", 1e6, 1e10, (1, 1, 1, 1, 1), optimizer, 0.03, 32, 2)
    offline = source.replace("weights='IMAGENET1K_V1'", "weights=None")  # the weights download, when online
    offline = offline.replace("# content, style = your two pictures",
                              "content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)  #")
    namespace = {}
    exec(compile(offline, "snippet", "exec"), namespace)
    assert namespace["closure"]().item() > 0
    assert "def gram(x)" in source and "register_forward_hook" in source and "hook.remove()" in source


def test_estimates_come_from_the_newest_finished_run_of_the_same_network():
    quick = style.preset_spec("quick", "mobilenet_v2")
    runs = [{"state": "finished", "spec": style.preset_spec("quick", "random").to_dict(),
             "result": {"device": "CPU", "seconds": 30.0}},
            {"state": "finished", "spec": quick.to_dict(), "result": {"device": "CPU", "seconds": 3.0}}]
    assert style.estimate_seconds(quick, {}, runs, "CPU") == pytest.approx(3.0)
    demo = style.preset_spec("demo", "mobilenet_v2")  # 4 times the pixels, 2.5 times the evaluations
    assert style.estimate_seconds(demo, {}, runs, "CPU") == pytest.approx(30.0)
    assert style.estimate_seconds(quick, {"style_seconds_per_evaluation": 0.1}, [], "CPU") == pytest.approx(6.0)
    assert style.estimate_seconds(quick, {}, [], "CPU") is None
