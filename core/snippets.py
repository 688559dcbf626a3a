"""The plain-PyTorch code for what a lab shows, for students to take home."""
from __future__ import annotations

import inspect

from core.gan import cyclegan, dcgan
from core.models import mnist_cnn, upsampling_generator


def mnist_snippet(arch: str, epochs: int, max_lr: float, batch_size: int, optimizer: str) -> str:
    """A script that trains the same model the same way with only torch and torchvision."""
    body = inspect.getsource(mnist_cnn).split('"""', 2)[2]
    model_source = body[body.index("LESSON_CHANNELS"):].strip()  # the models, without their imports
    make_optimizer = (
        f"torch.optim.Adam(model.parameters(), lr={max_lr:g}, betas=(0.9, 0.99))" if optimizer == "adam"
        else f"torch.optim.SGD(model.parameters(), lr={max_lr:g}, momentum=0.9)"
    )
    return f'''import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets, transforms

{model_source}


tfm = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
train = torch.utils.data.DataLoader(datasets.MNIST("data", train=True, download=True, transform=tfm),
                                    batch_size={batch_size}, shuffle=True)
valid = torch.utils.data.DataLoader(datasets.MNIST("data", train=False, download=True, transform=tfm),
                                    batch_size=1000)
model = {arch}()
optimizer = {make_optimizer}
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr={max_lr:g},
                                                total_steps={epochs} * len(train))
for epoch in range({epochs}):
    model.train()
    for images, labels in train:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in valid)
    print(f"epoch {{epoch + 1}}: accuracy {{correct / len(valid.dataset):.2%}}")
'''


def schedule_snippet(phases, iters_per_epoch: int, arch: str, batch_size: int) -> str:
    """Plain PyTorch that follows the same phases: a new optimizer at each boundary, and lr and
    momentum set by the lesson's formulas before every step (what PhaseDriver does)."""
    lines = []
    for phase in phases:
        kind, power = (phase.lr_decay if isinstance(phase.lr_decay, tuple) else (phase.lr_decay, 1.0))
        mom_kind, mom_power = (phase.momentum_decay if isinstance(phase.momentum_decay, tuple) else (phase.momentum_decay, 1.0))
        lr, momentum = phase.lr_span(), phase.momentum_span()
        lines.append(
            f"    dict(epochs={phase.epochs:g}, opt={phase.opt_fn!r}, lr=({lr[0]:g}, {lr[1]:g}), "
            f"lr_decay=({kind.value!r}, {power:g}), mom=({momentum[0]:g}, {momentum[1]:g}), "
            f"mom_decay=({mom_kind.value!r}, {mom_power:g})"
            + (f", size={phase.image_size}" if phase.image_size else "") + "),"
        )
    table = "\n".join(lines)
    return f'''import math

import torch
import torch.nn.functional as F

# model = {arch}()  # see the MNIST lab's code panel; train = a DataLoader with batch_size={batch_size}
iters_per_epoch = {iters_per_epoch}  # len(train)
phases = [
{table}
]


def decayed(start, end, kind, power, i, n):
    """Lesson 13's decay formulas: the value at iteration i of a phase of n iterations."""
    t = i / n
    if kind == "no":
        return start
    if kind == "linear":
        return start + (end - start) * t
    if kind == "cosine":
        return end + (start - end) / 2 * (1 + math.cos(math.pi * t))
    if kind == "exponential":
        return start * (end / start) ** t
    return end + (start - end) * (1 - t) ** power  # polynomial


def make_optimizer(name, params, momentum):
    if name == "adam":
        return torch.optim.Adam(params, betas=(momentum, 0.99))  # Adam's "momentum" is beta1
    if name == "rmsprop":
        return torch.optim.RMSprop(params, momentum=momentum)
    return torch.optim.SGD(params, lr=0.0, momentum=momentum)  # plain SGD: momentum 0


def set_momentum(group, value):
    if "betas" in group:
        group["betas"] = (value, group["betas"][1])
    else:
        group["momentum"] = value


TORCH_CLASS = {{"sgd": "SGD", "sgd_momentum": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}}
batches = iter(())
elapsed = 0.0
done = 0
optimizer = None
for phase in phases:
    elapsed += phase["epochs"]
    n = round(elapsed * iters_per_epoch) - done  # rounded from the running total: no drift
    # A new optimizer only where its class changes (or for RMSprop); otherwise it carries on,
    # momentum buffers and all, as fastai 0.7 did
    if optimizer is None or type(optimizer).__name__ != TORCH_CLASS[phase["opt"]] or phase["opt"] == "rmsprop":
        optimizer = make_optimizer(phase["opt"], model.parameters(), phase["mom"][0])
    for i in range(n):
        for group in optimizer.param_groups:
            group["lr"] = decayed(*phase["lr"], *phase["lr_decay"], i, n)
            set_momentum(group, decayed(*phase["mom"], *phase["mom_decay"], i, n))
        images, labels = next(batches, (None, None))
        if images is None:
            batches = iter(train)
            images, labels = next(batches)
        if "size" in phase:  # progressive resizing
            images = F.interpolate(images, size=phase["size"], mode="bilinear", antialias=True)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    done += n
'''



