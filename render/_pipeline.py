"""From dataset to RGBA: describe the image once, then render frames.

`image_info` reads everything display needs from a dataset into one frozen
`ImageInfo`; `render_pixels` sends a decoded frame down the right path:

* grayscale 8/16-bit integers and PALETTE COLOR: one cached `DisplayLUT`,
  one `np.take` per frame;
* grayscale 32-bit integers and float pixel data (RT dose, parametric maps):
  the vectorised float formula;
* RGB (including YBR decoded to RGB): scaled per channel.

`frame_to_rgba` strings decode and render together for callers that want one
call; the viewer keeps an `ImageInfo`, a VOI and a `LUTCache` per series and
calls `render_pixels` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from ._decode import DecodedFrame, decode_frame
from ._errors import UnsupportedImage
from ._info import PixelFormat, pixel_format
from ._lut import LUTCache, LUTSpec, build_display_lut, check_output
from ._modality import (
    ModalityTransform,
    apply_modality,
    modality_range,
    modality_transform,
    padding_range,
)
from ._photometric import is_grayscale, palette_rgb, rgb_to_rgba
from ._voi import VOI, Window, apply_voi, auto_window, header_vois

__all__ = [
    "ImageInfo",
    "default_voi",
    "float_to_rgba",
    "frame_to_rgba",
    "image_info",
    "render_pixels",
]

# Conversions pydicom does not do while decoding; we refuse them clearly.
_UNSUPPORTED_COLOUR = ("YBR_PARTIAL_420", "YBR_PARTIAL_422", "HSV", "ARGB", "CMYK")


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What one image (one frame of a multi-frame) needs for display.

    `vois` lists the header's windows, then its VOI LUTs, in the order the
    user cycles through them; empty means "compute an automatic window".
    """

    format: PixelFormat
    modality: ModalityTransform
    padding: tuple[int, int] | None
    vois: tuple[VOI, ...]
    palette_rgb: bytes | None = None

    @property
    def lut_spec(self) -> LUTSpec:
        """The display-LUT key for this image (everything except VOI and invert)."""
        return LUTSpec(
            signed=self.format.signed,
            modality=self.modality,
            padding=self.padding,
            monochrome1=self.format.photometric_interpretation == "MONOCHROME1",
            palette_rgb=self.palette_rgb,
        )


def image_info(ds: Dataset, frame: int = 0) -> ImageInfo:
    """Read the display description of `frame` of `ds`.

    Raises `UnsupportedImage` if the dataset cannot describe its pixels.
    """
    fmt = pixel_format(ds)
    photometric = fmt.photometric_interpretation
    palette = None
    if photometric == "PALETTE COLOR":
        palette = palette_rgb(ds, signed=fmt.signed)
    modality = modality_transform(ds, frame, fmt=fmt)
    vois: tuple[VOI, ...] = ()
    if is_grayscale(photometric):
        # A VOI LUT maps modality values, which may be negative even for
        # unsigned stored values (e.g. CT with intercept -1024).
        signed_input = fmt.signed or modality_range(fmt, modality)[0] < 0
        vois = header_vois(ds, frame, signed_input=signed_input)
    return ImageInfo(
        format=fmt,
        modality=modality,
        padding=padding_range(ds, fmt),
        vois=vois,
        palette_rgb=palette,
    )


def _padding_mask(stored: np.ndarray, info: ImageInfo) -> np.ndarray | None:
    if info.padding is None or not np.issubdtype(stored.dtype, np.integer):
        return None
    low, high = info.padding
    mask: np.ndarray = (stored >= low) & (stored <= high)
    return mask


def default_voi(info: ImageInfo, stored: np.ndarray) -> VOI:
    """The VOI to show first: the header's first, else one computed from `stored`.

    Images of 8 bits or fewer with no VOI were made for direct display (secondary
    capture, segmentations), so they get their full range; deeper images get
    `auto_window` over the frame, padding excluded.
    """
    if info.vois:
        return info.vois[0]
    fmt = info.format
    if not fmt.is_float and fmt.bits_stored <= 8 and np.issubdtype(stored.dtype, np.integer):
        low, high = modality_range(fmt, info.modality)
        if high > low:
            return Window((low + high) / 2, high - low, "LINEAR_EXACT", "full range")
    values = stored if fmt.is_float else apply_modality(stored, info.modality)
    return auto_window(values, exclude=_padding_mask(stored, info))


