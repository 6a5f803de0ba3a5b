"""`make bench-pytorch`: querylabel's `trainer bench` against PyTorch eager (bench_torch.py) on
the same work, alternating for several rounds in one run, each measurement in a fresh process.
Prints the medians, the spread (min–max) and the ratio of the medians; a benchmark, never a test.

    python bench/pytorch/side_by_side.py --trainer PATH/trainer --raw records.jsonl
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORKS = ("extract", "train", "head-linear", "head-q2l")
DESCRIPTIONS = {
    "extract": "Lite0 feature extraction (inference)",
    "train": "Lite0 + Query2Label train step",
    "head-linear": "linear head train step on cached feature maps (train --features)",
    "head-q2l": "Query2Label head train step on cached feature maps (train --features)",
}
# Untimed and timed batches per measurement: enough timed work for a stable number on a 2-core
# CPU (the linear head takes milliseconds a batch), not so much that a round takes long.
DEFAULT_WARMUP = {"extract": 3, "train": 2, "head-linear": 20, "head-q2l": 2}
DEFAULT_STEPS = {"extract": 10, "train": 5, "head-linear": 200, "head-q2l": 5}
HERE = Path(__file__).resolve().parent
# Cores that other processes may use during a measurement before it is flagged as disturbed.
DISTURBED_CORES = 0.25


def default_trainer() -> str:
    if os.environ.get("TRAINER"):
        return os.environ["TRAINER"]
    target = os.environ.get(
        "CARGO_TARGET_DIR", str(Path.home() / ".cache" / "querylabel" / "target")
    )
    return str(Path(target) / "release" / "trainer")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def result_line(stdout: str, work: str) -> dict:
    """The JSON line of `work` among a command's output lines."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("work") == work and "images_per_second" in record:
            return record
    raise ValueError(f"no JSON line for work {work!r} in:\n{stdout}")


