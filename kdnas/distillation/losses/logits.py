"""Output-level losses: logit distillation with temperature, and the task's own label loss."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from kdnas.distillation.losses.registry import LOSSES


@LOSSES.register(key="logit_kd")
class LogitKD(nn.Module):
    """KL divergence between temperature-scaled distributions, times T^2 (Hinton et al., 2015).

    Same gradient as the soft cross-entropy, but zero when the student matches the teacher.

    For regression (STS-B) it is the MSE between student and teacher predictions.
    """

    def __init__(self, temperature: float = 1.0, regression: bool = False, **_):
        super().__init__()
        self.temperature = temperature
        self.regression = regression

    def forward(self, student_out, teacher_out, labels):
        s, t = student_out["logits"], teacher_out["logits"]
        if self.regression:
            return F.mse_loss(s.view(-1), t.view(-1))
        T = self.temperature
        return F.kl_div(F.log_softmax(s / T, dim=-1), F.log_softmax(t / T, dim=-1),
                        log_target=True, reduction="batchmean") * T * T


@LOSSES.register(key="label")
class LabelLoss(nn.Module):
    """Cross-entropy on gold labels (MSE on gold scores for regression)."""

    def __init__(self, regression: bool = False, **_):
        super().__init__()
        self.regression = regression

    def forward(self, student_out, teacher_out, labels):
        logits = student_out["logits"]
        if self.regression:
            return F.mse_loss(logits.view(-1), labels.float().view(-1))
        return F.cross_entropy(logits, labels.long())
