"""Small shared helpers for the cno benchmarks (W1-W5): timing, statistics, tables.

The method, the same for every workload:

- every library runs in the same process, side by side;
- each measured thing is a *cell* (one case x one library): a function ``run(k)`` that
  does ``k`` units of work, plus how many items (blocks, requests, ...) one unit is;
- each cell is warmed up, then calibrated so one batch takes about ``target_ms``;
- repetitions are interleaved: for every repetition all cells run once, in an order
  shuffled per repetition (fixed seed), so slow drifts and bursts of noise from other
  processes hit every library alike;
- a batch is timed with ``time.perf_counter_ns`` with the garbage collector disabled
  (and a ``gc.collect()`` just before, outside the timed region);
- results are the median and min-max over repetitions of ns per item, shown as items/s;
  ratios are ratios of medians.
"""
from __future__ import annotations

import datetime
import gc
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable, Optional, Sequence

perf_ns = time.perf_counter_ns


# ---------------------------------------------------------------------------------------
# Timing

def time_batch(fn: Callable[[int], object], k: int) -> int:
    """Wall time of ``fn(k)`` in ns, with the cyclic GC off during the call."""
    gc.collect()
    gc.disable()
    try:
        t0 = perf_ns()
        fn(k)
        t1 = perf_ns()
    finally:
        gc.enable()
    return t1 - t0


def calibrate(fn: Callable[[int], object], target_ns: int, max_k: int = 1 << 24) -> int:
    """Smallest-effort estimate of the ``k`` for which ``fn(k)`` takes about target_ns."""
    k = 1
    while True:
        t = time_batch(fn, k)
        if t * 8 >= target_ns or k >= max_k:
            break
        k *= 4
    return max(1, min(max_k, round(k * target_ns / max(t, 1))))


@dataclass
class Cell:
    """One measured thing: ``run(k)`` does k units; one unit is ``items`` items."""
    case: str                      # row key, e.g. "encode bytes / huffman"
    lib: str                       # column key, e.g. "cno"
    run: Callable[[int], object]
    items: int                     # items (e.g. header blocks) per unit of work
    k: int = 0                     # units per batch, set by calibration
    samples: list = field(default_factory=list)   # ns per item, one per repetition


@dataclass
class Summary:
    median: float                  # ns per item
    lo: float                      # fastest repetition, ns per item
    hi: float                      # slowest repetition, ns per item
    n: int

    @property
    def rate(self) -> float:       # items/s at the median
        return 1e9 / self.median


def summarize(samples: Sequence[float]) -> Summary:
    return Summary(statistics.median(samples), min(samples), max(samples), len(samples))


def run_interleaved(cells: list[Cell], reps: int, target_ms: float, warmup_ms: float,
                    seed: int = 1, progress: bool = True) -> None:
    """Warm up and calibrate every cell, then time ``reps`` interleaved repetitions."""
    target_ns = int(target_ms * 1e6)
    for c in cells:
        deadline = perf_ns() + int(warmup_ms * 1e6)
        c.run(1)
        while perf_ns() < deadline:
            c.run(1)
        c.k = calibrate(c.run, target_ns)
    rng = random.Random(seed)
    order = list(cells)
    t_start = perf_ns()
    for rep in range(reps):
        rng.shuffle(order)
        for c in order:
            c.samples.append(time_batch(c.run, c.k) / (c.k * c.items))
        if progress:
            done = (perf_ns() - t_start) / 1e9
            print(f"\r  repetition {rep + 1}/{reps}  ({done:.1f} s)", end="",
                  file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)


# ---------------------------------------------------------------------------------------
# Formatting

