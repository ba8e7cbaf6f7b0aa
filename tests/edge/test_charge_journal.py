"""The lease charges' journal (edge.charge_journal): a process's charges survive it, a starting process takes
over what processes that are gone left (never a live one's), a record cut short is not a charge, a long-lived
file is compacted, and charges an earlier version left in the outbox's table are taken over."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap

from edge import charge_journal
from edge.charge_journal import Journal
from edge.settlement import open_outbox
from univence.accounts.v1 import accounts_pb2


def charge(n: int) -> accounts_pb2.LeaseCharge:
    return accounts_pb2.LeaseCharge(hold_id=f"hold_{n}", request_id=f"lc_{n}", max_mc=100 + n, items=[
        accounts_pb2.ChargeItem(operation=accounts_pb2.OPERATION_IMAGE_EDIT, model="m")])


def ids(charges: list[accounts_pb2.LeaseCharge]) -> list[str]:
    return [c.request_id for c in charges]


def run_and_die(outbox, code: str) -> None:
    """`code` in another process with `journal` (a Journal on `outbox`) and `charge`, which then ends
    without closing anything (as a killed process: its lock goes with it, its file stays)."""
    program = textwrap.dedent(f"""
        import os
        from edge.charge_journal import Journal
        from tests.edge.test_charge_journal import charge
        journal = Journal({str(outbox)!r})
    """) + textwrap.dedent(code) + "\nos._exit(0)\n"
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)


def test_a_process_that_is_gone_leaves_its_undelivered_charges_to_the_next_start(tmp_path):
    outbox = tmp_path / "outbox.db"
    run_and_die(outbox, """
        journal.put([charge(1), charge(2)])
        journal.put([charge(3)])
        journal.delete(["lc_2"])
    """)
    assert ids(charge_journal.pending(outbox)) == ["lc_1", "lc_3"]
    journal = Journal(outbox)
    left = journal.all()
    assert ids(left) == ["lc_1", "lc_3"] and left[1] == charge(3)
    assert [p.name for p in tmp_path.glob("outbox.db.charges-*.log")] == [journal.path.name]  # taken over
    assert ids(charge_journal.pending(outbox)) == ["lc_1", "lc_3"]
    assert Journal(outbox).all() == []  # a live process's charges are its own
    journal.delete(["lc_1", "lc_3"])
    assert charge_journal.pending(outbox) == [] and journal.path.stat().st_size == 0
    journal.close()
    assert not journal.path.exists()


def test_a_journal_closed_with_charges_left_keeps_them_for_the_next_start(tmp_path):
    outbox = tmp_path / "outbox.db"
    journal = Journal(outbox)
    journal.put([charge(1)])
    journal.close()
    journal.put([charge(2)])  # a request that outlived the shutdown: a file of its own
    journal.close()
    assert sorted(ids(Journal(outbox).all())) == ["lc_1", "lc_2"]


def test_a_record_cut_short_by_a_kill_is_not_a_charge(tmp_path):
    outbox = tmp_path / "outbox.db"
    journal = Journal(outbox)
    journal.put([charge(1), charge(2)])
    with open(journal.path, "r+b") as file:
        file.truncate(journal.path.stat().st_size - 3)
    assert ids(charge_journal.pending(outbox)) == ["lc_1"]


def test_a_file_that_keeps_growing_is_compacted_to_what_is_left(tmp_path, monkeypatch):
    monkeypatch.setattr(charge_journal, "COMPACT_BYTES", 2000)
    outbox = tmp_path / "outbox.db"
    journal = Journal(outbox)
    first = journal.path
    journal.put([charge(0)])  # never delivered: the file is never empty
    for n in range(1, 60):
        journal.put([charge(n)])
        journal.delete([f"lc_{n}"])
    assert journal.path != first and not first.exists()
    assert journal.path.stat().st_size < 2000
    assert ids(charge_journal.pending(outbox)) == ["lc_0"]


def test_charges_an_earlier_version_left_in_the_outbox_table_are_taken_over(tmp_path):
    outbox = tmp_path / "outbox.db"
    with contextlib.closing(open_outbox(outbox)) as db, db:
        db.executemany("INSERT INTO lease_charges (request_id, hold_id, charge, created) VALUES (?, ?, ?, ?)",
                       [(c.request_id, c.hold_id, c.SerializeToString(), n) for n, c in enumerate([charge(1),
                                                                                                  charge(2)])])
    journal = Journal(outbox)
    assert ids(journal.all()) == ["lc_1", "lc_2"]
    with contextlib.closing(open_outbox(outbox)) as db:
        assert db.execute("SELECT count(*) FROM lease_charges").fetchone()[0] == 0
    assert ids(charge_journal.pending(outbox)) == ["lc_1", "lc_2"]
