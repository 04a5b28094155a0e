"""The stages as functions ``(args, params) -> summary line``, one module each
(``kdnas.pipeline.<stage>.<stage>_stage``); ``stages/*.py`` are thin CLIs over them."""
