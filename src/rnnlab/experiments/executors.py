"""Executors run runs: in this process, in a local process pool, or on Ray.

Each takes (run id, config JSON, run folder) jobs and hands back (run id, result JSON) as
runs finish, in whatever order they finish. Workers only compute; the driver alone writes
the store. `slots` is how many runs the executor runs at once; the driver keeps that many in
flight, so a run is marked running when it really starts.
"""

from __future__ import annotations

import collections
import json
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from rnnlab.experiments.runner import one_line, run_one

EXECUTORS = ("local", "ray")
# How long joining a Ray cluster may take before it is an error. ray.init itself retries for
# minutes, logging to stderr, when nothing (or not Ray) answers at the address.
RAY_CONNECT_TIMEOUT = 30.0


class Executor(Protocol):
    slots: int

    def submit(self, run_id: str, config_json: str, run_dir: str) -> None: ...

    def next_result(self) -> tuple[str, str]:
        """Block until a submitted run finishes; its id and result JSON."""
        ...

    def close(self) -> None: ...


def _failed(message: str) -> str:
    return json.dumps({"status": "failed", "error": message})


class InlineExecutor:
    """Runs one run at a time in this process (`rnnlab run`), with fit's own progress bar."""

    slots = 1

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._jobs: collections.deque[tuple[str, str, str]] = collections.deque()

    def submit(self, run_id: str, config_json: str, run_dir: str) -> None:
        self._jobs.append((run_id, config_json, run_dir))

    def next_result(self) -> tuple[str, str]:
        run_id, config_json, run_dir = self._jobs.popleft()
        return run_id, run_one(config_json, run_dir, quiet=self.quiet)

    def close(self) -> None:
        self._jobs.clear()


def _worker(conn: Connection, parent: int) -> None:
    """A pool worker's loop: a job (JSON bytes) in, run_one's result (JSON bytes) out, until
    the driver closes the pipe. Only bytes cross the pipe: nothing is pickled."""

    def watch() -> None:
        # exit as soon as the driver is gone (even killed with SIGKILL), so no orphan keeps
        # writing checkpoints into a run folder that a rerun of the sweep resumes
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    # Ctrl-C is the driver's to handle: it stops the workers, and no run is recorded failed
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            job = json.loads(conn.recv_bytes())
        except EOFError:
            return
        conn.send_bytes(run_one(job["config"], job["run_dir"]).encode())


@dataclass(eq=False)
class _Process:
    process: BaseProcess
    conn: Connection


class LocalExecutor:
    """A pool of `workers` processes on this machine, spawned (no state forked from here) as
    runs need them and reused. A worker that dies fails only the run it was running."""

    def __init__(self, workers: int) -> None:
        self.slots = workers
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[_Process] = []
        self._busy: dict[_Process, str] = {}  # worker -> the id of the run it runs

    def _spawn(self) -> _Process:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_worker, args=(theirs, os.getpid()), daemon=True)
        process.start()
        theirs.close()  # the worker holds its end; ours then reads EOF if the worker dies
        return _Process(process, ours)

    def submit(self, run_id: str, config_json: str, run_dir: str) -> None:
        worker = self._idle.pop() if self._idle else self._spawn()
        worker.conn.send_bytes(json.dumps({"config": config_json, "run_dir": run_dir}).encode())
        self._busy[worker] = run_id

    def next_result(self) -> tuple[str, str]:
        handles: dict[Any, _Process] = {w.conn: w for w in self._busy}
        handles |= {w.process.sentinel: w for w in self._busy}
        worker = handles[wait(list(handles))[0]]
        run_id = self._busy.pop(worker)
        try:
            result = worker.conn.recv_bytes().decode()
        except (EOFError, OSError):  # killed (by the kernel's out-of-memory killer, say)
            worker.process.join()
            worker.conn.close()
            code = worker.process.exitcode
            return run_id, _failed(
                f"worker process died (exit code {code}; killed or out of memory)"
            )
        self._idle.append(worker)
        return run_id, result

    def close(self) -> None:
        """Stop every worker; runs still running are cut short, to resume next time."""
        for worker in self._busy:
            worker.process.kill()
        for worker in [*self._idle, *self._busy]:
            worker.conn.close()  # an idle worker reads EOF and returns
            worker.process.join()
        self._idle.clear()
        self._busy.clear()


