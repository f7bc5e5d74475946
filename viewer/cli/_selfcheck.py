"""``zhiva-viewer --self-check``: check an installation without opening a window
(settings directory, organisation list, presets, secrets, TLS, assets, decoders)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable

from ..settings._atomic import ensure_private_dir
from ..settings._errors import SettingsError
from ..settings._paths import AppPaths
from ._common import EXIT_FAILED, EXIT_OK

__all__ = ["SELF_CHECK_SYNTAXES", "self_check"]


def _check_deidentification(report: Callable[[str, str], None]) -> None:
    """The export's de-identification loads (a packaged app bundles it by name) and
    removes a patient's name."""
    try:
        from pydicom.dataset import Dataset

        from ..deid import PROFILE_TABLE, Deidentifier, profile_actions

        ds = Dataset()
        ds.PatientName, ds.StudyInstanceUID = "Doe^Jane", "1.2.3"
        Deidentifier()(ds)
        ok = ds.PatientName == "" and ds.StudyInstanceUID != "1.2.3"
        report(
            "pass" if ok else "fail",
            f"de-identification: PS3.15 Basic Profile, {len(profile_actions())} attributes "
            f"({PROFILE_TABLE})",
        )
    except Exception as exc:  # any failure here is the finding itself
        report("fail", f"de-identification: {exc}")


def self_check(paths: AppPaths) -> int:
    from ..settings import ServerRegistry

    lines: list[tuple[str, str]] = []

    def report(status: str, text: str) -> None:
        lines.append((status, text))
        print(f"[{status}] {text}")

    try:
        ensure_private_dir(paths.config_dir)
        with tempfile.NamedTemporaryFile(dir=paths.config_dir, prefix=".self-check-"):
            pass
        report("pass", f"settings directory {paths.config_dir} is writable")
    except OSError as exc:
        report("fail", f"settings directory {paths.config_dir} is not writable: {exc}")
    try:
        registry = ServerRegistry.open(paths)
    except SettingsError as exc:
        report("fail", f"settings: {exc}")
    else:
        selected = registry.selected()
        report(
            "fail" if registry.store.read_only_reason else "pass",
            f"settings {paths.settings_file}: {len(registry.settings.servers)} saved server(s), "
            f"selected: {selected.name if selected else 'none'}",
        )
        for notice in registry.notices:
            report("note", notice)
        managed = len(registry.organisation.servers)
        report("pass", f"organisation servers: {managed}")
        report(
            "pass" if registry.presets else "fail",
            f"server presets: {', '.join(p.name for p in registry.presets) or 'none found'}",
        )
        report("pass", f"passwords and tokens: {registry.secrets.description}")
        if registry.secrets.note:
            report("note", registry.secrets.note)
    try:
        from net._tls import make_ssl_context

        make_ssl_context()
        report("pass", "TLS: the operating system's trust store is usable")
    except Exception as exc:  # any failure here is the finding itself
        report("fail", f"TLS trust store: {exc}")
    _check_assets(report)
    _check_decoders(report)
    _check_decoding(report)
    _check_deidentification(report)
    failed = sum(status == "fail" for status, _ in lines)
    print("self-check: " + ("all checks passed." if not failed else f"{failed} check(s) failed."))
    return EXIT_OK if not failed else EXIT_FAILED


#: The compressed transfer syntaxes the viewer must decode, by family, in the order the
#: self-check lists them (the packaged binary is checked against this list).
SELF_CHECK_SYNTAXES: tuple[tuple[str, str], ...] = (
    ("JPEG baseline", "1.2.840.10008.1.2.4.50"),
    ("JPEG extended (12-bit)", "1.2.840.10008.1.2.4.51"),
    ("JPEG lossless", "1.2.840.10008.1.2.4.57"),
    ("JPEG lossless SV1", "1.2.840.10008.1.2.4.70"),
    ("JPEG-LS lossless", "1.2.840.10008.1.2.4.80"),
    ("JPEG-LS near-lossless", "1.2.840.10008.1.2.4.81"),
    ("JPEG 2000 lossless", "1.2.840.10008.1.2.4.90"),
    ("JPEG 2000", "1.2.840.10008.1.2.4.91"),
    ("HTJ2K lossless", "1.2.840.10008.1.2.4.201"),
    ("HTJ2K lossless RPCL", "1.2.840.10008.1.2.4.202"),
    ("HTJ2K", "1.2.840.10008.1.2.4.203"),
    ("RLE lossless", "1.2.840.10008.1.2.5"),
)


