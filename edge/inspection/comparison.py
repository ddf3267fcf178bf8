"""Comparison encoder: cross-attention of each frame location over registered golden-template features.

Like a human inspector holding the golden part next to the inspected one, every location of the frame's
feature map looks at the k templates' features in a small window around the same place (absorbing residual
misplacement after registration). The anomaly of a location is how badly the attention-weighted template
feature ``v = sum_j a_j t_j`` explains the frame feature ``q``: ``1 - q.v`` with ``a = softmax(q.t / tau)``.
With a small temperature this is ``1 - max similarity``; with a larger one a soft nearest neighbour that
tolerates feature noise. No training is needed for a new SKU.
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
        sims = []
        masks = []
        # One similarity map per window offset, computed from static slices (plain Slice ops that every
        # backend fuses well); the [K*W2, C, h, w] key tensor is never materialised.
        for dy in range(self.window):
            for dx in range(self.window):
                key = padded[:, :, dy : dy + h, dx : dx + w]
                sims.append((key * query).sum(dim=1, keepdim=True))  # [K, 1, h, w]
                masks.append(padded_valid[:, :, dy : dy + h, dx : dx + w])
        sim = torch.cat(sims, dim=0)  # [K*W2, 1, h, w]
        mask = torch.cat(masks, dim=0)
        logits = torch.where(mask > 0.5, sim / self.temperature, torch.full_like(sim, INVALID_LOGIT))
        attn = torch.softmax(logits, dim=0)
        # q . v with v = sum_j a_j t_j (the attended template feature) equals sum_j a_j (q . t_j).
        explained = (attn * sim).sum(dim=0, keepdim=True)
        valid = mask.amax(dim=0, keepdim=True)
        anomaly = (1.0 - explained) * valid
        return ComparisonOutput(anomaly=anomaly, valid=valid)
