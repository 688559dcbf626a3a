"""The GAN lab's DCGAN / WGAN (Lesson 12): the lesson's networks, one step of each loss, WGAN's clipping and
critic-steps rule, the classifier that judges samples, the health notes, the runner, and the fade-in."""
from __future__ import annotations

import io
import math

import pandas as pd
import pytest
import torch
from PIL import Image

from core.errors import RunCancelled, UserError
from core.gan import dcgan as lab
from core.gan import judge
from core.gan.fade import fitted_paths
from core.gan.figures import GAN_LABEL_KEYS, gan_figure
from core.mnist_lab import cached_digits
from core.models.dcgan import DCGAN_D, DCGAN_G
from core.models.progressive import ProgressiveGenerator, fade_in
from core.data.mnist import padded_tanh
from core.train import DeviceConfig
from tests.unit.conftest import CancelAfterCalls, RecordingContext

TINY = {"preset": "quick", "loss": "dcgan", "steps": 4, "width": 4, "batch_size": 4, "lr": 2e-4, "seed": 0}
CPU = DeviceConfig(torch.device("cpu"))


# ----- the networks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("isize", [16, 32, 64])
def test_the_generator_makes_pictures_of_isize_and_the_discriminator_scores_each(isize):
    generator, discriminator = DCGAN_G(isize, nz=10, nc=3, ngf=8), DCGAN_D(isize, nc=3, ndf=8)
    pictures = generator(torch.randn(5, 10))
    assert pictures.shape == (5, 3, isize, isize)
    assert pictures.min() >= -1 and pictures.max() <= 1  # tanh
    assert discriminator(pictures).shape == (5,)


def test_the_lesson_configuration_doubles_by_k4_s2_p1_transposed_convs():
    generator = DCGAN_G(64, nz=100, nc=3, ngf=64)
    deconvs = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in deconvs] == [(100, 512), (512, 256), (256, 128), (128, 64),
                                                                  (64, 3)]
    assert all((m.kernel_size, m.stride, m.padding) == ((4, 4), (2, 2), (1, 1)) for m in deconvs[1:])


@pytest.mark.parametrize("isize", [0, 24, 40])
def test_a_size_that_is_not_a_multiple_of_16_is_refused(isize):
    with pytest.raises(ValueError, match="multiple of 16"):
        DCGAN_G(isize)
    with pytest.raises(ValueError, match="multiple of 16"):
        DCGAN_D(isize)


# ----- one step of each loss --------------------------------------------------------------------------------
def real_batch(n: int = 8) -> torch.Tensor:
    return padded_tanh(cached_digits(False).images[:n], lab.ISIZE)


def snapshot(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def changed(before: list[torch.Tensor], net: torch.nn.Module) -> bool:
    return any(not torch.equal(old, new) for old, new in zip(before, net.parameters()))


def test_one_dcgan_step_changes_both_networks_and_reports_what_the_page_plots():
    gan = lab.build_gan(lab.validate(lab.GanSpec(**{**TINY, "width": 8})), CPU)
    generator, discriminator = snapshot(gan.generator), snapshot(gan.discriminator)
    values = lab.dcgan_step(gan, real_batch(), CPU)
    assert changed(generator, gan.generator) and changed(discriminator, gan.discriminator)
    assert set(values) == {"loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g"}
    assert 0 < values["d_real"] < 1 and 0 < values["d_fake"] < 1 and values["grad_norm_g"] > 0
    assert all(p.requires_grad for p in gan.discriminator.parameters())  # frozen only during the generator's step


def test_after_a_wgan_critic_step_every_weight_is_within_the_clip():
    gan = lab.build_gan(lab.validate(lab.GanSpec(**{**TINY, "loss": "wgan", "lr": 1e-4, "width": 8})), CPU)
    assert max(p.abs().max().item() for p in gan.discriminator.parameters()) > lab.CLIP  # not clipped to start
    critic, generator = snapshot(gan.discriminator), snapshot(gan.generator)
    lab.critic_step(gan, real_batch(), CPU)
    assert changed(critic, gan.discriminator) and not changed(generator, gan.generator)
    assert max(p.abs().max().item() for p in gan.discriminator.parameters()) <= lab.CLIP
    assert isinstance(gan.generator_optimizer, torch.optim.RMSprop)


def test_the_critic_trains_100_times_at_the_start_and_every_500th_step_else_5():
    assert [lab.critic_steps(done) for done in (0, 1, 24)] == [100, 100, 100]
    assert [lab.critic_steps(done) for done in (25, 26, 499, 501, 999)] == [5] * 5
    assert [lab.critic_steps(done) for done in (500, 1000, 1500)] == [100] * 3
    for steps in (1, 25, 26, 500, 501, 1234):
        assert lab.total_critic_steps(steps) == sum(lab.critic_steps(done) for done in range(steps))


# ----- the spec ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, words", [({"lr": -1e-4}, "above 0"), ({"lr": float("nan")}, "number"),
                                           ({"loss": "lsgan"}, "Unknown loss"), ({"width": 0}, "width"),
                                           ({"steps": 1.5}, "whole number"), ({"batch_size": 1}, "batch_size")])
