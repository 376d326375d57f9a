"""How fast the `mlops` command starts, against the cost of importing click and redis.

    .venv/bin/python bench/cli_startup.py [--runs 15]

Each command runs ``--runs`` times as a fresh process (wall time from spawn to exit, median and
best reported), interleaved so that a busy moment of the machine hits every command alike:

  * the reference, ``python -c "import click, redis"`` (what any Redis CLI in Python pays);
  * ``mlops --version``;
  * ``mlops --help`` (lists every command with its one-line help);
  * ``mlops list-models --json`` against the benchmark's own redis-server, with the three
    built-in models registered.

The target: each ``mlops`` command in at most 2x the reference's median. Every project setting
is scrubbed from the children's environment; REDIS_URL points at the private server.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Any

from _harness import Bench, log, machine_facts, phase, print_json, print_table, run_main

TARGET_RATIO = 2.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder")
    args = p.parse_args()
    if not 1 <= args.runs <= 200:
        p.error("--runs must be between 1 and 200")
    return args


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=60, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: "
                           f"{done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def main() -> int:
    args = parse_args()
    results: dict[str, Any] = {"benchmark": "cli_startup", "machine": machine_facts(),
                               "runs": args.runs}
    log(f"machine: {results['machine']}")
    mlops = [sys.executable, "-m", "mlops_tasks.cli.main"]
    commands = {
        "python -c 'import click, redis'": [sys.executable, "-c", "import click, redis"],
        "mlops --version": [*mlops, "--version"],
        "mlops --help": [*mlops, "--help"],
        "mlops list-models --json": [*mlops, "list-models", "--json"],
    }
    with Bench("cli_startup", keep_tmp=args.keep_tmp) as bench:
        srv = bench.start_redis()
        env = bench.use_redis(srv)
        timed([*mlops, "register-all-models"], env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        with phase(f"{args.runs} runs of each command, interleaved"):
            for _ in range(args.runs):
                for name, argv in commands.items():
                    samples[name].append(timed(argv, env))
    reference = statistics.median(samples["python -c 'import click, redis'"])
    rows = []
    results["commands"] = {}
    for name, xs in samples.items():
        median = statistics.median(xs)
        ratio = median / reference
        verdict = "" if name.startswith("python") else \
            ("PASS" if ratio <= TARGET_RATIO else "ABOVE")
        rows.append([name, median * 1000, min(xs) * 1000, ratio,
                     "" if name.startswith("python") else f"<= {TARGET_RATIO:g}x", verdict])
        results["commands"][name] = {"median_s": median, "best_s": min(xs), "ratio": ratio}
    print()
    print_table(["command", "median ms", "best ms", "x reference", "target", ""], rows)
    print_json(results)
    return 0


if __name__ == "__main__":
    run_main(main)
