"""Test helpers: the CLI in-process and in a fresh interpreter, event files read back with TensorBoard's
own reader, free ports on 127.0.0.1, and one way to wait for something to happen."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from typer.testing import CliRunner

from tbimg_cli.cli import app

REPO = Path(__file__).resolve().parents[1]
SUBSET_DIR = REPO / "tests" / "data" / "fashion-mnist-subset"
SUBSET_TRAIN, SUBSET_TEST = 2000, 1000
T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float = 90.0,
    interval: float = 0.1,
    what: str = "the condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """The first truthy value of `condition()`, polled every `interval` seconds; fails after `timeout`.

    Exceptions of the `ignore` kinds count as "not yet" (a server still starting).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
            if value:
                return value
        except ignore:
            pass
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_ports(count: int = 1) -> list[int]:
    """Ports on 127.0.0.1 that nothing listens on (all held until all are picked, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


class Cli:
    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args: str):
        return self.runner.invoke(app, [str(a) for a in args])

    def json(self, *args: str) -> dict:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


def run_module(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m tbimg_cli ...` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "tbimg_cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def heavy_modules_after(args: list[str], env: dict | None = None) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run the CLI in a fresh interpreter and report which heavy modules it imported."""
    probe = (
        "import sys\n"
        f"sys.argv = ['tbimg', *{args!r}]\n"
        "from tbimg_cli.cli import app\n"  # not `main`: it ends the process before we can look
        "try:\n"
        "    app()\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("HEAVY=")]
    assert line, proc.stdout + proc.stderr
    found = line[-1][len("HEAVY=") :]
    return (found.split(",") if found else []), proc


def event_files(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).glob("events.out.tfevents.*"))


def load_run(run_dir: Path):
    """An EventAccumulator over one run directory, keeping every step and sample."""
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0}
    )
    accumulator.Reload()
    return accumulator


def decode_png(png: bytes):
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)))


_SERVING = re.compile(r"TensorBoard (\S+ )?at http")  # tbimg's line, or TensorBoard's own ("TensorBoard 2.21.0 at")


class Served:
    """A `tbimg ... --serve` subprocess (or `command`, TensorBoard's own, say) whose stderr is watched for
    TensorBoard's URL."""

    def __init__(self, args: list[str], cwd: Path, env: dict | None = None, command: list[str] | None = None):
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "tbimg_cli"]), *map(str, args)],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**(env or os.environ), "COLUMNS": "200"},
        )
        self.err_lines: list[str] = []
        self.out_lines: list[str] = []
        self.url_seen = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()
        threading.Thread(target=lambda: self.out_lines.extend(self.proc.stdout), daemon=True).start()

    def _watch(self):
        for line in self.proc.stderr:
            self.err_lines.append(line)
            if _SERVING.search(line):
                self.url_seen.set()

    @property
    def url(self) -> str:
        assert self.url_seen.wait(90), "".join(self.err_lines)
        line = next(line for line in self.err_lines if _SERVING.search(line))
        return re.search(r"http://\S+?/", line).group(0)

    def get(self, path: str, **query) -> bytes:
        target = self.url.rstrip("/") + path + ("?" + urllib.parse.urlencode(query) if query else "")
        with urllib.request.urlopen(target, timeout=10) as response:
            return response.read()

    def get_json(self, path: str, **query):
        return json.loads(self.get(path, **query))

    def wait_for(self, predicate, timeout: float = 90.0):
        what = f"the server; its stderr so far: {''.join(self.err_lines)}"
        return wait_until(predicate, timeout, 0.25, what=what, ignore=(OSError, KeyError, ValueError))

    def interrupt(self, within: float = 5.0) -> int:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=within + 5)
        assert time.monotonic() - started <= within
        return code

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def s3_env(endpoint: str, **extra) -> dict:
    """The environment of a process that reads and writes buckets on the test S3 server at `endpoint`."""
    return {
        **os.environ,
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        **extra,
    }


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 in front of a server, to take the server out of reach and back.

    `stop()` refuses new connections and cuts the open ones, as a network
    outage or a stopped server would look to a client; `start()` brings it back
    on the same port, with the server behind it still holding its data.
    `fail(mode)` breaks the network for good in one of the three ways real ones
    break: "refuse" (as `stop`), "reset" (every connection accepted, then reset),
    or "blackhole" (accepted, read, never answered: a partition).
    """

    MODES = ("refuse", "reset", "blackhole")

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.mode = "forward"
        self.connections_seen = 0  # accepted while failing: how hard the client retries
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, mode: str) -> None:
        assert mode in self.MODES, mode
        if mode == "refuse":
            self.stop()
            return
        self.mode = mode
        if mode == "reset":  # what is open now breaks the same way; a blackhole's pipes go silent
            for connection in self._connections:
                _reset(connection)
            self._connections.clear()

    def start(self) -> TcpProxy:
        self.mode = "forward"
        if self._listener is not None:
            return self
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close alone would not
            listener.close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.mode != "forward":
                self.connections_seen += 1
                if self.mode == "reset":
                    _reset(client)
                else:  # blackhole: take what the client sends, answer nothing
                    self._connections.append(client)
                    threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self._connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _swallow(client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while client.recv(65536):
                pass

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self.mode == "blackhole":
                    continue  # the partition: nothing crosses either way
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


def _reset(connection: socket.socket) -> None:
    """Close with a TCP reset (RST), as a middlebox or a crashed peer does, not a polite FIN."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
