"""The checked-in stubs under src/baton/v1/ are what gen_stubs.py makes from the
current proto/baton/v1/*.proto: regenerate them into a temp dir and compare."""

from __future__ import annotations

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import gen_stubs  # noqa: E402


def test_checked_in_stubs_match_the_protos(tmp_path):
    fresh = {path.name: path.read_bytes() for path in gen_stubs.generate(tmp_path)}
    checked_in_dir = gen_stubs.OUT / "baton" / "v1"
    checked_in = {path.name: path.read_bytes() for path in checked_in_dir.glob("*_pb2*.py*")}
    assert sorted(fresh) == sorted(checked_in), "stub files differ: run python sdk/python/gen_stubs.py"
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"stubs out of date with proto/baton/v1: {stale}; run python sdk/python/gen_stubs.py"


def test_every_proto_is_generated():
    protos = sorted(p.relative_to(gen_stubs.PROTO_ROOT).as_posix() for p in (gen_stubs.PROTO_ROOT / "baton" / "v1").glob("*.proto"))
    assert protos == sorted(gen_stubs.PROTOS)
