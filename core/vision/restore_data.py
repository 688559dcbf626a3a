"""The restoration lab's data: good photographs, each crappified as a whole (core.vision.crappify) and brought back
to its size by bicubic upsampling (the naive restoration the model has to beat), cut into square crops at the
same places as the original. Training and validation crops come from different photos, so that a validation score is
measured on pictures the model has never seen a part of."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from core.data.mnist import REPO_ROOT, data_root
from core.errors import UserError
from core.vision.crappify import Recipe, crappify
from core.vision.images import IMAGES, as_rgb

SHIPPED = "shipped"
PHOTOS = REPO_ROOT / "sample_data" / "photos"
# Shipped photos (provenance in sample_data/README.md): those of sample_data/photos and the style lab's photos.
STYLE_LAB_PHOTOS = ("astronaut.png", "coffee.png", "rocket.jpg", "horses.jpg", "chelsea.png")
SHIPPED_FILES = (*sorted(PHOTOS.glob("*.jpg")), *(IMAGES / name for name in STYLE_LAB_PHOTOS))
VALIDATION_PHOTOS = ("chelsea", "butterfly", "home")  # held out: a cat, an insect on leaves, a building
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_FOLDER_PHOTOS = 4
MAX_FOLDER_PHOTOS = 2000
PHOTO_SIDE_PER_CROP = 4  # photos are shrunk (never enlarged) to 4 crops on their short side before cutting


def folders_dir() -> Path:
    """Where a user puts folders of their own photos: data/photos/<name>/ (or $PLAYGROUND_DATA/photos)."""
    return data_root() / "photos"


def own_folders() -> list[str]:
    root = folders_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def photo_files(photos: str) -> list[Path]:
    """The picture files of ``photos``: the shipped set, or one of ``own_folders()`` (by name only, so a link
    cannot make the server read anywhere else)."""
    if photos == SHIPPED:
        return list(SHIPPED_FILES)
    if photos not in own_folders():
        raise UserError("restore.no_folder", "There is no folder {name} in {root}: put a folder of photos there, "
                        "or choose the shipped photos.", name=str(photos)[:60], root=str(folders_dir()))
    files = sorted(p for p in (folders_dir() / photos).iterdir() if p.suffix.lower() in PICTURE_SUFFIXES)
    if len(files) < MIN_FOLDER_PHOTOS:
        raise UserError("restore.few_photos", "The folder {name} has {count} pictures (PNG, JPEG or WebP): it needs "
                        "at least {least}.", name=photos, count=len(files), least=MIN_FOLDER_PHOTOS)
    return files[:MAX_FOLDER_PHOTOS]


def split(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(training, validation) photos: the shipped set holds out VALIDATION_PHOTOS; a folder holds out every
    fifth photo in name order (at least one)."""
    if all(f in SHIPPED_FILES for f in files):
        return [f for f in files if f.stem not in VALIDATION_PHOTOS], [f for f in files if f.stem in VALIDATION_PHOTOS]
    held_out = files[4::5] or files[-1:]
    return [f for f in files if f not in held_out], held_out


def read_photo(path: Path) -> Image.Image | None:
    """The photo as RGB, or None when the file cannot be read (a user's folder may hold a broken one)."""
    try:
        with Image.open(path) as picture:
            picture.draft("RGB", (2048, 2048))
            return as_rgb(picture)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


@dataclass
class Pairs:
    crappy: torch.Tensor  # (N, 3, S, S) float in [0, 1]: the crappified crop, bicubic-upsampled back to S
    original: torch.Tensor  # (N, 3, S, S) float in [0, 1]
    photos: int  # how many photos the crops were cut from
    skipped: int = 0  # unreadable files passed over


def at_crop_scale(picture: Image.Image, size: int) -> Image.Image:
    """The photo shrunk (never enlarged, unless a crop would not fit) to PHOTO_SIDE_PER_CROP crops of ``size`` on its
    short side: the scale at which the lab crappifies, trains and restores."""
    scale = min(1.0, PHOTO_SIDE_PER_CROP * size / min(picture.size))
    scale = max(scale, size / min(picture.size))  # a small photo of a user's: enlarged until a crop fits
    if scale == 1:
        return picture
    return picture.resize((max(size, round(picture.width * scale)), max(size, round(picture.height * scale))),
                          Image.Resampling.LANCZOS)


def to_tensor(picture: Image.Image) -> torch.Tensor:
    return pil_to_tensor(picture).float() / 255


def bicubic_up(crappy: Image.Image, height: int, width: int) -> torch.Tensor:
    """The crappy picture at ``height`` × ``width`` by bicubic upsampling: the baseline every restorer must beat."""
    return F.interpolate(to_tensor(crappy).unsqueeze(0), size=(height, width), mode="bicubic",
                         align_corners=False).clamp(0, 1)[0]


def photo_recipe(recipe: Recipe, picture: Image.Image, shrink: float) -> Recipe:
    """The recipe for a whole photo: its short side to ``shrink`` of the photo's (the lesson: 96 px for 128)."""
    return Recipe(max(8, round(min(picture.size) * shrink)), recipe.quality_low, recipe.quality_high, recipe.number)


def crappy_twin(picture: Image.Image, recipe: Recipe, shrink: float, seed: int) -> torch.Tensor:
    """The photo crappified as a whole, as the lesson does (one number, one JPEG quality), then brought back to
    its size by bicubic upsampling: (3, H, W) in [0, 1]."""
    crappy = crappify(picture, photo_recipe(recipe, picture, shrink), seed).picture
    return bicubic_up(crappy, picture.height, picture.width)


def make_pairs(files: list[Path], size: int, count: int, recipe: Recipe, shrink: float, seed: int) -> Pairs:
    """``count`` crops of ``size`` px spread evenly over the readable photos (each at ``at_crop_scale``), cut at
    the same place from the photo and from a crappified twin of the whole photo (drawn anew for each crop, so
    that the numbers and JPEG qualities vary), flipped half of the time: the same pairs for the same arguments."""
    draw = random.Random(seed)
    photos = [p for p in (read_photo(f) for f in files) if p is not None]
    if not photos:
        raise UserError("restore.no_readable_photos", "None of the photos could be read: choose another folder.")
    per_photo = [count // len(photos) + (i < count % len(photos)) for i in range(len(photos))]
    crappy, original = [], []
    for photo, n in zip(photos, per_photo):
        photo = at_crop_scale(photo, size)
        pixels = to_tensor(photo)
        for _ in range(n):
            twin = crappy_twin(photo, recipe, shrink, draw.randrange(2**31))
            top, left = draw.randint(0, photo.height - size), draw.randint(0, photo.width - size)
            box = (slice(None), slice(top, top + size), slice(left, left + size))
            flip = [2] if draw.random() < 0.5 else []
            crappy.append(twin[box].flip(flip))
            original.append(pixels[box].flip(flip))
    if not original:
        raise UserError("restore.no_crops", "No crops could be cut: ask for more crops.")
    return Pairs(torch.stack(crappy), torch.stack(original), len(photos), len(files) - len(photos))
