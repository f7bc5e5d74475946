"""Server discovery (`net.discover`): against the test PACS in its layouts and behind the
quirks front — the proposed server must then pass every connection check — and, with
a mock transport for fault injection, its bounds: requests, time, plain http, and
credentials only for the host typed."""

from __future__ import annotations

import base64
import ssl

import httpx
import msgspec
import pytest

from net import InsecureUrl, ServerConfig, check_server, discover
from net._discover import MAX_REQUESTS, MAX_SECONDS
from tests.support.pacs import DCM4CHEE_AET, TestPacs
from tests.support.quirks import QuirksFront


def _base(pacs: TestPacs) -> ServerConfig:
    return ServerConfig(
        name="Found", ca_file=pacs.ca_file, auth_type="basic", username="zhiva-admin"
    )


def _passes(config: ServerConfig, pacs: TestPacs) -> None:
    check = check_server(config, httpx.BasicAuth(*pacs.admin_auth))
    assert check.ok, [r.line() for r in check.results]


# --- the test PACS ------------------------------------------------------------------------


@pytest.mark.integration
def test_the_zhiva_layout_is_found_from_the_host_and_then_passes_the_test(pacs: TestPacs) -> None:
    result = discover(pacs.origin, base=_base(pacs), auth=httpx.BasicAuth(*pacs.admin_auth))
    config = result.config
    assert config is not None and result.layout == "Zhiva local PACS"
    assert (config.url, config.wado_uri_postfix) == (pacs.base_url, "/zhiva/wado")
    assert {"url", "wado_uri_postfix"} <= set(result.fields)
    lines = "\n".join(result.lines())
    for finding in ("[found] WADO-URI", "[found] series-level retrieve", "/rendered only",
                    "fuzzy matching not honoured", "include fields honoured"):  # fmt: skip
        assert finding in lines
    assert config.series_retrieve and config.multipart_quotes
    assert result.requests <= MAX_REQUESTS and result.seconds < MAX_SECONDS
    _passes(config, pacs)


@pytest.mark.integration
def test_without_credentials_it_says_sign_in_is_needed_and_sends_none(pacs: TestPacs) -> None:
    result = discover(pacs.origin, base=ServerConfig(ca_file=pacs.ca_file))
    assert result.config is not None and result.config.url == pacs.base_url
    assert result.config.auth_type == "basic" and "auth_type" in result.fields
    assert any("sign-in: Basic" in line for line in result.lines())
    assert any("Detect again" in line for line in result.lines())


@pytest.mark.integration
def test_a_dcm4chee_layout_with_another_ae_title(pacs: TestPacs) -> None:
    result = discover(pacs.dcm4chee_url, base=_base(pacs), auth=httpx.BasicAuth(*pacs.admin_auth))
    config = result.config
    assert config is not None and result.layout == f"dcm4chee (AE title {DCM4CHEE_AET})"
    assert (config.url, config.postfix, config.qido_postfix, config.wado_postfix) == (
        pacs.dcm4chee_url,
        f"aets/{DCM4CHEE_AET}",
        "rs",
        "rs",
    )
    assert config.wado_uri_postfix == "wado"
    assert any(f"AE titles AS_RECEIVED, {DCM4CHEE_AET}" in line for line in result.lines())
    _passes(config, pacs)


@pytest.mark.integration
def test_the_zhiva_token_layout_proposes_zhiva_login(pacs: TestPacs) -> None:
    result = discover(pacs.token_origin, base=ServerConfig(ca_file=pacs.ca_file))
    config = result.config
    assert config is not None and config.url == pacs.token_base_url
    assert (config.auth_type, config.auth_server_url) == ("zhiva", pacs.auth_url)


