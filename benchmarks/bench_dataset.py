"""Benchmark: building the processed-data cache of a CDVAE-style CSV (default Perov-5 val).

Measured in one run, on one core:

* **reference**: parsing every CIF of the file with pymatgen (``Structure.from_str``), the
  floor any CIF-based pipeline pays;
* **build**: ``build_dataset`` from scratch (parse, spglib space group at symprec 0.1,
  Niggli reduction, overlap check, encoding, filters, split, atomic writes, summary PNG);
* **rebuild check**: a second ``build_dataset`` call that finds the cache up to date
  (source hashed, metadata and checksum verified, arrays loaded);
* **load**: ``load_dataset``.

The issue's goal: the build of ``perov_5/val.csv`` in under a minute on this machine.

Usage::

    python benchmarks/bench_dataset.py                      # ../shared/data/perov_5/val.csv
    python benchmarks/bench_dataset.py PATH.csv --rows 500  # first 500 rows of another file
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _machine import cpu_model, usable_cores  # benchmarks/ is on sys.path as the script dir

from ase_crystalgen.datasets import build_dataset, load_dataset

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "perov_5" / "val.csv"
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "dataset.md"


def _subset(path: Path, rows: int | None, tmp: Path) -> Path:
    if rows is None:
        return path
    csv.field_size_limit(2**31 - 1)
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        head = [next(reader)] + [r for _, r in zip(range(rows), reader)]
    out = tmp / f"first{rows}.csv"
    with out.open("w", newline="") as fh:
        csv.writer(fh).writerows(head)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=str(DEFAULT))
    parser.add_argument("--rows", type=int, help="use only the first ROWS rows")
    parser.add_argument("--out", default=str(OUT), help="markdown table to write")
    args = parser.parse_args(argv)
    source = Path(args.source)
    if not source.exists():
        print(f"data file not found: {source} (pass its path)", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from pymatgen.core import Structure

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = _subset(source, args.rows, tmp)
        csv.field_size_limit(2**31 - 1)
        with src.open(newline="") as fh:
            cifs = [row["cif"] for row in csv.DictReader(fh)]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for cif in cifs:
                Structure.from_str(cif, fmt="cif")
        t_ref = time.perf_counter() - t0

        t0 = time.perf_counter()
        data = build_dataset(src, tmp / "cache", progress=False)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_dataset(src, tmp / "cache", progress=False)
        t_again = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_dataset(tmp / "cache")
        t_load = time.perf_counter() - t0
        size = (tmp / "cache" / "data.npz").stat().st_size

    n = len(cifs)
    rows = [
        ("pymatgen CIF parsing only (reference)", t_ref, 1.0),
        ("build_dataset from scratch", t_build, t_build / t_ref),
        ("build_dataset, cache up to date", t_again, t_again / t_ref),
        ("load_dataset", t_load, t_load / t_ref),
    ]
    lines = [
        "# Processed-data cache: build time",
        "",
        f"Source: `{source.name}`{f' (first {args.rows} rows)' if args.rows else ''}, {n} rows -> "
        f"{len(data)} structures, {data.meta['counts']['polymorph_groups']} polymorph groups; "
        f"`data.npz` {size / 1e6:.1f} MB.",
        f"Machine: {cpu_model()}, {usable_cores()} usable cores; one process. "
        "Reproduce: `python benchmarks/bench_dataset.py`.",
        "",
        "| step | seconds | ms per row | ratio to CIF parsing |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {t:.2f} | {1e3 * t / n:.2f} | {r:.2f} |" for name, t, r in rows]
    lines += ["", f"Goal (issue 4): build of all of Perov-5 `val.csv` under 60 s; measured {t_build:.1f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
