"""Fuzzing the parsers of what servers send: QIDO JSON, metadata JSON, whole answers.

Whatever the bytes, the client returns typed values or raises `ProtocolError` (or
another `net.errors` class): never a `KeyError`, `RecursionError` or `ValueError`.
MockTransport is the fault injection here: the bytes are the point, not the network.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from net import DicomWebClient, DicomWebError, RetryPolicy, ServerConfig

CONFIG = ServerConfig(name="Fuzz", url="https://pacs.example.org/dicom-web")
TAGS = ["0020000D", "0020000E", "00080018", "00100010", "00080020", "00201206", "00080061",
        "00280010", "00280008", "7FE00010", "00081199", "00081198", "00081155"]  # fmt: skip
VRS = ["UI", "PN", "DA", "IS", "US", "CS", "SQ", "OB", "DS", "FD", "AT", "xx"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(["Value", "vr", "Alphabetic", "BulkDataURI", "x"]), children, max_size=4
        ),
    ),
    max_leaves=20,
)
elements = st.fixed_dictionaries(
    {}, optional={"vr": st.sampled_from(VRS), "Value": json_values, "BulkDataURI": json_values,
                  "InlineBinary": st.text(max_size=12)}
)  # fmt: skip
datasets = st.dictionaries(st.sampled_from(TAGS), st.one_of(elements, json_values), max_size=6)
answers = st.one_of(
    st.lists(datasets, max_size=4),
    json_values,
)


def client_answering(body: bytes) -> DicomWebClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "application/dicom+json"})

    return DicomWebClient(
        CONFIG, transport=httpx.MockTransport(handler), retry=RetryPolicy(max_attempts=1)
    )


def encode(answer: Any) -> bytes:
    return msgspec.json.encode(answer)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers)
def test_qido_json_raises_only_our_errors(answer: Any) -> None:
    with client_answering(encode(answer)) as c:
        for search in (
            c.search_studies,
            lambda: c.search_series("1.2"),
            lambda: c.search_instances("1.2", "3.4"),
        ):
            with contextlib.suppress(DicomWebError):
                search()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers)
def test_metadata_json_raises_only_our_errors(answer: Any) -> None:
    with client_answering(encode(answer)) as c:
        with contextlib.suppress(DicomWebError):
            c.series_metadata("1.2", "3.4")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_as_json_raise_only_our_errors(body: bytes) -> None:
    with client_answering(body) as c:
        for call in (
            c.search_studies,
            lambda: c.series_metadata("1", "2"),
            lambda: c.store([b"x"]),
        ):
            with contextlib.suppress(DicomWebError):
                call()


def test_the_strategies_reach_real_dicom_json() -> None:
    # The fuzzer is only useful if it produces answers the parsers accept too.
    good = [
        {
            "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
        }
    ]
    with client_answering(json.dumps(good).encode()) as c:
        (study,) = c.search_studies()
    assert study.study_uid == "1.2.3" and study.patient_name == "Doe, John"
