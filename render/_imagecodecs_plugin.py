"""A pydicom 3 pixel-decoder plugin backed by imagecodecs (BSD-3-Clause).

pydicom finds a plugin by module path and needs three names in it:
`is_available(uid)`, `DECODER_DEPENDENCIES` and a frame decoder
(see pydicom's "Pixel Data Decoder Plugins" guide). `render._decode` registers
this module for the transfer syntaxes below and asks for it first, because:

* 12-bit JPEG Extended (…4.51) has no other permissive decoder: pydicom's gdcm
  and pillow plugins refuse 12-bit samples, and pylibjpeg-libjpeg is GPL.
* imagecodecs releases the GIL while decoding (pylibjpeg-openjpeg, pyjpegls and
  gdcm hold it), so background prefetch does not stall the render loop, and its
  libjpeg-turbo decodes JPEG Lossless about 4x faster than gdcm here.

JPEG (DCT and lossless) is limited to one sample per pixel: for colour JPEG the
colour transform depends on APP markers that pydicom's own plugins interpret,
and imagecodecs was measured (by others) to differ on an RGB stream without an
Adobe marker. Colour frames raise here, so pydicom moves on to the next plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydicom import uid

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    from pydicom.pixels.decoders.base import DecodeRunner

try:
    import imagecodecs
except ImportError:  # pragma: no cover - exercised when the package is absent
    imagecodecs = None  # type: ignore[assignment]

_REQUIREMENT = ("imagecodecs>=2024.1.1",)

_JPEG_SYNTAXES = (uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1)
_JPEG_LS_SYNTAXES = (uid.JPEGLSLossless, uid.JPEGLSNearLossless)
_JPEG_2000_SYNTAXES = (
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.HTJ2KLossless,
    uid.HTJ2KLosslessRPCL,
    uid.HTJ2K,
)

DECODER_DEPENDENCIES: dict[uid.UID, tuple[str, ...]] = {
    ts: _REQUIREMENT for ts in (*_JPEG_SYNTAXES, *_JPEG_LS_SYNTAXES, *_JPEG_2000_SYNTAXES)
}


def is_available(uid_: str) -> bool:
    """True if imagecodecs is installed with the codec this transfer syntax needs."""
    if imagecodecs is None:
        return False
    if uid_ in _JPEG_SYNTAXES:
        return bool(imagecodecs.JPEG8.available)
    if uid_ in _JPEG_LS_SYNTAXES:
        return bool(imagecodecs.JPEGLS.available)
    if uid_ in _JPEG_2000_SYNTAXES:
        return bool(imagecodecs.JPEG2K.available)
    return False


def _decode_array(src: bytes, runner: DecodeRunner) -> np.ndarray:
    assert imagecodecs is not None  # is_available() gates registration
    tsyntax = runner.transfer_syntax
    if tsyntax in _JPEG_2000_SYNTAXES:
        # One thread per frame: the loader already decodes frames in parallel.
        return imagecodecs.jpeg2k_decode(src, numthreads=1)
    if tsyntax in _JPEG_LS_SYNTAXES:
        return imagecodecs.jpegls_decode(src)
    if runner.samples_per_pixel != 1:
        raise ValueError("the imagecodecs plugin decodes monochrome JPEG only")
    return imagecodecs.jpeg8_decode(src)


def _decode_frame(src: bytes, runner: DecodeRunner) -> bytes:
    """Decode one encoded frame to raw little-endian samples, as pydicom expects."""
    arr = _decode_array(src, runner)
    # pydicom reads the returned buffer with the runner's dtype, so report the
    # container size the codec chose (8-bit J2K in a 16-bit dataset comes back
    # as uint8), exactly as pydicom's pylibjpeg plugin does.
    runner.set_option("bits_allocated", 8 * arr.dtype.itemsize)
    if arr.ndim == 3:
        # imagecodecs always returns colour-by-pixel.
        runner.set_option("planar_configuration", 0)
    if runner.transfer_syntax in _JPEG_2000_SYNTAXES and runner.photometric_interpretation in (
        "YBR_ICT",
        "YBR_RCT",
    ):
        # OpenJPEG undoes the J2K multi-component transform, so the samples are RGB.
        runner.set_option("photometric_interpretation", "RGB")
    return arr.tobytes()
