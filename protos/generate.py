"""Regenerates the Python stubs under univence/ from protos/ (`python protos/generate.py`).

`--check` regenerates into a temporary folder and exits 1 when the committed stubs differ, so CI
fails on stale stubs.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT  # stubs land in ROOT/univence/<package>/v1/
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.glob("univence/*/v1/*.proto"))


def generate(out_root: Path) -> None:
    """Runs protoc for every proto and adds the __init__.py files the packages need."""
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for stub in out_root.glob("univence/*/v1/*_pb2.py"):
        for package in (stub.parent, stub.parent.parent):
            (package / "__init__.py").touch()


def generated_files(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for p in root.glob("univence/*/v1/*")
        if p.name.endswith(GENERATED_SUFFIXES)
    }


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        (fresh_root / "univence").mkdir()
        generate(fresh_root)
        fresh, committed = generated_files(fresh_root), generated_files(OUT_ROOT)
        stale = sorted(
            name
            for name in fresh.keys() | committed.keys()
            if name not in fresh or name not in committed
            or not filecmp.cmp(fresh[name], committed[name], shallow=False)
        )
    if stale:
        print("stale generated stubs (run: python protos/generate.py):", *stale, sep="\n  ")
        return 1
    print(f"{len(fresh)} generated stubs are up to date")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs are stale")
    if parser.parse_args().check:
        return check()
    for old in generated_files(OUT_ROOT).values():
        old.unlink()
    generate(OUT_ROOT)
    print(f"generated {len(generated_files(OUT_ROOT))} stub files under {OUT_ROOT / 'univence'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