def _check_decoders(report: Callable[[str, str], None]) -> None:
    """One line per compressed transfer syntax: available or not, and through which plugins."""
    try:
        from render import decoder_status
    except Exception as exc:  # a broken install is the finding itself
        report("fail", f"pixel decoders: cannot load the renderer: {exc}")
        return
    for label, ts in SELF_CHECK_SYNTAXES:
        status = decoder_status(ts)
        if status.available:
            plugins = ", ".join(status.plugins) or "built in"
            report("pass", f"decoder {label} ({ts}): {plugins}")
        else:
            hint = f": {status.install_hint}" if status.install_hint else ""
            report("fail", f"decoder {label} ({ts}): not available{hint}")


def _check_decoding(report: Callable[[str, str], None]) -> None:
    """Decode a small 12-bit frame of each lossless family: proof the plugins load and run.

    The frames are encoded here (imagecodecs, pydicom's RLE encoder) and must come back
    bit-exact through `render.decode_frame_bytes`, the path the viewer's loader takes.
    """
    try:
        import imagecodecs
        import numpy as np
        from pydicom.pixels.encoders.base import RLELosslessEncoder

        from render import PixelFormat, decode_frame_bytes
    except Exception as exc:  # a broken install is the finding itself
        report("fail", f"test decode: cannot load the codecs: {exc}")
        return
    rows = columns = 16
    image = ((np.arange(rows * columns, dtype=np.uint16) * 13) % 4096).reshape(rows, columns)
    encoders: dict[str, Callable[[], bytes]] = {
        "JPEG 2000": lambda: bytes(imagecodecs.jpeg2k_encode(image, level=0, codecformat="J2K")),
        "JPEG-LS": lambda: bytes(imagecodecs.jpegls_encode(image, level=0)),
        "JPEG lossless": lambda: bytes(imagecodecs.ljpeg_encode(image, bitspersample=12)),
        "RLE": lambda: bytes(
            RLELosslessEncoder.encode(
                image,
                rows=rows,
                columns=columns,
                samples_per_pixel=1,
                bits_allocated=16,
                bits_stored=12,
                pixel_representation=0,
                photometric_interpretation="MONOCHROME2",
                number_of_frames=1,
            )
        ),
    }
    syntaxes = {
        "JPEG 2000": "1.2.840.10008.1.2.4.90",
        "JPEG-LS": "1.2.840.10008.1.2.4.80",
        "JPEG lossless": "1.2.840.10008.1.2.4.70",
        "RLE": "1.2.840.10008.1.2.5",
    }
    fmt = PixelFormat(rows=rows, columns=columns, bits_stored=12)
    for name, encode in encoders.items():
        try:
            decoded = decode_frame_bytes(encode(), fmt, syntaxes[name]).pixels
            exact = bool(np.array_equal(decoded, image))
        except Exception as exc:  # the failure is the finding
            report("fail", f"test decode {name}: {type(exc).__name__}: {exc}")
            continue
        if exact:
            report("pass", f"test decode {name}: a 12-bit frame came back bit-exact")
        else:
            report("fail", f"test decode {name}: the decoded frame differs")


def _check_assets(report: Callable[[str, str], None]) -> None:
    from ..settings._paths import find_assets_dir

    assets = find_assets_dir()
    fonts = sorted(assets.glob("fonts/*.[ot]tf")) if assets is not None else []
    if assets is None or not fonts:
        report("fail", "assets (fonts, presets): not found; the window falls back to defaults")
    else:
        report("pass", f"assets {assets}: {len(fonts)} font file(s)")
