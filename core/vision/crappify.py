"""Lesson 7's crappifier, which makes the training pairs of the restoration lab out of good photos: shrink the
picture (short side to 96 px, bilinear), write a random number at a random place in its top-left quarter, and
save it as a JPEG of random quality in [10, 70] (the number written is that quality, as in the lesson's
``crappify``). A fixed seed draws the same number, place and quality again."""
from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from core import specs
from core.errors import UserError

LESSON_SHORT_SIDE = 96
LESSON_QUALITY = (10, 70)
MIN_SHORT_SIDE, MAX_SHORT_SIDE = 8, 1024
MAX_QUALITY = 95  # Pillow's advice: above 95 a JPEG only grows
NUMBER_HEIGHT_SHARE = 0.12  # the lesson's bitmap font was ~11 px tall on a 96-px picture
MIN_FONT_PX = 6


@dataclass(frozen=True)
class Recipe:
    short_side: int = LESSON_SHORT_SIDE
    quality_low: int = LESSON_QUALITY[0]
    quality_high: int = LESSON_QUALITY[1]
    number: bool = True  # write the quality on the picture

    def checked(self) -> "Recipe":
        """The recipe itself, or a UserError that says what to change."""
        specs.check_whole_numbers(self, ("short_side", "quality_low", "quality_high"))
        specs.check_ranges((("short_side", self.short_side, MIN_SHORT_SIDE, MAX_SHORT_SIDE),
                            ("quality_low", self.quality_low, 1, MAX_QUALITY),
                            ("quality_high", self.quality_high, 1, MAX_QUALITY)))
        if self.quality_low > self.quality_high:
            raise UserError("crappify.quality_order", "The lowest JPEG quality ({low}) is above the highest "
                            "({high}): swap them.", low=self.quality_low, high=self.quality_high)
        return self


@dataclass(frozen=True)
class Crappified:
    picture: Image.Image  # RGB, at the recipe's size, as decoded from the JPEG
    quality: int
    position: tuple[int, int] | None  # where the number was written (None: no number)
    jpeg_bytes: int


def crappify(picture: Image.Image, recipe: Recipe = Recipe(), seed: int = 0) -> Crappified:
    """The lesson's ``crappify`` of one RGB picture, drawn from ``seed``."""
    recipe.checked()
    draw = random.Random(seed)
    ratio = recipe.short_side / min(picture.size)
    small = picture.convert("RGB").resize((max(1, round(picture.width * ratio)), max(1, round(picture.height * ratio))),
                                          Image.Resampling.BILINEAR)
    quality = draw.randint(recipe.quality_low, recipe.quality_high)
    position = None
    if recipe.number:
        position = (draw.randint(0, small.width // 2), draw.randint(0, small.height // 2))
        font = ImageFont.load_default(size=max(MIN_FONT_PX, round(NUMBER_HEIGHT_SHARE * min(small.size))))
        ImageDraw.Draw(small).text(position, str(quality), fill=(255, 255, 255), font=font)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=quality)
    jpeg = buffer.getvalue()
    return Crappified(Image.open(io.BytesIO(jpeg)).convert("RGB"), quality, position, len(jpeg))
