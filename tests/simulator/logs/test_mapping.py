"""Mapping a shop's columns: --map strings and TOML files, every mistake named at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.errors import ConfigError
from simulator.logs.mapping import LogMapping


def test_map_string_with_a_context_list() -> None:
    m = LogMapping.parse("event=imp, user=visitor,item=sku,position=slot,click=c,context=a,b,c,revenue=r")
    assert (m.event, m.user, m.item, m.position, m.click, m.revenue) == ("imp", "visitor", "sku", "slot", "c", "r")
    assert m.context == ("a", "b", "c")
    assert m.reward_kind == "click"  # the first mapped outcome unless `reward` says otherwise
    assert m.columns()["context 2"] == "c"


def test_options_on_the_command_line_win() -> None:
    m = LogMapping.parse("item=sku,event=e,revenue=r,click=c", position_base=1, k=3, reward="revenue",
                         layout=None)
    assert (m.position_base, m.k, m.reward_kind, m.layout) == (1, 3, "revenue", "auto")


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("event=e,itme=sku,click=c", r"`itme`: unknown key \(did you mean `item`\?\)", id="typo"),
    pytest.param("event=e,click=c", r"`item`: missing", id="no-item"),
    pytest.param("item=a,item=b,click=c", r"`item`: is mapped twice", id="twice"),
    pytest.param("item=a,stray,click=c", r"`stray`: is not `role=column`", id="stray"),
    pytest.param("item=a,event=e", r"map at least one outcome", id="no-outcome"),
    pytest.param("item=a,click=c,context=x,x", r"`context`: names a column twice", id="context-twice"),
])
def test_map_string_mistakes_are_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LogMapping.parse(text)


def test_every_mistake_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        LogMapping.from_table({"item": "sku", "click": "c", "position_base": 2, "layout": "wide", "k": 0,
                               "reward": "revenue", "list_sep": ""}, "shop.toml")
    text = str(info.value)
    assert "shop.toml has 5 problems" in text
    for part in ("`position_base`: must be 0 or 1", "`layout`: must be one of", "`k`: must be a whole number",
                 "`reward`: is 'revenue' but no column is mapped to revenue", "`list_sep`"):
        assert part in text


def test_toml_file_at_the_top_level_or_under_logs(tmp_path: Path) -> None:
    (tmp_path / "flat.toml").write_text('item = "sku"\nevent = "e"\nclick = "c"\ncontext = ["a", "b"]\n'
                                        'position_base = 1\n')
    (tmp_path / "shop.toml").write_text('[catalog]\nid = "sku"\n\n[logs]\nitem = "sku"\nevent = "e"\n'
                                        'click = "c"\ncontext = ["a", "b"]\nposition_base = 1\n')
    flat = LogMapping.from_toml(tmp_path / "flat.toml")
    assert flat == LogMapping.from_toml(tmp_path / "shop.toml")
    assert flat.context == ("a", "b") and flat.position_base == 1
    assert LogMapping.from_toml(tmp_path / "flat.toml", position_base=0).position_base == 0


def test_toml_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config file at"):
        LogMapping.from_toml(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("item = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        LogMapping.from_toml(tmp_path / "bad.toml")
    (tmp_path / "typo.toml").write_text('[logs]\nitem = "sku"\nclick = "c"\npositon = "slot"\n')
    with pytest.raises(ConfigError, match=r"typo.toml has 1 problem:\n  - `positon`: unknown key \(did you mean `position`"):
        LogMapping.from_toml(tmp_path / "typo.toml")