def fmt_rate(per_s: float) -> str:
    """1234567 -> '1.23 M', 45678 -> '45.7 k', 2000000 -> '2.00 M'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_s >= div:
            return f"{_3digits(per_s / div)} {suffix}"
    return _3digits(per_s)


def _3digits(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{_3digits(ns / 1e6)} ms"
    if ns >= 1e3:
        return f"{_3digits(ns / 1e3)} us"
    return f"{ns:.0f} ns"


def fmt_cell(s: Optional[Summary], unit: str = "/s") -> str:
    """'1.52 M/s (1.41-1.55), 658 ns' : median rate (min-max rate), median time."""
    if s is None:
        return "n/a"
    lo_rate, hi_rate = 1e9 / s.hi, 1e9 / s.lo
    return (f"{fmt_rate(s.rate)}{unit} ({fmt_rate(lo_rate).split()[0]}"
            f"-{fmt_rate(hi_rate)}), {fmt_ns(s.median)}")


def fmt_ratio(a: Optional[Summary], b: Optional[Summary]) -> str:
    """Speed of a relative to b (>1: a is faster)."""
    if a is None or b is None:
        return "n/a"
    return f"{b.median / a.median:.2f}x"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                 markdown: bool = False, right: Sequence[int] = ()) -> str:
    """A plain aligned table, or a GitHub markdown table; ``right``: right-aligned columns."""
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join(("---:" if i in right else "---") for i in range(len(headers)))
               + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]

    def line(r):
        return "  ".join((str(x).rjust(w) if i in right else str(x).ljust(w))
                         for i, (x, w) in enumerate(zip(r, widths))).rstrip()
    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Environment

def cpu_model() -> str:
    model, family, modelno = "unknown", "", ""
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                k, _, v = ln.partition(":")
                k, v = k.strip(), v.strip()
                if k == "model name" and model == "unknown":
                    model = v
                elif k == "cpu family" and not family:
                    family = v
                elif k == "model" and not modelno:
                    modelno = v
    except OSError:
        model = platform.processor() or "unknown"
    if family:
        model += f" (family {family}, model {modelno})"
    return model


def dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_state(repo: str, paths: Sequence[str] = ("cno",)) -> str:
    """'abc1234' or 'abc1234 + uncommitted changes in cno' (or '' outside git)."""
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", *paths],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    if not head:
        return ""
    return head + (" + uncommitted changes in " + ", ".join(paths) if dirty else "")


def machine_info(versions: dict[str, str]) -> list[tuple[str, str]]:
    """(label, value) pairs describing the run, for the table header."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    info = [
        ("date", datetime.datetime.now().strftime("%Y-%m-%d %H:%M")),
        ("python", f"{platform.python_implementation()} {platform.python_version()} "
                   f"({sys.executable})"),
        ("platform", platform.platform()),
        ("cpu", f"{cpu_model()}, {os.cpu_count()} logical CPUs"),
    ]
    info += [(k, v) for k, v in versions.items()]
    if load:
        info.append(("load average at start", " ".join(f"{x:.2f}" for x in load)))
    return info


def render_info(info: Sequence[tuple[str, str]], markdown: bool = False) -> str:
    if markdown:
        return "\n".join(f"- {k}: {v}" for k, v in info)
    w = max(len(k) for k, _ in info)
    return "\n".join(f"{k.ljust(w)} : {v}" for k, v in info)


# ---------------------------------------------------------------------------------------
# Added for W2-W4 (w1_hpack.py does not use these)

def fmt_mb(s: Optional[Summary], bytes_per_item: float) -> str:
    """'1234 MB/s (1100-1300)': median throughput (min-max), MB = 10^6 bytes."""
    if s is None:
        return "n/a"
    k = bytes_per_item * 1e3            # ns per item -> MB/s: bytes_per_item * 1e9 / 1e6 / ns
    return f"{_3digits(k / s.median)} MB/s ({_3digits(k / s.hi)}-{_3digits(k / s.lo)})"


def cno_build_info(cno_module, root: str, extensions: Sequence[str] = ("_core", "_hpack")) -> str:
    """'0.1.0.dev0 (/work/main/cno, git abc1234), _core built 2026-11-21 10:14, ...' with a
    warning for an extension older than its .pyx."""
    pkg = os.path.dirname(cno_module.__file__)
    out = f"{getattr(cno_module, '__version__', '?')} ({pkg}"
    g = git_state(root)
    out += (f", git {g}" if g else "") + ")"
    files = os.listdir(pkg)
    for ext in extensions:
        so = [os.path.join(pkg, f) for f in files
              if f.startswith(ext + ".") and f.endswith((".so", ".pyd"))]
        pyx = os.path.join(pkg, ext + ".pyx")
        if not so:
            continue
        built = max(os.path.getmtime(f) for f in so)
        out += f", {ext} built " + time.strftime("%Y-%m-%d %H:%M", time.localtime(built))
        if os.path.exists(pyx) and os.path.getmtime(pyx) > built:
            out += f" (OLDER than {ext}.pyx: rebuild!)"
    return out
