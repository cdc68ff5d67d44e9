"""Is the process that started a run still alive? (for runs killed outright, e.g. SIGKILL)

A process is identified by pid, host, boot id, pid namespace and its start time in clock
ticks since boot (from /proc/<pid>/stat). It is recorded twice:

- on every MLMD execution (custom property ``process``): a later run on the same store
  marks RUNNING executions whose process is dead FAILED as abandoned
  (Recorder.mark_dead_runs);
- in every staging folder (``<output>/.staging-<id>/owner.json``, see examplegen.writer):
  a later run into the same output removes the folders of dead runs and leaves a live
  run's alone.

A pid alone is not enough: after a process dies its pid can be given to a new one, so
the start time must match too; after a reboot (another boot id) every recorded process
is dead. Processes on another host or in another pid namespace (container) cannot be
checked ("unknown") and are never judged dead.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, Optional

OWNER_FILE = "owner.json"

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
    """The owner.json of `staging_dir`, or None (none written, or unreadable)."""
    try:
        with open(os.path.join(staging_dir, OWNER_FILE)) as f:
            owner = json.load(f)
    except (OSError, ValueError):
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