@pytest.mark.integration
def test_behind_quirks_discovery_proposes_what_the_server_needs(
    pacs: TestPacs, quirks: QuirksFront
) -> None:
    with quirks.switched(series_retrieve=405, accept_quotes="unquoted", thumbnail=True):
        result = discover(quirks.origin, base=_base(pacs), auth=httpx.BasicAuth(*pacs.admin_auth))
        config = result.config
        assert config is not None
        assert not config.series_retrieve and not config.multipart_quotes
        assert config.thumbnail_rendering == "https"
        assert {"series_retrieve", "multipart_quotes", "thumbnail_rendering"} <= set(result.fields)
        _passes(config, pacs)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("layout", "name", "path", "postfixes"),
    [
        ("dicomweb", "DICOMweb at /dicomweb", "/dicomweb", ("", "")),
        ("split", "DICOMweb at /wado-rs and /qido-rs", "", ("qido-rs", "wado-rs")),
    ],
)
def test_a_generic_layout_is_found_from_the_host_and_then_passes_the_test(
    pacs: TestPacs,
    quirks: QuirksFront,
    layout: str,
    name: str,
    path: str,
    postfixes: tuple[str, str],
) -> None:
    # The front serves DICOMweb only there (the Zhiva and Orthanc roots answer 404); in
    # the split layout QIDO only at /qido-rs and everything else only at /wado-rs.
    with quirks.switched(layout=layout):
        result = discover(quirks.origin, base=_base(pacs), auth=httpx.BasicAuth(*pacs.admin_auth))
        config = result.config
        assert config is not None and result.layout == name
        assert (config.url, config.qido_postfix, config.wado_postfix) == (
            quirks.origin + path,
            *postfixes,
        )
        assert config.wado_uri_postfix == "/wado"
        assert any(line.startswith("[found] WADO-URI at") for line in result.lines())
        assert config.series_retrieve and "url" in result.fields
        assert result.requests <= MAX_REQUESTS
        _passes(config, pacs)


@pytest.mark.integration
def test_without_wado_uri_it_proposes_wado_rs_images(pacs: TestPacs, quirks: QuirksFront) -> None:
    base = msgspec.structs.replace(_base(pacs), image_rendering="wado")
    with quirks.switched(layout="dicomweb", wado_uri=False):
        result = discover(quirks.origin, base=base, auth=httpx.BasicAuth(*pacs.admin_auth))
        config = result.config
        assert config is not None and config.url == f"{quirks.origin}/dicomweb"
        assert (config.wado_uri_postfix, config.image_rendering) == ("", "wadors")
        assert {"wado_uri_postfix", "image_rendering"} <= set(result.fields)
        assert f"[missing] no WADO-URI at {quirks.origin}/wado (HTTP 404)" in result.lines()
        _passes(config, pacs)


@pytest.mark.integration
def test_fuzzy_matching_honoured_is_proposed(pacs: TestPacs, quirks: QuirksFront) -> None:
    with quirks.switched(fuzzy_matching=True):
        result = discover(quirks.origin, base=_base(pacs), auth=httpx.BasicAuth(*pacs.admin_auth))
        config = result.config
        assert config is not None and config.fuzzy_matching and "fuzzy_matching" in result.fields
        assert "[found] fuzzy matching honoured" in result.lines()
        # The probe named a name's first letters, no wildcard, and asked for fuzziness.
        (probe,) = [r["query"] for r in quirks.requests("qido") if r["query"].get("fuzzymatching")]
        assert probe["fuzzymatching"] == "true" and "*" not in probe["PatientName"]
        _passes(config, pacs)


