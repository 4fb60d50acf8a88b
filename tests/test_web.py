"""Safe defaults of the chat server: loopback unless told, a warning when open without a login, a
working login, bounded uploads, the queue settings; and the real ``app.py`` server listening on
127.0.0.1 only."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from qa import QA
from qa.cli import build_parser
from qa.conversation.chat import render_markdown
from qa.serving.access import exposure_warning, is_local, parse_auth
from qa.serving.web import CONCURRENCY, MAX_QUEUE, MAX_UPLOAD, build_app, launch_options
from tests.conftest import free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
SEED_DOC = "000_ba938e0baee4174c.txt"
MEETING = "Where did the meeting take place?"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_are_local(host):
    assert is_local(host)
    assert exposure_warning(host, None) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.10", "example.org"])
def test_open_hosts_warn_without_auth_only(host):
    warning = exposure_warning(host, None)
    assert warning and "without --auth" in warning
    assert exposure_warning(host, ("user", "secret")) is None


def test_launch_options_log_the_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="qa.serving.web"):
        launch_options("0.0.0.0", 8000, None)
    assert [r.getMessage() for r in caplog.records] == [exposure_warning("0.0.0.0", None)]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="qa.serving.web"):
        launch_options("0.0.0.0", 8000, "user:secret")
        launch_options()
    assert not caplog.records


def test_launch_options_are_safe_by_default():
    options = launch_options()
    assert options["server_name"] == "127.0.0.1"
    assert options["auth"] is None
    assert options["show_error"] is False  # no exception text sent to the browser
    assert options["share"] is False and options["enable_monitoring"] is False
    assert options["max_file_size"] == MAX_UPLOAD == "10mb"


def test_cli_and_app_default_to_loopback():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.auth) == ("127.0.0.1", None)


@pytest.mark.parametrize(
    "auth, expected",
    [(None, None), ("", None), ("user:secret", ("user", "secret")), ("user:pa:ss", ("user", "pa:ss"))],
)
def test_parse_auth(auth, expected):
    assert parse_auth(auth) == expected


@pytest.mark.parametrize("auth", ["user", "user:", ":secret", ":"])
def test_parse_auth_refuses_incomplete_logins(auth):
    with pytest.raises(ValueError, match="user:password"):
        parse_auth(auth)


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory, tiny_reader_dir) -> QA:
    base = tmp_path_factory.mktemp("web")
    (base / "seeds").mkdir()
    shutil.copy(ROOT / "seeds" / SEED_DOC, base / "seeds" / SEED_DOC)
    qa = QA(base / "seeds", base / "index", reader=str(tiny_reader_dir))
    qa.index()
    return qa


def test_queue_settings(tiny_qa):
    app = build_app(tiny_qa)
    assert app._queue.max_size == MAX_QUEUE
    assert app._queue.default_concurrency_limit == CONCURRENCY
    assert build_app(tiny_qa, concurrency=1, max_queue=8)._queue.max_size == 8


def test_login_is_required_when_auth_is_set(tiny_qa):
    from gradio_client import Client

    app = build_app(tiny_qa)
    app.launch(prevent_thread_lock=True, quiet=True, **launch_options("127.0.0.1", free_port(), "user:secret"))
    url = app.local_url.rstrip("/")
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/config").status_code == 401
            posted = http.post("/gradio_api/call/chat", json={"data": [MEETING]})
            assert posted.status_code == 401
            assert http.post("/login", data={"username": "user", "password": "wrong"}).status_code == 400
        with pytest.raises(Exception):  # noqa: B017 (gradio_client raises a bare ValueError or an httpx error)
            Client(url + "/", verbose=False)
        client = Client(url + "/", auth=("user", "secret"), verbose=False)
        assert client.predict(MEETING, api_name="/chat") == render_markdown(tiny_qa.answer(MEETING))
    finally:
        app.close()


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                addresses.add(address)
    return addresses


def test_app_py_listens_on_loopback_only(tiny_qa, tiny_reader_dir):
    """The real server (``python app.py``) with no --host: reachable on 127.0.0.1, bound to nothing else,
    and no warning about being open."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read listening sockets from")
    port = free_port()
    command = [sys.executable, "app.py", "--port", str(port), "--documents", str(tiny_qa.documents_dir)]
    command += ["--index", str(tiny_qa.index_dir), "--reader", str(tiny_reader_dir)]
    process = start_server(command, ROOT, port)
    try:
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, little-endian hex
        reply = httpx.post(f"http://127.0.0.1:{port}/gradio_api/call/chat", json={"data": [""]}, timeout=30)
        assert reply.status_code == 200
    finally:
        err = stop_server(process)
    assert "without --auth" not in err
    assert "Traceback" not in err


def test_the_pages_escaped_user_text_is_read_back_as_typed_and_small_talk_is_no_turn():
    """The page shows a user's message escaped; the history it sends back is read as the user typed it."""
    from qa.conversation.chat import escape
    from qa.serving.web import safe_history

    typed = "What did <b>they</b> say (2017)?"
    history = [
        {"role": "user", "content": escape(typed)},
        {"role": "assistant", "content": "**x**"},
        {"role": "user", "content": "thanks!"},
        {"role": "assistant", "content": "You're welcome."},
    ]
    assert safe_history(history) == [(typed, "**x**")]
