"""imdsrender.state on its own: where it refuses to write, what it refuses to read."""

from __future__ import annotations

import os
from pathlib import Path

from imdsrender.model import Resource, Settings
from imdsrender.state import (
    Record,
    load,
    resource_data,
    resource_from_data,
    save,
    settings_data,
    settings_from_data,
)

RESOURCE = Resource("conf.d/a.yaml:2", "/c/templates/a.j2", "a.j2", "/out/a",
                    ("/meta-data/instance-id",), closure=("a.j2", "b.j2"))


def record() -> Record:
    return Record(files=[["/c/imdsrender.yaml", None]], settings=settings_data(Settings()),
                  resources=[resource_data(RESOURCE)], values="v", clean=True)


def test_a_saved_record_loads_back_as_equal_values(tmp_path: Path) -> None:
    path = str(tmp_path / "state" / "run.json")
    save(path, record())
    loaded = load(path)
    assert loaded is not None and (loaded.values, loaded.clean) == ("v", True)
    assert resource_from_data(loaded.resources[0]) == RESOURCE
    assert settings_from_data(loaded.settings) == Settings()
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_directory_others_can_write_is_never_written(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could swap the file between our write and our read
    save(str(shared / "run.json"), record())
    assert list(shared.iterdir()) == []


def test_a_record_with_unknown_fields_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    save(str(path), record())
    path.write_text(path.read_text().replace('"clean"', '"surprise"'))
    assert load(str(path)) is None


def test_a_record_in_a_directory_others_can_write_is_not_read(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    save(str(state_dir / "run.json"), record())
    assert load(str(state_dir / "run.json")) is not None
    state_dir.chmod(0o775)  # a group member could have swapped the file in
    assert load(str(state_dir / "run.json")) is None