def rnn_snippet(model: str, epochs: int, max_lr: float, pct_start: float, bs: int, bptt: int, predicts_every_word: bool,
                keeps_state: bool) -> str:
    """Plain PyTorch that writes out the data and trains the same language model the same way (run it
    after the model's own code, shown beside it); fixed-length batches, where the app may randomise them."""
    loss = ("F.cross_entropy(model(x).flatten(0, 1), y.flatten())  # every word of the target"
            if predicts_every_word else "F.cross_entropy(model(x), y[-1])  # the lesson's loss4: the last word only")
    reset = "    model.reset()  # each epoch reads the stream from its top\n" if keeps_state else ""
    return f'''ONES = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen").split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def words(n):  # 8123 -> eight thousand one hundred twenty three
    out = []
    for size, name in ((1000, "thousand"), (100, "hundred")):
        if n >= size:
            out, n = out + [ONES[n // size - 1], name], n % size
    if n >= 20:
        out, n = out + [TENS[n // 10 - 2]], n % 10
    return out + [ONES[n - 1]] * (n > 0)


tokens = ["xxbos"] + [word for n in range(1, 8001) for word in [","] * (n > 1) + words(n)]
vocab = sorted(set(tokens))  # 31 words; the model's embedding has room for the lesson's 38
ids = torch.tensor([vocab.index(token) for token in tokens])

# the stream cut into {bs} columns read top to bottom; batches of {bptt} rows (the app can randomise the lengths)
columns = ids[:len(ids) // {bs} * {bs}].view({bs}, -1).t()  # (rows, bs)
n = len(columns) - 1  # the last row is only ever a target
batches = [(columns[i:i + {bptt}][:n - i], columns[i + 1:i + 1 + {bptt}]) for i in range(0, n, {bptt})]

model = {model}()
optimizer = torch.optim.AdamW(model.parameters(), lr={max_lr:g}, betas=(0.9, 0.99), weight_decay=0.01)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr={max_lr:g}, pct_start={pct_start:g},
                                                total_steps={epochs} * len(batches))
for epoch in range({epochs}):
{reset}    for x, y in batches:  # x, y: ({bptt}, {bs}) word ids, y = x one word further on
        loss = {loss}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    print(f"epoch {{epoch + 1}}: training loss {{loss.item():.3f}}")
'''


def conv_snippet(settings, transposed: bool) -> str:
    """The torch layer for the lab's one-channel (transposed) convolution, applied to a tensor of the
    lab's input size, with the output size it prints."""
    s = settings
    if transposed:
        layer = (f"nn.ConvTranspose2d(1, 1, kernel_size={s.kernel}, stride={s.stride}, padding={s.padding}, "
                 f"output_padding={s.output_padding}, dilation={s.dilation}, bias=False)")
        size = s.transpose_size()
        functional = (f"F.conv_transpose2d(x, layer.weight, stride={s.stride}, padding={s.padding}, "
                      f"output_padding={s.output_padding}, dilation={s.dilation})")
    else:
        layer = (f"nn.Conv2d(1, 1, kernel_size={s.kernel}, stride={s.stride}, padding={s.padding}, "
                 f"dilation={s.dilation}, bias=False)")
        size = s.conv_size()
        functional = f"F.conv2d(x, layer.weight, stride={s.stride}, padding={s.padding}, dilation={s.dilation})"
    return f'''import torch
import torch.nn.functional as F
from torch import nn

layer = {layer}
x = torch.randn(1, 1, {s.n}, {s.n})  # (batch, channels, height, width)
print(layer(x).shape)  # torch.Size([1, 1, {size}, {size}])
print(torch.allclose(layer(x), {functional}))  # the same thing as a function: True
'''


