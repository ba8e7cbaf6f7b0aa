"""The lease charges an edge process has not delivered to accounts yet, on disk (edge.lease_charges writes
each before its request answers, and deletes it once accounts has taken it).

Each process appends to a file of its own beside the settlement outbox, `<outbox>.charges-<id>.log`, which
it holds locked (flock) while it lives. Appending a charge is one write(2) of a length-prefixed record:
once it returns, the kernel has the bytes, so a process killed right after answering loses nothing (the
outbox's SQLite, with synchronous=NORMAL, promises the same, not more: neither survives losing power). The
SQLite commit it replaces (ten system calls: locks, then frames) took 0.64 ms of an edit's path in place on
2 shared cores (35 µs in a loop), the write 0.06 ms (benchmarks/edge_timeline.py). A delivery appends a
record naming the charges accounts took, and the file is emptied whenever nothing is left to deliver.

A starting process takes over the files of processes that are gone (their lock is free): it appends what
they still owe to its own file, then removes theirs, and delivers it. Two processes starting together
cannot both take one file (the lock), and a charge delivered twice is charged once (accounts applies each
request id once). Charges an earlier version left in the outbox's `lease_charges` table are taken over
the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import secrets
import sqlite3
import struct
from collections.abc import Iterable
from pathlib import Path

from edge.settlement import open_outbox
from univence.accounts.v1 import accounts_pb2

COMPACT_BYTES = 4 * 1024 * 1024
_HEAD = struct.Struct("<IB")  # a record: its payload's length, its kind, the payload
_CHARGE, _DELIVERED = 1, 2  # payloads: a LeaseCharge; the request ids of delivered charges, one per line


class Journal:
    """This process's charges not yet delivered. Used from one thread: `all` at start (in a thread, before
    anything else), then the event loop's (`put` is one system call)."""

    def __init__(self, outbox_path: str | Path):
        self.outbox = Path(outbox_path)
        self.outbox.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fd = -1
        self._size = 0  # the file's bytes
        self._open()
        self._outstanding: dict[str, accounts_pb2.LeaseCharge] = {}  # by request id

    def _open(self) -> None:
        self.path = self.outbox.with_name(f"{self.outbox.name}.charges-{secrets.token_hex(8)}.log")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # released by the kernel when this process ends, however
        self._size = 0

    def put(self, charges: list[accounts_pb2.LeaseCharge]) -> None:
        """On disk (as far as a killed process is concerned) when this returns."""
        if self._fd < 0:  # a request that outlived the shutdown: a new file, for the next start
            self._open()
        self._append(_charge_records(charges))
        self._outstanding.update((charge.request_id, charge) for charge in charges)

    def delete(self, request_ids: list[str]) -> None:
        """Marks these charges delivered. With nothing left to deliver the file is emptied; grown past
        COMPACT_BYTES (always something to deliver, under steady load), what is left moves to a new file."""
        for request_id in request_ids:
            self._outstanding.pop(request_id, None)
        if not self._outstanding:
            os.ftruncate(self._fd, 0)  # O_APPEND: the next record starts the file again
            self._size = 0
        elif self._size > COMPACT_BYTES:
            old_fd, old_path = self._fd, self.path
            self._open()
            self._append(_charge_records(self._outstanding.values()))
            old_path.unlink()  # after the new file has them: a kill in between leaves them in both
            os.close(old_fd)
        else:
            self._append(_record(_DELIVERED, "\n".join(request_ids).encode()))

    def _append(self, records: bytes) -> None:
        left = memoryview(records)
        while left:  # a regular file takes it whole, but a short write must not cut a record
            left = left[os.write(self._fd, left):]
        self._size += len(records)

    def all(self) -> list[accounts_pb2.LeaseCharge]:
        """What processes that are gone (and the outbox's table, from an earlier version) left undelivered,
        now in this process's file, oldest first. Called once, at start."""
        left: list[accounts_pb2.LeaseCharge] = []
        for path in _files(self.outbox):
            if path != self.path:
                left += self._take_over(path)
        left += self._take_over_table()
        return left

    def close(self) -> None:
        """Closes the file (at shutdown); removed when nothing is left in it to deliver, else kept for the
        next start."""
        if self._fd < 0:
            return
        if not self._outstanding:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self._fd)
        self._fd = -1

    def _take_over(self, path: Path) -> list[accounts_pb2.LeaseCharge]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # another starting process took it over
            return []
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process lives
                return []
            if os.fstat(fd).st_nlink == 0:  # taken over (and removed) before this process had the lock
                return []
            with open(fd, "rb", closefd=False) as file:
                charges = outstanding(file.read())
            if charges:
                self.put(charges)  # in this file first: a kill in between leaves them in both (charged once)
            path.unlink()
            return charges
        finally:
            os.close(fd)

    def _take_over_table(self) -> list[accounts_pb2.LeaseCharge]:
        if not self.outbox.exists():
            return []
        with contextlib.closing(open_outbox(self.outbox, isolation_level=None)) as db:
            rows = db.execute("SELECT request_id, charge FROM lease_charges ORDER BY created").fetchall()
            if not rows:
                return []
            charges = [accounts_pb2.LeaseCharge.FromString(charge) for _, charge in rows]
            self.put(charges)
            with contextlib.suppress(sqlite3.Error):
                db.executemany("DELETE FROM lease_charges WHERE request_id = ?", [(rid,) for rid, _ in rows])
        return charges


def outstanding(log: bytes) -> list[accounts_pb2.LeaseCharge]:
    """The charges a journal file's bytes hold and do not mark delivered, in order. A record cut short at
    the end (the process killed inside its write) is not one."""
    charges: dict[str, accounts_pb2.LeaseCharge] = {}
    offset = 0
    while offset + _HEAD.size <= len(log):
        length, kind = _HEAD.unpack_from(log, offset)
        payload = log[offset + _HEAD.size:offset + _HEAD.size + length]
        if len(payload) < length:
            break
        offset += _HEAD.size + length
        if kind == _CHARGE:
            charge = accounts_pb2.LeaseCharge.FromString(payload)
            charges[charge.request_id] = charge
        elif kind == _DELIVERED:
            for request_id in payload.decode().split("\n"):
                charges.pop(request_id, None)
    return list(charges.values())


def pending(outbox_path: str | Path) -> list[accounts_pb2.LeaseCharge]:
    """Every charge the journal files beside this outbox hold undelivered, of live processes too (read
    without their locks: for operators and tests; a process delivers only what it took over)."""
    return [charge for path in _files(Path(outbox_path)) for charge in outstanding(path.read_bytes())]


def _files(outbox: Path) -> list[Path]:
    """The journal files beside `outbox` (`_open` names them), of every process, in name order."""
    return sorted(outbox.parent.glob(f"{glob.escape(outbox.name)}.charges-*.log"))


def _record(kind: int, payload: bytes) -> bytes:
    return _HEAD.pack(len(payload), kind) + payload


def _charge_records(charges: Iterable[accounts_pb2.LeaseCharge]) -> bytes:
    return b"".join(_record(_CHARGE, charge.SerializeToString()) for charge in charges)
