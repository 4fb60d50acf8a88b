"""Indexing a 100-page PDF: text extraction (pages/s) and the whole ``qa add`` path (paragraphs/s), next to the
embedder's raw ``encode()`` of the same paragraphs (the baseline: what indexing would cost with free extraction).

The PDF is written with fpdf2 (``pip install fpdf2``, in the test extra) from SQuAD dev paragraphs when
``../shared`` is there (else the seed article, repeated): ``--pages`` pages of about 4 paragraphs each.

    python benchmarks/bench_pdf.py                # 100 pages

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "squad" / "dev.json"
LATIN1 = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2019": "'", "\u2018": "'", "\u2026": "...", "\u2013": "-"})


def source_paragraphs() -> list[str]:
    if DEV.is_file():
        data = json.loads(DEV.read_text(encoding="utf-8"))["data"]
        return [p["context"] for article in data for p in article["paragraphs"]]
    text = (ROOT / "seeds" / "000_ba938e0baee4174c.txt").read_text(encoding="utf-8")
    return [block for block in text.split("\n\n") if len(block.split()) > 8]


def make_pdf(path: Path, pages: int, per_page: int = 4) -> None:
    from fpdf import FPDF

    paragraphs = source_paragraphs()
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for page in range(pages):
        pdf.add_page()
        for i in range(per_page):
            text = paragraphs[(page * per_page + i) % len(paragraphs)]
            pdf.multi_cell(0, 5, text.translate(LATIN1).encode("latin-1", "replace").decode("latin-1"))
            pdf.ln(3)
    pdf.output(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=100)
    args = parser.parse_args()

    from qa.documents.library import add_document
    from qa.documents.paragraphs import Document, split_paragraphs
    from qa.pipeline import QA
    from qa.search.embedder import Embedder

    with tempfile.TemporaryDirectory() as temp:
        pdf = Path(temp) / "report.pdf"
        make_pdf(pdf, args.pages)
        data = pdf.read_bytes()

        started = time.perf_counter()
        document = Document.from_bytes("report.pdf", pdf, data)
        extract_s = time.perf_counter() - started
        paragraphs = split_paragraphs(document)

        embedder = Embedder()
        embedder.encode(["warm-up"])
        started = time.perf_counter()
        embedder.encode([p.text for p in paragraphs])
        raw_s = time.perf_counter() - started

        qa = QA(Path(temp) / "docs", Path(temp) / "index")
        qa._embedder = embedder  # the same loaded model for both
        started = time.perf_counter()
        add_document(qa.documents_dir, "report.pdf", data)
        index = qa.index()
        add_s = time.perf_counter() - started

    pages = len(document.page_starts)
    figures = {
        "benchmark": "pdf",
        "pages": pages,
        "paragraphs": len(index),
        "bytes": len(data),
        "extract_s": extract_s,
        "extract_pages_per_s": pages / extract_s,
        "add_and_index_s": add_s,
        "add_pages_per_s": pages / add_s,
        "add_paragraphs_per_s": len(index) / add_s,
        "raw_encode_paragraphs_per_s": len(paragraphs) / raw_s,
    }
    figures["ratio_add_over_raw_encode"] = figures["add_paragraphs_per_s"] / figures["raw_encode_paragraphs_per_s"]
    print(f"{pages}-page PDF ({len(data) / 1e6:.1f} MB), {len(index)} paragraphs")
    print(f"text extraction        {figures['extract_pages_per_s']:8.1f} pages/s   ({extract_s:.2f} s)")
    add_rate = f"{figures['add_pages_per_s']:8.1f} pages/s   {figures['add_paragraphs_per_s']:.1f} paragraphs/s"
    print(f"qa add + index         {add_rate}")
    print(f"raw encode (baseline)  {'':>8}           {figures['raw_encode_paragraphs_per_s']:.1f} paragraphs/s")
    print(f"add+index / raw encode {figures['ratio_add_over_raw_encode']:.2f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
