"""Start TensorBoard in this process and keep it serving until Ctrl-C.

In-process (`tensorboard.program`) rather than a subprocess: the server is up
before training starts, shares our stdout, and dies with us. Nothing here
prints: `start` returns the URL and `output.serving` announces it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tbimg_cli import shortcuts
from tbimg_cli.errors import ServeError
from tbimg_cli.events import storage

DEFAULT_HOST = "127.0.0.1"  # loopback only, unless the user asks for more
# Hosts that mean "every interface": TensorBoard's --bind_all, which also gives a URL with this machine's name.
EVERY_INTERFACE = ("0.0.0.0", "::", "[::]")
DEFAULT_PORT = 6006
RELOAD_SECONDS = 2  # short, so each epoch's confusion matrix shows up while training
# TensorBoard keeps 10 steps per image tag by default; keep every epoch.
# An explicit count, because `images=0` ("keep all") has been reported to show nothing.
IMAGE_STEPS_KEPT = 1000
DASHBOARD_STEPS = 3  # `tbimg serve`: TensorBoard's own image dashboard keeps a few; the tbimg tab shows every step


@dataclass(frozen=True)
class ServeSettings:
    host: str = DEFAULT_HOST
    port: int | None = None
    open_browser: bool = False
    image_steps: int = IMAGE_STEPS_KEPT  # train-cm raises it past its epoch count
    # TensorBoard's --load_fast. "auto" (`tbimg serve` on a local folder) reads the logdir for TensorBoard's own
    # dashboards in its Rust data server, a process of its own, when installed: so that reading is not done
    # in the server's Python process, beside the tbimg tab, under one lock.
    load_fast: str = "false"


def checked_settings(host: str, port: int | None, *, open_browser: bool, image_steps: int = 0) -> ServeSettings:
    """Settings for --serve, with the address checked before the command does any work."""
    settings = ServeSettings(host, port, open_browser, max(image_steps, IMAGE_STEPS_KEPT))
    check_available(settings)
    return settings


def check_available(settings: ServeSettings) -> None:
    """Fail before any work is done when the address or an explicitly asked port cannot be had.

    Binding with SO_REUSEADDR, as werkzeug does, so a port that only has
    connections in TIME_WAIT still counts as free.
    """
    import socket  # here, not at the top: `tbimg --help` imports this module for its defaults

    port = settings.port or 0
    try:
        infos = socket.getaddrinfo(settings.host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServeError(f"--host {settings.host!r} is not an address of this machine ({exc.strerror})") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(f"port {port} is already in use: pick another --port or leave it out") from exc
            raise ServeError(f"cannot serve on {settings.host}:{port} ({exc.strerror})") from exc


def start(logdir: str | Path, settings: ServeSettings) -> str:
    """Launch TensorBoard on `logdir` in a daemon thread; returns its URL.

    A bucket served from a process that has loaded TensorFlow (train-cm) is
    served from a child process instead: TensorBoard would read it with
    TensorFlow's file systems, which know gs:// but not s3://, where its own
    TensorFlow-free reader knows both (and any fsspec URL).
    """
    if storage.is_url(str(logdir)) and "tensorflow" in sys.modules:
        return _start_in_child(str(logdir), settings)
    shortcuts.tensorboard_without_tensorflow()
    shortcuts.quiet_server_logs()
    from tensorboard import program

    where = ["--bind_all"] if exposed(settings) else ["--host", settings.host]
    argv = [
        None,
        "--logdir",
        str(logdir),
        *where,
        "--reload_interval",
        str(RELOAD_SECONDS),
        "--samples_per_plugin",
        f"images={settings.image_steps}",
        "--load_fast",
        "false" if storage.is_url(str(logdir)) else settings.load_fast,
    ]
    if settings.port is not None:
        argv += ["--port", str(settings.port)]
    if storage.is_url(str(logdir)):
        # A bucket run is many immutable objects, possibly from several writers: follow them all.
        argv += ["--reload_multifile", "true"]
        _s3_endpoint_for_tensorboard(str(logdir))
    board = program.TensorBoard()
    board.configure(argv=argv)
    try:
        url = board.launch()
    except program.TensorBoardPortInUseError as exc:
        raise ServeError(f"port {settings.port} is already in use: pick another --port or leave it out") from exc
    except program.TensorBoardServerException as exc:
        raise ServeError(f"TensorBoard could not start: {exc.msg}") from exc
    if exposed(settings):
        url = url.replace(f"//{urlparse(url).hostname}:", f"//{machine_name()}:", 1)
    if settings.open_browser:
        import webbrowser

        webbrowser.open(url)
    return url


_CHILD = """
import os, sys, threading, time
from tbimg_cli import shortcuts
from tbimg_cli.serve import tensorboard as serve
shortcuts.claim_process()
logdir, host, port, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
settings = serve.ServeSettings(host, int(port) if port else None, False, steps)
print(serve.start(logdir, settings), flush=True)
parent = os.getppid()
while os.getppid() == parent:  # the parent gone (killed or done): so is this server
    time.sleep(0.5)
