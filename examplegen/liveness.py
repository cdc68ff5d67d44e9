"""Is the process that started a run still alive? (for runs killed outright, e.g. SIGKILL)

A process is identified by pid, host, boot id, pid namespace and its start time in clock
ticks since boot (from /proc/<pid>/stat). It is recorded twice:

- on every MLMD execution (custom property ``process``): a later run on the same store
  marks RUNNING executions whose process is dead FAILED as abandoned
  (Recorder.mark_dead_runs);
- in every staging folder (``<output>/.staging-<id>/owner.json``, see examplegen.writer):
  a later run into the same output removes the folders of dead runs and leaves a live
  run's alone.

On gs:// and s3:// there is no lock, and a run's owner may be on another host, so the
owner.json of a staging prefix also holds a heartbeat (``Heartbeat``): the time, by the
owner's clock, rewritten every ``HEARTBEAT_SECONDS`` by a daemon thread of the launcher
while the run lasts. A later run into the same output removes a staging prefix when its
owner is provably dead (``process_state``: same host and pid namespace, dead pid or another
boot) or, for an owner it cannot check, when the heartbeat is older than
``stale_after()`` (``$EXAMPLEGEN_STAGING_STALE_SECONDS``, default 900); a prefix without
owner.json (written by an older version) is left alone (``remote_staging_verdict``).

A pid alone is not enough: after a process dies its pid can be given to a new one, so
the start time must match too; after a reboot (another boot id) every recorded process
is dead. Processes on another host or in another pid namespace (container) cannot be
checked ("unknown") and are never judged dead.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Optional

from examplegen import fs
from examplegen.errors import ConfigError, ExampleGenError

OWNER_FILE = "owner.json"
HEARTBEAT_SECONDS = 60  # how often a run rewrites the owner.json of its remote staging prefix
STALE_AFTER_SECONDS = 900  # default age after which a heartbeat counts as stopped
STALE_ENV = "EXAMPLEGEN_STAGING_STALE_SECONDS"

log = logging.getLogger(__name__)

ALIVE, DEAD, SELF, UNKNOWN = "alive", "dead", "self", "unknown"


def _boot_id() -> Optional[str]:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _pid_namespace() -> Optional[str]:
    """This process's pid namespace ("pid:[4026531836]"): containers sharing a host name
    and an output volume still number their processes apart."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _proc_stat(pid: int) -> Optional[tuple[str, int]]:
    """(state letter, start time in clock ticks since boot) of `pid`, None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid ..." -- comm may hold spaces and parentheses: split after the last ")".
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[19])  # fields 3 and 22 of proc(5)


def process_identity(pid: Optional[int] = None) -> dict[str, Any]:
    """What identifies process `pid` (default: this one) across pid reuse and reboots."""
    pid = os.getpid() if pid is None else pid
    stat = _proc_stat(pid) if os.path.isdir("/proc") else None
    return {"pid": pid, "host": socket.gethostname(), "boot_id": _boot_id(), "pid_ns": _pid_namespace(),
            "start_ticks": stat[1] if stat else None}


def write_owner(staging_dir: str) -> None:
    """Write owner.json (this process's identity) into `staging_dir`."""
    path = os.path.join(staging_dir, OWNER_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(process_identity(), f, sort_keys=True)
    os.replace(path + ".tmp", path)


def read_owner(staging_dir: str) -> Optional[dict[str, Any]]:
    """The owner.json of `staging_dir` (a folder, or a gs:// / s3:// prefix), or None (none
    written, or unreadable)."""
    try:
        with fs.open_read(fs.join(staging_dir, OWNER_FILE)) as f:
            owner = json.load(f)
    except (OSError, ValueError, ExampleGenError):
        return None
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None


def process_state(owner: dict[str, Any]) -> str:  # owner: a process_identity()
    """SELF (this process), ALIVE, DEAD, or UNKNOWN (another host or container: cannot be checked)."""
    if owner.get("host") != socket.gethostname():
        return UNKNOWN
    me = process_identity()
    if owner.get("pid_ns") != me["pid_ns"]:
        return UNKNOWN  # another container: its pids are not ours to look up
    if owner.get("boot_id") and me["boot_id"] and owner["boot_id"] != me["boot_id"]:
        return DEAD  # the machine was restarted since
    pid = owner["pid"]
    if not os.path.isdir("/proc"):  # no start times to compare: the pid must do
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return DEAD
        except PermissionError:
            pass
        return SELF if pid == me["pid"] else ALIVE
    stat = _proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):  # gone, or a zombie nobody has reaped yet
        return DEAD
    if owner.get("start_ticks") is not None and stat[1] != owner["start_ticks"]:
        return DEAD  # the pid now belongs to another process
    return SELF if pid == me["pid"] else ALIVE


def staging_state(staging_dir: str) -> str:
    """process_state of the process that made a staging folder; UNKNOWN without owner.json."""
    owner = read_owner(staging_dir)
    return process_state(owner) if owner is not None else UNKNOWN


def stale_after() -> float:
    """Seconds after which the heartbeat of a remote staging prefix counts as stopped:
    $EXAMPLEGEN_STAGING_STALE_SECONDS, default STALE_AFTER_SECONDS; at least two heartbeats."""
    text = os.environ.get(STALE_ENV, "").strip()
    if not text:
        return float(STALE_AFTER_SECONDS)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 2 * HEARTBEAT_SECONDS or value == float("inf"):
        raise ConfigError(f"{STALE_ENV}={text!r}: give the seconds after which a remote staging prefix whose "
                          f"heartbeat stopped is removed, at least {2 * HEARTBEAT_SECONDS} (two heartbeats)")
    return value


def remote_staging_verdict(owner: Optional[dict[str, Any]], now: float, limit: float) -> Optional[str]:
    """Why a remote staging prefix with this owner.json can be removed (its run is over),
    or None: keep it. Removed: an owner that is provably dead (process_state DEAD), or one
    that cannot be checked (another host or container) whose heartbeat is older than
    ``limit`` seconds at ``now``. Kept: a live owner, a fresh heartbeat, no owner.json."""
    if owner is None:
        return None
    state = process_state(owner)
    if state == DEAD:
        return f"its run (pid {owner['pid']} on {owner.get('host')}) is no longer running"
    if state != UNKNOWN:
        return None
    beat = owner.get("heartbeat")
    if isinstance(beat, bool) or not isinstance(beat, (int, float)):
        return None
    if now - beat > limit:
        return (f"its run (pid {owner['pid']} on {owner.get('host')}) stopped its heartbeat {now - beat:.0f} s "
                f"ago (the limit is {limit:g} s, {STALE_ENV})")
    return None


class Heartbeat:
    """Keeps ``path`` (a remote staging prefix's owner.json) current while a run lasts:
    this process's identity and ``heartbeat`` (``clock()``, seconds since the epoch),
    written by ``start`` and again every ``interval`` seconds by a daemon thread until
    ``stop``. A failed rewrite is logged and tried again at the next beat."""

    def __init__(self, path: str, interval: float = HEARTBEAT_SECONDS, clock: Callable[[], float] = time.time):
        self.path, self.interval, self._clock = path, interval, clock
        self._stop = threading.Event()
        self._lock = threading.Lock()  # a beat never overlaps stop(): nothing is written after it
        self._thread: Optional[threading.Thread] = None

    def beat(self) -> None:
        record = dict(process_identity(), heartbeat=self._clock(), heartbeat_seconds=self.interval)
        with self._lock:
            if self._stop.is_set():
                return
            remote = fs.is_remote(self.path)  # an object appears whole; a local file is renamed into place
            with fs.open_write(self.path if remote else self.path + ".tmp") as out:
                out.write(json.dumps(record, sort_keys=True).encode())
            if not remote:
                os.replace(self.path + ".tmp", self.path)

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="examplegen-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:  # the run goes on; a later beat may succeed
                log.warning("could not renew the heartbeat %s: %s", self.path, exc)

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