def busy_seconds():
    """CPU seconds the whole machine has spent busy since boot, or None without /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[:7])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def run_measurement(command, work, timeout):
    """The command's JSON record, its wall time, and how many cores other processes used
    meanwhile (None where that cannot be told): a build beside a CPU benchmark slows it by far
    more than its share, as the OpenMP and Rayon workers wait for each other."""
    busy_before = busy_seconds()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        sys.exit(f"timed out after {timeout} s: {' '.join(command)}")
    wall = time.monotonic() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_after = busy_seconds()
    other = None
    if busy_before is not None and busy_after is not None and wall > 0:
        own = (children_after.ru_utime - children_before.ru_utime) + (
            children_after.ru_stime - children_before.ru_stime
        )
        other = max(0.0, (busy_after - busy_before - own) / wall)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        sys.exit(f"exit status {done.returncode}: {' '.join(command)}")
    try:
        return result_line(done.stdout, work), wall, other
    except ValueError as error:
        sys.stderr.write(done.stderr[-4000:])
        sys.exit(f"{' '.join(command)}: {error}")


def spread(values):
    return statistics.median(values), min(values), max(values)


def fmt_rate(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_spread(values) -> str:
    median, low, high = spread(values)
    return f"{fmt_rate(median)} ({fmt_rate(low)}–{fmt_rate(high)})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainer", default=default_trainer(), help="the trainer binary")
    parser.add_argument("--python", default=sys.executable, help="python with torch")
    parser.add_argument("--backend", default="flex", help="trainer bench --backends")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--works", nargs="+", choices=WORKS, default=list(WORKS))
    parser.add_argument("--batch-size", type=int, default=8, help="extract and train")
    parser.add_argument("--head-batch-size", type=int, default=64, help="the head works")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument(
        "--warmup", type=int, help=f"untimed batches for every work (default: {DEFAULT_WARMUP})"
    )
    parser.add_argument(
        "--steps", type=int, help=f"timed batches for every work (default: {DEFAULT_STEPS})"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=available_cores(),
        help="PyTorch's threads (default: the cores this process may use)",
    )
    parser.add_argument("--raw", type=Path, help="write every measurement here as JSON lines")
    parser.add_argument(
        "--timeout", type=int, default=1800, help="seconds one measurement may take"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    if not Path(args.trainer).exists():
        sys.exit(f"{args.trainer} does not exist: build it (cargo build --release) or pass --trainer")
    # `--head-batch-size` is the trainer's flag for the head works; a trainer without it takes
    # every batch size from --batch-size.
    bench_torch = str(HERE / "bench_torch.py")

    def settings(work):
        batch = args.batch_size if work in ("extract", "train") else args.head_batch_size
        warmup = args.warmup if args.warmup is not None else DEFAULT_WARMUP[work]
        steps = args.steps if args.steps is not None else DEFAULT_STEPS[work]
        return batch, warmup, steps

    def querylabel_command(work):
        batch, warmup, steps = settings(work)
        # trainer bench takes the head works' batch as --head-batch-size.
        size_flag = "--head-batch-size" if work.startswith("head") else "--batch-size"
        sizes = [size_flag, str(batch)]
        return [
            args.trainer, "bench", "--backends", args.backend, "--work", work, *sizes,
            "--image-size", str(args.image_size), "--warmup", str(warmup), "--steps", str(steps),
        ]  # fmt: skip

    def pytorch_command(work):
        batch, warmup, steps = settings(work)
        return [
            args.python, bench_torch, "--work", work, "--batch-size", str(batch),
            "--image-size", str(args.image_size), "--warmup", str(warmup), "--steps", str(steps),
            "--threads", str(args.threads),
        ]  # fmt: skip

    raw = args.raw.open("w") if args.raw else None
    results = {(framework, work): [] for framework in ("querylabel", "pytorch") for work in args.works}
    torch_version = None
    disturbances = []
    machine = {
        "cpu": cpu_model(),
        "cores": available_cores(),
        "threads": args.threads,
    }
    print(
        f"{args.rounds} rounds of {', '.join(args.works)}: querylabel ({args.backend}) and "
        f"PyTorch alternating, one process per measurement; {machine['cpu']}, "
        f"{machine['cores']} cores",
        file=sys.stderr,
        flush=True,
    )
    for round_index in range(args.rounds):
        # Who goes first alternates, so that neither always runs on a machine the other warmed.
        order = ("pytorch", "querylabel") if round_index % 2 == 0 else ("querylabel", "pytorch")
        for work in args.works:
            for framework in order:
                command = pytorch_command(work) if framework == "pytorch" else querylabel_command(work)
                record, wall, other = run_measurement(command, work, args.timeout)
                rate = float(record["images_per_second"])
                results[(framework, work)].append(rate)
                if framework == "pytorch":
                    torch_version = record.get("torch", torch_version)
                batch, warmup, steps = settings(work)
                entry = {
                    "round": round_index + 1,
                    "framework": framework,
                    "work": work,
                    "batch_size": batch,
                    "image_size": args.image_size,
                    "warmup": warmup,
                    "steps": steps,
                    "images_per_second": rate,
                    "wall_seconds": round(wall, 3),
                    "other_processes_cores": None if other is None else round(other, 3),
                    "record": record,
                    "machine": machine,
                }
                if raw:
                    raw.write(json.dumps(entry) + "\n")
                    raw.flush()
                disturbed = other is not None and other > DISTURBED_CORES
                if disturbed:
                    disturbances.append((round_index + 1, work, framework, other))
                note = f"; other processes used {other:.1f} cores" if disturbed else ""
                print(
                    f"round {round_index + 1}/{args.rounds} {work:<11} {framework:<10} "
                    f"{fmt_rate(rate):>8} images/s ({wall:.0f} s{note})",
                    file=sys.stderr,
                    flush=True,
                )
    if raw:
        raw.close()

    header = (
        "work",
        f"querylabel {args.backend} images/s",
        "PyTorch images/s",
        "ratio",
    )
    rows = []
    for work in args.works:
        ours, theirs = results[("querylabel", work)], results[("pytorch", work)]
        batch, _, _ = settings(work)
        ratio = statistics.median(ours) / statistics.median(theirs)
        rows.append((f"{work} (batch {batch})", fmt_spread(ours), fmt_spread(theirs), f"{ratio:.3g}×"))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    print(
        f"querylabel ({args.backend}) vs PyTorch {torch_version or '?'} eager, "
        f"{args.image_size} px, median (min–max) of {args.rounds} rounds; ratio = "
        f"querylabel / PyTorch medians (above 1: querylabel is faster)"
    )
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores; PyTorch threads "
        f"{args.threads}, the trainer its own default"
    )
    print("  ".join(cell.ljust(width) for cell, width in zip(header, widths)).rstrip())
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for work in args.works:
        print(f"  {work}: {DESCRIPTIONS[work]}")
    if disturbances:
        print(
            f"warning: {len(disturbances)} measurement(s) ran while other processes used more "
            f"than {DISTURBED_CORES} cores (e.g. round {disturbances[0][0]} {disturbances[0][1]} "
            f"{disturbances[0][2]}: {disturbances[0][3]:.1f}); run again on an idle machine"
        )
    if args.raw:
        print(f"raw measurements: {args.raw}")


if __name__ == "__main__":
    main()
