import json
from pathlib import Path

import pytest

from pipeline import ingest
from pipeline.errors import InputError
from pipeline.textnorm import normalize

# Opening words of every real article paragraph in the seeds (by document).
ARTICLE_PARAGRAPHS = {
    "000": ["North Korea’s Kim Jong Un and Russian President", "What's more, as the meeting was underway",
            "It was the first time that Kim, an international pariah", "The Kremlin also held a state dinner",
            "The two also toasted to Putin’s war in Ukraine"],
    "001": ["Infamous North Korean recluse", "It’s the first time that Kim, who’s making", "What do the two autocratic leaders",
            "But Pyongyang can help too.", "It wouldn’t be an unprecedented move", "That said, given North Korea’s penchant",
            "What does Pyongyang want in return?", "Two rogues sending a message"],
    "003": ["Russian President Vladimir Putin is currently in Pyongyang", "Not just symbolic, the summit",
            "According to various reports, Putin and Kim", "Ever since its negotiations with the United States",
            "Indeed, Pyongyang has frequently framed", "Besides attaining more Russian food", "As some observers have suggested",
            "However, it is uncertain to what extent", "Russia is entering its third year", "It is therefore unsurprising",
            "Putin stressed ahead of the trip", "Russia’s burgeoning relations with North Korea",
            "Russia supplying North Korea with advanced", "Provoking Seoul in this way", "\"Just like in our relations with Italy",
            "China is North Korea’s largest", "Moscow, which has become increasingly dependent", "But there are clear limits",
            "It remains to be seen if Moscow"],
    "004": ["In recent news, it has been revealed", "North Korea’s political ties with Russia stretch back",
            "Throughout its history, North Korea has attempted", "The first meeting between Kim Jong Un and President Putin",
            "One notable indication of the deepening ties", "Regarding the impact of the Ukraine war",
            "Economically, Russia has resumed oil exports", "In conclusion, the relationship between North Korea and Russia"],
}
ARTICLE_PARAGRAPHS["002"] = ARTICLE_PARAGRAPHS["001"]  # the same article, republished

# Words that appear only in sidebar stories, navigation, captions and credits.
BOILERPLATE = ["Brent crude", "oil prices", "Assad", "Syria’s brutal dictatorship", "Munich Security Conference",
               "Romanian", "Calin Georgescu", "stock trade", "stock trades", "Sahel", "Olaf Scholz", "Yoon Suk Yeol",
               "Top Risks", "Skip to content", "Latest Stories", "Follow us on social", "REUTERS", "Reuters",
               "Sputnik", "More For You", "keep reading", "[...]", "Trump", "Amur region", "Buy European"]


@pytest.fixture(scope="module")
def seed_passages(passages):
    """The passages of the collected seed articles (the web-page cleaning rules are about them)."""
    return [p for p in passages if all(Path(s["path"]).parent.name == "seeds" for s in p["sources"])]


def test_every_article_paragraph_becomes_a_passage_and_nothing_else(seed_passages):
    passages = seed_passages
    by_doc: dict[str, list[str]] = {}
    for p in passages:
        for s in p["sources"]:
            by_doc.setdefault(s["doc_id"][:3], []).append(p["text"])
    for doc, openings in ARTICLE_PARAGRAPHS.items():
        texts = by_doc[doc]
        assert len(texts) == len(openings), doc
        for opening, text in zip(openings, texts):
            assert text.startswith(opening), (doc, opening, text[:60])


@pytest.mark.parametrize("needle", BOILERPLATE)
def test_no_sidebar_navigation_or_caption_text_in_passages(seed_passages, needle):
    offenders = [p["text"][:80] for p in seed_passages if needle in p["text"]]
    assert not offenders


