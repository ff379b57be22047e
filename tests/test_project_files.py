"""LICENSE and CITATION.cff agree with pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_license_is_the_full_apache_2_text() -> None:
    assert PROJECT["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License\n                           Version 2.0, January 2004" in text
    for section in range(1, 10):
        assert f"\n   {section}. " in text, section
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX" in text
    assert len(text) > 11_000


def test_citation_matches_the_package() -> None:
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert str(citation["version"]) == PROJECT["version"]
    assert citation["license"] == PROJECT["license"]["text"]
    assert citation["title"].startswith(PROJECT["name"]) and citation["message"]
    assert citation["authors"]
