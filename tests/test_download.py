"""Downloading into the Keras cache, against a real HTTP server on 127.0.0.1.

A download must match the official MD5s, so the tests that expect one to
succeed serve the official files (`full_data_dir`); those that expect failure
serve the committed subset."""

from __future__ import annotations

import hashlib
import http.server
import os
import stat
import threading
import time

import pytest

from tbimg_cli.tutorial import data


class FileServer:
    """Serves the shared files; `mode` makes it misbehave the way networks do."""

    def __init__(self, folder):
        self.folder = folder
        self.mode = "ok"
        self.stopping = threading.Event()
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                name = self.path.rsplit("/", 1)[-1]
                path = server.folder / name
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                if server.mode == "corrupt":
                    body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "trickle":  # one byte at a time: each read succeeds, the transfer never ends
                    for i in range(200):
                        if server.stopping.wait(0.1):
                            return
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                    return
                if server.mode == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/datasets/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(data_dir, monkeypatch):
    """Serves the subset, whose MD5s are not the official ones: every download fails."""
    with FileServer(data_dir) as running:
        monkeypatch.setenv("TBIMG_DATA_URL", running.url)
        yield running


@pytest.fixture
def official_server(full_data_dir, monkeypatch):
    with FileServer(full_data_dir) as running:
        monkeypatch.setenv("TBIMG_DATA_URL", running.url)
        yield running


def _cache():
    return data.keras_cache_dir()


def test_download_fills_the_keras_cache_with_verified_files(official_server, cli):
    server = official_server
    result = cli("single", "--split", "test", "--index", "3")
    assert result.exit_code == 0, result.output
    for name in data.SPLIT_FILES["test"]:
        path = _cache() / name
        assert hashlib.md5(path.read_bytes()).hexdigest() == data.OFFICIAL_MD5[name]
    # Only what the test split needs was fetched, and nothing is left half-written.
    assert sorted(p.name for p in _cache().iterdir()) == sorted(data.SPLIT_FILES["test"])
    assert len(server.requests) == 2
    again = cli("single", "--split", "test", "--index", "3")
    assert again.exit_code == 0 and len(server.requests) == 2  # the cache is used next time


@pytest.mark.parametrize(("mode", "message"), [("cut", "cut short"), ("corrupt", "corrupt (MD5")])
def test_bad_transfers_leave_no_file_behind(server, cli, mode, message):
    server.mode = mode
    result = cli("single", "--split", "test")
    assert result.exit_code == 1
    assert message in result.stderr and "nothing was saved" in result.stderr
    assert "Traceback" not in result.output
    assert not _cache().exists()  # no file, no .part, not even the folders the download made
    assert not (_cache().parent.parent.parent / "logs").exists()


def test_missing_file_on_the_server_is_one_line(server, cli, monkeypatch):
    monkeypatch.setenv("TBIMG_DATA_URL", server.url + "elsewhere/")
    server.folder = server.folder / "missing"
    result = cli("single", "--split", "test")
    assert result.exit_code == 1
    assert "HTTP 404" in result.stderr
    assert not _cache().exists()


def test_a_trickling_server_times_out(server, cli, monkeypatch):
    server.mode = "trickle"
    monkeypatch.setenv("TBIMG_DOWNLOAD_TIMEOUT", "1")
    started = time.monotonic()
    result = cli("single", "--split", "test")
    assert result.exit_code == 1, result.output
    assert "stalled" in result.stderr and "nothing was saved" in result.stderr
    assert time.monotonic() - started < 10  # the window, not the 20 s the trickle would take
    assert not _cache().exists()


def test_leftover_part_files_of_dead_downloads_are_removed(server, cli):
    cache = _cache()
    cache.mkdir(parents=True)
    dead = cache / ".t10k-images-idx3-ubyte.gz.999999999.part"  # beyond any pid
    old_style = cache / ".t10k-labels-idx1-ubyte.gz.k2j3h4.part"  # tempfile's name, from before
    alive = cache / f".t10k-labels-idx1-ubyte.gz.{os.getppid()}.part"  # a running process's download
    for part in (dead, old_style, alive):
        part.write_bytes(b"half a file")
    server.mode = "cut"
    cli("single", "--split", "test")
    assert not dead.exists() and not old_style.exists()
    assert alive.exists()
    assert cache.exists()  # it was there before: not ours to remove


def test_downloaded_files_get_the_users_umask(official_server, cli):
    previous = os.umask(0o022)
    try:
        assert cli("single", "--split", "test").exit_code == 0
    finally:
        os.umask(previous)
    for name in data.SPLIT_FILES["test"]:
        assert stat.S_IMODE((_cache() / name).stat().st_mode) == 0o644


@pytest.mark.parametrize("how", ["flag", "env"])
def test_offline_never_opens_a_connection(server, cli, monkeypatch, how):
    args = ["single", "--split", "test"]
    if how == "flag":
        args.append("--offline")
    else:
        monkeypatch.setenv("TBIMG_OFFLINE", "1")
    result = cli(*args)
    assert result.exit_code == 1
    assert "--offline forbids downloading" in result.stderr
    assert server.requests == []
