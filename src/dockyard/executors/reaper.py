"""The reaper: a small process beside each worker that ends the worker's bodies when the worker
dies, and those whose lease runs out while the worker cannot act (a watchdog).

A job's program runs in a session of its own (so that a timeout can kill its whole group), so
nothing ends it when its worker dies: after a SIGKILL, an OOM kill or a crash, the program would
run on while the rescue, a lease later, starts the job again elsewhere: two runs at once. A
worker that is frozen (SIGSTOP, a VM paused, a debugger) cannot stop its bodies either, while
its leases run out and the rescue starts the jobs elsewhere. The reaper closes both gaps. The
worker starts it on first use and tells it, one line at a time on a pipe, what it starts, what
it has reaped, and until when each attempt's lease holds::

    +PGID MARK             a process group started (its leader's pid); MARK is the value of
                           DOCKYARD_REAPER in the program's environment
    -PGID                  that group was killed and its leader reaped
    +container:NAME ENGINE a container about to be created under NAME, on the engine ENGINE
                           (unix:///path, tcp://host:port)
    -container:NAME        that container was removed (or never created)
    @SECONDS KEY           the body KEY (a PGID or container:NAME) must be gone SECONDS from
                           now, unless the worker says so again (it renewed the lease)

**The watchdog.** Deadlines are sent as seconds left, not as times, so that the worker's and the
reaper's clocks never meet: the reaper adds them to its own monotonic clock. The worker sends
each one as it renews a lease, a margin before the lease runs out in the store
(:mod:`dockyard.runtime.leases`). A body whose deadline passes without a new line is killed
(its group, and the processes that carry its own mark) or removed (a container), and the
reaper says so on its stderr. The worker learns it when it wakes: by its own clock, the lease
of the attempt has lapsed, so the attempt is the rescue's and nothing it recorded counts.

**At end of file**, the worker is gone, however it died (the worker alone holds the write end;
a forked child closes it, see :func:`_after_fork_in_child`). The reaper then

1. SIGKILLs every process group it still knows (grandchildren included);
2. SIGKILLs every process whose environment carries this worker's token (``DOCKYARD_REAPER`` is
   ``TOKEN/N`` for every program the worker starts): descendants that left their group
   (``setsid``), and, scanning a few more times over the next second (:data:`RESCANS`), a
   program that was between its fork and its ``exec`` when the worker died (it carries the token
   from its ``exec`` on, before its ``+PGID`` line could be written);
3. removes (force) every container it still knows, through the engine's HTTP API, and tries
   once more a moment later for those not found (a creation in flight when the worker died);

and exits. It ignores SIGINT, SIGTERM and SIGHUP and runs in a session of its own, so that
Ctrl-C, a SIGTERM or even a SIGKILL sent to the worker's process group does not take it down
before it has acted.

A reaper that died (someone killed it) is noticed at the worker's next line or its next check
(:func:`check_reaper`, every ``check_seconds``): the worker starts another and tells it every
group, container and deadline it still holds. If no reaper can be started, the process
executor refuses to start programs (``CannotStart``) rather than run them unguarded.

Why this and not the alternatives the issue named:

- *a death signal* (``PR_SET_PDEATHSIG``) needs ``preexec_fn``, so ``subprocess`` forks instead
  of vforking: a spawn and exit of ``/bin/true`` went from ~0.8 ms to ~5 ms. It covered only
  the instant between the fork and the ``+PGID`` line, which the rescans cover for nothing;
- *a supervisor per attempt* costs a Python start (~10 ms) and a process per running job; the
  reaper, one start per worker and one pipe write per start, per end and per renewal;
- *cgroups* would catch every descendant, daemons included, but need a delegated cgroup tree
  (root or systemd's ``Delegate=``), which a worker started from a shell or in a container
  usually does not have; the environment mark catches most of what they would.

What is left uncovered: a descendant that left its group *and* cleared its environment, while
the worker and its reaper both die by SIGKILL at once (a SIGKILL to both, the OOM killer, a
container stopped with the worker inside), or a reaper frozen with its worker. The periodic
sweep of live workers still removes containers then (:mod:`dockyard.runtime.leftovers`);
docs/guarantees.md says what an operator can count on.

Measured here (2 shared cores, Python 3.11, a worker of ~45 MB): starting the reaper, once per
worker, blocks its event loop ~0.8 ms (lines written meanwhile wait in the pipe); it is up
~30-70 ms later; per attempt, its lines cost ~20 µs in all. This module imports only the
standard library: it is run as a script by path (``python -I -S reaper.py``: isolated, so the
folder's ``http.py`` does not shadow the standard library's), and starts in tens of ms, not the
~350 ms of importing Dockyard; ``http.client`` is imported only to remove a container.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["TOKEN_VARIABLE", "Reaper", "ReaperUnavailable", "check_reaper", "shared_reaper"]

#: The environment variable that marks every program a worker starts (``TOKEN/N``).
TOKEN_VARIABLE = "DOCKYARD_REAPER"
#: How long the reaper waits on the Docker engine for one container, at most.
ENGINE_TIMEOUT = 10.0
#: How long a container not found at first is given to appear (its creation was in flight).
CREATION_SECONDS = 2.0
#: When, after end of file, the reaper scans again for marked processes (seconds after it).
RESCANS = (0.05, 0.15, 0.4, 1.0)
_CONTAINER = "container:"


class ReaperUnavailable(Exception):
    """No reaper could be started: programs would outlive a killed worker."""


# -- the worker's side -----------------------------------------------------------------------


class Reaper:
    """The worker's handle on its reaper: started on first use, told of every group, container
    and deadline, restarted (and told everything again) when it died. Thread-safe: the workers
    of one process (tests run several) share one reaper, since they die together.

    A body belongs to a lease (an attempt's, named by the worker: ``job/attempt``); the worker
    says until when each lease holds (:meth:`lease`), and the reaper kills the lease's bodies
    when that passes without a renewal.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipe = -1
        #: Reaper key (PGID or container:NAME) -> its ``+`` line and its lease.
        self._bodies: dict[str, tuple[str, str]] = {}
        #: Lease -> its monotonic deadline, and the keys of its bodies.
        self._leases: dict[str, float] = {}
        self._by_lease: dict[str, set[str]] = {}
        self._marks = itertools.count(1)
        #: Marks the programs of this process (see TOKEN_VARIABLE).
        self.token = os.urandom(8).hex()
        #: How many reapers were started (a restart after a death counts).
        self.starts = 0

    def mark(self) -> str:
        """A new program's value of ``DOCKYARD_REAPER``: the token, and a number of its own."""
        return f"{self.token}/{next(self._marks)}"

    def ensure(self) -> None:
        """Start the reaper if it is not running; raise ReaperUnavailable if it cannot start."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._restart()

    def check(self) -> None:
        """Restart a reaper that died since it was started (no-op before the first start)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is not None:
                self._restart()

    def track_group(self, pgid: int, mark: str, lease: str = "") -> None:
        self._track(str(pgid), f"+{pgid} {mark}\n", lease)

    def forget_group(self, pgid: int) -> None:
        self._forget(str(pgid), f"-{pgid}\n")

    def track_container(self, name: str, engine: str, lease: str = "") -> None:
        self._track(f"{_CONTAINER}{name}", f"+{_CONTAINER}{name} {engine}\n", lease)

    def forget_container(self, name: str) -> None:
        self._forget(f"{_CONTAINER}{name}", f"-{_CONTAINER}{name}\n")

    def lease(self, lease: str, seconds: float) -> None:
        """The bodies of ``lease`` must be gone ``seconds`` from now unless told again."""
        with self._lock:
            self._leases[lease] = time.monotonic() + seconds
            keys = self._by_lease.get(lease)
            if keys and self._proc is not None:
                self._send("".join(self._deadline(key, lease) for key in keys))

    def end_lease(self, lease: str) -> None:
        """The lease is over (its bodies are gone): forget its deadline."""
        with self._lock:
            self._leases.pop(lease, None)

    def _track(self, key: str, line: str, lease: str) -> None:
        with self._lock:
            self._bodies[key] = (line, lease)
            if lease:
                self._by_lease.setdefault(lease, set()).add(key)
            self._send(line + self._deadline(key, lease))

    def _forget(self, key: str, line: str) -> None:
        with self._lock:
            found = self._bodies.pop(key, None)
            if found is None:
                return
            keys = self._by_lease.get(found[1])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_lease[found[1]]
            self._send(line)

    def _deadline(self, key: str, lease: str) -> str:
        deadline = self._leases.get(lease)
        if deadline is None:
            return ""
        return f"@{max(deadline - time.monotonic(), 0.0):.3f} {key}\n"

    def _send(self, line: str) -> None:
        """Write ``line``; a dead reaper (the write fails: the pipe has no reader) is replaced
        and told everything still held, this change included."""
        if self._proc is None:
            self._restart()
            return
        try:
            _write_all(self._pipe, line.encode())
        except OSError:
            self._restart()

    def _restart(self) -> None:
        if self._proc is not None:
            import logging  # here: the reaper's own start (this module as a script) needs none

            logging.getLogger("dockyard.reaper").warning(
                "the reaper (pid %d) is gone; starting another and telling it %d body(ies)",
                self._proc.pid,
                len(self._bodies),
            )
            with contextlib.suppress(OSError):
                os.close(self._pipe)
            self._pipe = -1
        read_end, write_end = os.pipe()  # both close-on-exec: no program inherits them
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    os.path.abspath(__file__),
                    str(os.getpid()),
                    self.token,
                ],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # out of the worker's group: its signals miss the reaper
            )
        except OSError as error:
            os.close(write_end)
            raise ReaperUnavailable(f"cannot start the reaper: {error}") from error
        finally:
            os.close(read_end)
        self._pipe = write_end
        self.starts += 1
        lines = [line + self._deadline(key, lease) for key, (line, lease) in self._bodies.items()]
        try:
            _write_all(self._pipe, "".join(lines).encode())
        except OSError as error:
            raise ReaperUnavailable(f"the reaper died as it started: {error}") from error

    def _abandon(self) -> None:
        """In a forked child: drop the write end, so that the reaper still sees the worker's
        death (the child is not the worker)."""
        with contextlib.suppress(OSError):
            if self._pipe >= 0:
                os.close(self._pipe)
        self._pipe = -1
        self._proc = None


