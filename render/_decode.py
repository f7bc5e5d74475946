"""Decode: encoded pixel data to a numpy array, through pydicom 3's plugins.

pydicom keeps one `Decoder` per transfer syntax, each with plugins that carry
an availability check. We add our imagecodecs plugin (`_imagecodecs_plugin`)
and ask for it first where it is faster and releases the GIL; if it fails,
every other available plugin is tried. Whatever goes wrong comes back as a
`DecodeError` naming the transfer syntax, or `DecoderUnavailable` naming the
package to install: one bad image never takes the viewer down.
"""

from __future__ import annotations

import contextlib
import operator
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from pydicom import uid as uids
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders import base as decoder_base

from ._errors import DecodeError, DecoderUnavailable, UnsupportedImage
from ._info import PixelFormat, pixel_format

__all__ = [
    "DecodedFrame",
    "DecoderStatus",
    "decode_frame",
    "decode_frame_bytes",
    "decoder_status",
]

_PLUGIN_LABEL = "imagecodecs"
_PLUGIN_MODULE = ("render._imagecodecs_plugin", "_decode_frame")

# Transfer syntaxes for which our imagecodecs plugin is registered and tried first.
_IMAGECODECS_FIRST = frozenset(
    {
        uids.JPEGExtended12Bit,
        uids.JPEGLossless,
        uids.JPEGLosslessSV1,
        uids.JPEGLSLossless,
        uids.JPEGLSNearLossless,
        uids.JPEG2000Lossless,
        uids.JPEG2000,
        uids.HTJ2KLossless,
        uids.HTJ2KLosslessRPCL,
        uids.HTJ2K,
    }
)

_JPEG_FAMILY = frozenset({uids.JPEGExtended12Bit, uids.JPEGLossless, uids.JPEGLosslessSV1})

_J2K = "imagecodecs or pylibjpeg with pylibjpeg-openjpeg"
# What to install when no plugin is available, by transfer syntax. Only
# permissively licensed packages are named (pylibjpeg-libjpeg is GPL-3.0).
INSTALL_HINTS: Mapping[str, str] = MappingProxyType(
    {
        uids.JPEGBaseline8Bit: "JPEG Baseline needs pillow or imagecodecs installed",
        uids.JPEGExtended12Bit: "JPEG Extended (12-bit) needs imagecodecs installed",
        uids.JPEGLossless: "JPEG Lossless needs imagecodecs or python-gdcm installed",
        uids.JPEGLosslessSV1: "JPEG Lossless needs imagecodecs or python-gdcm installed",
        uids.JPEGLSLossless: "JPEG-LS needs imagecodecs or pyjpegls installed",
        uids.JPEGLSNearLossless: "JPEG-LS needs imagecodecs or pyjpegls installed",
        uids.JPEG2000Lossless: f"JPEG 2000 needs {_J2K} installed",
        uids.JPEG2000: f"JPEG 2000 needs {_J2K} installed",
        uids.HTJ2KLossless: f"HTJ2K needs {_J2K} installed",
        uids.HTJ2KLosslessRPCL: f"HTJ2K needs {_J2K} installed",
        uids.HTJ2K: f"HTJ2K needs {_J2K} installed",
        uids.RLELossless: "RLE Lossless needs numpy (pydicom's own decoder)",
    }
)

_registration_lock = threading.Lock()
_registered = False


def _register_plugins() -> None:
    """Add the imagecodecs plugin to pydicom's decoders, once per process.

    pydicom's `add_plugin` is not thread-safe and refuses a label twice, hence
    the lock and the flag. Registering records the plugin as unavailable (with
    its requirement) when imagecodecs is missing, which is what we want.
    """
    global _registered
    if _registered:
        return
    with _registration_lock:
        if _registered:
            return
        for ts in _IMAGECODECS_FIRST:
            decoder = decoder_base.get_decoder(ts)
            # ValueError: already added, e.g. when this module was imported twice
            # under different names.
            with contextlib.suppress(ValueError):
                decoder.add_plugin(_PLUGIN_LABEL, _PLUGIN_MODULE)
        _registered = True


@dataclass(frozen=True, slots=True)
class DecoderStatus:
    """Whether a transfer syntax can be decoded here, and with what."""

    transfer_syntax_uid: str
    transfer_syntax_name: str
    available: bool
    plugins: tuple[str, ...]
    install_hint: str


def _name(ts: str) -> str:
    name = uids.UID(ts).name
    return name if name and name != ts else "unknown transfer syntax"


