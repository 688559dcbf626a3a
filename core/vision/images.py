"""Pictures the vision labs work on: the shipped paintings and photos (sample_data/images, provenance in
sample_data/README.md) and a student's uploads, checked, converted to RGB, shrunk and kept by content hash
so that a run's spec can name one and a worker on another machine can read it."""
from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageOps
from torchvision.transforms.functional import center_crop, pil_to_tensor, resize, to_pil_image

from core.data.mnist import REPO_ROOT, data_root
from core.errors import UserError
from core.viz import png_bytes

IMAGES = REPO_ROOT / "sample_data" / "images"
MAX_UPLOAD_MB = 20  # as .streamlit/config.toml's server.maxUploadSize
MAX_PIXELS = 40_000_000  # a 40-megapixel photo is fine; a 20000×20000 "decompression bomb" is not
MAX_SIDE = 1024  # uploads are kept at most this long on their longer side: the labs work at ≤ 512 px
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
UPLOAD_KEY = re.compile(r"upload:([0-9a-f]{16})")


@dataclass(frozen=True)
class Shipped:
    file: str
    kind: str  # "painting" or "photo"
    credit: str


SHIPPED = {
    "starry_night": Shipped("starry_night.jpg", "painting", "Vincent van Gogh, The Starry Night (1889), public domain"),
    "scream": Shipped("scream.jpg", "painting", "Edvard Munch, The Scream (1893), public domain"),
    "chelsea": Shipped("chelsea.png", "photo", "Chelsea the cat, Stefan van der Walt, CC0"),
    "astronaut": Shipped("astronaut.png", "photo", "Eileen Collins, NASA, public domain"),
    "coffee": Shipped("coffee.png", "photo", "A cup of coffee, Rachel Michetti, CC0"),
    "rocket": Shipped("rocket.jpg", "photo", "A Falcon 9 launch, SpaceX, public domain"),
    "horses": Shipped("horses.jpg", "photo", "Horses, from Debian's darknet package (GPL-3+/MIT/WTFPL)"),
    "brick": Shipped("brick.png", "photo", "A brick wall texture, scikit-image, CC0"),
}
PAINTINGS = tuple(name for name, item in SHIPPED.items() if item.kind == "painting")
PHOTOS = tuple(name for name, item in SHIPPED.items() if item.kind == "photo")


def uploads_dir() -> Path:
    return data_root() / "uploads"


def checked_upload(data: bytes) -> Image.Image:
    """An uploaded file as an RGB picture at most MAX_SIDE px long, or a UserError that says what is wrong:
    empty, too big, not a PNG/JPEG/WebP, cut short, or more pixels than any photo needs (a decompression
    bomb is refused from its header, before its pixels are decoded)."""
    if not data:
        raise UserError("image.empty", "The file is empty: choose a PNG, JPEG or WebP picture.")
    if len(data) > MAX_UPLOAD_MB * 2**20:
        raise UserError("image.too_big", "The file is larger than {mb} MB: save a smaller copy of it.",
                        mb=MAX_UPLOAD_MB)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data))
            if picture.format not in ACCEPTED_FORMATS:
                raise UserError("image.format", "{format} files are not accepted: choose a PNG, JPEG or WebP "
                                "picture.", format=picture.format or "This kind of")
            if picture.width * picture.height > MAX_PIXELS:
                raise UserError("image.too_many_pixels", "The picture is {width}×{height} pixels, more than the "
                                "{mp} megapixels accepted: save a smaller copy of it.", width=picture.width,
                                height=picture.height, mp=MAX_PIXELS // 1_000_000)
            picture.draft("RGB", (MAX_SIDE, MAX_SIDE))  # a big JPEG decodes at a fraction of its size: faster
            picture = ImageOps.exif_transpose(picture)
            picture.load()
    except UserError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError("image.bomb", "The picture has more pixels than the {mp} megapixels accepted: "
                        "save a smaller copy of it.", mp=MAX_PIXELS // 1_000_000) from None
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError):
        raise UserError("image.unreadable", "This file is not a picture that can be read (not an image, or cut "
                        "short): choose a PNG, JPEG or WebP picture.") from None
    picture = as_rgb(picture)
    picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return picture


def as_rgb(picture: Image.Image) -> Image.Image:
    """Grayscale, palette, CMYK and 16-bit pictures as RGB; a transparent one on a white background."""
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(background, rgba).convert("RGB")
    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        picture = picture.point(lambda value: value / 256).convert("L")
    return picture.convert("RGB")


def save_upload(data: bytes) -> str:
    """Check an upload and keep it (as PNG, named by its content); returns the key a spec names it by."""
    png = png_bytes(checked_upload(data))
    digest = hashlib.sha256(png).hexdigest()[:16]
    path = uploads_dir() / f"{digest}.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
    return f"upload:{digest}"


def is_known(key: str) -> bool:
    match = UPLOAD_KEY.fullmatch(str(key))
    return key in SHIPPED or (match is not None and (uploads_dir() / f"{match[1]}.png").exists())


def check_known(key: str) -> None:
    if not is_known(key):
        raise UserError("image.unknown", "There is no picture {name} here: choose a shipped picture or upload "
                        "yours again.", name=str(key)[:40])


def load_picture(key: str) -> Image.Image:
    """A shipped picture by name, or an upload by its key, as RGB."""
    check_known(key)
    if key in SHIPPED:
        return as_rgb(Image.open(IMAGES / SHIPPED[key].file))
    return as_rgb(Image.open(uploads_dir() / f"{UPLOAD_KEY.fullmatch(key)[1]}.png"))


def square_tensor(key: str, size: int) -> torch.Tensor:
    """The picture's centre square at size × size, as a (1, 3, size, size) float tensor in [0, 1]."""
    pixels = pil_to_tensor(load_picture(key))
    square = center_crop(resize(pixels, size, antialias=True), [size, size])
    return (square.float() / 255).unsqueeze(0)


def tensor_png(picture: torch.Tensor) -> bytes:
    """A (1, 3, H, W) or (3, H, W) tensor in [0, 1] (clamped) as PNG bytes."""
    return png_bytes(to_pil_image(picture.detach().float().cpu().clamp(0, 1).reshape(3, *picture.shape[-2:])))