def test_bad_settings_are_refused_with_what_to_change(change, words):
    with pytest.raises(UserError, match=words):
        lab.spec_from_dict({**TINY, **change})


def test_presets_follow_the_lesson_recipe_for_each_loss():
    assert lab.preset_spec("demo", "dcgan").lr == 2e-4 and lab.preset_spec("demo", "wgan").lr == 1e-4
    assert lab.size_of_values(lab.preset_spec("demo").to_dict()) == "demo"
    assert lab.size_of_values({**lab.preset_spec("quick").to_dict(), "steps": 5000}) == "lecture"


# ----- the judge and the health notes ----------------------------------------------------------------------
def test_the_judge_recognises_real_digits_and_sees_a_single_repeated_digit_as_one_class():
    real = judge.verdict(real_batch(256))
    assert real.confidence > 0.95 and real.classes_present == 10 and real.spread > 0.9
    one = judge.verdict(real_batch(1).expand(64, -1, -1, -1))
    assert one.classes_present == 1 and one.spread == 0 and sum(one.class_counts) == 64


def rows(steps: int, **values) -> list[dict]:
    return [{"step": step, "d_real": 0.6, "d_fake": 0.4, **values} for step in range(1, steps + 1)]


def test_health_names_a_discriminator_that_wins_outright_and_mode_collapse():
    assert lab.health([], "dcgan") == []
    winning = rows(100, d_real=0.99, d_fake=0.01)
    assert [note[1] for note in lab.health(winning, "dcgan")] == ["gan.health_wins"]
    assert lab.health(winning, "wgan") == []  # a critic's scores are not probabilities
    collapsed = rows(400)
    collapsed[-1].update(classes_present=2, spread=0.2, confidence=0.9)
    assert [note[1] for note in lab.health(collapsed, "dcgan")] == ["gan.health_collapse"]
    early = rows(100)
    early[-1].update(classes_present=1, spread=0.0, confidence=0.9)
    assert [note[:2] for note in lab.health(early, "dcgan")] == [("info", "gan.health_early")]
    healthy = rows(400)
    healthy[-1].update(classes_present=10, spread=0.97, confidence=0.8)
    assert [note[:2] for note in lab.health(healthy, "dcgan")] == [("success", "gan.health_fine")]


# ----- the runner -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run() -> RecordingContext:
    context = RecordingContext()
    lab.run_gan(TINY, context)
    return context


def test_a_run_reports_every_step_and_judges_the_fixed_samples(tiny_run):
    metrics = tiny_run.of("metrics")
    assert [row["step"] for row in metrics] == [1, 2, 3, 4]
    assert metrics[-1]["eta"] == 0 and metrics[-1]["classes_present"] >= 1  # the last step is judged
    samples = tiny_run.of("samples")
    assert samples[0]["step"] == 0 and samples[-1]["step"] == 4
    grid = Image.open(io.BytesIO(samples[-1]["png"]))
    assert grid.width == grid.height > 8 * lab.ISIZE  # 8 × 8 samples, enlarged
    result = tiny_run.of("result")[0]
    assert result["steps"] == 4 and set(result["verdict"]) >= {"confidence", "classes_present"}


