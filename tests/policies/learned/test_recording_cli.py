"""`corrigible dataset record|export|info` through the CLI: a real PyBullet suite episode with a
mid-run correction, its export, and every bad input answered with exit 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from corrigible.launch.cli import build_app
from corrigible.launch.dataset import parse_correction
from corrigible.policies.learned.recording import load_episodes

EXIT_BAD_INPUT = 2


def _cli(*args: str) -> Any:
    return CliRunner().invoke(build_app(), ["dataset", *args])


@pytest.fixture(scope="module")
def suite_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke suite's first episode on PyBullet, corrected after 1 s, recorded by the CLI."""
    out = tmp_path_factory.mktemp("cli") / "smoke"
    result = _cli(
        "record",
        "--suite",
        "smoke",
        "--episodes",
        "1",
        "--sim",
        "pybullet",
        "--correction",
        "a bit higher@1.0",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    return out


def test_record_writes_a_dataset_info_describes(suite_dataset: Path) -> None:
    result = _cli("info", str(suite_dataset), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["codebase_version"] == "v3.0" and summary["fps"] == 10
    assert summary["episodes"] == 1 and summary["tasks"] == [
        "put the purple block in the blue bowl"
    ]
    assert summary["corrections"] == 1 and summary["corrections_by_route"] == {"skill": 1}
    assert "pick up the purple block" in summary["subtasks"]
    (ep,) = load_episodes(suite_dataset)
    assert summary["frames"] == len(ep) > 40
    assert ep.meta["engine"] == "pybullet" and ep.corrections[0].text == "a bit higher"
    (mark,) = ep.corrections
    assert 1.0 <= mark.time_s <= 1.1  # typed at 1 s, taken at the next control tick
    # every frame before it (all within the 2 s window) is flagged, none after
    assert summary["frames_preceding_corrections"] == mark.frame_index == 11
    assert ep.precedes_correction[: mark.frame_index].all()
    text = _cli("info", str(suite_dataset))
    assert text.exit_code == 0 and "corrections: 1 (skill: 1)" in text.output


def test_export_lowers_the_frame_rate_and_writes_jsonl(suite_dataset: Path, tmp_path: Path) -> None:
    (ep,) = load_episodes(suite_dataset)
    result = _cli("export", str(suite_dataset), "--fps", "5", "--out", str(tmp_path / "5hz"))
    assert result.exit_code == 0, result.output
    (low,) = load_episodes(tmp_path / "5hz")
    keep = list(range(0, len(ep), 2))
    assert len(low) == len(keep)
    np.testing.assert_array_equal(low.action, ep.action[keep])
    np.testing.assert_array_equal(low.frames, ep.frames[keep])
    assert low.language == [ep.language[i] for i in keep]
    np.testing.assert_allclose(low.timestamp, np.arange(len(keep)) / 5)
    (mark,) = low.corrections
    assert keep[mark.frame_index] >= ep.corrections[0].frame_index  # the next kept frame
    assert low.correction_index[mark.frame_index] == 0
    result = _cli("export", str(suite_dataset), "--jsonl", "--out", str(tmp_path / "jsonl"))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "jsonl" / "frames.jsonl").open()]
    assert len(rows) == len(ep) and rows[5]["language"] == ep.language[5]
    assert rows[5]["action"] == pytest.approx(ep.action[5].tolist(), abs=1e-5)
    (episode,) = [json.loads(line) for line in (tmp_path / "jsonl" / "episodes.jsonl").open()]
    assert episode["corrections"][0]["text"] == "a bit higher"


def test_bad_inputs_exit_2_and_write_nothing(suite_dataset: Path, tmp_path: Path) -> None:
    before = sorted(p.relative_to(suite_dataset) for p in suite_dataset.rglob("*"))
    cases = [
        (
            [
                "record",
                "--instruction",
                "put the red block in the blue bowl",
                "--out",
                str(suite_dataset),
            ],
            "not empty",
        ),
        (["record", "--suite", "smok", "--out", str(tmp_path / "a")], "Did you mean 'smoke'"),
        (["record", "--out", str(tmp_path / "a")], "--instruction TEXT"),
        (
            [
                "record",
                "--instruction",
                "x",
                "--correction",
                "higher",
                "--out",
                str(tmp_path / "a"),
            ],
            "TEXT@SECONDS",
        ),
        (
            ["record", "--instruction", "x", "--correction", "up@-1", "--out", str(tmp_path / "a")],
            "seconds >= 0",
        ),
        (
            ["record", "--instruction", "x", "--fps", "3", "--out", str(tmp_path / "a")],
            "divide the 20 Hz",
        ),
        (
            ["record", "--instruction", "x", "--sim", "bullet", "--out", str(tmp_path / "a")],
            "bullet",
        ),
        (
            ["record", "--instruction", "x", "--episodes", "2", "--out", str(tmp_path / "a")],
            "--episodes goes with --suite",
        ),
        (["info", str(tmp_path / "missing")], "no dataset folder"),
        (["export", str(suite_dataset), "--fps", "3", "--out", str(tmp_path / "a")], "must divide"),
        (["export", str(suite_dataset), "--out", str(suite_dataset)], "not empty"),
    ]
    for args, message in cases:
        result = _cli(*args)
        assert result.exit_code == EXIT_BAD_INPUT, (args, result.output)
        assert "error:" in result.output and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "a").exists()
    assert sorted(p.relative_to(suite_dataset) for p in suite_dataset.rglob("*")) == before


def test_a_damaged_dataset_is_an_error_not_a_summary(suite_dataset: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(suite_dataset, copy)
    episodes = copy / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    episodes.write_bytes(b"PAR1 not really")
    result = _cli("info", str(copy))
    assert result.exit_code == EXIT_BAD_INPUT and "is damaged" in result.output
    (copy / "meta" / "info.json").unlink()
    result = _cli("info", str(copy))
    assert result.exit_code == EXIT_BAD_INPUT and "meta/info.json is missing" in result.output


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("a bit higher@1.5", ("a bit higher", 1.5)),
        ("put it @ the bowl@0", ("put it @ the bowl", 0.0)),
    ],
    ids=["plain", "at-in-text"],
)
def test_correction_specs_split_at_the_last_at(spec: str, parsed: tuple[str, float]) -> None:
    assert parse_correction(spec) == parsed


def test_an_instruction_that_cannot_be_planned_keeps_the_episodes_before_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "two"
    result = _cli(
        "record",
        "--instruction",
        "put the red block in the blue bowl",
        "--expect",
        "in(red block, blue bowl)",
        "--instruction",
        "dance the tango",
        "--perception",
        "privileged",
        "--out",
        str(out),
    )
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "could not be planned" in result.output and "dance the tango" in result.output
    assert "1 episode(s) before it were written" in result.output
    (ep,) = load_episodes(out)
    assert ep.task == "put the red block in the blue bowl" and ep.success
    assert [p.name for p in tmp_path.iterdir()] == ["two"]  # no temporary folder left behind
    alone = _cli("record", "--instruction", "dance the tango", "--out", str(tmp_path / "none"))
    assert alone.exit_code == EXIT_BAD_INPUT and not (tmp_path / "none").exists()
