"""Snapshot and compare every output file of the default national run and of the AERMOD
reference cases, to show that a change which should not change results did not.

Usage::

    python benchmarks/compare_outputs.py snapshot DIR     # run everything, write outputs under DIR
    python benchmarks/compare_outputs.py compare OLD NEW  # exit 1 on any difference

``snapshot`` runs ``python -m engine run --out DIR/national`` (the README's main job, default
data) and ``python -m engine aermod`` on every ``tests/data/aermod/case*/aermod.inp``.
``compare`` checks every file byte for byte, except the fields that legitimately differ between
two runs: time stamps, wall times, software versions, paths and hashes of those (``summary.json``
timings, ``manifest.json``, NetCDF ``history``/``date_created``/provenance attributes, AERMOD
output header date lines). NetCDF files are compared variable by variable (values bitwise,
attributes except those named above); JSON files key by key with the same exceptions.
"""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: keys/attributes whose values are expected to differ between two identical runs
VOLATILE = re.compile(r"(time|date|created|history|wall|elapsed|_s$|seconds|version|host|python|"
                      r"platform|path|dir|sha256|hash|pid|user|command|argv|provenance|cpu|rss|from_cache)",
                      re.IGNORECASE)
#: files that only record the run itself (timings, locks, logs)
#: a met description names the module that built it ("...; see engine.climatology"): a moved
#: module changes that provenance text, not a number
_MODULE_REF = re.compile(r"see engine\.[\w.]+")
SKIP = re.compile(r"(\.log$|\.lock$|manifest\.json$|timings|\.html$|\.png$|\.svg$)")


def snapshot(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    subprocess.run([py, "-m", "engine", "run", "--out", str(out / "national")], check=True, cwd=ROOT)
    for inp in sorted((ROOT / "tests/data/aermod").glob("case*/aermod.inp")):
        dest = out / "aermod" / inp.parent.name
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run([py, "-m", "engine", "aermod", str(inp), str(dest / "listing.out"),
                        "--outdir", str(dest), "--quiet"], check=True, cwd=ROOT)


def _norm(s):
    return _MODULE_REF.sub("see <module>", s) if isinstance(s, str) else s


def _strip_json(obj):
    if isinstance(obj, str):
        return _norm(obj)
    if isinstance(obj, dict):
        return {k: _strip_json(v) for k, v in obj.items() if not VOLATILE.search(str(k))}
    if isinstance(obj, list):
        return [_strip_json(v) for v in obj]
    return obj


def _text_lines(path: Path):
    # AERMOD-style outputs carry the run date/time in header lines; drop dates and clock times
    text = _norm(path.read_text(errors="replace"))
    text = re.sub(r"\S*/tests/data/aermod/", "tests/data/aermod/", text)
    text = re.sub(r"\d\d/\d\d/\d\d(\d\d)?", "DATE", text)
    text = re.sub(r"\d\d:\d\d:\d\d", "TIME", text)
    return [ln for ln in text.splitlines() if not re.search(r"(version|elapsed|seconds)", ln, re.I)]


def _compare_nc(a: Path, b: Path) -> list[str]:
    import netCDF4
    import numpy as np

    diffs = []
    with netCDF4.Dataset(a) as da, netCDF4.Dataset(b) as db:
        def attrs(obj):
            return {k: _norm(obj.getncattr(k)) for k in obj.ncattrs() if not VOLATILE.search(k)}

        def eq(x, y):
            try:
                return bool(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True))
            except TypeError:
                return bool(np.array_equal(np.asarray(x), np.asarray(y)))

        ga, gb = attrs(da), attrs(db)
        if ga.keys() != gb.keys() or any(not eq(ga[k], gb[k]) for k in ga):
            diffs.append(f"{a.name}: global attributes differ")
        if set(da.variables) != set(db.variables):
            diffs.append(f"{a.name}: variables {sorted(set(da.variables) ^ set(db.variables))}")
        for name in set(da.variables) & set(db.variables):
            va, vb = da.variables[name], db.variables[name]
            va.set_auto_mask(False)
            vb.set_auto_mask(False)
            xa, xb = va[...], vb[...]
            if xa.dtype == object or xa.dtype.kind in "SU":  # strings: compare their normalised text
                xa = np.array([_norm(s) for s in xa.ravel()], dtype=object)
                xb = np.array([_norm(s) for s in xb.ravel()], dtype=object)
                if xa.shape != xb.shape or not all(x == y for x, y in zip(xa, xb)):
                    diffs.append(f"{a.name}:{name} values differ")
                continue
            if xa.dtype != xb.dtype or xa.shape != xb.shape or xa.tobytes() != xb.tobytes():
                diffs.append(f"{a.name}:{name} values differ")
            aa, ab = attrs(va), attrs(vb)
            if aa.keys() != ab.keys() or any(not eq(aa[k], ab[k]) for k in aa):
                diffs.append(f"{a.name}:{name} attributes differ")
    return diffs


def compare(old: Path, new: Path) -> int:
    files_a = {p.relative_to(old) for p in old.rglob("*") if p.is_file() and not SKIP.search(p.name)}
    files_b = {p.relative_to(new) for p in new.rglob("*") if p.is_file() and not SKIP.search(p.name)}
    diffs = [f"only in {old}: {p}" for p in sorted(files_a - files_b)]
    diffs += [f"only in {new}: {p}" for p in sorted(files_b - files_a)]
    same = 0
    for rel in sorted(files_a & files_b):
        a, b = old / rel, new / rel
        if hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest():
            same += 1
            continue
        if a.suffix == ".nc":
            d = _compare_nc(a, b)
        elif a.suffix == ".json":
            d = [] if _strip_json(json.loads(a.read_text())) == _strip_json(json.loads(b.read_text())) \
                else [f"{rel}: JSON content differs"]
        else:
            d = [] if _text_lines(a) == _text_lines(b) else [f"{rel}: content differs"]
        diffs += d
        same += not d
    for d in diffs:
        print("DIFF", d)
    print(f"{same} of {len(files_a | files_b)} files identical (time stamps, timings, versions, paths and module names in provenance text excepted); "
          f"{len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "snapshot":
        snapshot(Path(sys.argv[2]).resolve())
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