class RayExecutor:
    """Ray tasks of one CPU each: joins the cluster at `address`, or starts a local Ray with
    num_cpus = workers. If this process already called ray.init, that instance is used."""

    def __init__(self, workers: int | None, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError(
                "--executor: got 'ray', but ray is not installed; expected "
                "`pip install 'rnnlab[ray]'` first, or --executor local"
            ) from None
        self._ray: Any = ray
        if address:  # even where this process is already in a cluster: the address is checked
            check_ray_address(address)  # joins in a bounded time, or says why not
        self._started = not ray.is_initialized()
        if self._started:
            try:
                if address:
                    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
                else:
                    ray.init(
                        num_cpus=workers or os.cpu_count() or 1,
                        include_dashboard=False,
                        logging_level=logging.WARNING,
                        log_to_driver=False,
                    )
            except (ConnectionError, RuntimeError, ValueError) as err:
                what = f"--address: got {address!r}" if address else "--executor: got 'ray'"
                raise ValueError(f"{what}; could not start or join Ray ({one_line(err)})") from None
        self.slots = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(num_cpus=1)(run_one)
        self._refs: dict[Any, str] = {}

    def submit(self, run_id: str, config_json: str, run_dir: str) -> None:
        self._refs[self._remote.remote(config_json, run_dir)] = run_id

    def next_result(self) -> tuple[str, str]:
        (ref,), _ = self._ray.wait(list(self._refs), num_returns=1)
        run_id = self._refs.pop(ref)
        try:
            return run_id, self._ray.get(ref)
        except Exception as err:  # the worker died or Ray lost the task
            return run_id, _failed(f"ray: {one_line(err)}")

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started:
            self._ray.shutdown()


# Joins the cluster in a process of its own, so that a join that hangs can be killed and its
# logs never reach our stderr.
_RAY_PROBE = """
import logging, sys
import ray
ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False)
ray.shutdown()
"""


def _host_port(address: str) -> tuple[str, int] | None:
    """The (host, port) a Ray address names (`host:port`, `ray://host:port`), or None for
    one that names no socket (`auto`, `local`)."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def check_ray_address(address: str, timeout: float | None = None) -> None:
    """A one-line ValueError unless a Ray cluster at `address` can be joined within
    `timeout` seconds (default RAY_CONNECT_TIMEOUT): first the socket (refused or
    unreachable fails at once), then a join in a child process, killed at the deadline."""
    timeout = RAY_CONNECT_TIMEOUT if timeout is None else timeout
    what = f"--address: got {address!r}"
    expected = "expected the address of a running Ray cluster's head (ray start --head prints it)"
    target = _host_port(address)
    if target is not None:
        try:
            socket.create_connection(target, timeout=min(timeout, 5.0)).close()
        except OSError as err:  # refused, unreachable, unknown host, no answer
            reason = err.strerror or type(err).__name__
            raise ValueError(f"{what}; nothing answers there ({reason}); {expected}") from None
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(
            [sys.executable, "-c", _RAY_PROBE, address],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own group: killed whole at the deadline
        )
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise ValueError(
                f"{what}; no Ray cluster answered within {timeout:g} s; {expected}"
            ) from None
        if code != 0:
            log.seek(0)
            lines = [line for line in log.read().decode(errors="replace").splitlines() if line]
            reason = lines[-1].strip()[:200] if lines else f"exit code {code}"
            raise ValueError(f"{what}; could not join Ray ({reason}); {expected}")


def make_executor(name: str, workers: int | None = None, address: str | None = None) -> Executor:
    """`local` (default workers: the number of cores) or `ray`; errors are one line."""
    if name not in EXECUTORS:
        raise ValueError(f"--executor: got {name!r}; expected one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers: got {workers}; expected an integer >= 1")
    if address is not None and name != "ray":
        raise ValueError(f"--address: got {address!r}; expected it only with --executor ray")
    if name == "ray":
        return RayExecutor(workers, address)
    return LocalExecutor(workers or os.cpu_count() or 1)