def test_passage_records_point_back_into_their_sources(root, passages):
    """Offsets index the source file, or for a JSONL document ("file.jsonl:line") its record's text."""
    for p in passages:
        assert p["id"] == ingest.passage_id(p["text"])
        for s in p["sources"]:
            path, _, line = s["path"].rpartition(":") if ".jsonl:" in s["path"] else (s["path"], "", "")
            raw = (root / path).read_text(encoding="utf-8")
            if line:
                raw = json.loads(raw.splitlines()[int(line) - 1])["text"]
            assert normalize(raw[s["char_start"]:s["char_end"]]) == p["text"]


def test_republished_article_is_kept_once_with_both_sources(passages):
    shared = [p for p in passages if {s["doc_id"][:3] for s in p["sources"]} == {"001", "002"}]
    assert len(shared) == 8
    assert len({p["text"] for p in passages}) == len(passages)


def test_document_date_is_extracted_and_stripped(seed_passages, passages):
    dated = [p for p in seed_passages if p["doc_id"].startswith("004")]
    assert dated and all(p["date"] == "2023-11-14" for p in dated)
    assert dated[0]["text"].startswith("In recent news")
    assert all(p["date"] is None for p in seed_passages if not p["doc_id"].startswith("004"))
    corpus = [p for p in passages if p not in seed_passages]  # JSONL documents carry their date as a field
    assert corpus and all(p["date"] and p["date"][:4] == str(p["meta"]["year"]) for p in corpus)