def float_to_rgba(
    values: np.ndarray,
    voi: VOI,
    *,
    monochrome1: bool = False,
    invert: bool = False,
    padding: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Grayscale modality values (any real dtype) to RGBA float32 by formula.

    The path for data a 65536-entry table cannot index (32-bit integers,
    Float/Double Float Pixel Data). NaN and padding show black.
    """
    if values.ndim != 2:
        raise ValueError(f"expected one 2-D frame, got shape {values.shape}")
    rows, columns = values.shape
    if out is None:
        out = np.empty((rows, columns, 4), dtype=np.float32)
    else:
        check_output(out, rows, columns)
    levels = apply_voi(values, voi)
    if monochrome1 != invert:
        levels = 1.0 - levels
    black = np.isnan(levels)
    if padding is not None:
        black |= padding
    levels[black] = 0.0
    out[..., :3] = levels[..., None]
    out[..., 3] = 1.0
    return out


def _check_photometric(photometric: str) -> None:
    if photometric in _UNSUPPORTED_COLOUR:
        raise UnsupportedImage(f"photometric interpretation {photometric} is not supported")


def render_pixels(
    decoded: DecodedFrame | np.ndarray,
    info: ImageInfo,
    voi: VOI | None = None,
    *,
    invert: bool = False,
    cache: LUTCache | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """One decoded frame to C-contiguous RGBA float32 (rows, columns, 4).

    `voi` defaults to `default_voi`; it is ignored for colour images. Pass a
    `cache` to reuse display LUTs across frames, and `out` to render straight
    into a texture buffer.
    """
    if isinstance(decoded, DecodedFrame):
        pixels, photometric = decoded.pixels, decoded.photometric_interpretation
    else:
        pixels, photometric = decoded, info.format.photometric_interpretation
    photometric = photometric or info.format.photometric_interpretation
    _check_photometric(photometric)
    if photometric == "PALETTE COLOR":
        if pixels.ndim != 2:
            raise UnsupportedImage("PALETTE COLOR needs one sample per pixel")
        spec = info.lut_spec
        lut = (
            cache.get(spec, None, invert=invert)
            if cache is not None
            else build_display_lut(spec, None, invert=invert)
        )
        return lut.apply(pixels, out)
    if not is_grayscale(photometric):
        if pixels.ndim == 3:
            if out is not None:
                check_output(out, pixels.shape[0], pixels.shape[1])
            return rgb_to_rgba(pixels, invert=invert, out=out)
        raise UnsupportedImage(f"photometric interpretation {photometric!r} is not supported")
    if pixels.ndim != 2:
        raise UnsupportedImage(f"a grayscale frame must be 2-D, got shape {pixels.shape}")
    chosen = voi if voi is not None else default_voi(info, pixels)
    if pixels.dtype.kind in "iub" and pixels.dtype.itemsize <= 2:
        spec = info.lut_spec
        lut = (
            cache.get(spec, chosen, invert=invert)
            if cache is not None
            else build_display_lut(spec, chosen, invert=invert)
        )
        return lut.apply(pixels, out)
    if pixels.dtype.kind not in "iuf":
        raise UnsupportedImage(f"pixel data of type {pixels.dtype} is not supported")
    values = pixels if info.format.is_float else apply_modality(pixels, info.modality)
    return float_to_rgba(
        values,
        chosen,
        monochrome1=photometric == "MONOCHROME1",
        invert=invert,
        padding=_padding_mask(pixels, info),
        out=out,
    )


def frame_to_rgba(
    ds: Dataset,
    frame: int = 0,
    window: VOI | None = None,
    *,
    invert: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Decode and render `frame` of `ds`: (rows, columns, 4) float32, C-contiguous.

    `window` is a `Window` or `VOILUT`; None takes the header's first VOI or an
    automatic window. Raises a `RenderError` subclass for anything about the
    image that stops it being shown.
    """
    info = image_info(ds, frame)
    decoded = decode_frame(ds, frame)
    return render_pixels(decoded, info, window, invert=invert, out=out)
