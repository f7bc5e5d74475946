"""From retrieved bytes to cached frames, and from cached frames to RGBA.

Uncompressed little-endian grayscale — most CT and MR — takes a fast path: the
frame is a read-only numpy view on the pixel bytes (~15 µs), where pydicom's decoder
takes ~0.7 ms of GIL-holding Python per frame; on a 300-slice stream that alone is a
third of the client's time. It applies the same unused-bits correction pydicom does
(PS3.5 8.1.1), and everything else goes through `render.decode_frame`, whose
imagecodecs plugin releases the GIL so compressed frames decode in parallel.
Server-rendered images (JPEG/PNG from /rendered or WADO-URI) are decoded with Pillow.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydicom import uid as uids
from pydicom.dataset import Dataset

import render
from net import Frame, RenderedImage

from ._cache import CachedFrame
from ._layout import InstanceHeader

__all__ = [
    "decode_dataset_frame",
    "decode_frame_part",
    "decode_native_frame",
    "decode_rendered",
    "fit_within",
    "is_fast",
    "to_rgba",
    "transfer_syntax_of",
]

_NATIVE_LITTLE = frozenset({uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian})
_FAST_PHOTOMETRIC = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"})


def transfer_syntax_of(ds: Dataset) -> str:
    """The dataset's transfer syntax; without file meta, the encoding it was read in
    (as `render.decode_frame` decides), so big-endian data never takes the fast path."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax:
        return str(syntax)
    encoding = getattr(ds, "original_encoding", None)
    if encoding and encoding[1] is False:
        return str(uids.ExplicitVRBigEndian)
    if encoding and encoding[0] is True:
        return str(uids.ImplicitVRLittleEndian)
    return str(uids.ExplicitVRLittleEndian)


def _fast_dtype(fmt: render.PixelFormat, ts: str) -> np.dtype[np.integer] | None:
    """The dtype of a frame the fast path can serve, None when pydicom must decode."""
    if (
        ts not in _NATIVE_LITTLE
        or fmt.pixel_keyword != "PixelData"
        or fmt.samples_per_pixel != 1
        or fmt.photometric_interpretation not in _FAST_PHOTOMETRIC
        or fmt.bits_allocated not in (8, 16)
        or not 1 <= fmt.bits_stored <= fmt.bits_allocated
    ):
        return None
    kind = "i" if fmt.signed else "u"
    return np.dtype(f"<{kind}{fmt.bits_allocated // 8}")


def is_fast(fmt: render.PixelFormat, ts: str) -> bool:
    """Whether frames of this format skip pydicom's decoder (cheap enough to do inline)."""
    return _fast_dtype(fmt, ts) is not None


def _native_frame(
    data: bytes | bytearray | memoryview,
    fmt: render.PixelFormat,
    dtype: np.dtype[np.integer],
    frame: int,
) -> np.ndarray | None:
    size = fmt.rows * fmt.columns
    step = size * dtype.itemsize
    if len(data) < (frame + 1) * step:
        return None  # short pixel data: let pydicom explain
    arr = np.frombuffer(data, dtype=dtype, count=size, offset=frame * step).reshape(
        fmt.rows, fmt.columns
    )
    shift = fmt.bits_allocated - fmt.bits_stored
    if shift and not _within_bits_stored(arr, fmt):
        # PS3.5 8.1.1: bits above Bits Stored are undefined; pydicom shifts them out
        # (arithmetically for signed data), and so do we, so values are identical.
        # The first step writes a new array, so the copy is not a pass of its own
        # (each pass over a 27 MB mammogram is a few milliseconds of the first image).
        out = np.empty_like(arr)
        if fmt.signed:
            np.left_shift(arr, shift, out=out)
            np.right_shift(out, shift, out=out)
        else:
            np.bitwise_and(arr, (1 << fmt.bits_stored) - 1, out=out)
        arr = out
    elif fmt.number_of_frames > 1:
        # A view would keep every frame's bytes alive for as long as any frame is
        # cached, and the memory budget counts one frame.
        arr = arr.copy()
    arr.flags.writeable = False
    return arr


def _within_bits_stored(arr: np.ndarray, fmt: render.PixelFormat) -> bool:
    """Whether the stored values already are what clearing the bits above Bits Stored
    would make them (the usual file: those bits are zero, or the sign's copies): then
    the frame is the received bytes as they are. One read of the frame (max, and min
    for signed data: ~0.5 ms each for a mammogram) instead of writing a copy of it
    (~3 ms with the new memory's page faults)."""
    if arr.size == 0:
        return True
    if fmt.signed:
        low, high = -(1 << (fmt.bits_stored - 1)), (1 << (fmt.bits_stored - 1)) - 1
        return bool(low <= int(arr.min()) and int(arr.max()) <= high)
    return int(arr.max()) < (1 << fmt.bits_stored)


def _readonly(pixels: np.ndarray) -> np.ndarray:
    pixels.flags.writeable = False
    return pixels


def decode_native_frame(
    data: bytes | bytearray | memoryview,
    fmt: render.PixelFormat,
    ts: str,
    header: InstanceHeader,
    frame: int,
) -> CachedFrame:
    """A frame of uncompressed little-endian samples (`is_fast` formats only)."""
    dtype = _fast_dtype(fmt, ts)
    pixels = _native_frame(data, fmt, dtype, frame) if dtype is not None else None
    if pixels is None:
        raise render.DecodeError(
            f"The pixel data is shorter than frame {frame + 1} of {fmt.number_of_frames} needs",
            transfer_syntax_uid=ts,
            transfer_syntax_name=uids.UID(ts).name,
        )
    return CachedFrame(pixels, fmt.photometric_interpretation, header, frame)


