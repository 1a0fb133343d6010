"""Typed configs on pydantic: every error one line naming the file, the field path and the bad value."""

from typing import Literal

import pytest
from pydantic import Field, model_validator

from circuits import CktLoopError
from circuits.config import MISSING, ConfigModel, config_diff, from_mapping, load_config


class Model(ConfigModel):
    width: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    dims: tuple[int, ...] = Field((1,), strict=False)
    kind: Literal["a", "b"] = "a"


class Train(ConfigModel):
    model: Model = Field(default_factory=Model)
    epochs: int = Field(3, ge=1)
    seed: int | None = None

    @model_validator(mode="after")
    def _not_seven(self) -> "Train":
        if self.epochs == 7:
            raise ValueError("epochs=7 clashes with the schedule")
        return self


def test_nested_config_with_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {width: 16, lr: 1, dims: [2, 3]}\nepochs: 5\n")
    assert load_config(path, Train) == Train(model=Model(width=16, lr=1.0, dims=(2, 3)), epochs=5)
    path.write_text("model: {lr: 1e-4}\n")  # YAML 1.1 would read a string here
    assert load_config(path, Train).model.lr == 1e-4
    path.write_text("train: {epochs: 4}\n")
    assert load_config(path, Train, section="train").epochs == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modle: {}", r"^\S*c\.yaml: modle: unknown key$"),
        ("model: {widht: 3}", r"c\.yaml: model\.widht: unknown key$"),
        ("epochs: many", r"c\.yaml: epochs: input should be a valid integer, got 'many'$"),
        ("epochs: '5'", r"c\.yaml: epochs: input should be a valid integer, got '5'$"),
        ("seed: true", r"c\.yaml: seed: input should be a valid integer, got True$"),
        ("model: {width: 1.5}", r"c\.yaml: model\.width: input should be a valid integer, got 1\.5$"),
        ("model: {lr: fast}", r"c\.yaml: model\.lr: input should be a valid number, got 'fast'$"),
        ("model: {dims: [1, x]}", r"c\.yaml: model\.dims\.1: input should be a valid integer, got 'x'$"),
        ("model: {kind: c}", r"c\.yaml: model\.kind: input should be 'a' or 'b', got 'c'$"),
        ("model: 3", r"c\.yaml: model: input should be a valid dictionary or instance of Model, got 3$"),
        ("epochs: 0", r"c\.yaml: epochs: input should be greater than or equal to 1, got 0$"),
        ("model: {lr: -1.0e-3}", r"c\.yaml: model\.lr: input should be greater than 0, got -0\.001$"),
        ("epochs: 7", r"c\.yaml: epochs=7 clashes with the schedule$"),
        ("model: [1, 2", r"c\.yaml: malformed YAML"),
        ("- 1\n- 2", r"c\.yaml: expected a mapping for Train, got \[1, 2\]$"),
    ],
)
def test_bad_configs_name_file_field_and_value(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(CktLoopError, match=message) as info:
        load_config(path, Train)
    assert "\n" not in str(info.value)


def test_several_errors_in_one_line_and_long_values_cut():
    with pytest.raises(CktLoopError) as info:
        from_mapping({"a": 1, "b": 2, "c": 3, "d": 4, "epochs": "x" * 200}, Train, where="stored")
    text = str(info.value)
    assert text.startswith("stored: ") and text.endswith("; and 2 more") and "\n" not in text
    assert len(text) < 200


def test_missing_file_section_and_binary_file(tmp_path):
    with pytest.raises(CktLoopError, match=r"none\.yaml: no such config file"):
        load_config(tmp_path / "none.yaml", Train)
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 2\n")
    with pytest.raises(CktLoopError, match=r"c\.yaml: missing section 'train'"):
        load_config(path, Train, section="train")
    path.write_bytes(bytes(range(256)))
    with pytest.raises(CktLoopError, match=r"c\.yaml: "):
        load_config(path, Train)


def test_replace_validates_and_configs_are_frozen():
    base = Train()
    assert base.replace(epochs=4).epochs == 4 and base.epochs == 3
    with pytest.raises(ValueError, match="epochs"):
        base.replace(epochs=0)
    with pytest.raises(ValueError, match="frozen"):
        base.epochs = 5
    assert Train.model_validate(base.to_dict()) == base


def test_config_diff_names_nested_paths_and_skips_top_level_keys():
    old = {"epochs": 3, "lr": 0.1, "betas": (0.9, 0.99), "model": {"width": 8, "epochs": 1}}
    new = {"epochs": 5, "lr": 0.1, "betas": [0.9, 0.99], "model": {"width": 16, "epochs": 2}, "seed": 1}
    assert config_diff(old, new, frozenset({"epochs"})) == [
        ("model.epochs", 1, 2),
        ("model.width", 8, 16),
        ("seed", MISSING, 1),
    ]
    assert config_diff(old, old) == [] and repr(MISSING) == "unset"
