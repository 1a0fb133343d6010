"""Typed YAML configs: unknown keys and wrong types name the file, the field and the value."""

from dataclasses import dataclass, field

import pytest

from circuits import CktLoopError
from circuits.config import load_config


@dataclass(frozen=True)
class Model:
    width: int = 8
    lr: float = 1e-3
    dims: tuple[int, ...] = (1,)


@dataclass(frozen=True)
class Train:
    model: Model = field(default_factory=Model)
    epochs: int = 3
    seed: int | None = None


def test_nested_config_with_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {width: 16, lr: 1, dims: [2, 3]}\nepochs: 5\n")
    assert load_config(path, Train) == Train(Model(16, 1.0, (2, 3)), 5, None)
    path.write_text("model: {lr: 1e-4}\n")  # YAML reads this as a string
    assert load_config(path, Train).model.lr == 1e-4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modle: {}", r"c.yaml: unknown key\(s\) modle for Train"),
        ("epochs: many", r"c.yaml: epochs: expected int, got 'many'"),
        ("model: {width: 1.5}", r"c.yaml: model: width: expected int, got 1.5"),
        ("model: {lr: fast}", r"c.yaml: model: lr: expected a number, got 'fast'"),
        ("model: [1, 2", r"c.yaml: malformed YAML"),
        ("- 1\n- 2", r"expected a mapping for Train"),
    ],
)
def test_bad_configs_name_file_field_and_value(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(CktLoopError, match=message):
        load_config(path, Train)


def test_missing_file(tmp_path):
    with pytest.raises(CktLoopError, match="no such config file"):
        load_config(tmp_path / "none.yaml", Train)