def _run(tmp_path, params, files: dict[str, bytes | str]):
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    for name, content in files.items():
        (src / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    out = tmp_path / "out"
    return ingest.run(src, out / "passages.jsonl", out / "report.json", params.ingest, params.seed), out


ARTICLE = ("Russia and North Korea signed a comprehensive strategic partnership treaty in Pyongyang this week.\n\n"
           "Analysts say the deal trades North Korean artillery shells for Russian oil and food aid.\n")


def test_markdown_html_and_jsonl_documents(tmp_path, params):
    html = ("<html><body><nav><a>Skip to content</a></nav><article><h1>Title</h1>"
            "<p>Russia and North Korea signed a comprehensive strategic partnership treaty in Pyongyang this week.</p>"
            "<figure><figcaption>Kim and Putin shake hands at the airport in Pyongyang. REUTERS/Someone</figcaption></figure>"
            "<p>Analysts say the <b>deal</b> trades North Korean artillery shells for Russian oil &amp; food aid.</p>"
            "</article><aside><p>An unrelated sidebar story about oil prices falling sharply this year.</p></aside></body></html>")
    jsonl = json.dumps({"id": "a1", "text": ARTICLE, "date": "2024-06-19", "outlet": "Example News"}) + "\n"
    md = "# Heading\n\nRussia and North Korea signed a **comprehensive strategic partnership** treaty\nin Pyongyang this week.\n"
    summary, out = _run(tmp_path, params, {"a.html": html, "b.jsonl": jsonl, "c.md": md})
    records = [json.loads(line) for line in (out / "passages.jsonl").read_text().splitlines()]
    texts = [r["text"] for r in records]
    assert "Analysts say the deal trades North Korean artillery shells for Russian oil & food aid." in texts
    assert not any("sidebar" in t or "REUTERS" in t or "Skip" in t for t in texts)
    first = next(r for r in records if r["text"].startswith("Russia and North Korea signed"))
    assert {s["doc_id"] for s in first["sources"]} == {"a", "b:a1", "c"}  # same sentence in all three
    jsonl_source = next(s for s in first["sources"] if s["doc_id"] == "b:a1")
    assert jsonl_source["date"] == "2024-06-19"
    assert summary["documents"] == 3


def test_near_duplicates_share_a_cluster(tmp_path, params):
    a = "Russia is reportedly buying millions of artillery shells and rockets from North Korea for its war in Ukraine."
    b = "Russia is reportedly buying millions of artillery shells and rockets from North Korea for its long war in Ukraine."
    c = "China remains North Korea's largest trading partner and does not want to lose its influence over Pyongyang."
    _, out = _run(tmp_path, params, {"a.txt": a + "\n", "b.txt": b + "\n", "c.txt": c + "\n"})
    records = {r["text"]: r for r in map(json.loads, (out / "passages.jsonl").read_text().splitlines())}
    assert records[a]["cluster_id"] == records[b]["cluster_id"] == records[a]["id"]
    assert records[c]["cluster_id"] == records[c]["id"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", b"", "empty.txt: file is empty"),
        ("binary.txt", b"Some text\n\x00\x01\x02 binary\n", "binary.txt:2: looks like a binary file"),
        ("latin1.txt", "A valid first line of text.\nCaf\u00e9 au lait in Pyongyang.\n".encode("latin-1"), "latin1.txt:2: not valid UTF-8"),
        ("menu.txt", "Skip to content\nSearch\nLatest Stories\n", "menu.txt: no paragraphs left after cleaning"),
        ("bad.jsonl", json.dumps({"text": ARTICLE}) + '\n{"text": broken}\n', "bad.jsonl:2: malformed JSON"),
        ("notext.jsonl", '{"title": "no text field"}\n', "notext.jsonl:1: field 'text' is missing"),
    ],
)
def test_bad_input_names_file_and_line_and_writes_nothing(tmp_path, params, name, content, message):
    out = tmp_path / "out"
    out.mkdir()
    (out / "passages.jsonl").write_text("previous good output\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        _run(tmp_path, params, {"good.txt": ARTICLE, name: content})
    assert (out / "passages.jsonl").read_text() == "previous good output\n"  # untouched
    assert not (out / "report.json").exists()
    assert sorted(p.name for p in out.iterdir()) == ["passages.jsonl"]  # no temp files left


def test_cli_reports_bad_input_with_exit_status_2(tmp_path, capsys):
    from pipeline import cli

    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        cli.main(["ingest", "--input-dir", str(tmp_path), "--passages", str(tmp_path / "p.jsonl"),
                  "--report", str(tmp_path / "r.json"), "--params", str(Path(__file__).parents[2] / "configs/params.yaml")])
    assert exc.value.code == 2
    assert "empty.txt: file is empty" in capsys.readouterr().err


# A fresh process ingests one file and prints its peak RSS (KiB): the imports cost the same in every
# run, so the difference between two files' peaks is what the text's size added.
_PEAK_RSS_OF_INGEST = """
import resource, sys
from pathlib import Path
from pipeline import ingest
from pipeline.config import load_params
params = load_params(Path("configs/params.yaml"))
src = Path(sys.argv[1])
ingest.run(src, src.parent / "p.jsonl", src.parent / "r.json", params.ingest, params.seed)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_large_document_is_streamed(tmp_path):
    """Memory grows with the number of unique passages, not with the size of the text: a 39 MB file of
    50 distinct paragraphs peaks within a few MB of a 2 MB one (holding its text would add 37 MB).

    Peak RSS of two processes, not tracemalloc: tracing every allocation made this test take 17 s."""
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    paragraph = " ".join(["Russia and North Korea"] + [f"discussed item {{}} of {w}" for w in range(160)]) + "."
    peaks, sizes = {}, {}
    for lines in (500, 10000):  # ~2 MB and ~39 MB, the same 50 distinct paragraphs
        src = tmp_path / str(lines) / "in"
        src.mkdir(parents=True)
        with (src / "big.txt").open("w") as fh:
            for i in range(lines):
                fh.write(paragraph.format(*([i % 50] * 160)) + "\n")
        sizes[lines] = (src / "big.txt").stat().st_size
        done = subprocess.run([sys.executable, "-c", _PEAK_RSS_OF_INGEST, str(src)], cwd=root, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        peaks[lines] = int(done.stdout.split()[-1]) * 1024
        summary = json.loads((src.parent / "r.json").read_text())
        assert summary["passages"] == 50 and summary["exact_duplicates_merged"] == lines - 50
    grown, added = peaks[10000] - peaks[500], sizes[10000] - sizes[500]
    assert grown < added / 8, f"peak grew {grown / 1e6:.1f} MB for {added / 1e6:.1f} MB more text"
