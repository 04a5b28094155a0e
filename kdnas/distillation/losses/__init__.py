"""Distillation losses: small modules registered by name, summed with weights from params."""
from kdnas.distillation.losses import (
                                   emd,  # noqa: F401  (registers emd)
                                   intermediate,  # noqa: F401  (registers hidden, attention, attention_relation)
                                   logits,  # noqa: F401  (registers logit_kd, label)
)
from kdnas.distillation.losses.registry import (  # noqa: F401
                                   LOSSES,
                                   WeightedLoss,
                                   attention_implementation,
                                   build_loss,
                                   check_loss_specs,
)
