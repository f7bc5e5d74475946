"""Decoding: every transfer syntax pydicom bundles, cross-checked; clear errors."""

from __future__ import annotations

from collections.abc import Callable

import imagecodecs
import numpy as np
import pytest
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels.decoders import base as decoder_base

import render
from render import (
    DecodeError,
    DecoderUnavailable,
    decode_frame,
    decode_frame_bytes,
    decoder_status,
    pixel_format,
)

# (file, frame): at least one file per transfer syntax found in pydicom's test data.
CROSS_CHECKED = [
    ("CT_small.dcm", 0),  # Explicit VR Little Endian, signed 16-bit
    ("MR_small_implicit.dcm", 0),  # Implicit VR Little Endian
    ("MR_small_bigendian.dcm", 0),  # Explicit VR Big Endian
    ("ExplVR_BigEnd.dcm", 0),  # Big Endian RGB
    ("image_dfl.dcm", 0),  # Deflated Explicit VR Little Endian
    ("MR_small_RLE.dcm", 0),  # RLE Lossless
    ("SC_rgb_rle_2frame.dcm", 1),  # RLE multi-frame colour, second frame
    ("rtdose_rle.dcm", 3),  # RLE 32-bit multi-frame
    ("SC_rgb_jpeg_gdcm.dcm", 0),  # JPEG Lossless SV1, colour
    ("MR_small_jpeg_ls_lossless.dcm", 0),  # JPEG-LS Lossless, signed
    ("JPEGLSNearLossless_16.dcm", 0),  # JPEG-LS Near Lossless
    ("SC_rgb_jls_lossy_sample.dcm", 0),  # JPEG-LS colour
    ("MR_small_jp2klossless.dcm", 0),  # JPEG 2000 Lossless
    ("J2K_pixelrep_mismatch.dcm", 0),  # J2K codestream unsigned, dataset signed
    ("693_J2KI.dcm", 0),  # JPEG 2000 irreversible
    ("GDCMJ2K_TextGBR.dcm", 0),  # J2K YBR_RCT colour
    ("examples_jpeg2k.dcm", 0),  # J2K colour
    ("SC_rgb_jpeg_dcmtk.dcm", 0),  # JPEG Baseline YBR_FULL
    ("examples_ybr_color.dcm", 5),  # JPEG Baseline YBR_FULL_422 multi-frame
    ("SC_ybr_full_422_uncompressed.dcm", 0),  # native YBR_FULL_422
]


def independent_decode(ds: Dataset, frame: int) -> np.ndarray:
    """pydicom's own decode with any plugin but ours."""
    ts = ds.file_meta.TransferSyntaxUID
    decoder = decoder_base.get_decoder(ts)
    if not ts.is_encapsulated:
        return decoder.as_array(ds, index=frame)[0]
    for plugin in decoder.available_plugins:
        if plugin == "imagecodecs":
            continue
        try:
            return decoder.as_array(ds, index=frame, decoding_plugin=plugin)[0]
        except Exception:
            continue
    pytest.skip(f"no decoder other than ours for {ts.name}")


@pytest.mark.parametrize(("name", "frame"), CROSS_CHECKED)
def test_decode_matches_pydicoms_own_decoders(
    name: str, frame: int, test_file: Callable[[str], Dataset]
) -> None:
    ds = test_file(name)
    decoded = decode_frame(ds, frame)
    expected = independent_decode(ds, frame)
    assert decoded.pixels.shape == expected.shape
    assert decoded.pixels.dtype.isnative
    np.testing.assert_array_equal(decoded.pixels.astype(np.int64), expected.astype(np.int64))


def test_decoded_ybr_is_reported_as_rgb(test_file: Callable[[str], Dataset]) -> None:
    assert decode_frame(test_file("SC_rgb_jpeg_dcmtk.dcm")).photometric_interpretation == "RGB"
    assert decode_frame(test_file("GDCMJ2K_TextGBR.dcm")).photometric_interpretation == "RGB"


@pytest.mark.parametrize("name", ["JPGExtended.dcm", "JPEG-lossy.dcm"])
def test_12_bit_jpeg_extended_decodes_to_pydicoms_reference_values(
    name: str, test_file: Callable[[str], Dataset]
) -> None:
    # pydicom's pixel reference data for JPGExtended.dcm (the fixed JPEG-lossy.dcm).
    pixels = decode_frame(test_file(name)).pixels
    assert pixels.dtype == np.uint16
    assert pixels[420, 140] == 244
    assert pixels[230, 120] == 95


def lossless_jpeg_image(predictor: int, ts: str) -> tuple[Dataset, np.ndarray]:
    """A signed 16-bit CT-like frame encoded as JPEG Lossless (libjpeg-turbo)."""
    rng = np.random.default_rng(predictor)
    rows, columns = np.mgrid[0:64, 0:48]
    ct = np.where((rows - 32) ** 2 + (columns - 24) ** 2 < 400, 40, -1000)
    frame = (ct + rng.integers(-30, 30, ct.shape)).astype(np.int16)
    stream = imagecodecs.jpeg8_encode(
        frame.view(np.uint16), lossless=True, predictor=predictor, bitspersample=16
    )
    ds = Dataset()
    ds.file_meta = render_file_meta(ts)
    ds.Rows, ds.Columns = frame.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = encapsulate([stream])
    ds["PixelData"].VR = "OB"
    return ds, frame


def render_file_meta(ts: str) -> Dataset:
    from pydicom.dataset import FileMetaDataset

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ts
    return meta


