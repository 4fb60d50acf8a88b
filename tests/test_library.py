"""Where a user's documents live: ``library/`` of the working directory, started with a copy of the sample
article; uploads through the page land there, never in the checkout's ``seeds/`` or ``index/``."""

from __future__ import annotations

import sys
from pathlib import Path

from qa import QA
from qa.documents.library import DEFAULT_LIBRARY, library_folder
from qa.search.index import load_index
from tests.conftest import ROOT, SEED_DOC, SEEDS, free_port, start_server, stop_server, tree_state


def test_the_library_starts_with_a_copy_of_the_sample_and_stays_as_the_user_leaves_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert QA().documents_dir == DEFAULT_LIBRARY and not (tmp_path / "library").exists()  # nothing made until used
    assert library_folder() == DEFAULT_LIBRARY == Path("library")
    assert [path.name for path in (tmp_path / "library").iterdir()] == [SEED_DOC]  # documents only, no sets
    assert (tmp_path / "library" / SEED_DOC).read_bytes() == (SEEDS / SEED_DOC).read_bytes()
    assert not list(tmp_path.glob(".library-*"))  # the start was renamed into place whole
    (tmp_path / "library" / SEED_DOC).unlink()  # the user removes the sample: it does not come back
    assert library_folder() == DEFAULT_LIBRARY and not any((tmp_path / "library").iterdir())
    given = tmp_path / "elsewhere"
    assert library_folder(given) == given and not given.exists()  # a folder given is used as it is


def test_uploads_through_the_page_land_in_the_library_never_in_the_checkout(tmp_path, tiny_reader_dir):
    """The real ``app.py`` with its defaults, started in a fresh working directory as a new user would."""
    from gradio_client import Client, handle_file

    checkout = {name: tree_state(ROOT / name) for name in ("seeds", "index", "library")}
    note = tmp_path / "upload" / "falcon notes.md"
    note.parent.mkdir()
    note.write_text("# Falcon notes\n\nThe falcon project started in 2019 with three engineers in Lyon.\n")
    work = tmp_path / "work"
    work.mkdir()
    port = free_port()
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--reader", str(tiny_reader_dir)]
    process = start_server(command, work, port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        status, table, *_ = client.predict([handle_file(str(note))], False, api_name="/add_documents")
        assert "added" in status
        assert sorted(row[0] for row in table["data"]) == [SEED_DOC, "falcon notes.md"]
        client.predict("Where did the falcon project start?", api_name="/chat")
    finally:
        stop_server(process)
    assert sorted(path.name for path in (work / "library").iterdir()) == [SEED_DOC, "falcon notes.md"]
    indexed = load_index(work / "index").documents
    assert sorted(indexed) == [SEED_DOC, "falcon notes.md"]
    assert {name: tree_state(ROOT / name) for name in ("seeds", "index", "library")} == checkout
