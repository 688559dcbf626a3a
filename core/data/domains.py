"""The two unpaired image domains the CycleGAN of Lesson 12 translates between.

The lesson uses horse2zebra (1,067 horses, 1,334 zebras, 256 px), which has to be downloaded. Offline, the
default is a SYNTHETIC pair made from the shipped MNIST digits: plain digits (A) and "zebra digits" (B), digits
whose strokes are striped black and off-white on a savanna-coloured ground. A and B come from different halves of
the training set, so no picture of A has its counterpart in B: the pair is unpaired, as horses and zebras are.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from core.data.mnist import data_root, denormalise
from core.errors import UserError
from core.mnist_lab import cached_digits

SOURCES = ("synthetic", "horse2zebra")
HORSE2ZEBRA_URL = "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/horse2zebra.zip"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PADDED = 32  # MNIST's 28 px padded to 32: a multiple of 4, as the generator needs
STRIPE_PERIOD = 4  # px at 32 px: one black and one off-white stripe, each 2 px wide
STRIPES = torch.tensor([[0.0, 0.0, 0.0], [0.96, 0.94, 0.86]])  # black, off-white
SAVANNA = torch.tensor([0.55, 0.58, 0.25])  # dry grass: green-brown


@dataclass
class Domains:
    """Pictures of the two domains, (N, 3, S, S) each in [-1, 1]. ``a_ids``/``b_ids``: the MNIST training
    digits each synthetic picture was made from (None for pictures read from a folder)."""

    a: torch.Tensor
    b: torch.Tensor
    name: str
    synthetic: bool
    names: tuple[str, str] = ("digits", "zebra digits")
    a_ids: torch.Tensor | None = None
    b_ids: torch.Tensor | None = None


# ----- the synthetic pair --------------------------------------------------------------------------------
def ink_of(digits: torch.Tensor, size: int) -> torch.Tensor:
    """How much ink each pixel holds (N, 1, size, size) in [0, 1]: padded to 32, then resized."""
    ink = F.pad(denormalise(digits), [(PADDED - 28) // 2] * 4)
    if size != PADDED:
        ink = F.interpolate(ink, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return ink.clamp(0, 1)


def stripes(size: int) -> torch.Tensor:
    """Diagonal stripes (3, size, size) in [0, 1], their period growing with the picture (4 px at 32 px)."""
    period = max(2, round(STRIPE_PERIOD * size / PADDED))
    rows, columns = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    which = ((rows + columns) % period >= period // 2).long()
    return STRIPES[which].permute(2, 0, 1)


def zebra_digits(ink: torch.Tensor) -> torch.Tensor:
    """Striped strokes on the savanna: each pixel mixes the stripe and the ground by its ink."""
    size = ink.shape[-1]
    return ink * stripes(size) + (1 - ink) * SAVANNA.view(3, 1, 1)


def synthetic_pair(size: int = PADDED, count: int = 2000, seed: int = 0) -> Domains:
    """SYNTHETIC domains: ``count`` plain digits (A, white on black, grey in 3 channels) from the first half of the
    MNIST training set, and ``count`` zebra digits (B) from the second half. The same pictures for the same seed."""
    digits = cached_digits(True).images
    half = len(digits) // 2
    count = min(count, half)
    draw = torch.Generator().manual_seed(seed)
    a_ids = torch.randperm(half, generator=draw)[:count]
    b_ids = half + torch.randperm(len(digits) - half, generator=draw)[:count]
    a = ink_of(digits[a_ids], size).expand(-1, 3, -1, -1)
    b = zebra_digits(ink_of(digits[b_ids], size))
    return Domains(a * 2 - 1, b * 2 - 1, "synthetic", True, ("digits", "zebra digits"), a_ids, b_ids)


# ----- horse2zebra ---------------------------------------------------------------------------------------
def horse2zebra_folder() -> Path:
    return data_root() / "horse2zebra"


# Appended to every message about a missing folder; its holes stay holes, so that a translation can place them.
HINT = (" Download {url} on a machine with internet access and unzip it so that {target} holds trainA/ (horses) "
        "and trainB/ (zebras).")


def hint_params() -> dict:
    return {"url": HORSE2ZEBRA_URL, "target": str(horse2zebra_folder())}


def download_horse2zebra() -> Path:
    """The online path only: fetch and unpack the CycleGAN release's horse2zebra.zip into data_root()."""
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(HORSE2ZEBRA_URL, download_root=str(data_root()))
    except (OSError, RuntimeError) as error:  # URLError and timeouts are OSErrors; a bad checksum a RuntimeError
        raise UserError("cyclegan.offline", "horse2zebra could not be downloaded ({error}): this machine seems to "
                        "be offline." + HINT, error=str(error)[:200], **hint_params()) from None
    return horse2zebra_folder()


def readable_images(paths: list[Path], size: int) -> list[torch.Tensor]:
    """Each picture whose file can be read, resized (short side) and centre-cropped to ``size``, in [-1, 1];
    a broken file is skipped, as one bad jpg should not stop a run."""
    prepare = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(),
                                  transforms.Normalize([0.5] * 3, [0.5] * 3)])
    pictures = []
    for path in paths:
        try:
            with Image.open(path) as picture:
                pictures.append(prepare(picture.convert("RGB")))
        except (OSError, ValueError, Image.DecompressionBombError):  # unreadable, truncated or enormous
            continue
    return pictures


def folder_images(folder: Path, part: str, size: int, count: int, seed: int) -> torch.Tensor:
    where = folder / part
    if not where.is_dir():
        raise UserError("cyclegan.no_part", "{folder} has no {part} folder." + HINT, folder=str(folder),
                        part=part, **hint_params())
    paths = sorted(path for path in where.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    order = torch.randperm(len(paths), generator=torch.Generator().manual_seed(seed)).tolist()
    pictures = readable_images([paths[i] for i in order[:count]], size)
    if not pictures:
        raise UserError("cyclegan.no_images", "{where} holds no readable picture (.jpg or .png)." + HINT,
                        where=str(where), **hint_params())
    return torch.stack(pictures)


def folder_pair(folder: Path, size: int = 256, count: int = 2000, seed: int = 0) -> Domains:
    """Up to ``count`` pictures of trainA and of trainB (the CycleGAN release's layout), drawn by ``seed``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError("cyclegan.no_folder", "The folder {folder} is missing." + HINT, folder=str(folder),
                        **hint_params())
    a, b = (folder_images(folder, part, size, count, seed) for part in ("trainA", "trainB"))
    return Domains(a, b, folder.name, False, ("horses", "zebras"))


def load_domains(source: str, size: int, count: int, seed: int) -> Domains:
    if source == "synthetic":
        return synthetic_pair(size, count, seed)
    if source == "horse2zebra":
        return folder_pair(horse2zebra_folder(), size, count, seed)
    raise UserError("cyclegan.bad_source", "Unknown picture source {source}: choose one of {sources}.",
                    source=source, sources=", ".join(SOURCES))