def _write_all(fd: int, data: bytes) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


_shared: Reaper | None = None
_shared_lock = threading.Lock()


def shared_reaper() -> Reaper:
    """This process's reaper handle (one per process: its workers die together)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Reaper()
        return _shared


def check_reaper() -> None:
    """Restart this process's reaper if it was started and has died since."""
    reaper = _shared
    if reaper is not None:
        reaper.check()


def _after_fork_in_child() -> None:
    global _shared
    reaper, _shared = _shared, None
    if reaper is not None:
        reaper._abandon()


os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the reaper's side -------------------------------------------------------------------------


@dataclass
class _Watch:
    """What the reaper knows: the worker's groups (pgid -> mark), containers (name -> engine)
    and deadlines (key -> monotonic time)."""

    worker: str
    groups: dict[int, str] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=dict)
    deadlines: dict[str, float] = field(default_factory=dict)
    removals: list[threading.Thread] = field(default_factory=list)

    def take(self, line: str) -> None:
        if line.startswith("+" + _CONTAINER):
            name, _, engine = line[1 + len(_CONTAINER) :].partition(" ")
            self.containers[name] = engine
        elif line.startswith("-" + _CONTAINER):
            self.containers.pop(line[1 + len(_CONTAINER) :], None)
            self.deadlines.pop(line[1:], None)
        elif line.startswith("@"):
            seconds, _, key = line[1:].partition(" ")
            if key.startswith(_CONTAINER):
                tracked = key[len(_CONTAINER) :] in self.containers
            else:
                tracked = key.isdigit() and int(key) in self.groups
            with contextlib.suppress(ValueError):
                if tracked:
                    self.deadlines[key] = time.monotonic() + float(seconds)
        elif line[:1] == "+" and line[1:].partition(" ")[0].isdigit():
            pgid, _, mark = line[1:].partition(" ")
            self.groups[int(pgid)] = mark
        elif line[:1] == "-" and line[1:].isdigit():
            self.groups.pop(int(line[1:]), None)
            self.deadlines.pop(line[1:], None)

    def next_deadline(self) -> float | None:
        return min(self.deadlines.values(), default=None)

    def expire(self, now: float) -> None:
        """Kill or remove the bodies whose deadline has passed."""
        for key, deadline in list(self.deadlines.items()):
            if deadline > now:
                continue
            del self.deadlines[key]
            if key.startswith(_CONTAINER):
                name = key[len(_CONTAINER) :]
                engine = self.containers.pop(name, "")
                removal = threading.Thread(target=_remove, args=(name, engine), daemon=True)
                removal.start()  # the engine may be slow: groups' deadlines must not wait
                self.removals.append(removal)
                what = f"removing container {name}"
            else:
                mark = self.groups.pop(int(key), "")
                _kill_groups([int(key)])
                marked = _kill_marked(mark.__eq__) if mark else 0
                what = f"killed process group {key} and {marked} other process(es)"
            _say(
                f"dockyard reaper: the lease of a body of worker {self.worker} ran out without a"
                f" renewal (the worker is frozen or stuck); {what}"
            )

    def reap_all(self, token: str) -> None:
        """The worker is gone: end everything it left; see the module docstring."""
        start = time.monotonic()
        prefix = f"{token}/"
        marked: set[int] = set()
        killed = _kill_groups(self.groups)
        if token:
            _kill_marked(lambda value: value.startswith(prefix), marked)
        missing = {cid: e for cid, e in self.containers.items() if not _remove(cid, e)}
        removed = len(self.containers) - len(missing)
        if killed or marked or removed:
            _say(
                f"dockyard reaper: worker {self.worker} is gone; killed {killed} process group(s)"
                f" and {len(marked)} other process(es), removed {removed} container(s)"
            )
        late = 0
        for at in RESCANS if token else ():  # a program that was between fork and exec
            time.sleep(max(start + at - time.monotonic(), 0.0))
            late += _kill_marked(lambda value: value.startswith(prefix), marked)
        if missing:  # a creation still in flight when the worker died lands a moment later
            time.sleep(max(start + CREATION_SECONDS - time.monotonic(), 0.0))
            late += sum(_remove(cid, engine) for cid, engine in missing.items())
        for removal in self.removals:
            removal.join(ENGINE_TIMEOUT)
        if late:
            _say(
                f"dockyard reaper: ended {late} more body(ies) of worker {self.worker}, started as it died"
            )


