"""Downloading into the Keras cache, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from tbimg_cli import data


class FileServer:
    """Serves the shared files; `mode` makes it misbehave the way networks do."""

    def __init__(self, folder):
        self.folder = folder
        self.mode = "ok"
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
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(data_dir, monkeypatch):
    with FileServer(data_dir) as running:
        monkeypatch.setenv("TBIMG_DATA_URL", running.url)
        yield running


def _cache():
    return data.keras_cache_dir()


def test_download_fills_the_keras_cache_with_verified_files(server, cli):
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
    assert list(_cache().iterdir()) == []  # no file, no .part
    assert not (_cache().parent.parent.parent / "logs").exists()


def test_missing_file_on_the_server_is_one_line(server, cli, monkeypatch):
    monkeypatch.setenv("TBIMG_DATA_URL", server.url + "elsewhere/")
    server.folder = server.folder / "missing"
    result = cli("single", "--split", "test")
    assert result.exit_code == 1
    assert "HTTP 404" in result.stderr
    assert list(_cache().iterdir()) == []


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