def sheet_snippet(x, kernel) -> str:
    """Lesson 12's spreadsheet deconvolution in plain PyTorch, for the lab's input and kernel: the same fit
    as ``core.conv_grids.spreadsheet_fit``."""
    return f'''import torch
import torch.nn.functional as F

x = torch.tensor({x.tolist()}, dtype=torch.float64)  # the 4×4 input
kernel = torch.tensor({kernel.tolist()}, dtype=torch.float64)
small = F.conv2d(x[None, None], kernel[None, None])  # 4×4 → 2×2
scale = small.abs().max().clamp(min=1)  # the same steps whatever the numbers' size
weights = torch.zeros(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)  # the Solver's 9 cells
optimizer = torch.optim.Adam([weights], lr=0.05)
schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 300)
for step in range(300):
    rebuilt = F.conv2d(small / scale, weights, padding=2)[0, 0]  # the 2×2 padded by 2, then 3×3: 4×4
    loss = (rebuilt - x).abs().sum()  # L1 over the 16 cells
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
print(f"L1 error {{loss.item():.1f}}; filter:\\n{{(weights / scale)[0, 0].detach()}}")
'''


def upsampler_snippet() -> str:
    """The five generators of the checkerboard comparison: core/models/upsampling_generator.py as it is."""
    return inspect.getsource(upsampling_generator)


def gan_step_snippet(loss: str) -> str:
    """The training step the GAN lab runs, as it is in core/gan/dcgan.py: DCGAN's, or WGAN's critic step,
    its rule for how many, and its generator step."""
    functions = ((dcgan.update, dcgan.dcgan_step) if loss == "dcgan" else
                 (dcgan.update, dcgan.clip_, dcgan.critic_step, dcgan.critic_steps, dcgan.wgan_generator_step))
    return "\n\n".join(inspect.getsource(function) for function in functions)


def cyclegan_step_snippet() -> str:
    """CycleGAN's losses and training step, as they are in core/gan/cyclegan.py."""
    return "\n\n".join(inspect.getsource(function) for function in (
        cyclegan.lsgan_loss, cyclegan.cycle_loss, cyclegan.identity_loss, cyclegan.generator_losses,
        cyclegan.discriminator_loss, cyclegan.train_step))


def bias_snippet(by: str, threshold: int) -> str:
    """The COMPAS tab's numbers in plain pandas and fairlearn: ProPublica's filter, a cross-tab and the error rates."""
    return f'''import pandas as pd
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate

raw = pd.read_csv("compas-scores-two-years.csv")  # ProPublica's file (github.com/propublica/compas-analysis)
people = raw[raw.days_b_screening_arrest.between(-30, 30) & (raw.is_recid != -1)
             & (raw.c_charge_degree != "O") & (raw.score_text != "N/A")]   # 6,172 people

print(pd.crosstab([people.{by}, people.score_text], people.two_year_recid, normalize="index"))

frame = MetricFrame(metrics={{"fpr": false_positive_rate, "fnr": false_negative_rate}},
                    y_true=people.two_year_recid, y_pred=people.decile_score >= {threshold},
                    sensitive_features=people.{by})
print(frame.by_group)   # did not reoffend but labelled higher risk (fpr); reoffended but labelled lower (fnr)
'''


