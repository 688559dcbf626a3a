"""Lesson 7's feature loss (perceptual loss, Johnson et al. 2016), written out as the lesson does: the L1
distance between the pixels, plus the L1 distance between a frozen ImageNet network's activations of the two
pictures just before three of its resolution drops (VGG16-BN's layers 22, 32 and 42, weighted 5, 15 and 2), plus
the L1 distance between those activations' Gram matrices, weighted by the square of the layer's weight × 5e3 (for
MobileNetV2, weights chosen to give the same proportions: see WEIGHTS).
The hooks and the Gram matrix are the style lab's."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.vision.backbone import Backbone, normalise
from core.vision.style import SaveFeatures, gram_matrix

LESSON_LAYERS = (2, 3, 4)  # of the backbone's five block ends: VGG16-BN's [22, 32, 42]
LESSON_LAYER_WEIGHTS = (5.0, 15.0, 2.0)
LESSON_GRAM_SCALE = 5e3
# (feature weights, Gram weights) per network. VGG16-BN's are the lesson's (the Gram weight is w² × 5e3).
# MobileNetV2's activations are on another scale, so its weights were chosen to give the same proportions at the
# start of training, measured between bicubic-upsampled crappy crops and their originals (64 px, 24 held-out
# crops): the feature terms together about 5 times the pixel term, split 5 : 15 : 2 as the lesson's, and the
# Gram terms together about 4 times the feature terms, split the same way, as in the lesson's first epochs.
WEIGHTS = {
    "vgg16_bn": (LESSON_LAYER_WEIGHTS, tuple(w ** 2 * LESSON_GRAM_SCALE for w in LESSON_LAYER_WEIGHTS)),
    "mobilenet_v2": ((0.08, 0.3, 0.08), (35.0, 330.0, 300.0)),
}


class FeatureLoss(nn.Module):
    """``loss(restored, original)`` → the total; ``parts`` keeps the last call's pixel, feature and Gram terms
    (weighted, as floats) for the charts."""

    def __init__(self, backbone: Backbone, layers: tuple[int, ...] = LESSON_LAYERS,
                 weights: tuple[tuple[float, ...], tuple[float, ...]] | None = None):
        super().__init__()
        self.backbone = backbone
        self.layer_weights, self.gram_weights = weights or WEIGHTS[backbone.name]
        self.modules_watched = [backbone.features[backbone.block_ends[i]] for i in layers]
        self.parts: dict[str, float] = {}

    def features(self, pictures: torch.Tensor) -> list[torch.Tensor]:
        with SaveFeatures(self.modules_watched) as saved:
            self.backbone.features(normalise(pictures))
        return [f.float() for f in saved.features]

    def forward(self, restored: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.features(original)
        found = self.features(restored)
        pixel = F.l1_loss(restored.float(), original.float())
        feature_terms = [w * F.l1_loss(a, b) for a, b, w in zip(found, wanted, self.layer_weights)]
        gram_terms = [w * F.l1_loss(gram_matrix(a), gram_matrix(b))
                      for a, b, w in zip(found, wanted, self.gram_weights)]
        total = pixel + sum(feature_terms) + sum(gram_terms)
        self.parts = {"pixel": pixel.item(), "features": sum(feature_terms).item(), "gram": sum(gram_terms).item()}
        return total
