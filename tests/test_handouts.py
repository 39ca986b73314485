"""The teaching handouts are generated, never hand-copied (``cirlib.tools.handouts``).

* every generated file (``docs/reconstruction.md``'s option tables, the reconstruction handout, the results
  one-pager, the session plan's measured times) equals what its source gives now;
* one edit of ``docs/reconstruction.yaml`` reaches both ``docs/reconstruction.md`` and the handout;
* a broken source is refused in one line that names the file, the section and the row.
"""

from __future__ import annotations

import json

import pytest

from cirlib.paths import REPO_ROOT
from cirlib.tools.handouts import (
    GENERATE,
    RECONSTRUCTION_DOC,
    RECONSTRUCTION_SOURCE,
    load_reconstruction,
    reconstruction_handout,
    record_demo_timings,
    replace_tables,
    stale_files,
    timings_table,
)


def test_every_generated_file_equals_what_its_source_gives():
    stale = stale_files()
    assert not stale, f"stale generated files {[str(p) for p in stale]}: run `{GENERATE}` and commit them"


def test_one_edit_of_the_yaml_reaches_reconstruction_md_and_the_handout():
    sections = load_reconstruction(REPO_ROOT / RECONSTRUCTION_SOURCE)
    row = next(r for r in sections["caam"]["rows"] if "summary" in r)
    row["default"] = "`a default no one wrote`"
    doc = replace_tables((REPO_ROOT / RECONSTRUCTION_DOC).read_text(encoding="utf-8"), sections)
    assert "| `a default no one wrote` |" in doc
    assert "| `a default no one wrote` |" in reconstruction_handout(sections)


def test_the_handout_shows_every_row_with_a_summary_and_only_those():
    sections = load_reconstruction(REPO_ROOT / RECONSTRUCTION_SOURCE)
    handout = reconstruction_handout(sections)
    shown = [r for s in sections.values() for r in s["rows"] if "summary" in r]
    for row in shown:
        assert f"| {row['option']} | {row['summary']} | {row['default']} | {row['why']} |" in handout, row["option"]
    rows = [line for line in handout.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert len(rows) - handout.count("| option | the summary says |") == len(shown)


def test_a_row_without_a_cell_is_refused_naming_section_and_row(tmp_path):
    text = (REPO_ROOT / RECONSTRUCTION_SOURCE).read_text(encoding="utf-8")
    broken = tmp_path / "reconstruction.yaml"
    broken.write_text(text.replace("      why: symmetric branches\n", "", 1), encoding="utf-8")
    with pytest.raises(ValueError, match=r"section 'caam', row \d+ \(`gamma` sharing\): missing or empty why"):
        load_reconstruction(broken)


def test_a_marker_without_a_section_is_refused():
    sections = load_reconstruction(REPO_ROOT / RECONSTRUCTION_SOURCE)
    doc = (REPO_ROOT / RECONSTRUCTION_DOC).read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="no `<!-- table KEY"):
        replace_tables(doc.replace("<!-- table ssam:", "<!-- tabel ssam:"), sections)


def test_the_timings_table_lists_every_measured_notebook(tmp_path):
    record = {"notebook_seconds": {"00_a.ipynb": 8.4, "01_b.ipynb": 61.0}, "machine": {"cpu_count": 2, "cpu": "X"}}
    table = timings_table(record, {"notebooks": {"00_a.ipynb": {"seconds": 30.0, "trained": ["cam"]},
                                                 "01_b.ipynb": {"seconds": 42.2, "trained": []}}})
    assert "| 00_a | 8 | 30 (trained) |" in table and "| 01_b | 61 | 42 |" in table
    assert "| 01_b | 61 | - |" in timings_table(record, {"notebooks": {"00_a.ipynb": {"seconds": 1.0}}})
    assert "--demo-timings" in timings_table(None)
    bad = tmp_path / "timings.json"
    bad.write_text(json.dumps({"total_seconds": 3}))
    with pytest.raises(ValueError, match="no \"notebook_seconds\""):
        record_demo_timings(bad, tmp_path / "out.json")
