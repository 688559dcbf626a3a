"""Darknet (Lesson 12), CIFAR-10 or its synthetic stand-in, the on-device augmentation, the runner."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn
from torchvision.datasets import CIFAR10

from core import darknet_lab as lab
from core.data.cifar import CLASSES, SyntheticCIFAR10, cifar_tensors, open_cifar, random_crop_flip
from core.errors import UserError
from core.models.darknet import ResLayer, darknet
from core.models.inception import InceptionResNetB, inception_stem
from torch.optim.optimizer import register_optimizer_step_pre_hook
from tests.unit.conftest import RecordingContext


# ----- the model -------------------------------------------------------------------------------------
def test_the_lecture_darknet_has_the_lessons_shape():
    model = darknet()  # Darknet([1, 2, 4, 6, 3], num_classes=10, nf=32)
    sizes = []
    for layer in model.layers:
        if isinstance(layer, nn.Sequential) and isinstance(layer[0], nn.Conv2d) and layer[0].kernel_size == (3, 3):
            sizes.append(layer[0].out_channels)
    assert sizes[0] == 32 and sizes[-1] == 1024  # each of the 5 groups doubles 32 -> 1024
    assert sum(isinstance(layer, ResLayer) for layer in model.layers) == 1 + 2 + 4 + 6 + 3
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(conv.bias is None for conv in convs)  # BatchNorm follows each conv
    assert {m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)} == {0.1}
    assert {m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {0.01}
    assert sum(p.numel() for p in model.parameters()) == 31_410_922
    shapes = []
    model.eval()
    hooks = [layer.register_forward_hook(lambda m, i, o: shapes.append(o.shape[-1]))
             for layer in model.layers if isinstance(layer, nn.Sequential)]
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    for hook in hooks:
        hook.remove()
    assert sorted(set(shapes), reverse=True) == [32, 16, 8, 4, 2]  # the second group keeps 16x16 (stride 1)


def test_the_residual_add_is_out_of_place_so_autograd_works():
    layer = ResLayer(8)
    x = torch.randn(2, 8, 4, 4, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_each_residual_layer_starts_as_the_identity():
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(ResLayer(8)(x), x)
    assert not torch.allclose(ResLayer(8, zero_init=False)(x), x)


def first_losses(model: nn.Module, steps: int = 3, batch: int = 32) -> list[float]:
    """The lesson's optimizer at the lecture schedule's first learning rate (1.3 / 20)."""
    pictures = cifar_tensors(True)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.3 / 20, momentum=0.95, weight_decay=1e-4)
    losses = []
    for step in range(steps):
        index = torch.arange(step * batch, (step + 1) * batch)
        loss = nn.functional.cross_entropy(model(pictures.images[index]), pictures.labels[index])
        losses.append(loss.item())
        if step == steps - 1:
            break  # the last loss is all that is wanted of the last step: its backward pass would be wasted
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def test_the_lecture_darknet_starts_training_where_todays_default_init_diverges():
    torch.manual_seed(0)
    shipped = first_losses(darknet())
    assert shipped[-1] < shipped[0]
    torch.manual_seed(0)
    ones = first_losses(darknet(zero_init_residual=False))  # BatchNorm weights of 1 in every residual branch
    assert ones[-1] > 5 * ones[0]


def test_the_demo_preset_is_the_same_code_with_smaller_numbers():
    demo, lecture = lab.preset_spec("demo"), lab.preset_spec("lecture")
    assert type(darknet(demo.blocks, 10, demo.nf)) is type(darknet(lecture.blocks, 10, lecture.nf))
    assert lecture.blocks == (1, 2, 4, 6, 3) and lecture.nf == 32 and lecture.max_lr == 1.3 and lecture.epochs == 30
    small, big = lab.model_facts(demo.blocks, demo.nf), lab.model_facts(lecture.blocks, lecture.nf)
    assert small["parameters"] < big["parameters"] / 100
    assert big["macs"] == pytest.approx(4.009e8, rel=1e-3)  # multiply-adds of one 32x32 picture
    assert list(big["table"].columns) == ["layer", "output shape", "parameters"]


def test_inceptions_stem_and_block_for_comparison():
    assert inception_stem()(torch.zeros(1, 3, 299, 299)).shape == (1, 384, 35, 35)
    block = InceptionResNetB()
    assert block(torch.zeros(1, 1088, 17, 17)).shape == (1, 1088, 17, 17)
    factored = [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.kernel_size in ((1, 7), (7, 1))]
    assert len(factored) == 2  # the 7x7 as 1x7 then 7x1: 14 weights per channel pair, not 49


# ----- the data ---------------------------------------------------------------------------------------
def test_offline_the_synthetic_set_loads_through_torchvisions_class():
    train, test = open_cifar(True), open_cifar(False)
    if not isinstance(train, SyntheticCIFAR10):
        pytest.skip("real CIFAR-10 is on this machine")
    assert isinstance(train, CIFAR10) and train.classes == list(CLASSES)
    assert train.data.shape == (10_000, 32, 32, 3) and len(test) == 2_000
    tensors = cifar_tensors(True)
    assert tensors.synthetic and tensors.images.shape == (10_000, 3, 32, 32)
    assert tensors.images.mean(dim=(0, 2, 3)).abs().max() < 1e-3  # normalised per channel
    assert set(tensors.labels.tolist()) == set(range(10))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_augmentation_keeps_shapes_and_each_picture_with_its_own_label(device):
    images = torch.arange(4 * 3 * 8 * 8, dtype=torch.float32, device=device).view(4, 3, 8, 8)
    out = random_crop_flip(images, padding=2, generator=torch.Generator(device=device).manual_seed(1))
    assert out.shape == images.shape
    padded = torch.nn.functional.pad(images, [2] * 4, mode="reflect")  # fastai 0.7 padded by reflection
    for i in range(4):  # each output is a crop (maybe flipped) of the same index's input
        crops = [padded[i, :, top:top + 8, left:left + 8] for top in range(5) for left in range(5)]
        assert any(torch.equal(out[i], crop) or torch.equal(out[i], crop.flip(-1)) for crop in crops), i
    labels = torch.arange(4, device=device)  # picture i is labelled i: after shuffling, each must still sit with its label
    padded = torch.nn.functional.pad(images, [4] * 4, mode="reflect")  # the training batches pad by the lesson's 4 px
    for batch, batch_labels in lab.AugmentedBatches(images, labels, batch_size=2, shuffle=True, seed=0):
        for picture, label in zip(batch, batch_labels):
            crops = [padded[label, :, top:top + 8, left:left + 8] for top in range(9) for left in range(9)]
            assert any(torch.equal(picture, crop) or torch.equal(picture, crop.flip(-1)) for crop in crops)


# ----- training -----------------------------------------------------------------------------------------
def test_the_runner_trains_with_the_recipes_weight_decay_and_one_optimizer():
    used = []
    handle = register_optimizer_step_pre_hook(lambda optimizer, args, kwargs: used.append(
        (id(optimizer), type(optimizer).__name__, optimizer.param_groups[0]["weight_decay"])))
    try:
        lab.run_darknet(lab.DarknetSpec("quick", epochs=1, n_train=512).to_dict(), RecordingContext())
    finally:
        handle.remove()
    assert len(used) == 4 and {(name, decay) for _, name, decay in used} == {("SGD", 1e-4)}
    assert len({optimizer for optimizer, _, _ in used}) == 1  # one-cycle's phases share one SGD


def test_time_to_94_counts_only_a_validation_on_every_picture():
    timer = lab.TimeToTarget(full_size=2000)

    class Step:
        metrics: dict = {}

    step = Step()
    timer.before_fit(step)
    step.metrics = {"valid_on": 1000, "accuracy": 0.99}  # a subset: does not count
    timer.after_batch(step)
    assert timer.seconds is None
    step.metrics = {"valid_on": 2000, "accuracy": 0.93}
    timer.after_batch(step)
    assert timer.seconds is None
    step.metrics = {"valid_on": 2000, "accuracy": 0.94}
    timer.after_batch(step)
    assert timer.seconds is not None and timer.seconds >= 0


def test_a_quick_run_trains_reports_pictures_per_second_and_says_synthetic():
    context = RecordingContext()
    spec = lab.DarknetSpec("quick", epochs=1, n_train=2048, batch_size=128)
    lab.run_darknet(spec.to_dict(), context)
    metrics = context.of("metrics")
    assert len(metrics) == 16 and all(math.isfinite(m["train_loss"]) for m in metrics)
    assert metrics[-1]["images_per_second"] > 0  # timed on the steps that did not also validate
    assert metrics[0]["momentum"] == pytest.approx(0.95) and metrics[0]["lr"] == pytest.approx(spec.max_lr / 20)
    [result] = context.of("result")
    assert result["synthetic"] == cifar_tensors(True).synthetic
    assert "seconds_to_target" in result  # None until a full validation reaches 94%
    assert 0 <= result["accuracy"] <= 1 and result["images_per_second"] > 0
    assert len(context.of("samples")) >= 2 and context.of("samples")[0]["png"].startswith(b"\x89PNG")


@pytest.mark.parametrize("change, key", [
    (dict(blocks=(1, 2, 99)), "darknet.blocks"), (dict(blocks=()), "darknet.blocks"), (dict(nf=0), "darknet.range"),
    (dict(epochs=0), "darknet.range"), (dict(max_lr=-1.0), "darknet.lr"), (dict(max_lr=float("nan")), "darknet.lr"),
    (dict(batch_size=1), "darknet.range"), (dict(preset="huge"), "darknet.bad_preset"), (dict(bn_momentum=0.5), "darknet.bn_momentum"),
    (dict(max_lr=True), "darknet.lr"), (dict(max_lr=1e-5), "darknet.lr"), (dict(mixed_precision="no"), "spec.bad"),
    (dict(blocks=(8, 8, 8, 8, 8, 8), nf=64), "darknet.too_big"),
])
def test_a_spec_that_makes_no_sense_is_refused(change, key):
    with pytest.raises(UserError) as error:
        lab.spec_from_dict({**lab.preset_spec("demo").to_dict(), **change})
    assert error.value.key == key


def test_the_estimate_scales_with_the_models_multiply_adds():
    timings = {"demo": 1e-4}
    demo = lab.estimate_seconds(lab.preset_spec("demo"), timings, 10_000, 2_000)
    lecture = lab.estimate_seconds(lab.preset_spec("lecture"), timings, 10_000, 2_000)
    assert demo > 0 and lecture / demo > 100  # ~8x the epochs and ~200x the multiply-adds
    assert demo == pytest.approx(1e-4 * 4 * (10_000 + (2_000 + 3 * 1_000) / 3))
    assert lab.estimate_seconds(lab.preset_spec("demo"), {}, 10_000, 2_000) is None


def test_a_compiled_run_on_a_gpu_is_estimated_with_its_compiling_and_its_speed_up():
    gpu = {"demo": 1e-5, "lecture": 4e-5}
    lecture = lab.preset_spec("lecture")
    compiled = lab.estimate_seconds(dataclasses.replace(lecture, compile_model=True), gpu, 50_000, 10_000)
    eager = lab.estimate_seconds(lecture, gpu, 50_000, 10_000)
    training = 4e-5 * 30 * 50_000
    assert compiled - eager == pytest.approx(lab.COMPILE_SECONDS - training * (1 - 1 / lab.COMPILED_SPEED_UP))
    cpu = {"demo": 1e-4}  # a CPU ignores the switch, and so does its estimate
    assert lab.estimate_seconds(dataclasses.replace(lecture, compile_model=True), cpu, 10_000, 2_000) == \
        lab.estimate_seconds(lecture, cpu, 10_000, 2_000)


def test_the_facts_of_a_huge_model_come_at_once_without_its_memory():
    import time

    started = time.perf_counter()
    facts = lab.model_facts((8, 8, 8, 8, 8, 8), 64)
    assert facts["parameters"] > lab.MAX_PARAMETERS and time.perf_counter() - started < 5


def test_torch_compile_and_the_gpu_toggles_apply_only_on_cuda():
    cpu = lab.DeviceConfig(torch.device("cpu"))
    cuda = lab.DeviceConfig(torch.device("cuda"), amp_dtype=torch.bfloat16, channels_last=True)
    assert not lab.compiles(lab.DarknetSpec(compile_model=True), cpu)
    assert lab.compiles(lab.DarknetSpec(compile_model=True), cuda) and not lab.compiles(lab.DarknetSpec(), cuda)
    if not torch.cuda.is_available():
        assert lab.device_for(lab.DarknetSpec(mixed_precision=True, channels_last=True)) == lab.DeviceConfig.auto()
