"""The seven stages as functions ``(args, params) -> summary line``; ``stages/*.py`` are thin CLIs over them."""
from kdnas.pipeline.teacher import teacher_stage  # noqa: F401
from kdnas.pipeline.proxy import proxy_stage  # noqa: F401
from kdnas.pipeline.search import search_stage  # noqa: F401
from kdnas.pipeline.distill_topk import distill_topk_stage  # noqa: F401
from kdnas.pipeline.latency import latency_stage  # noqa: F401
from kdnas.pipeline.distill_full import distill_full_stage  # noqa: F401
from kdnas.pipeline.evaluate import evaluate_stage  # noqa: F401