def main(argv: list[str]) -> int:
    """Read lines until end of file, killing what passes its deadline; then end what the worker
    left; see the module docstring."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    watch = _Watch(worker=argv[1] if len(argv) > 1 else "?")
    token = argv[2] if len(argv) > 2 else ""
    for lines in _lines(sys.stdin.fileno(), watch.next_deadline):
        for line in lines:
            watch.take(line)
        watch.expire(time.monotonic())
    watch.reap_all(token)
    return 0


def _lines(fd: int, deadline: Callable[[], float | None]) -> Iterable[list[str]]:
    """The lines read from ``fd``, a batch at a time, until end of file; an empty batch when
    the next deadline comes first."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    rest = b""
    while True:
        due = deadline()
        timeout = None if due is None else max(due - time.monotonic(), 0.0) * 1000
        if not poller.poll(timeout):
            yield []
            continue
        data = os.read(fd, 65536)
        if not data:
            return
        *complete, rest = (rest + data).split(b"\n")
        yield [raw.decode(errors="replace").strip() for raw in complete]


def _say(message: str) -> None:
    with contextlib.suppress(OSError):
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


def _kill_groups(groups: Iterable[int]) -> int:
    killed = 0
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
            killed += 1
    return killed


def _kill_marked(matches: Callable[[str], bool], killed: set[int] | None = None) -> int:
    """SIGKILL every process whose ``DOCKYARD_REAPER`` value ``matches``; two passes, for what
    forked during the first. Adds their pids to ``killed`` (and skips those already in it)."""
    killed = set() if killed is None else killed
    before = len(killed)
    name = f"{TOKEN_VARIABLE}=".encode()
    for _ in range(2):
        for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
            if not entry.isdigit() or int(entry) in killed or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as file:
                    variables = file.read().split(b"\0")
            except OSError:  # gone, or not ours
                continue
            values = [
                v[len(name) :].decode(errors="replace") for v in variables if v.startswith(name)
            ]
            if any(matches(value) for value in values):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(entry), signal.SIGKILL)
                    killed.add(int(entry))
    return len(killed) - before


