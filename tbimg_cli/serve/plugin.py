"""The `tbimg` tab of TensorBoard: every step of every image series, read through tbimg's own index.

Loaded by TensorBoard from the `tensorboard_plugins` entry point, so any `tensorboard --logdir ...` of an
environment with tbimg shows the tab, as do `--serve` and `tbimg serve`. The routes (under
`/data/plugin/tbimg/`) take run, tag, step and sample, never a path: a name is looked up in the index,
so `..` or `/` in it reads nothing. Image bytes are answered as stored, with a content type taken from
their magic bytes (never from the record) and TensorBoard's own headers (`nosniff`, its CSP); bytes of
no image format are refused, so nothing a browser would run is ever served as a page.

The page is plain JavaScript modules and CSS shipped beside this file (`static/`): TensorBoard's plugin
page loads scripts only from its own origin, and nothing needs building.
"""

from __future__ import annotations

import json
import threading
import time
from importlib import resources
from typing import Any

from tbimg_cli.errors import LogReadError

PLUGIN_NAME = "tbimg"
TAB_NAME = "tbimg"
RELOAD_SECONDS = 5.0  # the index is read further at most this often (TensorBoard's reload interval by default)
STATIC = {
    "/index.js": "text/javascript",
    "/display.js": "text/javascript",
    "/strip.js": "text/javascript",
    "/confusion.js": "text/javascript",
    "/style.css": "text/css",
}
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
)


def content_type(data: bytes) -> str | None:
    """The image type the bytes start like (WebP by its RIFF header), or None: never served as anything else."""
    for magic, kind in MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _base_plugin() -> Any:
    from tensorboard.plugins import base_plugin

    return base_plugin


