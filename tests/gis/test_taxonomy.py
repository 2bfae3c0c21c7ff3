"""The incident taxonomy: the default is complete and consistent; bad files are named."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from gis.taxonomy import (
    DEFAULT_FILE,
    TaxonomyError,
    UnknownCategoryError,
    load_taxonomy,
    parse_taxonomy,
)

DEMO_CATEGORIES = {
    "环境卫生", "噪音扰民", "矛盾纠纷", "乱停车", "管道滴漏", "物业纠纷", "消防隐患",
    "乱晾晒", "违章搭建", "电梯故障", "市政设施", "宣传广告", "高空抛物", "占道经营",
}  # fmt: skip


def test_default_taxonomy_covers_the_demo_and_both_families() -> None:
    tax = load_taxonomy()
    names = {c.name for c in tax}
    assert names >= DEMO_CATEGORIES
    assert {c.class_name for c in tax} >= {"市容环境", "宣传广告", "施工管理", "突发事件",
                                           "街面秩序", "市政设施", "社区治理"}  # fmt: skip
    for cat in tax:
        assert cat.code[:2] == cat.class_code and len(cat.code) == 4
        assert 1 <= cat.severity <= 4
        assert cat.deadlines.respond <= cat.deadlines.on_site
    assert tax.get("2002") is tax.get("噪音扰民") is tax.get(" 噪音扰民 ")
    lift = tax.get("电梯故障")
    assert lift.level == "community" and lift.deadlines.on_site == timedelta(minutes=15)
    assert tax.get("违章搭建").deadlines.resolve_same_day is False


def test_unknown_category_lists_the_known_ones() -> None:
    with pytest.raises(UnknownCategoryError, match=r"'外星人'.*2002 噪音扰民"):
        load_taxonomy().get("外星人")


def _doc() -> dict:
    return tomllib.loads(DEFAULT_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["category"][1].update(code="0101"), "0101' is used twice"),
        (lambda d: d["category"][1].update(name="环境卫生"), "'环境卫生' is used twice"),
        (lambda d: d["category"][0].update(severity=5), "severity must be 1..4"),
        (lambda d: d["category"][0].update(level="province"), "level must be one of"),
        (lambda d: d["category"][0].update(code="0x01"), "code must be 4 digits"),
        (lambda d: d["category"][0].update(code="9901"), "class 99 is not in"),
        (lambda d: d["category"][0].update(respond_minutes=0), "respond_minutes must be"),
        (lambda d: d["category"][0].update(level="department"), "needs a department"),
        (lambda d: d.pop("category"), "no [[category]]"),
    ],
)
def test_malformed_taxonomy_names_the_entry_and_field(mutate, message: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(TaxonomyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_taxonomy(doc)


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "t.toml"
    bad.write_text("[[category]\ncode = ", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not valid TOML"):
        load_taxonomy(bad)


def test_an_office_file_replaces_the_default(tmp_path: Path) -> None:
    own = tmp_path / "office.toml"
    own.write_text(
        '[classes]\n"20" = "社区治理"\n[[category]]\ncode = "2001"\nname = "邻里纠纷"\n'
        'severity = 2\nlevel = "grid"\nresolve_same_day = false\nresolve_minutes = 2880\n',
        encoding="utf-8",
    )
    tax = load_taxonomy(own)
    assert len(tax) == 1 and tax.get("邻里纠纷").deadlines.resolve == timedelta(days=2)
    assert tax.get("2001").deadlines.respond == timedelta(minutes=5)  # the built-in default