def _remove(container_id: str, engine: str) -> bool:
    """Kill and remove a container (``DELETE /containers/ID?force=1``, by id or name); True
    when it was there and is gone. ``http.client`` is imported here: it is most of what the
    reaper would otherwise import at its start (~45 ms of ~60)."""
    import http.client

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(ENGINE_TIMEOUT)
            sock.connect(engine.removeprefix("unix://"))
            self.sock = sock

    connection: http.client.HTTPConnection
    if engine.startswith("unix://"):
        connection = UnixConnection("docker", timeout=ENGINE_TIMEOUT)
    elif engine.startswith(("tcp://", "http://")):
        host = engine.split("://", 1)[1].rstrip("/")
        connection = http.client.HTTPConnection(host, timeout=ENGINE_TIMEOUT)
    else:  # TLS or an SSH engine: left to the sweep of live workers
        _say(f"dockyard reaper: cannot reach {engine} to remove container {container_id[:12]}")
        return False
    try:
        connection.request("DELETE", f"/containers/{container_id}?force=1")
        status = connection.getresponse().status
    except OSError as error:
        _say(f"dockyard reaper: cannot remove container {container_id[:12]}: {error}")
        return False
    finally:
        connection.close()
    return status == 204


if __name__ == "__main__":
    sys.exit(main(sys.argv))
