"""CPU training speed of ``qa reader train`` under three memory allocators, each in its own process: glibc's
default (the baseline), glibc told to keep what it frees (``MALLOC_MMAP_MAX_=0``, ``MALLOC_TRIM_THRESHOLD_``: no
block goes back to the kernel), and jemalloc (``LD_PRELOAD``, the copy the ``ray`` extra ships) with its decay
off (``MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1``).

A training step allocates and frees about 1.5 GB of activations (batch 16 x 384 tokens). glibc serves blocks
over 32 MB with fresh ``mmap`` pages and hands them back on ``free``, so every step faults them in again (170k
minor faults a step here). jemalloc without decay never gives memory back: a long run over much data grows (the
reader docs have the figures). The script trains the real ``qa.training.train.train`` for ``--steps`` steps on
the first questions of a SQuAD file (one thread, no calibration) and prints seconds a step (the loop only),
user / system CPU seconds, minor page faults, peak RSS (each the mean over the processes run side by side)
and the ratio to the baseline.

    python benchmarks/bench_train.py --steps 30                 # one training
    python benchmarks/bench_train.py --steps 30 --parallel 2    # two side by side, one core each

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_reader import DEV, squad_slice  # noqa: E402

RAY = importlib.util.find_spec("ray")
JEMALLOC = Path(RAY.origin).parent / "core" / "libjemalloc.so" if RAY and RAY.origin else None
JEMALLOC = JEMALLOC if JEMALLOC and JEMALLOC.is_file() else None
VARIANTS = {
    "glibc (default)": {},
    "glibc, freed memory kept": {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)},
    "jemalloc, no decay": {"LD_PRELOAD": str(JEMALLOC), "MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"},
}
CHILD = """
import json, resource, sys
from qa.training.train import TrainConfig, train
squad, output, reader, steps = sys.argv[1:5]
card = train(TrainConfig(train_files=[squad], output=output, base=reader, max_steps=int(steps), threads=1,
                         calibration_fraction=0.0, epochs=1, learning_rate=1e-6, checkpoint_minutes=1e9))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"train_seconds": card["train_seconds"], "steps": card["steps"], "user_s": usage.ru_utime,
                  "system_s": usage.ru_stime, "minor_faults": usage.ru_minflt, "max_rss_mb": usage.ru_maxrss / 1024}))
"""


def run(variant: dict[str, str], squad: Path, reader: str, steps: int, folder: Path, parallel: int) -> dict:
    """Train ``steps`` steps in ``parallel`` fresh processes at once (one core each) with ``variant`` added to
    the environment; their mean figures."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **variant}
    children = [
        subprocess.Popen(
            ["taskset", "-c", str(core), sys.executable, "-c", CHILD, str(squad), str(tempfile.mkdtemp(dir=folder)),
             reader, str(steps)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for core in range(parallel)
    ]  # fmt: skip
    results = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise RuntimeError(f"a training process failed (exit {child.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    figures = {key: sum(r[key] for r in results) / parallel for key in results[0]}
    figures["seconds_per_step"] = figures["train_seconds"] / figures["steps"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", default=str(ROOT / "qa" / "models" / "reader"), help="reader to train from")
    parser.add_argument("--squad", default=str(DEV))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--questions", type=int, default=1000, help="questions from the start of the file")
    parser.add_argument("--parallel", type=int, default=1, help="trainings side by side, one core each")
    args = parser.parse_args()

    variants = {name: env for name, env in VARIANTS.items() if "LD_PRELOAD" not in env or JEMALLOC}
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as folder:
        squad = Path(folder) / "slice.json"
        squad_slice(Path(args.squad), args.questions, squad)
        for name, env in variants.items():
            rows[name] = run(env, squad, args.reader, args.steps, Path(folder), args.parallel)
    base = rows["glibc (default)"]
    print(f"{'allocator':28} {'s/step':>7} {'user s':>7} {'sys s':>7} {'faults':>10} {'RSS MB':>7} {'x base':>7}")
    for name, row in rows.items():
        ratio = row["seconds_per_step"] / base["seconds_per_step"]
        row["ratio_to_default"] = ratio
        print(
            f"{name:28} {row['seconds_per_step']:7.2f} {row['user_s']:7.1f} {row['system_s']:7.1f} "
            f"{row['minor_faults']:10.0f} {row['max_rss_mb']:7.0f} {ratio:7.2f}"
        )
    if not JEMALLOC:
        print("jemalloc: not found (pip install -e '.[ray]' ships one); skipped")
    print(json.dumps({"steps": args.steps, "parallel": args.parallel, "rows": rows}))


if __name__ == "__main__":
    main()
