"""Stage 4, distill_topk: distil each of the search's top-k candidates longer on the proxy set and rank
them by reward. Under Snakemake the same work is fanned out: one job per candidate (--arch, --candidate),
then one that ranks their results (--gather)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("distill_topk", __doc__, required=False)


def _check_mode(args):
    """One of three modes, each with its own arguments; anything else is a usage error (exit 2)."""
    if args.gather:
        needed = {"--ranking": args.ranking}
    elif args.arch or args.candidate:
        needed = {"--arch": args.arch, "--candidate": args.candidate, "--teacher": args.teacher,
                  "--proxies": args.proxies, "--glue": args.glue, "--ranked": args.ranked}
    else:
        needed = {"--teacher": args.teacher, "--proxies": args.proxies, "--glue": args.glue, "--ranked": args.ranked,
                  "--ranking": args.ranking}
    missing = [flag for flag, value in needed.items() if not value]
    if missing:
        parser.error(f"missing {', '.join(missing)}")


if __name__ == "__main__":
    _check_mode(parser.parse_args())
    sys.exit(run_stage("distill_topk", parser))