def style_snippet(backbone: str, content_weight: float, style_weight: float, layer_weights, optimizer: str,
                  lr: float, size: int, steps: int) -> str:
    """The loss on screen and its optimisation in plain torch and torchvision (content and style images are
    yours to load as (1, 3, size, size) tensors in [0, 1])."""
    from core.vision.backbone import BLOCK_ENDS
    network = ("torchvision.models.vgg16_bn(weights='IMAGENET1K_V1').features" if backbone == "vgg16_bn" else
               "torchvision.models.mobilenet_v2(weights='IMAGENET1K_V1').features")
    make = (f"torch.optim.LBFGS([picture], lr={lr:g})" if optimizer == "lbfgs" else
            f"torch.optim.Adam([picture], lr={lr:g})")
    return f'''import torch
import torch.nn.functional as F
import torchvision

net = {network}.eval().requires_grad_(False)
block_ends = {list(BLOCK_ENDS[backbone])}  # the last layer before each drop in resolution
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def features(x):  # forward hooks, removed again afterwards
    saved, hooks = {{}}, [net[i].register_forward_hook(lambda m, inp, out, i=i: saved.__setitem__(i, out))
                          for i in block_ends]
    try:
        net[: block_ends[-1] + 1]((x - mean) / std)
    finally:
        for hook in hooks:
            hook.remove()
    return [saved[i] for i in block_ends]


def gram(x):  # (B, C, H, W) -> (B, C, C) = F·Fᵀ / (C·H·W)
    b, c, h, w = x.shape
    f = x.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


# content, style = your two pictures, (1, 3, {size}, {size}) in [0, 1]
with torch.no_grad():
    content_target = features(content)[3]
    style_targets = [gram(f) for f in features(style)]
layer_weights = {list(layer_weights)}
picture = torch.rand(1, 3, {size}, {size}).div(2).requires_grad_(True)
optimizer = {make}


def closure():
    optimizer.zero_grad()
    found = features(picture)
    content_loss = {content_weight:g} * F.mse_loss(found[3], content_target)
    style_loss = sum({style_weight:g} * w * F.mse_loss(gram(f), g)
                     for f, g, w in zip(found, style_targets, layer_weights))
    loss = content_loss + style_loss
    loss.backward()
    return loss


for step in range({steps if optimizer == "adam" else max(1, steps // 20)}):
    optimizer.step(closure)
'''


def restore_snippet(stage: str, backbone: str) -> str:
    """The loss of one stage of the restoration lab in plain torch and torchvision, and its training step
    (``model`` is the U-Net, ``batches`` yields (crappy, original) pairs in [0, 1])."""
    from core.vision.backbone import BLOCK_ENDS
    from core.vision.feature_loss import LESSON_LAYERS, WEIGHTS
    if stage == "mse":
        return '''import torch
import torch.nn.functional as F

optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3, betas=(0.9, 0.99))
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=len(batches), pct_start=0.8)
for crappy, original in batches:
    loss = F.mse_loss(model(crappy), original)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
'''
    if stage == "gan":
        return '''import torch
import torch.nn.functional as F

bce = F.binary_cross_entropy_with_logits
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
g_opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4, betas=(0.0, 0.99))
c_opt = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.0, 0.99))
training = "generator"
for crappy, original in batches:
    if training == "critic":
        real, fake = critic((original - mean) / std), critic((model(crappy).detach() - mean) / std)
        loss = (bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))) / 2
        c_opt.zero_grad(); loss.backward(); c_opt.step()
        if loss.item() < 0.65:  # AdaptiveGANSwitcher(critic_thresh=0.65)
            training = "generator"
    else:
        restored = model(crappy)
        verdict = critic((restored - mean) / std)
        loss = 1 * bce(verdict, torch.ones_like(verdict)) + 50 * F.mse_loss(restored, original)
        g_opt.zero_grad(); loss.backward(); g_opt.step()
        training = "critic"  # after every generator step
'''
    network = ("torchvision.models.vgg16_bn(weights='IMAGENET1K_V1').features" if backbone == "vgg16_bn" else
               "torchvision.models.mobilenet_v2(weights='IMAGENET1K_V1').features")
    layers = [BLOCK_ENDS[backbone][i] for i in LESSON_LAYERS]
    feature_weights, gram_weights = WEIGHTS[backbone]
    return f'''import torch
import torch.nn.functional as F
import torchvision

net = {network}.eval().requires_grad_(False)
layers = {layers}  # just before three of the drops in resolution
feature_weights, gram_weights = {list(feature_weights)}, {[float(f"{w:.4g}") for w in gram_weights]}
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def features(x):
    saved, hooks = {{}}, [net[i].register_forward_hook(lambda m, inp, out, i=i: saved.__setitem__(i, out))
                          for i in layers]
    try:
        net[: layers[-1] + 1]((x - mean) / std)
    finally:
        for hook in hooks:
            hook.remove()
    return [saved[i] for i in layers]


def gram(x):
    b, c, h, w = x.shape
    f = x.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def feature_loss(restored, original):
    with torch.no_grad():
        wanted = features(original)
    found = features(restored)
    return (F.l1_loss(restored, original)
            + sum(w * F.l1_loss(a, b) for a, b, w in zip(found, wanted, feature_weights))
            + sum(w * F.l1_loss(gram(a), gram(b)) for a, b, w in zip(found, wanted, gram_weights)))


optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3, betas=(0.9, 0.99))
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=len(batches), pct_start=0.8)
for crappy, original in batches:
    loss = feature_loss(model(crappy), original)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
'''
