"""The README cannot drift from the code: its settings table is the one `plumb settings` prints."""

import re
from pathlib import Path

from pipeline.settings import settings_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_settings_table_is_current():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- settings-table.*?-->\n(.*?)<!-- end settings-table -->", text, re.S)
    assert block, "README.md lost its settings-table markers"
    assert block.group(1).strip() == settings_table(), "README settings table is stale: paste `plumb settings` into it"


def test_readme_starts_with_the_run_and_test_commands():
    commands = re.findall(r"^(make \w+)", README.read_text(encoding="utf-8"), re.M)
    assert commands[:2] == ["make run", "make test"]