def test_the_trained_generator_comes_back_from_its_weights_and_walks_between_two_samples(tiny_run):
    generator = lab.trained_generator(TINY, tiny_run.of("weights")[0]["state"])
    path = lab.interpolation(generator, TINY["seed"], 0, 5, count=7)
    fixed = lab.generate(generator, lab.fixed_noise(TINY["seed"]))
    assert path.shape == (7, 1, lab.ISIZE, lab.ISIZE)
    assert torch.allclose(path[0], fixed[0], atol=0.05) and torch.allclose(path[-1], fixed[5], atol=0.05)
    assert lab.trained_generator({**TINY, "width": 8}, tiny_run.of("weights")[0]["state"]) is None


def test_a_wgan_run_does_the_lessons_critic_steps_and_cancel_works_within_them():
    context = RecordingContext()
    lab.run_gan({**TINY, "loss": "wgan", "lr": 1e-4, "steps": 1}, context)
    assert context.of("metrics")[0]["critic_steps"] == 100 and "wasserstein" in context.of("metrics")[0]
    with pytest.raises(RunCancelled):
        lab.run_gan({**TINY, "loss": "wgan", "lr": 1e-4}, CancelAfterCalls(10))  # inside the first 100 critic steps


def test_the_figure_draws_the_scores_for_dcgan_and_the_estimate_for_wgan(tiny_run):
    labels = {key: key for key in GAN_LABEL_KEYS}
    frame = pd.DataFrame(tiny_run.of("metrics"))
    names = {trace.name for trace in gan_figure(frame, "dcgan", labels).data}
    assert {"d_real", "d_fake", "confidence", "classes"} <= names and "wasserstein" not in names


# ----- progressive growing's fade-in ------------------------------------------------------------------------
def test_the_fade_in_starts_at_the_old_upsampled_output_and_ends_at_the_new_layer():
    generator = ProgressiveGenerator()
    old, new = generator.paths(torch.randn(2, 64))
    assert old.shape == new.shape == (2, 1, 32, 32)
    assert torch.equal(old[..., ::2, ::2], old[..., 1::2, 1::2])  # nearest upsampling: 2×2 blocks
    assert torch.equal(fade_in(old, new, 0.0), old) and torch.allclose(fade_in(old, new, 1.0), new)
    assert torch.allclose(fade_in(old, new, 0.25), 0.75 * old + 0.25 * new)
    with pytest.raises(ValueError, match="between 0 and 1"):
        fade_in(old, new, 1.5)


@pytest.mark.parametrize("loss", lab.LOSSES)
def test_the_gpu_path_autocast_and_channels_last_trains_too(loss):
    """What DeviceConfig.auto() gives on CUDA, on the CPU: bfloat16 autocast and channels_last."""
    config = DeviceConfig(torch.device("cpu"), amp_dtype=torch.bfloat16, channels_last=True)
    spec = lab.validate(lab.GanSpec(**{**TINY, "loss": loss, "lr": lab.DEFAULT_LR[loss], "width": 8}))
    gan = lab.build_gan(spec, config)
    generator = snapshot(gan.generator)
    real = config.prepare_images(real_batch())
    if loss == "dcgan":
        values = lab.dcgan_step(gan, real, config)
    else:
        lab.critic_step(gan, real, config)
        loss_g, norm = lab.wgan_generator_step(gan, len(real), config)
        values = {"loss_d": 0.0, "loss_g": loss_g, "grad_norm_g": norm}
    assert changed(generator, gan.generator) and all(map(math.isfinite, values.values()))
    assert lab.generate(gan.generator, lab.fixed_noise(0, 4)).dtype == torch.float32


def test_the_fitted_fade_draws_four_digits_blocky_on_the_old_path_and_sharp_on_the_new():
    old, new = fitted_paths()
    assert old.shape == new.shape == (4, 1, 32, 32)
    assert torch.equal(old[..., ::2, ::2], old[..., 1::2, 1::2])  # 2×2 blocks
    assert bool((new.amax(dim=(1, 2, 3)) > 0.5).all())  # every digit drawn, none left black
    targets = 0.9 * padded_tanh(cached_digits(False).images[:4], 32)
    assert torch.nn.functional.mse_loss(new, targets) < 0.05
