"""Log lines of bottomless-cli: one line per event in either format, and the
database a record is about."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from bottomless import log_context
from bottomless_cli import logsetup


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    stream = io.StringIO()
    yield stream, logging.getLogger("bottomless.test_logsetup")
    root = logging.getLogger()
    for h in [h for h in root.handlers if h.get_name() == "bottomless-cli"]:
        root.removeHandler(h)


def use(fmt: str, stream: io.StringIO) -> None:
    logsetup.configure({"BOTTOMLESS_LOG": "debug"}, fmt=fmt)
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "bottomless-cli"]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)


def test_json_lines_name_the_database(captured: tuple[io.StringIO, logging.Logger]) -> None:
    stream, log = captured
    use("json", stream)
    log.info("plain %d", 1)
    with log_context.about("acme%2Fapp.db"):
        log.warning("inside")
        try:
            raise ValueError("first line\nsecond line")
        except ValueError:
            log.exception("it broke")
    log.info("explicit", extra={"database": "other.db"})
    lines = stream.getvalue().splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == 4
    assert events[0]["message"] == "plain 1" and "database" not in events[0]
    assert events[0]["level"] == "info" and events[0]["logger"] == "bottomless.test_logsetup"
    assert events[0]["time"].endswith("Z")
    assert events[1]["database"] == "acme%2Fapp.db" and events[1]["level"] == "warning"
    assert events[2]["database"] == "acme%2Fapp.db" and "ValueError: first line\nsecond line" in events[2]["exception"]
    assert events[3]["database"] == "other.db"


def test_text_lines_stay_one_line(captured: tuple[io.StringIO, logging.Logger]) -> None:
    stream, log = captured
    use("text", stream)
    with log_context.about("t.db"):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed\nbadly")
    [line] = stream.getvalue().splitlines()
    assert " ERROR bottomless.test_logsetup [t.db]: failed\\nbadly\\nTraceback" in line
    assert line.endswith("RuntimeError: boom")


def test_context_is_per_thread(captured: tuple[io.StringIO, logging.Logger]) -> None:
    stream, log = captured
    use("json", stream)
    with log_context.about("main.db"):
        worker = threading.Thread(target=lambda: log.info("from the worker"))
        worker.start()
        worker.join()
    [event] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "database" not in event


def test_unknown_format() -> None:
    with pytest.raises(logsetup.LogLevelError, match="--log-format: 'xml' is not one of text, json"):
        logsetup.configure({}, fmt="xml")
