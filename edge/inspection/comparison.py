"""Comparison encoder: cross-attention of each frame location over registered golden-template features.

Like a human inspector holding the golden part next to the inspected one, every location of the frame's
feature map looks at the k templates' features in a small window around the same place (absorbing residual
misplacement after registration). The anomaly of a location is how badly the attention-weighted template
feature explains the frame feature: ``1 - cos(q, sum_j a_j t_j)`` with ``a = softmax(q.t / tau)``. With a small
temperature this is ``1 - max similarity``; with a larger one it is a soft nearest neighbour that tolerates
feature noise. No training is needed for a new SKU.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

INVALID_LOGIT = -1.0e4


class ComparisonOutput(NamedTuple):
    """Outputs of :class:`ComparisonEncoder`; the field names are the ONNX output names."""

    anomaly: torch.Tensor  # [1, 1, h, w], in [0, 2]; 0 where no template content is valid
    valid: torch.Tensor  # [1, 1, h, w], 1 where at least one template location was valid


class ComparisonEncoder(nn.Module):
    """Local-window cross-attention between a frame's features and k registered templates' features.

    Inputs: ``query`` ``[1, C, h, w]``; ``templates`` ``[K, C, h, w]`` (already warped onto the frame);
    ``template_valid`` ``[K, 1, h, w]`` (1 where the warped template has content).
    """

    def __init__(self, window: int = 3, temperature: float = 0.02) -> None:
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be a positive odd number, got {window}")
        self.window = window
        self.temperature = temperature

    def forward(
        self, query: torch.Tensor, templates: torch.Tensor, template_valid: torch.Tensor
    ) -> ComparisonOutput:
        """Compute the anomaly map of ``query`` against ``templates``."""
        r = self.window // 2
        h, w = query.shape[-2], query.shape[-1]
        padded = F.pad(templates, (r, r, r, r))
        padded_valid = F.pad(template_valid, (r, r, r, r))
        keys = []
        masks = []
        # Static slices rather than unfold: exports to plain Slice ops that every backend fuses well.
        for dy in range(self.window):
            for dx in range(self.window):
                keys.append(padded[:, :, dy : dy + h, dx : dx + w])
                masks.append(padded_valid[:, :, dy : dy + h, dx : dx + w])
        key = torch.cat(keys, dim=0)  # [K*W2, C, h, w]
        mask = torch.cat(masks, dim=0)  # [K*W2, 1, h, w]
        sim = (key * query).sum(dim=1, keepdim=True)  # [K*W2, 1, h, w]
        logits = torch.where(mask > 0.5, sim / self.temperature, torch.full_like(sim, INVALID_LOGIT))
        attn = torch.softmax(logits, dim=0)
        attended = (attn * key).sum(dim=0, keepdim=True)  # [1, C, h, w]
        cos = (F.normalize(attended, dim=1) * query).sum(dim=1, keepdim=True)
        valid = mask.amax(dim=0, keepdim=True)
        anomaly = (1.0 - cos) * valid
        return ComparisonOutput(anomaly=anomaly, valid=valid)
