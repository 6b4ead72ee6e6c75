"""AflowClient against a real HTTP server on loopback that replays recorded AFLUX pages.

The pages in ``tests/data/aflow`` are authored in the AFLUX response layout (see the
README there); ``index.json`` maps each query string to its page file. The server can
be told to fail the next requests that match a query: answer with a status code, send
a body that is not an entry list, or hang past the client's timeout.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.geometry import cellpar_to_cell

from ase_crystalgen.datasets.sources.aflow import (
    AFLOW_CSV_COLUMNS,
    DEFAULT_FIELDS,
    AflowClient,
    AflowError,
    AflowWarning,
    InvalidEntryError,
    normalize_entry,
    write_aflow_csv,
)

DATA = Path(__file__).parent / "data" / "aflow"
INDEX = json.loads((DATA / "index.json").read_text())
PAPER_FIELDS = ("auid,aurl,compound,species,composition,geometry,positions_fractional,"
                "enthalpy_formation_atom,spacegroup_relax,Bravais_lattice_relax")
POLY = {"natoms": "4*,*60"}  # the paper's matchbook, as fetch_polymorphs builds it

NACL, CU, ZNO_WZ, STO = ("aflow:1e6c0a2b9d3f4a57", "aflow:2b7d1f3c0e5a6b48", "aflow:3c8e2a4d1f6b7c39",
                         "aflow:4d9f3b5e2a7c8d2a")
HEUSLER, RUTILE = "aflow:8bd37f9c6eba1c2e", "aflow:9ce48a0d7fcb2d3f"
KEPT = 8  # 12 recorded entries: 3 invalid, 1 duplicate


# --------------------------------------------------------------------------------------
# Recorded AFLUX server


class RecordedAflux(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler left hanging by a timed-out client must not block

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.log: list[str] = []
        self.rules: list[list] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/API/aflux/"

    def fail(self, match: str, action: str, times: int = 1, **kw) -> None:
        """The next ``times`` requests whose query contains ``match`` get ``action``."""
        self.rules.append([match, action, times, kw])

    def pages(self) -> list[int]:
        """Page numbers of the requests seen, in order."""
        return [int(re.search(r"\$paging\((\d+),", q).group(1)) for q in self.log]


class _Handler(BaseHTTPRequestHandler):
    server: RecordedAflux

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def do_GET(self):
        srv = self.server
        path, _, query = self.path.partition("?")
        query = urllib.parse.unquote(query)
        with srv.lock:
            srv.log.append(query)
            rule = next((r for r in srv.rules if r[0] in query and r[2] > 0), None)
            if rule:
                rule[2] -= 1
        if rule:
            action, kw = rule[1], rule[3]
            if action == "status":
                return self._send(kw["status"], kw.get("body", b"AFLUX is busy"), kw.get("headers"))
            if action == "body":
                return self._send(200, kw["body"])
            if action == "hang":
                time.sleep(kw["seconds"])
        if path != "/API/aflux/" or query not in INDEX:
            return self._send(404, b"AFLUX: no such query in the recording: " + query.encode())
        self._send(200, (DATA / INDEX[query]).read_bytes())


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    srv = RecordedAflux()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_client(server, sleeps):
    def make(**kw):
        kw.setdefault("page_size", 4)
        kw.setdefault("timeout", 5.0)
        kw.setdefault("sleep", sleeps.append)  # never sleep for real
        return AflowClient(base_url=server.base_url, **kw)

    return make


def fetch(client, **kw):
    """fetch_polymorphs, expecting the warning about the recorded invalid entries."""
    with pytest.warns(AflowWarning, match="failed validation"):
        return client.fetch_polymorphs(progress=False, **kw)


def page_url(client, page, matchbook=POLY):
    return client.build_query(matchbook, DEFAULT_FIELDS, page)


# --------------------------------------------------------------------------------------
# Query strings


def test_paper_query_url_exact():
    client = AflowClient()
    url = client.build_query(client.polymorph_matchbook((4, 60)), DEFAULT_FIELDS, 1)
    assert url == (f"https://aflow.org/API/aflux/?{PAPER_FIELDS},natoms(4*,*60),"
                   "$paging(1,1000),$format(json)")
    assert client.build_query({"natoms": "4*,*60"}, DEFAULT_FIELDS, 7) == url.replace(
        "$paging(1,1000)", "$paging(7,1000)")


def test_build_query_variants_exact():
    client = AflowClient(base_url="http://localhost:8000/API/aflux/?", page_size=50)
    # species sorted (AND does not care, the cache key does), nspecies as a range
    mb = client.polymorph_matchbook((4, 60), species=["W", "Ta", "B"], nspecies=(3, 4))
    assert mb == {"natoms": "4*,*60", "nspecies": "3*,*4", "species": "B,Ta,W"}
    assert client.build_query(mb, ["auid", "species", "geometry"], 2) == (
        "http://localhost:8000/API/aflux/?auid,geometry,natoms(4*,*60),nspecies(3*,*4),"
        "species(B,Ta,W),$paging(2,50),$format(json)")
    assert client.build_query("species(Ta,W,B),nspecies(3)", ["auid", "auid"], 1) == (
        "http://localhost:8000/API/aflux/?auid,species(Ta,W,B),nspecies(3),$paging(1,50),"
        "$format(json)")
    assert client.polymorph_matchbook((6, 6), nspecies=2) == {"natoms": "6", "nspecies": "2"}


@pytest.mark.parametrize("call, message", [
    (lambda c: c.build_query(POLY, DEFAULT_FIELDS, 0), r"\$paging\(0\) would return the whole"),
    (lambda c: c.build_query(POLY, ["auid", "geometry(x"], 1), "'geometry\\(x' is not an AFLUX keyword"),
    (lambda c: c.build_query({"species": "Na/Cl"}, ["auid"], 1), "contains '/'"),
    (lambda c: c.build_query("natoms(4*,*60),$paging(0)", ["auid"], 1), "paging and format are set"),
    (lambda c: c.build_query("natoms(4*,*60", ["auid"], 1), "unbalanced"),
    (lambda c: c.build_query(POLY, "auid,geometry", 1), "sequence of keywords"),
    (lambda c: c.fetch_polymorphs(natoms=(60, 4)), r"natoms=\(60, 4\): need 1 <= min <= max"),
    (lambda c: c.fetch_polymorphs(natoms=(4.0, 60)), "natoms must be an int"),
    (lambda c: c.fetch_polymorphs(species=["Na", "Xx"]), r"unknown: \['Xx'\]"),
    (lambda c: c.fetch_polymorphs(fields=("auid", "geometry")), "fields must include species"),
    (lambda c: c.iter_pages(POLY, DEFAULT_FIELDS, start_page=0), "start_page must be"),
])
def test_bad_input_fails_with_clear_error(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(AflowClient())


@pytest.mark.parametrize("kw, message", [
    ({"page_size": 0}, "page_size must be a positive int"),
    ({"retries": -1}, "retries must be"),
    ({"base_url": "aflow.org/API/aflux/"}, "base_url must be an http"),
    ({"timeout": 0}, "timeout must be > 0"),
])
def test_bad_client_settings(kw, message):
    with pytest.raises(ValueError, match=message):
        AflowClient(**kw)


# --------------------------------------------------------------------------------------
# Paging and retries


def test_pages_until_the_empty_page(server, make_client):
    client = make_client()
    pages = list(client.iter_pages(POLY, DEFAULT_FIELDS))
    assert [len(p) for p in pages] == [4, 4, 4, 0]
    assert server.pages() == [1, 2, 3, 4]
    assert pages[0][0]["auid"] == NACL


def test_short_page_ends_the_query(server, make_client):
    client = make_client()
    matchbook = client.polymorph_matchbook(species=["Zn", "O"], nspecies=2)
    pages = list(client.iter_pages(matchbook, DEFAULT_FIELDS))
    assert [len(p) for p in pages] == [3]
    assert server.pages() == [1]  # 3 < page_size: no request for page 2


def test_max_pages_and_start_page(server, make_client):
    client = make_client()
    pages = list(client.iter_pages(POLY, DEFAULT_FIELDS, start_page=2, max_pages=2))
    assert len(pages) == 2 and server.pages() == [2, 3]


def test_retries_after_503_then_succeeds(server, make_client, sleeps):
    server.fail("$paging(1,4)", "status", times=2, status=503)
    client = make_client(backoff=1.0)
    page = next(client.iter_pages(POLY, DEFAULT_FIELDS))
    assert len(page) == 4
    assert server.pages() == [1, 1, 1]
    assert sleeps == [1.0, 2.0]  # exponential backoff


def test_retry_after_header_is_honoured(server, make_client, sleeps):
    server.fail("$paging(1,4)", "status", status=429, headers={"Retry-After": "7"})
    next(make_client(backoff=0.5).iter_pages(POLY, DEFAULT_FIELDS))
    assert sleeps == [7.0]
    assert server.pages() == [1, 1]


def test_gives_up_after_retries_with_exact_message(server, make_client, sleeps):
    server.fail("$paging(1,4)", "status", times=99, status=503)
    client = make_client(retries=2, backoff=0.5)
    url = page_url(client, 1)
    with pytest.raises(AflowError) as info:
        next(client.iter_pages(POLY, DEFAULT_FIELDS))
    assert str(info.value) == (f"AFLUX request for page 1 of {url} failed after 3 attempts; "
                               "last status: HTTP 503 Service Unavailable")
    assert server.pages() == [1, 1, 1]
    assert sleeps == [0.5, 1.0]


def test_404_fails_at_once_with_the_server_message(server, make_client, sleeps):
    client = make_client()
    matchbook = {"natoms": "2"}  # not in the recording
    url = page_url(client, 1, matchbook)
    with pytest.raises(AflowError) as info:
        next(client.iter_pages(matchbook, DEFAULT_FIELDS))
    assert str(info.value).startswith(f"AFLUX rejected page 1 of {url}: HTTP 404 Not Found: "
                                      "AFLUX: no such query in the recording")
    assert len(server.log) == 1 and sleeps == []


def test_timeout_is_retried(server, make_client, sleeps):
    server.fail("$paging(1,4)", "hang", seconds=0.6)
    client = make_client(timeout=0.2)
    page = next(client.iter_pages(POLY, DEFAULT_FIELDS))
    assert len(page) == 4
    assert server.pages() == [1, 1] and sleeps == [1.0]


def test_timeouts_exhausting_retries_name_the_timeout(server, make_client):
    server.fail("$paging(1,4)", "hang", times=2, seconds=0.4)
    client = make_client(timeout=0.1, retries=1)
    with pytest.raises(AflowError, match=r"failed after 2 attempts; last status: no response within 0.1 s"):
        next(client.iter_pages(POLY, DEFAULT_FIELDS))


def test_connection_refused_is_retried_then_reported(sleeps):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = AflowClient(base_url=f"http://127.0.0.1:{port}/API/aflux/", retries=2, sleep=sleeps.append)
    with pytest.raises(AflowError, match=r"failed after 3 attempts; last status: ConnectionRefusedError"):
        next(client.iter_pages(POLY, DEFAULT_FIELDS))
    assert sleeps == [1.0, 2.0]


@pytest.mark.parametrize("body, detail", [
    (b"<html><body>502 Bad Gateway</body></html>", "invalid JSON"),
    (b'{"error": "unknown keyword"}', "got a JSON dict"),
    (b"[1, 2, 3]", "item 0 is a int"),
])
def test_garbage_body_is_a_clear_error(server, make_client, body, detail):
    server.fail("$paging(3,4)", "body", body=body)
    client = make_client()
    url = page_url(client, 3)
    with pytest.raises(AflowError) as info:
        list(client.iter_pages(POLY, DEFAULT_FIELDS))
    assert str(info.value).startswith(f"page 3 of {url}: response is not a JSON list of entries")
    assert detail in str(info.value)
    assert server.pages() == [1, 2, 3]  # not retried: the server answered, wrongly


def test_old_numbered_layout_is_read(server, make_client):
    entries = json.loads((DATA / "zno_page1.json").read_text())
    body = json.dumps({f"{i} of 3": e for i, e in reversed(list(enumerate(entries, 1)))}).encode()
    server.fail("$paging(1,4)", "body", body=body)
    page = next(make_client().iter_pages(POLY, DEFAULT_FIELDS))
    assert [e["auid"] for e in page] == [e["auid"] for e in entries]


# --------------------------------------------------------------------------------------
# Cache and resume


def test_second_run_is_served_from_cache(server, make_client, tmp_path):
    first = fetch(make_client(cache_dir=tmp_path))
    assert server.pages() == [1, 2, 3, 4]
    server.log.clear()
    client = make_client(cache_dir=tmp_path)
    second = fetch(client)
    assert server.log == []  # zero HTTP requests
    assert second == first
    assert client.last_report.cache_hits == 4 and client.last_report.http_requests == 0

    status = client.cache_status(POLY, DEFAULT_FIELDS)
    assert status["pages_done"] == [1, 2, 3, 4]
    assert status["last_page"] == 4 and status["complete"] is True
    assert status["query"] == page_url(client, 1).replace("$paging(1,4)", "$paging({page},4)")
    # layout: one file per page named by the URL's sha256, plus the manifest, no temporaries
    names = sorted(p.name for p in tmp_path.iterdir())
    expected = sorted([hashlib.sha256(page_url(client, p).encode()).hexdigest() + ".json"
                       for p in (1, 2, 3, 4)] + ["manifest.json"])
    assert names == expected


def test_resume_after_an_interrupted_run(server, make_client, tmp_path):
    server.fail("$paging(2,4)", "status", times=2, status=500)
    client = make_client(cache_dir=tmp_path, retries=1)
    with pytest.raises(AflowError, match="page 2 of .*failed after 2 attempts; last status: HTTP 500"):
        client.fetch_polymorphs(progress=False)
    assert server.pages() == [1, 2, 2]
    status = client.cache_status(POLY, DEFAULT_FIELDS)
    assert status["pages_done"] == [1] and status["complete"] is False

    server.log.clear()
    resumed = make_client(cache_dir=tmp_path)
    entries = fetch(resumed)
    assert server.pages() == [2, 3, 4]  # page 1 came from the cache
    assert len(entries) == KEPT
    assert resumed.last_report.cache_hits == 1
    assert resumed.cache_status(POLY, DEFAULT_FIELDS)["complete"] is True


def test_consumer_stopping_early_keeps_the_pages_it_got(server, make_client, tmp_path):
    for _ in make_client(cache_dir=tmp_path).iter_pages(POLY, DEFAULT_FIELDS):
        break  # e.g. Ctrl-C after the first page
    server.log.clear()
    assert len(list(make_client(cache_dir=tmp_path).iter_pages(POLY, DEFAULT_FIELDS))) == 4
    assert server.pages() == [2, 3, 4]


def test_corrupt_cached_page_is_fetched_again(server, make_client, tmp_path):
    client = make_client(cache_dir=tmp_path)
    first = fetch(client)
    cached = tmp_path / (hashlib.sha256(page_url(client, 2).encode()).hexdigest() + ".json")
    cached.write_bytes(b'[{"auid": "aflow:5ea0')  # truncated by a crash of an older writer
    server.log.clear()
    with pytest.warns(AflowWarning, match="cached AFLOW page 2 .* is corrupt"):
        again = fetch(make_client(cache_dir=tmp_path))
    assert server.pages() == [2]
    assert again == first
    assert cached.read_bytes() == (DATA / "polymorphs_page2.json").read_bytes()


def test_unreadable_manifest_does_not_lose_cached_pages(server, make_client, tmp_path):
    server.fail("$paging(3,4)", "status", times=1, status=500)
    with pytest.raises(AflowError):
        make_client(cache_dir=tmp_path, retries=0).fetch_polymorphs(progress=False)
    (tmp_path / "manifest.json").write_text("{not json")
    server.log.clear()
    client = make_client(cache_dir=tmp_path)
    with pytest.warns(AflowWarning, match="manifest .* is unreadable"):
        assert len(fetch(client)) == KEPT
    assert server.pages() == [3, 4]
    # rebuilt, including the pages that came from the cache
    status = client.cache_status(POLY, DEFAULT_FIELDS)
    assert status["pages_done"] == [1, 2, 3, 4] and status["complete"] is True


# --------------------------------------------------------------------------------------
# Normalisation


def test_fetch_normalises_and_counts_skipped_entries(server, make_client):
    client = make_client()
    with pytest.warns(AflowWarning) as caught:
        entries = client.fetch_polymorphs(progress=False)
    message = str(caught[0].message)
    assert message == ("AFLOW: kept 8 of 12 entries; skipped 3 that failed validation "
                       "(bad_geometry: 1, missing_field: 1, positions_count: 1) and 1 duplicate auids")
    report = client.last_report
    assert (report.pages, report.entries, report.kept, report.duplicates) == (4, 12, KEPT, 1)
    assert dict(report.skipped) == {"bad_geometry": 1, "missing_field": 1, "positions_count": 1}

    by_id = {e["auid"]: e for e in entries}
    assert len(by_id) == KEPT
    cu = by_id[CU]  # recorded in AFLOW's text encoding
    assert cu["species"] == ["Cu"] and cu["composition"] == [4] and cu["natoms"] == 4
    assert cu["geometry"] == [3.6355, 3.6355, 3.6355, 90.0, 90.0, 90.0]
    assert np.array(cu["positions_fractional"]).shape == (4, 3)
    assert cu["positions_fractional"][1] == [0.0, 0.5, 0.5]
    assert cu["spacegroup_relax"] == 225 and type(cu["spacegroup_relax"]) is int
    assert cu["enthalpy_formation_atom"] == 0.0
    sto = by_id[STO]
    assert sto["species"] == ["O", "Sr", "Ti"] and sto["composition"] == [3, 1, 1]
    assert sto["positions_fractional"][3] == [0.0, 0.0, 0.0]  # Sr, after the three O
    assert sto["enthalpy_formation_atom"] == -3.4312
    for e in entries:
        assert all(type(x) is float for x in e["geometry"])
        assert len(e["positions_fractional"]) == e["natoms"] == sum(e["composition"])


def test_normalize_entry_is_idempotent():
    raw = json.loads((DATA / "polymorphs_page1.json").read_text())[1]
    once = normalize_entry(raw)
    assert normalize_entry(once) == once


@pytest.mark.parametrize("change, reason", [
    ({"natoms": 9}, "natoms_mismatch"),
    ({"species": ["Na", "Xx"]}, "bad_species"),
    ({"species": ["Na", "Na"]}, "bad_species"),
    ({"composition": [4, 3.5]}, "bad_composition"),
    ({"composition": [4]}, "bad_composition"),
    ({"geometry": [5.695, 5.695, 5.695, 60, 60, 150]}, "bad_geometry"),  # no such cell
    ({"geometry": [5.695, 5.695, -5.695, 90, 90, 90]}, "bad_geometry"),
    ({"geometry": [5.695, 5.695, 90, 90, 90]}, "bad_geometry"),
    ({"positions_fractional": [[0, 0]] * 8}, "bad_positions"),
    ({"positions_fractional": [[0, 0, 0]] * 7}, "positions_count"),
    ({"enthalpy_formation_atom": float("nan")}, "bad_energy"),
    ({"enthalpy_formation_atom": "n/a"}, "bad_energy"),
    ({"spacegroup_relax": 231}, "bad_spacegroup"),
    ({"auid": None}, "missing_field"),
])
def test_normalize_entry_rejects(change, reason):
    raw = dict(json.loads((DATA / "polymorphs_page1.json").read_text())[0], **change)
    with pytest.raises(InvalidEntryError) as info:
        normalize_entry(raw)
    assert info.value.reason == reason
    if raw.get("auid"):
        assert NACL in str(info.value)


# --------------------------------------------------------------------------------------
# CSV


def _atoms_from_row(row: dict) -> Atoms:
    species = row["species"].split(",")
    counts = [int(c) for c in row["composition"].split(",")]
    symbols = [s for s, c in zip(species, counts) for _ in range(c)]
    cell = cellpar_to_cell([float(x) for x in row["geometry"].split(",")])
    frac = [[float(x) for x in p.split(",")] for p in row["positions_fractional"].split(";")]
    return Atoms(symbols, cell=cell, scaled_positions=frac, pbc=True)


def test_csv_round_trip(server, make_client, tmp_path):
    entries = fetch(make_client())
    path = tmp_path / "out" / "aflow.csv"
    assert write_aflow_csv(entries, path) == KEPT
    assert [p.name for p in path.parent.iterdir()] == ["aflow.csv"]  # no temporary left
    with open(path, newline="") as fh:
        assert next(csv.reader(fh)) == list(AFLOW_CSV_COLUMNS)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == KEPT
    by_id = {r["auid"]: r for r in rows}
    for e in entries:
        row = by_id[e["auid"]]
        assert row["compound"] == e["compound"]
        assert int(row["nsites"]) == e["natoms"]
        assert [float(x) for x in row["geometry"].split(",")] == e["geometry"]
        assert [[float(x) for x in p.split(",")] for p in row["positions_fractional"].split(";")] \
            == e["positions_fractional"]
        assert float(row["enthalpy_formation_atom"]) == e["enthalpy_formation_atom"]
        assert int(row["spacegroup_relax"]) == e["spacegroup_relax"]

    nacl = by_id[NACL]
    assert (nacl["species"], nacl["composition"], nacl["pretty_formula"]) == ("Cl,Na", "4,4", "Cl4Na4")
    assert nacl["geometry"] == "5.695,5.695,5.695,90.0,90.0,90.0"
    assert nacl["positions_fractional"].startswith("0.0,0.0,0.0;0.0,0.5,0.5;")
    assert by_id[STO]["pretty_formula"] == "O3Sr1Ti1"
    assert by_id[HEUSLER]["pretty_formula"] == "Al1Cu2Mn1"

    atoms = {k: _atoms_from_row(r) for k, r in by_id.items()}
    assert atoms[NACL].get_chemical_formula() == "Cl4Na4"
    assert atoms[NACL].get_volume() == pytest.approx(5.695**3)
    assert atoms[STO].get_chemical_formula() == "O3SrTi"
    assert atoms[HEUSLER].get_chemical_formula() == "AlCu2Mn"
    assert atoms[HEUSLER].get_volume() == pytest.approx(4.2073**3 / np.sqrt(2))
    assert atoms[RUTILE].get_chemical_formula() == "O4Ti2"
    # physically sensible recordings: nearest neighbours at bond lengths
    nn = {k: a.get_all_distances(mic=True)[np.triu_indices(len(a), 1)].min() for k, a in atoms.items()}
    assert nn[NACL] == pytest.approx(5.695 / 2)
    assert nn[CU] == pytest.approx(3.6355 / np.sqrt(2))
    assert 1.9 < nn[ZNO_WZ] < 2.1 and 1.9 < nn[RUTILE] < 2.1 and 1.9 < nn[STO] < 2.0


def test_csv_matches_the_package_reader(server, make_client, tmp_path):
    readers = pytest.importorskip("ase_crystalgen.datasets.readers")
    entries = fetch(make_client())
    path = tmp_path / "aflow.csv"
    write_aflow_csv(entries, path)
    structures = readers.read_aflow_csv(path)
    assert len(structures) == KEPT
    for e, atoms in zip(entries, structures):
        ours = _atoms_from_row({"species": ",".join(e["species"]),
                                "composition": ",".join(map(str, e["composition"])),
                                "geometry": ",".join(map(repr, e["geometry"])),
                                "positions_fractional": ";".join(",".join(map(repr, p))
                                                                 for p in e["positions_fractional"])})
        assert atoms.get_chemical_symbols() == ours.get_chemical_symbols()
        assert np.allclose(atoms.cell.array, ours.cell.array)
        assert np.allclose(atoms.get_scaled_positions(wrap=False), e["positions_fractional"])


def test_csv_streams_a_generator_and_refuses_invalid_entries(tmp_path):
    raw = json.loads((DATA / "polymorphs_page2.json").read_text())  # entry 2 has 7 positions
    path = tmp_path / "aflow.csv"
    path.write_text("previous contents\n")
    with pytest.raises(ValueError, match=r"entry 2 cannot be written: entry 'aflow:7ac26e8b5daf0b1d': "
                                         r"7 positions for 8 atoms"):
        write_aflow_csv((e for e in raw), path)
    assert path.read_text() == "previous contents\n"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["aflow.csv"]
    assert write_aflow_csv((e for i, e in enumerate(raw) if i != 2), path) == 3
