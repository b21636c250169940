"""The manifest is valid and every command it names imports (without pulling Qt into the core)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import resources

import pytest
import yaml


def manifest() -> dict:
    return yaml.safe_load((resources.files("napari_inpaint_seg") / "napari.yaml").read_text())


def test_every_python_name_imports():
    commands = manifest()["contributions"]["commands"]
    assert len(commands) >= 7
    for command in commands:
        module, _, attribute = command["python_name"].partition(":")
        assert callable(getattr(importlib.import_module(module), attribute)), command["id"]


def test_contributions_point_at_declared_commands():
    contributions = manifest()["contributions"]
    ids = {command["id"] for command in contributions["commands"]}
    used = [c["command"] for kind in ("readers", "writers", "sample_data", "widgets") for c in contributions[kind]]
    used += [item["command"] for items in contributions["menus"].values() for item in items]
    assert set(used) <= ids
    assert contributions["writers"][0]["filename_extensions"] == [".nii.gz", ".nii", ".gz"]  # STYLE.md: npe2 < 0.9
    assert "napari/layers/segment" in contributions["menus"]


def test_npe2_validate():
    from npe2 import PluginManifest

    PluginManifest.from_distribution("napari-inpaint-seg")  # the installed entry point resolves
    result = subprocess.run([sys.executable, "-m", "npe2", "validate", "napari-inpaint-seg"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_modules_do_not_import_qt():
    code = ("import sys, napari_inpaint_seg, napari_inpaint_seg.pipeline, napari_inpaint_seg.display, napari_inpaint_seg._reader, "
            "napari_inpaint_seg._writer, napari_inpaint_seg._sample_data, napari_inpaint_seg.launcher; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'napari')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.gui
def test_widgets_and_menu_open_in_napari(make_napari_viewer):
    from napari_inpaint_seg._menu import open_widgets
    from napari_inpaint_seg._widget_localize import LocalizeWidget
    from napari_inpaint_seg._widget_segment import SegmentWidget

    from napari._app_model import get_app_model

    viewer = make_napari_viewer()
    app = get_app_model()
    segment_menu = [item.command.id for item in app.menus.get_menu("napari/layers/segment") if hasattr(item, "command")]
    assert "napari-inpaint-seg.open_widgets" in segment_menu
    app.commands.execute_command("napari-inpaint-seg.open_widgets").result()  # Layers > Segment > ...
    docked = list(viewer.window.dock_widgets.values())
    assert sum(isinstance(w, (LocalizeWidget, SegmentWidget)) for w in docked) == 2
    localize, segment = open_widgets(viewer)
    assert isinstance(localize, LocalizeWidget) and isinstance(segment, SegmentWidget)
    assert open_widgets(viewer) == (localize, segment), "a second call reuses the docked widgets"
