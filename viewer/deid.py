"""De-identification: DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile.

The profile's table (E.1-1: which attributes are removed, emptied, replaced by a
dummy or given new UIDs) comes from dicom-anonymizer (KitwareMedical, BSD-3-Clause),
which generates it from the standard's own tables (its ``dicomfields_2026c``) and
applies it to a pydicom data set. Around it, what the profile also asks and the
library leaves to its caller:

* attributes nested in sequences that the table does not remove are processed too,
  item by item, at every depth (the library applies its table to the top level only),
  so a UID in a Referenced Image Sequence gets the same new value as the instance it
  names;
* new UIDs are consistent within one export and differ from another export's: each
  `Deidentifier` has its own map (the library keeps one module-wide dictionary; it is
  swapped in under a lock for each data set);
* private attributes are removed unless kept (an option the profile names Retain
  Safe Private; keeping all of them is more than that, so the data set then does not
  claim its identity removed);
* Patient Identity Removed, De-identification Method and its code sequence
  (PS3.15 E.1.1 item 6) say what was done.

Burned In Annotation (0028,0301) = YES is reported (`burned_in`), never fixed: pixel
data is not touched.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import re
import sys
import threading
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

__all__ = ["PROFILE_TABLE", "Deidentifier", "burned_in", "profile_actions"]

#: The edition of PS3.15 Table E.1-1 used (dicom-anonymizer's name for it).
PROFILE_TABLE = "dicomfields_2026c"
#: PS3.16 CID 7050 codes (De-identification Method).
_BASIC_PROFILE = ("113100", "DCM", "Basic Application Confidentiality Profile")
#: De-identification Method is LO: at most 64 characters.
_METHOD = "DICOM PS3.15 Basic Profile (Zhiva Viewer)"

_library_lock = threading.Lock()
#: dicom-anonymizer calls a pydicom function deprecated in pydicom 3 once per element
#: of every sequence it empties; pydicom warns and logs each call. Said once here.
_DEPRECATED = "'pydicom.dataelem.DataElement_from_raw' is deprecated"


class _DropDeprecation(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _DEPRECATED not in record.getMessage()


logging.getLogger("pydicom").addFilter(_DropDeprecation())
warnings.filterwarnings("ignore", message=re.escape(_DEPRECATED), category=DeprecationWarning)


@functools.cache
def library() -> ModuleType:
    """dicom-anonymizer's engine (``simpledicomanonymizer``).

    The package's ``__init__`` imports its command line, and that imports tqdm
    (MPL-2.0, not a licence this app ships): the package is therefore set up without
    running its ``__init__``, and only the engine and its tables are imported. The
    PyInstaller spec lists these modules and excludes tqdm.
    """
    if "dicomanonymizer" not in sys.modules:
        spec = importlib.util.find_spec("dicomanonymizer")
        if spec is None or spec.loader is None:
            raise ImportError("dicom-anonymizer is not installed")
        sys.modules["dicomanonymizer"] = importlib.util.module_from_spec(spec)
    return importlib.import_module("dicomanonymizer.simpledicomanonymizer")


@functools.cache
def _table() -> dict[Any, Callable[[Dataset, Any], None]]:
    actions: dict[Any, Callable[[Dataset, Any], None]] = library().initialize_actions(PROFILE_TABLE)
    return actions


def profile_actions() -> dict[Any, Callable[[Dataset, Any], None]]:
    """Tag (or masked range) -> the library's action, for the table in use (a copy:
    the library adds its caller's rules to the dict it is given)."""
    return dict(_table())


@functools.cache
def _table_tags() -> frozenset[tuple[int, int]]:
    return frozenset(tag for tag in _table() if len(tag) == 2)


def burned_in(ds: Dataset) -> bool:
    return str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES"


class Deidentifier:
    """Applies the profile to data sets of one export, in place."""

    def __init__(self, *, keep_private: bool = False) -> None:
        self.keep_private = keep_private
        #: Original UID -> new UID, for every data set of this export.
        self.uids: dict[str, str] = {}

    def __call__(self, ds: Dataset) -> None:
        engine: Any = library()
        with _library_lock:
            saved, engine.dictionary = engine.dictionary, self.uids
            try:
                self._apply(ds, engine)
                self._nested(ds, engine)
            finally:
                engine.dictionary = saved
        self._mark(ds)

    def _apply(self, ds: Dataset, library: Any) -> None:
        library.anonymize_dataset(
            ds, delete_private_tags=not self.keep_private, base_rules_gen=profile_actions
        )

    def _nested(self, ds: Dataset, library: Any) -> None:
        # Sequences the table names were removed, emptied or replaced whole (their
        # items included) by the library; applying the table to them again would give
        # their already new UIDs newer ones.
        handled = _table_tags()
        for element in list(ds):
            if element.VR != "SQ" or not isinstance(element.value, Sequence):
                continue
            if (element.tag.group, element.tag.element) in handled:
                continue
            for item in element.value:
                self._apply(item, library)
                self._nested(item, library)

    def _mark(self, ds: Dataset) -> None:
        ds.PatientIdentityRemoved = "NO" if self.keep_private else "YES"
        method = _METHOD + ("; private kept" if self.keep_private else "")
        ds.DeidentificationMethod = method
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = _BASIC_PROFILE
        ds.DeidentificationMethodCodeSequence = Sequence([code])
