"""Pixels: decode DICOM images and turn them into display-ready RGBA.

Decoding goes through pydicom 3 and its plugins (plus our imagecodecs one);
modality LUT, VOI, photometric interpretation, padding and inversion are folded
into one lookup table per (image description, VOI), so a frame becomes a
C-contiguous float32 RGBA array with a single `np.take`. Geometry helpers sort
and split series and label image edges. `ViewTransform` places an image on screen
and `plan_display` / `resample` (with a `build_pyramid` for large images) make the
screen-resolution texels a viewport draws. `render.texture` (imported on its own,
since it is the one module that needs dearpygui) owns the raw textures.

Simple use::

    rgba = render.frame_to_rgba(ds, frame=0, window=render.ct_preset("lung"))

Per-series use (what the viewer does)::

    info = render.image_info(ds)
    voi = info.vois[0] if info.vois else render.default_voi(info, first.pixels)
    rgba = render.render_pixels(render.decode_frame(ds), info, voi, cache=lut_cache, out=buf)

Overlay planes (60xx groups, PS3.3 C.9.2/C.9.3) come separately, as data for
the viewer to draw::

    mask = render.overlay_mask(ds, frame)   # (Rows, Columns) bool, or None

One boolean mask per image frame (0-based), every graphics overlay that
applies to that frame OR-ed in, already placed by its Overlay Origin and cut
to the image. The caller resamples it exactly like the image (same transform
and output grid; max-pooled when minified, so one-pixel lines survive) and
composites it over the RGBA. None means nothing to draw. Malformed overlays
are left out rather than failing the image.
"""

from ._decode import (
    DecodedFrame,
    DecoderStatus,
    decode_frame,
    decode_frame_bytes,
    decoder_status,
)
from ._errors import (
    DecodeError,
    DecoderUnavailable,
    MalformedElement,
    RenderError,
    UnsupportedImage,
)
from ._geometry import (
    EdgeLabels,
    PixelSpacing,
    SliceGeometry,
    Stack,
    orientation_labels,
    patient_orientation_labels,
    scale_pixel_spacing,
    slice_geometries,
    slice_geometry,
    sort_slices,
    split_stacks,
)
from ._info import PixelFormat, number_of_frames, pixel_format
from ._lossy import LossyStatus, lossy_status
from ._lut import DisplayLUT, LUTCache, LUTSpec, build_display_lut
from ._measure import (
    Calibration,
    CalibrationBasis,
    ImageCalibration,
    RoiRegion,
    RoiStatistics,
    UltrasoundRegion,
    angle_degrees,
    ellipse_area,
    ellipse_region,
    image_calibration,
    modality_units,
    pixel_value,
    polygon_area,
    polygon_region,
    polyline_length,
    rectangle_region,
    roi_statistics,
    ultrasound_regions,
)
from ._modality import ModalityLUT, ModalityTransform, Rescale, apply_modality, modality_transform
from ._mpr import (
    PLANE_AXES,
    PlaneGeometry,
    PlaneImage,
    PlaneKind,
    SlabMode,
    plane_geometry,
    plane_image,
    plane_line,
)
from ._overlay import overlay_groups, overlay_mask
from ._pipeline import (
    ImageInfo,
    default_voi,
    float_to_rgba,
    frame_to_rgba,
    image_info,
    render_pixels,
)
from ._presets import CT_PRESETS, ct_preset
from ._resample import (
    PYRAMID_MIN_SIDE,
    build_pyramid,
    pyramid_level,
    reduce,
    resample,
    resample_mask,
)
from ._viewport import (
    NATIVE_MAX_SCALE,
    AxisSampling,
    DisplayPlan,
    Placement,
    ViewTransform,
    fit_scale,
    image_placement,
    plan_display,
    pyramid_factors,
    screen_to_image,
    zoom_about,
)
from ._voi import (
    VOI,
    VOILUT,
    VOIFunction,
    Window,
    apply_voi,
    auto_window,
    header_voi_luts,
    header_vois,
    header_windows,
)
from ._volume import MAX_RESAMPLE_GAP, Volume, VolumeGeometry, volume_geometry

__all__ = [
    "CT_PRESETS",
    "MAX_RESAMPLE_GAP",
    "NATIVE_MAX_SCALE",
    "PLANE_AXES",
    "PYRAMID_MIN_SIDE",
    "VOI",
    "VOILUT",
    "AxisSampling",
    "Calibration",
    "CalibrationBasis",
    "DecodeError",
    "DecodedFrame",
    "DecoderStatus",
    "DecoderUnavailable",
    "DisplayLUT",
    "DisplayPlan",
    "EdgeLabels",
    "ImageCalibration",
    "ImageInfo",
    "LUTCache",
    "LUTSpec",
    "LossyStatus",
    "MalformedElement",
    "ModalityLUT",
    "ModalityTransform",
    "PixelFormat",
    "PixelSpacing",
    "Placement",
    "PlaneGeometry",
    "PlaneImage",
    "PlaneKind",
    "RenderError",
    "Rescale",
    "RoiRegion",
    "RoiStatistics",
    "SlabMode",
    "SliceGeometry",
    "Stack",
    "UltrasoundRegion",
    "UnsupportedImage",
    "VOIFunction",
    "ViewTransform",
    "Volume",
    "VolumeGeometry",
    "Window",
    "angle_degrees",
    "apply_modality",
    "apply_voi",
    "auto_window",
    "build_display_lut",
    "build_pyramid",
    "ct_preset",
    "decode_frame",
    "decode_frame_bytes",
    "decoder_status",
    "default_voi",
    "ellipse_area",
    "ellipse_region",
    "fit_scale",
    "float_to_rgba",
    "frame_to_rgba",
    "header_voi_luts",
    "header_vois",
    "header_windows",
    "image_calibration",
    "image_info",
    "image_placement",
    "lossy_status",
    "modality_transform",
    "modality_units",
    "number_of_frames",
    "orientation_labels",
    "overlay_groups",
    "overlay_mask",
    "patient_orientation_labels",
    "pixel_format",
    "pixel_value",
    "plan_display",
    "plane_geometry",
    "plane_image",
    "plane_line",
    "polygon_area",
    "polygon_region",
    "polyline_length",
    "pyramid_factors",
    "pyramid_level",
    "rectangle_region",
    "reduce",
    "render_pixels",
    "resample",
    "resample_mask",
    "roi_statistics",
    "scale_pixel_spacing",
    "screen_to_image",
    "slice_geometries",
    "slice_geometry",
    "sort_slices",
    "split_stacks",
    "ultrasound_regions",
    "volume_geometry",
    "zoom_about",
]