class _CloudRelay(httpx.BaseTransport):
    """The quirks front under a cloud service's name (the suite cannot reach the cloud):
    what is addressed to `root` goes to the front's DICOMweb root over verified TLS;
    anything else of that host is a 404. Every request is recorded as
    (host, path, Authorization) so a test sees where the credentials went."""

    def __init__(self, root: str, front: QuirksFront, ca_file: str) -> None:
        self.root = root
        self.front = front.base_url
        self.inner = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=ca_file))
        self.seen: list[tuple[str, str, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.seen.append((request.url.host, request.url.path, request.headers.get("authorization")))
        rest = url[len(self.root) :]
        if not url.startswith(self.root) or rest[:1] not in ("", "/", "?"):
            return httpx.Response(404, request=request)
        target = httpx.URL(self.front + rest)
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
        headers.append((b"Host", target.netloc))  # a Request given a stream adds none
        relayed = httpx.Request(
            request.method, target, headers=headers, stream=request.stream,
            extensions=request.extensions,
        )  # fmt: skip
        return self.inner.handle_request(relayed)

    def close(self) -> None:
        self.inner.close()


GOOGLE_ROOT = (
    "https://healthcare.googleapis.com/v1/projects/p/locations/europe-west4/datasets/d"
    "/dicomStores/s/dicomWeb"
)
AZURE_ROOT = "https://ws-dicom.dicom.azurehealthcareapis.com/v2"
AWS_ROOT = "https://dicom-medical-imaging.eu-west-1.amazonaws.com/datastore/0123456789abcdef"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("pasted", "root", "switches"),
    [
        # Google: no transfer syntax asked means explicit little endian.
        (f"{GOOGLE_ROOT}/studies/1.2.840.1/series", GOOGLE_ROOT, {"default_uncompressed": True}),
        (GOOGLE_ROOT.removesuffix("/dicomWeb"), GOOGLE_ROOT, {"default_uncompressed": True}),
        # Azure: limit 1..200, 204 past the end, a fixed field list, no binary metadata.
        (
            f"{AZURE_ROOT}/studies",
            AZURE_ROOT,
            {"limit_cap": 200, "offset_past_end_204": True, "qido_minimal": True,
             "bulk_data": "omit"},
        ),
        # AWS HealthImaging: no series retrieve.
        (f"{AWS_ROOT}/studies", AWS_ROOT, {"series_retrieve": 400}),
    ],
    ids=["google-studies", "google-store", "azure-studies", "aws-studies"],
)  # fmt: skip
def test_a_cloud_url_pasted_whole_is_proposed_from_its_shape(
    pacs: TestPacs, quirks: QuirksFront, pasted: str, root: str, switches: dict[str, object]
) -> None:
    relay = _CloudRelay(root, quirks, pacs.ca_file)
    auth = httpx.BasicAuth(*pacs.admin_auth)
    with quirks.switched(**switches):
        result = discover(pasted, base=_base(pacs), auth=auth, transport=relay)
        config = result.config
        assert config is not None and result.layout == "the URL as typed"
        assert config.url == root and config.wado_uri_postfix == ""
        assert config.thumbnail_rendering == "wadors"
        # Only the pasted service was asked, under its root, always with the credentials.
        host, path = httpx.URL(root).host, httpx.URL(root).path
        assert relay.seen and all(h == host and p.startswith(path) for h, p, _ in relay.seen)
        basic = "Basic " + base64.b64encode(":".join(pacs.admin_auth).encode()).decode()
        assert all(a == basic for _, _, a in relay.seen)
        assert result.requests == len(relay.seen)
        assert config.series_retrieve is ("series_retrieve" not in switches)
        if switches.get("qido_minimal"):
            assert not config.qido_supports_include_field
            assert "[missing] include fields ignored (the answer was the same)" in result.lines()
        check = check_server(config, auth, transport=relay)
        assert check.ok, [r.line() for r in check.results]


# --- bounds, with a mock transport --------------------------------------------------------


def test_plain_http_is_never_tried() -> None:
    calls: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200))  # type: ignore[func-returns-value]
    with pytest.raises(InsecureUrl, match="https"):
        discover("http://pacs.example.org", transport=transport)
    assert calls == []