def decode_dataset_frame(
    ds: Dataset, frame: int, header: InstanceHeader, fmt: render.PixelFormat | None = None
) -> CachedFrame:
    """Frame `frame` (0-based) of a full instance (`fmt`: its pixel format, if known).

    Raises `render.RenderError` subclasses when the frame cannot be decoded.
    """
    if fmt is None:
        fmt = render.pixel_format(ds)
    ts = transfer_syntax_of(ds)
    dtype = _fast_dtype(fmt, ts)
    if dtype is not None:
        raw = ds.get("PixelData")
        if isinstance(raw, bytes | bytearray | memoryview):
            pixels = _native_frame(raw, fmt, dtype, frame)
            if pixels is not None:
                return CachedFrame(pixels, fmt.photometric_interpretation, header, frame)
    decoded = render.decode_frame(ds, frame)
    return CachedFrame(
        _readonly(decoded.pixels),
        decoded.photometric_interpretation or fmt.photometric_interpretation,
        header,
        frame,
    )


def decode_frame_part(part: Frame, header: InstanceHeader, frame: int) -> CachedFrame:
    """A frame delivered on its own by WADO-RS /frames (as stored)."""
    fmt = header.format()
    ts = part.transfer_syntax_uid or _syntax_from_media_type(part.media_type, header.dataset)
    one = render.PixelFormat(
        rows=fmt.rows,
        columns=fmt.columns,
        samples_per_pixel=fmt.samples_per_pixel,
        bits_allocated=fmt.bits_allocated,
        bits_stored=fmt.bits_stored,
        signed=fmt.signed,
        photometric_interpretation=fmt.photometric_interpretation,
        planar_configuration=fmt.planar_configuration,
        pixel_keyword=fmt.pixel_keyword,
        number_of_frames=1,
    )
    dtype = _fast_dtype(one, ts)
    if dtype is not None:
        pixels = _native_frame(part.data, one, dtype, 0)
        if pixels is not None:
            return CachedFrame(pixels, one.photometric_interpretation, header, frame)
    decoded = render.decode_frame_bytes(part.data, one, ts)
    return CachedFrame(
        _readonly(decoded.pixels),
        decoded.photometric_interpretation or one.photometric_interpretation,
        header,
        frame,
    )


def _syntax_from_media_type(media_type: str, header: Dataset) -> str:
    stored = transfer_syntax_of(header) if getattr(header, "file_meta", None) else ""
    if media_type in ("image/jp2", "image/jpx") and stored:
        return stored
    if media_type == "image/jp2":
        return str(uids.JPEG2000Lossless)
    if media_type == "image/jpeg":
        return stored or str(uids.JPEGBaseline8Bit)
    return str(uids.ExplicitVRLittleEndian)  # application/octet-stream: native samples


def decode_rendered(
    image: RenderedImage, header: InstanceHeader, frame: int, window: tuple[float, float] | None
) -> CachedFrame:
    """A server-rendered JPEG/PNG as 8-bit display values (grayscale or RGB)."""
    try:
        with Image.open(io.BytesIO(image.data)) as picture:
            picture.load()
            mode = "L" if picture.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
            pixels = np.asarray(picture.convert(mode))
    except (OSError, ValueError) as exc:  # Pillow's "cannot identify image file" is OSError
        raise render.DecodeError(
            f"Cannot read the server's {image.media_type} image: {exc}",
            transfer_syntax_uid="",
            transfer_syntax_name=image.media_type,
        ) from exc
    photometric = "MONOCHROME2" if pixels.ndim == 2 else "RGB"
    return CachedFrame(
        _readonly(np.ascontiguousarray(pixels)),
        photometric,
        header,
        frame,
        server_rendered=True,
        window=window,
    )


def to_rgba(
    frame: CachedFrame,
    info: render.ImageInfo | None = None,
    voi: render.VOI | None = None,
    *,
    invert: bool = False,
    lut_cache: render.LUTCache | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Display-ready C-contiguous float32 RGBA for a cached frame.

    Stored values go through `render.render_pixels` with `info` (from the layout, or
    computed from the frame's header) and `voi` (default: the header's first window,
    else an automatic one). Server-rendered frames are already display values.
    """
    if frame.server_rendered:
        pixels = frame.pixels
        rows, columns = pixels.shape[:2]
        if out is None:
            out = np.empty((rows, columns, 4), dtype=np.float32)
        levels = pixels.astype(np.float32) / np.float32(255.0)
        if invert:
            levels = 1.0 - levels
        out[..., :3] = levels[..., None] if levels.ndim == 2 else levels
        out[..., 3] = 1.0
        return out
    if info is None:
        info = render.image_info(frame.header, frame.frame)
    return render.render_pixels(
        render.DecodedFrame(frame.pixels, frame.photometric_interpretation, ""),
        info,
        voi,
        invert=invert,
        cache=lut_cache,
        out=out,
    )


def fit_within(rgba: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale an RGBA float32 image to fit in `size` (width, height), keeping its aspect.

    Servers may ignore a requested size (WADO-URI `rows`/`columns`), so thumbnails are
    always scaled here. Never scales up.
    """
    rows, columns = rgba.shape[:2]
    width, height = size
    scale = min(width / columns, height / rows, 1.0)
    target = (max(1, round(columns * scale)), max(1, round(rows * scale)))
    if target == (columns, rows):
        return np.ascontiguousarray(rgba, dtype=np.float32)
    as_bytes = np.clip(rgba * 255.0 + 0.5, 0, 255).astype(np.uint8)
    picture = Image.fromarray(as_bytes, "RGBA").resize(target, Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(picture, dtype=np.float32) / np.float32(255.0))
