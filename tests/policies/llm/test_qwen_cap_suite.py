"""The verbatim Code-as-Policies suite the LLM planners are measured on: committed = generated."""

from __future__ import annotations

from importlib import resources

import yaml

from corrigible.policies.suites import cap_make
from corrigible.policies.suites.schema import load_suite


def test_committed_cap_suite_is_what_cap_make_writes() -> None:
    text = (resources.files("corrigible.policies.suites") / "cap_verbatim.yaml").read_text()
    assert yaml.safe_load(text) == cap_make.build()


def test_cap_suite_loads_and_every_entry_names_its_source() -> None:
    suite = load_suite("cap_verbatim")
    assert len(suite.episodes) == len(cap_make.ENTRIES) >= 20
    assert {source for _, _, source, *_ in cap_make.ENTRIES} <= {
        "prompt",
        "demo",
        "saycan",
        "demo+prompt",
    }


def test_committed_cap_classes_suite_is_what_its_generator_writes() -> None:
    from corrigible.policies.suites import cap_classes_make

    text = (resources.files("corrigible.policies.suites") / "cap_classes.yaml").read_text()
    assert yaml.safe_load(text) == cap_classes_make.build()
    assert {e.family for e in load_suite("cap_classes").episodes} >= {"between", "shape"}
