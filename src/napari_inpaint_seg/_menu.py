"""Layers > Segment menu entry: dock both widgets at once."""

from __future__ import annotations

from napari.viewer import Viewer

from . import PLUGIN


def open_widgets(viewer: Viewer) -> tuple:
    """Dock the Localize and Segment widgets (already docked ones are reused) and return them."""
    _, localize = viewer.window.add_plugin_dock_widget(PLUGIN, "Localize")
    _, segment = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment")
    return localize, segment