def decoder_status(transfer_syntax_uid: str) -> DecoderStatus:
    """Report whether `transfer_syntax_uid` is decodable and by which plugins.

    Native (uncompressed) syntaxes need no plugin and are always available.
    """
    _register_plugins()
    ts = uids.UID(transfer_syntax_uid)
    try:
        decoder = decoder_base.get_decoder(ts)
    except NotImplementedError:
        return DecoderStatus(ts, _name(ts), False, (), "")
    plugins = decoder.available_plugins
    return DecoderStatus(
        transfer_syntax_uid=str(ts),
        transfer_syntax_name=_name(ts),
        available=bool(decoder.is_available),
        plugins=tuple(plugins),
        install_hint="" if decoder.is_available else INSTALL_HINTS.get(ts, ""),
    )


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded frame.

    `pixels` is (rows, columns) for one sample per pixel, else
    (rows, columns, samples) colour-by-pixel. `photometric_interpretation` is
    what the samples are *now*: pydicom and its plugins turn YBR_FULL,
    YBR_FULL_422, YBR_ICT and YBR_RCT into RGB while decoding.
    """

    pixels: np.ndarray
    photometric_interpretation: str
    transfer_syntax_uid: str


def _transfer_syntax(ds: Dataset, override: str | None) -> uids.UID:
    if override:
        return uids.UID(override)
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax:
        return uids.UID(str(syntax))
    encoding = getattr(ds, "original_encoding", None)
    if encoding and encoding[1] is False:
        return uids.ExplicitVRBigEndian
    if encoding and encoding[0] is True:
        return uids.ImplicitVRLittleEndian
    # Datasets built in memory (e.g. from DICOM JSON plus bulk data) carry no
    # file meta; their pixel bytes are native little endian.
    return uids.ExplicitVRLittleEndian


def _decoder_for(ts: uids.UID) -> decoder_base.Decoder:
    _register_plugins()
    try:
        decoder = decoder_base.get_decoder(ts)
    except NotImplementedError:
        raise DecoderUnavailable(
            f"Cannot decode {_name(ts)} ({ts}): no decoder exists for this transfer syntax",
            transfer_syntax_uid=str(ts),
            transfer_syntax_name=_name(ts),
            install_hint="",
        ) from None
    if not decoder.is_available:
        hint = INSTALL_HINTS.get(ts, "no decoder plugin is installed")
        raise DecoderUnavailable(
            f"Cannot decode {_name(ts)} ({ts}): {hint}",
            transfer_syntax_uid=str(ts),
            transfer_syntax_name=_name(ts),
            install_hint=hint,
        )
    return decoder


def _summarise(exc: BaseException) -> str:
    # pydicom joins every plugin's failure on separate lines; one line reads
    # better on an image tile and still names each plugin.
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _preferred_plugin(decoder: decoder_base.Decoder, ts: uids.UID, samples: int) -> str:
    """Our plugin's label where it should go first, else "" (pydicom's order)."""
    if ts not in _IMAGECODECS_FIRST or _PLUGIN_LABEL not in decoder.available_plugins:
        return ""
    if samples != 1 and ts in _JPEG_FAMILY:
        # The plugin refuses colour JPEG (see _imagecodecs_plugin); asking it
        # first would only add a failure, and a logged traceback, per frame.
        return ""
    return _PLUGIN_LABEL


def _as_array(
    decoder: decoder_base.Decoder,
    src: Any,
    ts: uids.UID,
    frame: int,
    samples: int,
    **options: Any,
) -> DecodedFrame:
    plugin = _preferred_plugin(decoder, ts, samples)
    try:
        try:
            arr, props = decoder.as_array(src, index=frame, decoding_plugin=plugin, **options)
        except Exception:
            if not plugin:
                raise
            # Our preferred plugin failed on this stream: let pydicom try all.
            arr, props = decoder.as_array(src, index=frame, **options)
    except Exception as exc:  # incl. MemoryError from a header claiming a huge image
        raise DecodeError(
            f"Cannot decode {_name(ts)} ({ts}) frame {frame}: {_summarise(exc)}",
            transfer_syntax_uid=str(ts),
            transfer_syntax_name=_name(ts),
        ) from exc
    if not arr.dtype.isnative:
        # Big endian files decode to big-endian arrays; everything downstream
        # (the LUT's uint16 view in particular) assumes native order.
        arr = arr.astype(arr.dtype.newbyteorder("="))
    photometric = str(props.get("photometric_interpretation", "")).upper()
    return DecodedFrame(
        pixels=arr, photometric_interpretation=photometric, transfer_syntax_uid=str(ts)
    )


def decode_frame(
    ds: Dataset, frame: int = 0, *, transfer_syntax_uid: str | None = None
) -> DecodedFrame:
    """Decode frame `frame` (0-based) of `ds`.

    Raises `DecoderUnavailable` if nothing installed handles the transfer
    syntax, `DecodeError` if decoding fails (corrupt or truncated stream), and
    `UnsupportedImage` if the dataset has no usable pixel description. Safe to
    call from worker threads: pydicom builds a fresh runner per call.
    """
    frame = operator.index(frame)  # numpy ints are fine; a Window in the wrong place is not
    fmt = pixel_format(ds)
    if not 0 <= frame < fmt.number_of_frames:
        raise IndexError(f"frame {frame} out of range: the image has {fmt.number_of_frames}")
    ts = _transfer_syntax(ds, transfer_syntax_uid)
    decoder = _decoder_for(ts)
    return _as_array(decoder, ds, ts, frame, fmt.samples_per_pixel)


def decode_frame_bytes(data: bytes, fmt: PixelFormat, transfer_syntax_uid: str) -> DecodedFrame:
    """Decode one frame delivered on its own, e.g. by WADO-RS `/frames/N`.

    Compressed frames arrive as a bare codestream; pydicom decodes encapsulated
    data, so the codestream is wrapped in an item first. Native frames are the
    raw little-endian samples of exactly one frame.
    """
    ts = uids.UID(transfer_syntax_uid)
    decoder = _decoder_for(ts)
    src = encapsulate([data]) if ts.is_encapsulated else data
    if fmt.pixel_keyword != "PixelData" and ts.is_encapsulated:
        raise UnsupportedImage("float pixel data cannot be compressed")
    return _as_array(
        decoder,
        src,
        ts,
        0,
        fmt.samples_per_pixel,
        rows=fmt.rows,
        columns=fmt.columns,
        samples_per_pixel=fmt.samples_per_pixel,
        bits_allocated=fmt.bits_allocated,
        bits_stored=fmt.bits_stored,
        pixel_representation=int(fmt.signed),
        photometric_interpretation=fmt.photometric_interpretation,
        planar_configuration=fmt.planar_configuration,
        number_of_frames=1,
        pixel_keyword=fmt.pixel_keyword,
    )
