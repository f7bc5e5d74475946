"""The public surface of `render` changes only on purpose; the layering holds."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest
from pydicom.pixels.decoders import base as decoder_base
from pydicom.uid import JPEGBaseline8Bit

import render
import render.texture

EXPECTED = {
    "CT_PRESETS", "VOI", "VOILUT", "DecodeError", "DecodedFrame", "DecoderStatus",
    "DecoderUnavailable", "DisplayLUT", "EdgeLabels", "ImageInfo", "LUTCache", "LUTSpec",
    "LossyStatus", "MalformedElement", "ModalityLUT", "ModalityTransform", "PixelFormat", "PixelSpacing",
    "RenderError", "Rescale", "SliceGeometry", "Stack", "UnsupportedImage", "VOIFunction",
    "Window", "apply_modality", "apply_voi", "auto_window", "build_display_lut", "ct_preset",
    "decode_frame", "decode_frame_bytes", "decoder_status", "default_voi", "float_to_rgba",
    "frame_to_rgba", "header_voi_luts", "header_vois", "header_windows", "image_info",
    "lossy_status", "modality_transform", "number_of_frames", "orientation_labels", "overlay_groups", "overlay_mask",
    "patient_orientation_labels", "pixel_format", "render_pixels", "scale_pixel_spacing",
    "slice_geometries", "slice_geometry", "sort_slices", "split_stacks",
    # MPR (issue 16)
    "MAX_RESAMPLE_GAP", "PLANE_AXES", "PlaneGeometry", "PlaneImage", "PlaneKind", "SlabMode",
    "Volume", "VolumeGeometry", "plane_geometry", "plane_image", "plane_line", "volume_geometry",
    # Where an image lies on screen and the screen-resolution texels of it (issue 14).
    "NATIVE_MAX_SCALE", "PYRAMID_MIN_SIDE", "AxisSampling", "DisplayPlan", "Placement",
    "ViewTransform", "build_pyramid", "fit_scale", "image_placement", "plan_display",
    "pyramid_factors", "pyramid_level", "reduce", "resample", "resample_mask",
    # measurements (render/_measure.py)
    "Calibration", "CalibrationBasis", "ImageCalibration", "RoiRegion", "RoiStatistics",
    "UltrasoundRegion", "angle_degrees", "ellipse_area", "ellipse_region", "image_calibration",
    "modality_units", "pixel_value", "polygon_area", "polygon_region", "polyline_length",
    "rectangle_region", "roi_statistics", "ultrasound_regions",
    "screen_to_image", "zoom_about",
}  # fmt: skip

TEXTURE_EXPECTED = {"TEXTURE_GRANULARITY", "TexturePool", "bucket", "check_texture_array"}

TEXTURE_EXPECTED = {"TEXTURE_GRANULARITY", "TexturePool", "bucket", "check_texture_array"}


def test_public_surface_is_pinned() -> None:
    assert set(render.__all__) == EXPECTED
    assert all(hasattr(render, name) for name in render.__all__)
    assert set(render.texture.__all__) == TEXTURE_EXPECTED


def test_importing_render_does_not_import_dearpygui_viewer_or_net() -> None:
    code = "import sys, render; print(sorted(m for m in ('dearpygui', 'viewer', 'net') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_ct_presets_have_the_published_values() -> None:
    values = {name: (w.width, w.center, w.function) for name, w in render.CT_PRESETS.items()}
    assert values == {
        "brain": (80, 40, "LINEAR"),
        "subdural": (215, 75, "LINEAR"),
        "stroke": (40, 40, "LINEAR"),
        "lung": (1500, -600, "LINEAR"),
        "mediastinum": (350, 50, "LINEAR"),
        "abdomen": (400, 50, "LINEAR"),
        "liver": (150, 30, "LINEAR"),
        "bone": (1800, 400, "LINEAR"),
    }
    assert render.ct_preset(" Lung ") is render.CT_PRESETS["lung"]
    with pytest.raises(KeyError, match="brain"):
        render.ct_preset("elbow")


def test_no_gpl_decoder_is_installed() -> None:
    # pydicom's pylibjpeg plugin would pick up pylibjpeg-libjpeg (GPL-3.0) by
    # itself if it were installed, and the binary we ship would then contain it.
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("pylibjpeg-libjpeg")
    assert "pylibjpeg" not in decoder_base.get_decoder(JPEGBaseline8Bit).available_plugins
