"""Does a higher learning rate make the proxy rank like full distillation? (#13)

The proxy (``search`` and ``distill_topk`` blocks: one or two epochs on 500-2,000 rows per task) stops long
before the students converge: at lr 1e-4 its STS-B Pearson is 0.25-0.38 where full distillation reaches
0.78, and CoLA's Matthews is 0-0.09. A higher rate takes it further in the same steps. This bench scores the
architectures of ``bench/proxy_ranking.py`` (whose full-distillation targets, ``proxy_ranking_full.csv``, it
reuses) at one budget with the learning rate changed, and sets the new signal beside the old ones against the
same targets (Kendall's tau, Spearman's rho and regret, over all of them and over the best by the search's
proxy), with that bench's own functions. Score signals are rescored over the params' search tasks from their
per-task scores (``proxy_ranking.rescored``), so rows scored beside a task the default has since dropped (RTE,
2026-12-07) still rank today's multi-task score, against today's GLUE score.

    .venv/bin/python bench/proxy_lr.py --budget topk --lr 5e-4      # about 10 minutes on 2 cores
    .venv/bin/python bench/proxy_lr.py --only analyse
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path

import pandas as pd
import yaml
from proxy_ranking import (
    ARCHS_CSV,
    BUDGETS,
    FULL_CSV,
    AppendOnlyTable,
    Paths,
    pipeline_arguments,
    print_agreement,
    proxy_phase,
    rank_agreement,
    rescored,
    targets_table,
    teacher_proxy_scores,
)
from proxy_ranking import PROXY_CSV as RANKING_PROXY_CSV

log = logging.getLogger("proxy_lr")
PROXY_CSV, RANKING_CSV = "proxy_lr_proxy.csv", "proxy_lr.csv"


def with_lr(params: dict, budget: str, lr: float) -> dict:
    """``params`` with the budget's block trained at ``lr``."""
    changed = copy.deepcopy(params)
    changed[BUDGETS[budget]]["lr"] = lr
    return changed


def main() -> None:
    parser = pipeline_arguments(__doc__.splitlines()[0], "bench/work/proxy_lr")
    parser.add_argument("--budget", choices=list(BUDGETS), default="topk")
    parser.add_argument("--lr", type=float, nargs="*", default=[5e-4])
    parser.add_argument("--top", type=int, default=8, help="the subset of the best trials by the search's proxy")
    parser.add_argument("--only", nargs="*", choices=["proxy", "analyse"], default=["proxy", "analyse"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    params = yaml.safe_load(open(args.params))
    out = Path(args.out)
    paths = Paths(params, Path(args.results), Path(args.metrics))
    # proxy_ranking's architectures and signals, in the search's order (its proxy score, best first)
    archs_table = pd.read_csv(out / ARCHS_CSV, index_col="arch").sort_values("proxy", ascending=False)
    archs = list(archs_table.index)
    table = AppendOnlyTable(out / PROXY_CSV, ["arch", "budget", "seed"])
    if "proxy" in args.only:
        for lr in args.lr:
            proxy_phase(with_lr(params, args.budget, lr), paths, archs, table, args.budget, [params["seed"]],
                        label=f"{args.budget}_lr{lr:g}")
    if "analyse" not in args.only:
        return
    # every score signal rescored over today's search tasks from its per-task scores: the rows may have been
    # scored with other tasks beside them (RTE, before 2026-12-07); a mean distillation loss cannot be split
    # by task, so it is kept only when the rows' tasks are today's
    teacher = teacher_proxy_scores(params, paths)
    earlier = pd.read_csv(out / RANKING_PROXY_CSV)
    rows = pd.concat([earlier[(earlier["budget"] == "topk") & (earlier["seed"] == params["seed"])], table.frame()])
    scored_on = {c.removeprefix("score_") for c in rows if c.startswith("score_")}
    same_tasks = scored_on == set(teacher)
    if not same_tasks:
        print(f"proxy rows scored on {sorted(scored_on)}, rescored over {sorted(teacher)}; "
              "distillation-loss signals left out")
    signals = pd.DataFrame(index=archs_table.index)
    signals["proxy"] = rescored(archs_table, teacher, prefix="proxy_")
    if same_tasks:
        signals["proxy_kd_loss"] = archs_table["proxy_kd_loss"]
    for label, group in rows.groupby("budget", sort=False):
        group = group.set_index("arch")
        signals[f"proxy_{label}"] = rescored(group, teacher)
        if same_tasks:
            signals[f"proxy_{label}_kd_loss"] = -group["kd_loss"]
    archs = list(signals["proxy"].sort_values(ascending=False).index)  # the search's order over today's tasks
    targets = targets_table(pd.read_csv(out / FULL_CSV), paths, params)
    agreement = rank_agreement(signals, targets, {"all": archs, f"top{args.top}": archs[: args.top]})
    agreement.to_csv(out / RANKING_CSV, index=False)
    pd.set_option("display.width", 200)
    print(signals.join(targets).round(3).to_markdown())
    print_agreement(agreement)


if __name__ == "__main__":
    main()
