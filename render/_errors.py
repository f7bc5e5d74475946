"""The render layer's one exception tree.

Everything `render` raises on account of an image is a `RenderError`, so the
viewer can catch one class per image, show its message on that image's tile
and keep the others working::

    RenderError                 any image that cannot be turned into pixels
    ├── DecodeError             the pixel stream could not be decoded; names the
    │   │                       transfer syntax (UID and name)
    │   └── DecoderUnavailable  no installed plugin can decode this transfer
    │                           syntax; says which package to install
    └── UnsupportedImage        decoded (or never needed decoding) but the image
        │                       itself is outside what we display: missing
        │                       attributes, an unsupported photometric
        │                       interpretation or bit depth
        └── MalformedElement    an element the pixels depend on has a value that
                                does not parse; names the element and the value

Programming errors (a wrong argument type, a malformed window) stay ordinary
`ValueError` / `TypeError`: they are bugs to fix, not images to flag.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "DecoderUnavailable",
    "MalformedElement",
    "RenderError",
    "UnsupportedImage",
]


class RenderError(Exception):
    """Base class: this image cannot be rendered; the message says why."""


class DecodeError(RenderError):
    """The pixel data could not be decoded.

    `transfer_syntax_uid` and `transfer_syntax_name` identify the encoding, so a
    message such as "JPEG-LS Lossless (1.2.840.10008.1.2.4.80): ..." can be shown
    without the caller knowing anything about pydicom.
    """

    def __init__(
        self, message: str, *, transfer_syntax_uid: str, transfer_syntax_name: str
    ) -> None:
        super().__init__(message)
        self.transfer_syntax_uid = transfer_syntax_uid
        self.transfer_syntax_name = transfer_syntax_name


class DecoderUnavailable(DecodeError):
    """No installed decoder plugin handles this transfer syntax.

    `install_hint` names the package(s) that would ("JPEG-LS needs imagecodecs or
    pyjpegls installed"); it is empty when no permissively licensed decoder exists.
    """

    def __init__(
        self,
        message: str,
        *,
        transfer_syntax_uid: str,
        transfer_syntax_name: str,
        install_hint: str,
    ) -> None:
        super().__init__(
            message,
            transfer_syntax_uid=transfer_syntax_uid,
            transfer_syntax_name=transfer_syntax_name,
        )
        self.install_hint = install_hint


class UnsupportedImage(RenderError):
    """The image is readable but outside what the viewer can display."""


class MalformedElement(UnsupportedImage):
    """An element's value does not parse, e.g. Number of Frames ``1A``.

    The message names the element, its tag and the value as written
    ("Number of Frames (0028,0008) has the invalid value '1A'"), so the user
    can tell which file is broken and how, where Python would say "invalid
    literal for int()". `keyword`, `tag` ("(0028,0008)") and `value` (text)
    are there for callers that want them.
    """

    def __init__(self, keyword: str, tag: str, name: str, value: str) -> None:
        super().__init__(f"{name} {tag} has the invalid value '{value}'")
        self.keyword = keyword
        self.tag = tag
        self.value = value