@pytest.mark.parametrize(("predictor", "ts"), [(1, uid.JPEGLosslessSV1), (6, uid.JPEGLossless)])
def test_jpeg_lossless_16_bit_signed_round_trips(predictor: int, ts: str) -> None:
    ds, frame = lossless_jpeg_image(predictor, ts)
    np.testing.assert_array_equal(decode_frame(ds).pixels, frame)
    # gdcm, the fallback, agrees.
    if "gdcm" in decoder_base.get_decoder(ts).available_plugins:
        np.testing.assert_array_equal(independent_decode(ds, 0), frame)


def test_htj2k_decodes() -> None:
    frame = np.random.default_rng(3).normal(0, 300, (32, 40)).astype(np.int16)
    ds, _ = lossless_jpeg_image(1, uid.HTJ2KLossless)
    ds.Rows, ds.Columns = frame.shape
    ds.PixelData = encapsulate([imagecodecs.htj2k_encode(frame)])
    np.testing.assert_array_equal(decode_frame(ds).pixels, frame)


def test_multi_frame_frames_differ_and_index_is_checked(
    test_file: Callable[[str], Dataset],
) -> None:
    ds = test_file("SC_rgb_rle_2frame.dcm")
    first, second = decode_frame(ds, 0).pixels, decode_frame(ds, 1).pixels
    assert not np.array_equal(first, second)
    with pytest.raises(IndexError):
        decode_frame(ds, 2)


def test_truncated_native_pixel_data_is_a_clear_decode_error(
    test_file: Callable[[str], Dataset],
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_frame(test_file("MR_truncated.dcm"))
    message = str(caught.value)
    assert "Explicit VR Little Endian" in message and "1.2.840.10008.1.2.1" in message
    assert caught.value.transfer_syntax_uid == "1.2.840.10008.1.2.1"


def test_corrupt_jpeg_2000_stream_is_a_decode_error_and_others_keep_working(
    test_file: Callable[[str], Dataset],
) -> None:
    ds = test_file("MR_small_jp2klossless.dcm")
    stream = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([stream[: len(stream) // 3]])
    with pytest.raises(DecodeError) as caught:
        decode_frame(ds)
    assert "JPEG 2000 Image Compression (Lossless Only)" in str(caught.value)
    assert "1.2.840.10008.1.2.4.90" in str(caught.value)
    assert not isinstance(caught.value, DecoderUnavailable)
    # The failure left nothing behind: the next image decodes.
    assert decode_frame(test_file("MR_small_jp2klossless.dcm")).pixels.shape == (64, 64)


def test_garbage_in_a_jpeg_ls_frame_is_a_decode_error(test_file: Callable[[str], Dataset]) -> None:
    ds = test_file("MR_small_jpeg_ls_lossless.dcm")
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + bytes(range(256)) * 4])
    with pytest.raises(DecodeError, match="JPEG-LS Lossless"):
        decode_frame(ds)


def test_missing_decoder_names_the_syntax_and_the_package(
    monkeypatch: pytest.MonkeyPatch, test_file: Callable[[str], Dataset]
) -> None:
    bare = decoder_base.Decoder(uid.JPEGLSLossless)  # a decoder with no plugins installed
    real = decoder_base.get_decoder
    monkeypatch.setattr(
        decoder_base, "get_decoder", lambda ts: bare if ts == uid.JPEGLSLossless else real(ts)
    )
    with pytest.raises(DecoderUnavailable) as caught:
        decode_frame(test_file("MR_small_jpeg_ls_lossless.dcm"))
    error = caught.value
    assert error.transfer_syntax_uid == uid.JPEGLSLossless
    assert "JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)" in str(error)
    assert "pyjpegls" in error.install_hint and "pyjpegls" in str(error)
    status = decoder_status(uid.JPEGLSLossless)
    assert not status.available and status.plugins == () and "pyjpegls" in status.install_hint
    # Other syntaxes are untouched.
    assert decode_frame(test_file("MR_small_jp2klossless.dcm")).pixels.shape == (64, 64)


def test_transfer_syntax_without_any_decoder(test_file: Callable[[str], Dataset]) -> None:
    ds = test_file("SC_rgb_jpeg_dcmtk.dcm")
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 Main Profile
    with pytest.raises(DecoderUnavailable, match=r"MPEG2.*1\.2\.840\.10008\.1\.2\.4\.100"):
        decode_frame(ds)


def test_object_without_pixel_data_is_unsupported(test_file: Callable[[str], Dataset]) -> None:
    with pytest.raises(render.UnsupportedImage):
        decode_frame(test_file("rtplan.dcm"))


def test_decoder_status_reports_our_plugin_first_choice() -> None:
    status = decoder_status(uid.JPEG2000Lossless)
    assert status.available and "imagecodecs" in status.plugins
    assert decoder_status(uid.ExplicitVRLittleEndian).available
    assert not decoder_status("1.2.840.10008.1.2.4.100").available


def test_decode_frame_bytes_for_wado_rs_frames(test_file: Callable[[str], Dataset]) -> None:
    for name in ("MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm"):
        ds = test_file(name)
        stream = next(generate_frames(ds.PixelData, number_of_frames=1))
        decoded = decode_frame_bytes(stream, pixel_format(ds), ds.file_meta.TransferSyntaxUID)
        np.testing.assert_array_equal(decoded.pixels, decode_frame(ds).pixels)
    native = test_file("CT_small.dcm")
    decoded = decode_frame_bytes(native.PixelData, pixel_format(native), uid.ExplicitVRLittleEndian)
    np.testing.assert_array_equal(decoded.pixels, native.pixel_array)


def test_decode_error_hierarchy() -> None:
    assert issubclass(DecoderUnavailable, DecodeError)
    assert issubclass(DecodeError, render.RenderError)
    assert issubclass(render.UnsupportedImage, render.RenderError)