"""


def _start_in_child(logdir: str, settings: ServeSettings) -> str:
    import subprocess
    import threading

    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, logdir, settings.host, str(settings.port or ""), str(settings.image_steps)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = child.stdout.readline().strip() if child.stdout else ""
    if not url.startswith("http"):
        child.wait(timeout=30)
        problem = (child.stderr.read() if child.stderr else "").strip().splitlines()
        raise ServeError(f"TensorBoard could not start on {logdir}: {problem[-1] if problem else 'no reason given'}")
    _children.append(child)
    threading.Thread(target=child.communicate, daemon=True).start()  # drains its pipes
    if settings.open_browser:
        import webbrowser

        webbrowser.open(url)
    return url


_children: list[Any] = []


def stop_children() -> None:
    """End the TensorBoard child processes this process started (when serving ends)."""
    for child in _children:
        child.terminate()
    _children.clear()


def _s3_endpoint_for_tensorboard(logdir: str) -> None:
    """TensorBoard reads s3:// with boto3 when it is installed, and boto3 knows another server (MinIO,
    a local one) only from `S3_ENDPOINT`: give it the endpoint fsspec was given. Only ever in the tbimg
    process (serving is the command line's), and only when the user has not set `S3_ENDPOINT` already."""
    endpoint = os.environ.get("FSSPEC_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    if logdir.startswith("s3://") and endpoint and "S3_ENDPOINT" not in os.environ:
        os.environ["S3_ENDPOINT"] = endpoint


def exposed(settings: ServeSettings) -> bool:
    """True when TensorBoard listens on every interface, so other machines can read the logs."""
    return settings.host in EVERY_INTERFACE


def machine_name() -> str:
    """This machine's name as others would use it: the FQDN, else the host name (some hosts map theirs to localhost)."""
    import socket

    for name in (socket.getfqdn(), socket.gethostname()):
        if name and name not in ("localhost", "localhost.localdomain") and not name.startswith("127."):
            return name
    return "localhost"


def moved_port_note(url: str, settings: ServeSettings) -> str | None:
    """Say so when the default port was taken and TensorBoard moved on."""
    port = urlparse(url).port
    if settings.port is None and port != DEFAULT_PORT:
        return f"port {DEFAULT_PORT} is taken; TensorBoard is on port {port}"
    return None


def wait_for_ctrl_c() -> None:
    """Block the main thread (TensorBoard serves from a daemon thread) until Ctrl-C or SIGTERM."""
    try:
        with sigterm_as_ctrl_c(), contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    finally:
        stop_children()


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """While a command waits for Ctrl-C (serving, watching), SIGTERM counts as Ctrl-C too.

    Scripts and service managers, whose background children ignore SIGINT,
    can then stop tbimg quietly; the previous handler is back afterwards.
    """
    import signal
    import threading

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if in_main_thread else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