def test_a_host_with_nothing_known_costs_a_bounded_number_of_requests() -> None:
    calls: list[str] = []

    def nothing(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(404)

    result = discover("pacs.example.org", transport=httpx.MockTransport(nothing))
    assert not result.found and result.config is None
    assert all(url.startswith("https://pacs.example.org/") for url in calls)
    assert 0 < len(calls) == result.requests <= MAX_REQUESTS
    assert "no DICOMweb service found" in result.lines()[-1]


def test_it_stops_at_the_time_budget() -> None:
    now = [0.0]

    def slow(request: httpx.Request) -> httpx.Response:
        now[0] += 3.0  # every answer takes 3 s on this clock
        return httpx.Response(404)

    result = discover(
        "https://pacs.example.org", transport=httpx.MockTransport(slow), clock=lambda: now[0]
    )
    assert result.requests <= MAX_SECONDS / 3 + 1
    assert any("stopped after" in line for line in result.lines())


def test_credentials_go_only_to_the_host_typed() -> None:
    seen: dict[str, list[str | None]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.setdefault(request.url.host, []).append(request.headers.get("authorization"))
        if request.url.host == "pacs.example.org":
            # Everything is "moved" to another host: it must get no credentials.
            return httpx.Response(
                302, headers={"Location": f"https://elsewhere.example{request.url.path}"}
            )
        return httpx.Response(404)

    discover(
        "https://pacs.example.org",
        base=ServerConfig(auth_type="basic", username="u"),
        auth=httpx.BasicAuth("u", "secret"),
        transport=httpx.MockTransport(handler),
    )
    assert seen["pacs.example.org"] and all(seen["pacs.example.org"])
    assert seen["elsewhere.example"] and not any(seen["elsewhere.example"])


def test_a_cloud_url_pasted_whole_keeps_its_path_and_known_facts() -> None:
    paths: list[str] = []

    def studies(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path.endswith("/dicomWeb/studies"):
            return httpx.Response(
                401, headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
            )
        return httpx.Response(404)

    url = "https://healthcare.googleapis.com/v1/projects/p/locations/l/datasets/d/dicomStores/s/dicomWeb/studies"
    result = discover(url, transport=httpx.MockTransport(studies))
    config = result.config
    assert config is not None
    assert config.url.endswith("/dicomStores/s/dicomWeb") and config.wado_uri_postfix == ""
    assert config.auth_type == "token" and "Google Cloud Healthcare" in result.lines()[0]
    # Locked: one search at the root, no look for a Zhiva token server on Google's host.
    assert paths == [f"{httpx.URL(config.url).path}/studies"]
    assert "[found] sign-in: a Bearer access token" in "\n".join(result.lines())


def test_a_whole_short_name_found_without_fuzziness_is_not_fuzzy_matching() -> None:
    # A server that matches a name's components exactly and ignores fuzzymatching (as
    # many do): "Doe" finds "Doe^Peter", "Do" finds nothing.
    study = {
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Peter"}]},
    }
    names: list[str] = []

    def exact_components(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/dicom-web/studies":
            return httpx.Response(404)
        name = request.url.params.get("PatientName")
        if name is not None:
            names.append(name)
        found = name is None or name in ("Doe", "Peter", "Doe^Peter")
        return httpx.Response(
            200, json=[study] if found else [], headers={"Content-Type": "application/dicom+json"}
        )

    result = discover("https://pacs.example.org", transport=httpx.MockTransport(exact_components))
    assert result.config is not None and not result.config.fuzzy_matching
    assert "[missing] fuzzy matching not honoured (wildcards are used)" in result.lines()
    assert names and all(len(name) < len("Doe") for name in names)


def test_the_proposal_keeps_what_discovery_did_not_decide() -> None:
    def orthanc(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/dicom-web/studies":
            return httpx.Response(200, json=[], headers={"Content-Type": "application/dicom+json"})
        return httpx.Response(404)

    base = ServerConfig(name="Mine", read_timeout=99.0)
    result = discover(
        "https://pacs.example.org:8443", base=base, transport=httpx.MockTransport(orthanc)
    )
    config = result.config
    assert config is not None and config.id == base.id and config.name == "Mine"
    assert config.read_timeout == 99.0 and config.url == "https://pacs.example.org:8443/dicom-web"
    assert (
        msgspec.structs.replace(config, url=base.url, wado_uri_postfix="wado", auth_type="none")
        == base
    )