class TbimgPlugin(_base_plugin().TBPlugin):  # type: ignore[misc]  # TensorBoard's class, untyped
    """The tab: an index of every image record, built at the first request and read further as files grow."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context: Any) -> None:
        self._logdir = (getattr(context, "logdir", "") or "").split(",")[0]
        flags = getattr(context, "flags", None)
        self._reload_seconds = float(getattr(flags, "reload_interval", 0) or RELOAD_SECONDS)
        self._index: Any = None
        self._refreshed_at = 0.0
        self._lock = threading.Lock()
        if self._logdir:  # the index is read while TensorBoard starts up, not at the page's first request
            threading.Thread(target=self._read_ahead, name="tbimg-index", daemon=True).start()

    def _read_ahead(self) -> None:
        try:
            self._current()
        except Exception:
            with self._lock:
                self._index, self._refreshed_at = None, 0.0

    def is_active(self) -> bool:
        return bool(self._logdir)

    def frontend_metadata(self) -> Any:
        return _base_plugin().FrontendMetadata(es_module_path="/index.js", tab_name=TAB_NAME)

    def get_plugin_apps(self) -> dict[str, Any]:
        from werkzeug import wrappers

        routes = {"/series": self._series, "/steps": self._steps, "/image": self._image}
        routes.update({"/confusions": self._confusions, "/confusion": self._confusion, "/cell": self._cell})
        routes.update({"/counts": self._counts, "/thumbnail": self._thumbnail})
        apps = {path: wrappers.Request.application(route) for path, route in routes.items()}
        apps.update({path: wrappers.Request.application(self._static) for path in STATIC})
        return apps

    # Routes

    def _series(self, request: Any) -> Any:
        return self._answer(request, lambda: self._current().listing())

    def _steps(self, request: Any) -> Any:
        run, tag = request.args.get("run", ""), request.args.get("tag", "")
        return self._answer(request, lambda: self._current().steps(run, tag))

    def _image(self, request: Any) -> Any:
        from tensorboard.backend import http_util

        try:
            run, tag = request.args.get("run", ""), request.args.get("tag", "")
            step, sample = int(request.args.get("step", "")), int(request.args.get("sample", "0"))
            data = self._current().sample(run, tag, step, sample)
        except ValueError:
            return http_util.Respond(request, "step and sample must be whole numbers", "text/plain", code=400)
        except LogReadError as exc:
            return http_util.Respond(request, str(exc), "text/plain", code=404)
        kind = content_type(data)
        if kind is None:
            return http_util.Respond(request, "this sample is not an image format a browser shows", "text/plain", 415)
        return http_util.Respond(request, data, kind)  # not cached: a step written again shows its last record

    def _confusions(self, request: Any) -> Any:
        from tbimg_cli.serve import confusion

        def both() -> dict[str, Any]:
            index = self._current()
            return {"matrices": confusion.listing(index), "pictures_only": confusion.pictures_only(index)}

        return self._answer(request, both)

    def _confusion(self, request: Any) -> Any:
        from tbimg_cli.serve import confusion

        run, tag = request.args.get("run", ""), request.args.get("tag", "")
        with_counts = not request.args.get("classes_only")
        return self._answer(
            request,
            lambda: confusion.counts(self._current(), run, tag, _number(request, "step"), with_counts=with_counts),
        )

    def _counts(self, request: Any) -> Any:
        from tbimg_cli.serve import confusion

        run, tag = request.args.get("run", ""), request.args.get("tag", "")
        work = lambda: confusion.counts_bytes(self._current(), run, tag, _number(request, "step"))  # noqa: E731
        return self._bytes(request, work, "application/octet-stream")

    def _cell(self, request: Any) -> Any:
        from tbimg_cli.serve import confusion

        run, tag = request.args.get("run", ""), request.args.get("tag", "")

        def examples() -> dict[str, Any]:
            true = _number(request, "true") if request.args.get("true", "") != "" else None
            pred = _number(request, "pred") if request.args.get("pred", "") != "" else None
            return confusion.cell(self._current(), run, tag, _number(request, "step"), true, pred)

        return self._answer(request, examples)

    def _thumbnail(self, request: Any) -> Any:
        from tbimg_cli.serve import confusion

        run, tag = request.args.get("run", ""), request.args.get("tag", "")

        def png() -> bytes:
            step, example = _number(request, "step"), _number(request, "index")
            return confusion.thumbnail(self._current(), run, tag, step, example)

        return self._bytes(request, png, "image/png")

    def _bytes(self, request: Any, work: Any, kind: str) -> Any:
        """A binary answer of `kind`; 400 for a bad number, 404 for what the log does not hold."""
        from tensorboard.backend import http_util

        try:
            data = work()
        except _BadNumber as exc:
            return http_util.Respond(request, str(exc), "text/plain", code=400)
        except LogReadError as exc:
            return http_util.Respond(request, str(exc), "text/plain", code=404)
        return http_util.Respond(request, data, kind)

    def _static(self, request: Any) -> Any:
        from tensorboard.backend import http_util

        name = request.path.rsplit("/", 1)[-1]
        body = resources.files("tbimg_cli.serve").joinpath("static").joinpath(name).read_bytes()
        return http_util.Respond(request, body, STATIC["/" + name])

    def _answer(self, request: Any, work: Any) -> Any:
        from tensorboard.backend import http_util

        try:
            payload = work()
        except _BadNumber as exc:
            return http_util.Respond(request, json.dumps({"error": str(exc)}), "application/json", code=400)
        except LogReadError as exc:
            return http_util.Respond(request, json.dumps({"error": str(exc)}), "application/json", code=404)
        return http_util.Respond(request, json.dumps(payload), "application/json")

    def _current(self) -> Any:
        """The index, read further when the last read is older than the reload interval."""
        from tbimg_cli.serve.index import ImageIndex

        with self._lock:
            if self._index is None:
                if not self._logdir:
                    raise LogReadError("TensorBoard was started without a --logdir")
                self._index = ImageIndex(self._logdir)
            if time.monotonic() - self._refreshed_at >= self._reload_seconds:
                self._index.refresh()
                self._refreshed_at = time.monotonic()
            return self._index


class _BadNumber(LogReadError):
    """A query argument that should be a whole number is not (400, not 404)."""


def _number(request: Any, name: str) -> int:
    try:
        return int(request.args.get(name, ""))
    except ValueError:
        raise _BadNumber(f"{name} must be a whole number") from None
