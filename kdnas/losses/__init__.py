"""Distillation losses: small modules registered by name, summed with weights from params."""
from kdnas.losses.registry import (LOSSES, WeightedLoss, attention_implementation, build_loss,  # noqa: F401
                                   check_loss_specs)
from kdnas.losses import logits  # noqa: F401  (registers logit_kd, label)
from kdnas.losses import intermediate  # noqa: F401  (registers hidden, attention, attention_relation)
from kdnas.losses import emd  # noqa: F401  (registers emd)
