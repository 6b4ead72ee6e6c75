"""AFLOW client for the data set of the conditional crystal generation paper.

The paper (section 2.1) trains on AFLOW polymorphs with 4 to 60 atoms in the unit
cell. This module downloads such entries through the AFLUX REST API, caches every
page on disk, resumes after an interruption and writes the CSV layout that
``read_aflow_csv`` reads.

Example::

    client = AflowClient(cache_dir="aflow-cache")
    write_aflow_csv(client.iter_polymorphs(natoms=(4, 60)), "aflow_polymorphs.csv")

AFLUX syntax implemented
------------------------
A request is ``<base_url>?<summons>``; the summons is a comma-separated list of
keywords and directives (Rose et al., Comput. Mater. Sci. 137, 362 (2017)):

* ``keyword`` alone asks for that property in the response, e.g. ``geometry``.
* ``keyword(operators)`` filters on it (and returns it). Inside the parentheses ``,``
  is AND, ``:`` is OR, ``!`` is NOT and ``*`` is the loose (range) operator:
  ``natoms(4*,*60)`` is ``4 <= natoms <= 60``. ``natoms(4:60)`` would mean "4 OR 60",
  which is why ranges are written with ``*``. ``species(O,Zn)`` means the entry
  holds both O and Zn; ``nspecies(2)`` an exact count.
* ``$paging(page,size)``: 1-based page ``page`` of ``size`` entries. ``$paging(0)``
  returns the whole result set in one response, so page numbers below 1 are refused.
* ``$format(json)``: a JSON list of entry objects. JSON is already AFLUX's default;
  naming it pins the format should the default change.

Why this spelling: public clients in use today send ``$paging(...)`` (and
``$format(json)``) with the ``$``; the older ``aflow`` Python package sends
``paging(n,k)`` without it, and uses ``$keyword`` to leave a keyword out of the
output. The ``$`` form is the one with recent working examples, so it is used here.
AFLUX orders results by the first keyword of the summons (noted in the ``aflow``
package), so the requested fields come first and :data:`DEFAULT_FIELDS` starts with
``auid``: a unique sort key keeps page boundaries fixed between runs, which resuming
from cached pages relies on. Entries seen twice (should pages still shift) are
dropped by ``auid``. None of this could be checked against aflow.org from here.

The paper's query (page 1, ``page_size=1000``)::

    https://aflow.org/API/aflux/?auid,aurl,compound,species,composition,geometry,
    positions_fractional,enthalpy_formation_atom,spacegroup_relax,Bravais_lattice_relax,
    natoms(4*,*60),$paging(1,1000),$format(json)

(one line in practice). Grouping the entries into polymorph groups and the paper's 1 %
element / space-group filter happen downstream, on the CSV.

Responses are accepted as a JSON list of objects; the older AFLUX layout, an object
keyed ``"1 of N"``, ``"2 of N"``, ... is converted to a list. Property values come
either as JSON lists or as AFLOW's text encoding (``"a,b,c,alpha,beta,gamma"``,
``"x,y,z;x,y,z"``); :func:`normalize_entry` reads both.

Caching and resume
------------------
With ``cache_dir`` set, each page's raw response is written atomically to
``<cache_dir>/<sha256 of the page URL>.json`` and ``<cache_dir>/manifest.json``
records, per query, the pages done and whether the last page was reached. A later run
of the same query reads cached pages without HTTP and downloads from the first page
not cached. A cached page that no longer parses is fetched again with a warning. One
process at a time should write to a cache folder.

Only the network-free parts could be exercised here: the tests run this client
against a local HTTP server that replays responses authored in the AFLUX format.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import json
import math
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from ase.data import chemical_symbols
from tqdm.auto import tqdm

from ..._atomic import atomic_open, atomic_write_bytes

__all__ = [
    "AFLOW_CSV_COLUMNS",
    "DEFAULT_BASE_URL",
    "DEFAULT_FIELDS",
    "AflowClient",
    "AflowError",
    "AflowWarning",
    "FetchReport",
    "InvalidEntryError",
    "normalize_entry",
    "pretty_formula",
    "write_aflow_csv",
]

DEFAULT_BASE_URL = "https://aflow.org/API/aflux/"

#: Properties requested for each entry; ``auid`` first so that AFLUX sorts by it.
DEFAULT_FIELDS: tuple[str, ...] = (
    "auid",
    "aurl",
    "compound",
    "species",
    "composition",
    "natoms",
    "geometry",
    "positions_fractional",
    "enthalpy_formation_atom",
    "spacegroup_relax",
    "Bravais_lattice_relax",
)

#: Properties :func:`normalize_entry` cannot do without.
REQUIRED_FIELDS: tuple[str, ...] = (
    "auid",
    "species",
    "composition",
    "geometry",
    "positions_fractional",
    "enthalpy_formation_atom",
    "spacegroup_relax",
)

#: Columns of the CSV written by :func:`write_aflow_csv`, in order.
AFLOW_CSV_COLUMNS: tuple[str, ...] = (
    "auid",
    "compound",
    "pretty_formula",
    "species",
    "composition",
    "nsites",
    "geometry",
    "positions_fractional",
    "enthalpy_formation_atom",
    "spacegroup_relax",
)

_MANIFEST = "manifest.json"
_MANIFEST_VERSION = 1
_KEYWORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# "@\~/ crash the AFLUX parser (noted in the aflow package); the others would end or
# split the query string.
_FORBIDDEN = set('"@\\~/?&# \t\r\n')
# RFC 3986 allows these in a query unescaped, and AFLUX expects them literally.
_URL_SAFE = "(),*$:!._-'"
# A Retry-After beyond this is more likely a misconfigured proxy than a plan.
_MAX_RETRY_AFTER = 600.0
# 408 and 429 say "try again later" in so many words; other 4xx will fail the same way again
_RETRY_STATUS = (408, 429)
_OLD_KEY = re.compile(r"^\s*(\d+)\s+of\s+(\d+)\s*$")
_USER_AGENT = "ase_crystalgen-aflow/0.1 (Python urllib)"


class AflowError(RuntimeError):
    """A request to AFLUX failed or its response cannot be used."""


class AflowWarning(UserWarning):
    """Something was skipped or repaired while fetching AFLOW data."""


class InvalidEntryError(ValueError):
    """An AFLOW entry fails validation; ``reason`` is a short code for counting."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class FetchReport:
    """What one :meth:`AflowClient.iter_polymorphs` run did.

    Attributes
    ----------
    pages : int
        Pages read (from cache or network).
    entries : int
        Entries in those pages.
    kept : int
        Entries that passed validation and were not duplicates.
    duplicates : int
        Entries whose ``auid`` had already been seen.
    skipped : collections.Counter
        Invalid entries per reason code (see :class:`InvalidEntryError`).
    cache_hits, http_requests : int
        Pages read from the cache, and HTTP requests sent (retries included).
    """

    pages: int = 0
    entries: int = 0
    kept: int = 0
    duplicates: int = 0
    skipped: Counter = field(default_factory=Counter)
    cache_hits: int = 0
    http_requests: int = 0

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())


# --------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------
# Responses


def _snippet(body: bytes, n: int = 120) -> str:
    text = body[:n * 2].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text[:n] + ("..." if len(text) > n else "")


def _parse_page(body: bytes, url: str, page: int) -> list[dict]:
    """Entries of one AFLUX response body; :class:`AflowError` if it is not a list of them."""
    where = f"page {page} of {url}"
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AflowError(f"{where}: response is not a JSON list of entries "
                         f"(invalid JSON: {exc}; body starts {_snippet(body)!r})") from None
    if isinstance(data, dict) and data and all(_OLD_KEY.match(str(k)) for k in data):
        # pre-v1.0 AFLUX answered {"1 of N": {...}, "2 of N": {...}}
        data = [data[k] for k in sorted(data, key=lambda k: int(_OLD_KEY.match(k).group(1)))]
    if not isinstance(data, list):
        raise AflowError(f"{where}: response is not a JSON list of entries "
                         f"(got a JSON {type(data).__name__}: {_snippet(body)!r})")
    bad = [i for i, e in enumerate(data) if not isinstance(e, dict)]
    if bad:
        raise AflowError(f"{where}: response is not a JSON list of entries "
                         f"(item {bad[0]} is a {type(data[bad[0]]).__name__}, not an object)")
    return data


# --------------------------------------------------------------------------------------
# Entry normalisation


def _split(value: Any, sep: str) -> list:
    if isinstance(value, str):
        return [v.strip() for v in value.split(sep) if v.strip()]
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    raise TypeError(f"expected a list or a {sep!r}-separated string, got {type(value).__name__}")


def _finite_float(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a number: {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"not finite: {value!r}")
    return x


def pretty_formula(species: Sequence[str], composition: Sequence[int]) -> str:
    """Species and counts concatenated in cell order, e.g. ``"Ta1W1B6"``."""
    return "".join(f"{s}{int(c)}" for s, c in zip(species, composition))


def normalize_entry(raw: Mapping[str, Any]) -> dict:
    """Validate one AFLUX entry and convert its values to Python types.

    Parameters
    ----------
    raw : mapping
        An entry as AFLUX returns it (or as this function returned it: it is
        idempotent).

    Returns
    -------
    dict
        ``auid`` (str), ``aurl`` (str or None), ``compound`` (str), ``species``
        (list of str, cell order), ``composition`` (list of int, same order),
        ``natoms`` (int), ``geometry`` (6 floats: a, b, c in Å, alpha, beta, gamma in
        degrees), ``positions_fractional`` (``natoms`` lists of 3 floats, atoms in
        species order), ``enthalpy_formation_atom`` (float, eV/atom),
        ``spacegroup_relax`` (int) and ``Bravais_lattice_relax`` (str or None).

    Raises
    ------
    InvalidEntryError
        With ``reason`` one of ``missing_field``, ``bad_species``, ``bad_composition``,
        ``natoms_mismatch``, ``bad_geometry``, ``bad_positions``, ``positions_count``,
        ``bad_energy``, ``bad_spacegroup``.
    """
    if not isinstance(raw, Mapping):
        raise InvalidEntryError("missing_field", f"entry is a {type(raw).__name__}, not an object")
    auid = raw.get("auid")
    label = f"entry {auid!r}" if auid else "entry without auid"
    missing = [k for k in REQUIRED_FIELDS if raw.get(k) is None]
    if missing:
        raise InvalidEntryError("missing_field", f"{label}: missing {', '.join(missing)}")
    auid = str(auid)

    try:
        species = [str(s).strip() for s in _split(raw["species"], ",")]
    except TypeError as exc:
        raise InvalidEntryError("bad_species", f"{label}: species: {exc}") from None
    unknown = [s for s in species if s not in chemical_symbols[1:]]
    if not species or unknown or len(set(species)) != len(species):
        raise InvalidEntryError("bad_species", f"{label}: species {species!r} are not distinct "
                                "chemical symbols")

    try:
        counts = [_finite_float(c) for c in _split(raw["composition"], ",")]
    except (TypeError, ValueError) as exc:
        raise InvalidEntryError("bad_composition", f"{label}: composition: {exc}") from None
    if (len(counts) != len(species) or any(c < 1 or abs(c - round(c)) > 1e-6 for c in counts)):
        raise InvalidEntryError("bad_composition", f"{label}: composition {raw['composition']!r} "
                                f"is not one positive integer per species {species!r}")
    composition = [int(round(c)) for c in counts]
    nsites = sum(composition)

    natoms = raw.get("natoms")
    if natoms is not None:
        try:
            natoms_f = _finite_float(natoms)
        except ValueError:
            natoms_f = math.nan
        if natoms_f != nsites:
            raise InvalidEntryError("natoms_mismatch", f"{label}: natoms={natoms!r} but the "
                                    f"composition {composition} sums to {nsites}")

    try:
        geometry = [_finite_float(g) for g in _split(raw["geometry"], ",")]
    except (TypeError, ValueError) as exc:
        raise InvalidEntryError("bad_geometry", f"{label}: geometry: {exc}") from None
    if len(geometry) != 6:
        raise InvalidEntryError("bad_geometry", f"{label}: geometry has {len(geometry)} values, "
                                "expected a,b,c,alpha,beta,gamma")
    if min(geometry[:3]) <= 0 or not all(0 < g < 180 for g in geometry[3:]):
        raise InvalidEntryError("bad_geometry", f"{label}: geometry {geometry} has a non-positive "
                                "length or an angle outside (0, 180) degrees")
    # (V / abc)^2 from the metric tensor; angles such as 60, 60, 150 give no cell at all
    ca, cb, cg = np.cos(np.radians(geometry[3:]))
    if 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg < 1e-8:
        raise InvalidEntryError("bad_geometry", f"{label}: angles {geometry[3:]} do not make a cell")

    try:
        rows = raw["positions_fractional"]
        rows = _split(rows, ";")
        positions = [[_finite_float(x) for x in _split(r, ",")] for r in rows]
    except (TypeError, ValueError) as exc:
        raise InvalidEntryError("bad_positions", f"{label}: positions_fractional: {exc}") from None
    if any(len(p) != 3 for p in positions):
        raise InvalidEntryError("bad_positions", f"{label}: positions_fractional rows must have "
                                "3 coordinates")
    if len(positions) != nsites:
        raise InvalidEntryError("positions_count", f"{label}: {len(positions)} positions for "
                                f"{nsites} atoms")

    try:
        energy = _finite_float(raw["enthalpy_formation_atom"])
    except (TypeError, ValueError) as exc:
        raise InvalidEntryError("bad_energy", f"{label}: enthalpy_formation_atom: {exc}") from None

    try:
        sg = _finite_float(raw["spacegroup_relax"])
    except (TypeError, ValueError) as exc:
        raise InvalidEntryError("bad_spacegroup", f"{label}: spacegroup_relax: {exc}") from None
    if sg != round(sg) or not 1 <= sg <= 230:
        raise InvalidEntryError("bad_spacegroup", f"{label}: spacegroup_relax "
                                f"{raw['spacegroup_relax']!r} is not in 1..230")

    compound = raw.get("compound")
    bravais = raw.get("Bravais_lattice_relax")
    aurl = raw.get("aurl")
    return {
        "auid": auid,
        "aurl": str(aurl) if aurl is not None else None,
        "compound": str(compound) if compound else pretty_formula(species, composition),
        "species": species,
        "composition": composition,
        "natoms": nsites,
        "geometry": geometry,
        "positions_fractional": positions,
        "enthalpy_formation_atom": energy,
        "spacegroup_relax": int(sg),
        "Bravais_lattice_relax": str(bravais) if bravais is not None else None,
    }


# --------------------------------------------------------------------------------------
# Client


def _range_operator(name: str, value: int | Sequence[int]) -> str:
    """``3`` -> ``"3"``, ``(4, 60)`` -> ``"4*,*60"`` (AFLUX: 4 <= x <= 60)."""
    def as_int(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name} must be an int or a (min, max) pair of ints, got {value!r}")
        return int(v)

    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a (min, max) pair of ints, got {value!r}")
        lo, hi = as_int(value[0]), as_int(value[1])
        if not 1 <= lo <= hi:
            raise ValueError(f"{name}=({lo}, {hi}): need 1 <= min <= max")
        return f"{lo}" if lo == hi else f"{lo}*,*{hi}"
    n = as_int(value)
    if n < 1:
        raise ValueError(f"{name} must be at least 1, got {n}")
    return f"{n}"


class AflowClient:
    """Paged, retrying, caching client of the AFLUX search API.

    Parameters
    ----------
    base_url : str
        AFLUX endpoint; the summons is appended after ``?``.
    cache_dir : str or path-like, optional
        Folder for cached pages and the manifest. Without it nothing is cached and
        nothing can be resumed.
    page_size : int
        Entries per page (``$paging(page, page_size)``). Part of the cache key.
    retries : int
        Retries after a failed attempt (so ``retries + 1`` requests at most) on HTTP
        5xx, 429 and 408, connection errors and timeouts. Other 4xx fail at once.
    backoff : float
        Seconds before the first retry; doubled for each further one. A larger
        ``Retry-After`` from the server wins.
    timeout : float
        Socket timeout of one request, seconds.
    sleep : callable
        Called with the delay in seconds between attempts; tests pass a recorder.
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, cache_dir: str | os.PathLike | None = None,
                 page_size: int = 1000, retries: int = 5, backoff: float = 1.0,
                 timeout: float = 60.0, sleep: Callable[[float], Any] = time.sleep):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size must be a positive int, got {page_size!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        if not backoff >= 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.base_url = base_url.rstrip("?")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.page_size = page_size
        self.retries = retries
        self.backoff = float(backoff)
        self.timeout = float(timeout)
        self._sleep = sleep
        self.stats = {"http_requests": 0, "cache_hits": 0}
        self.last_report: FetchReport | None = None

    # ---- query strings -----------------------------------------------------------------

    @staticmethod
    def _matchbook_terms(matchbook: Mapping[str, Any] | str) -> list[tuple[str, str]]:
        """``(keyword, term)`` pairs of a matchbook, validated."""
        if isinstance(matchbook, str):
            text = matchbook.strip().lstrip("?").strip(",")
            terms, depth, start = [], 0, 0
            for i, ch in enumerate(text + ","):
                if ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                    if depth < 0:
                        raise ValueError(f"matchbook {matchbook!r}: unbalanced ')'")
                elif ch == "," and depth == 0:
                    terms.append(text[start:i].strip())
                    start = i + 1
            if depth:
                raise ValueError(f"matchbook {matchbook!r}: unbalanced '('")
            pairs = []
            for term in terms:
                if not term:
                    raise ValueError(f"matchbook {matchbook!r} has an empty term")
                pairs.append((term.split("(", 1)[0].lstrip("$"), term))
        elif isinstance(matchbook, Mapping):
            pairs = []
            for key, value in matchbook.items():
                value = str(value).strip()
                if not value:
                    raise ValueError(f"matchbook[{key!r}] is empty; use a field for 'return "
                                     "only', or '*' for 'must exist'")
                if value.count("(") != value.count(")"):
                    raise ValueError(f"matchbook[{key!r}]={value!r}: unbalanced parentheses")
                pairs.append((str(key), f"{key}({value})"))
        else:
            raise TypeError(f"matchbook must be a dict or a string, got {type(matchbook).__name__}")
        for key, term in pairs:
            if not _KEYWORD.match(key):
                raise ValueError(f"matchbook term {term!r}: {key!r} is not an AFLUX keyword")
            if key.lower() in ("paging", "format"):
                raise ValueError(f"matchbook term {term!r}: paging and format are set by the "
                                 "client (page_size, build_query's page)")
            bad = sorted(set(term) & _FORBIDDEN)
            if bad:
                raise ValueError(f"matchbook term {term!r} contains {''.join(bad)!r}, which AFLUX "
                                 "does not accept")
        return pairs

    def _summons(self, matchbook: Mapping[str, Any] | str, fields: Sequence[str]) -> str:
        """The summons without directives: requested fields first, then filters."""
        if isinstance(fields, str):
            raise TypeError("fields must be a sequence of keywords, not a string")
        pairs = self._matchbook_terms(matchbook)
        filtered = {k for k, _ in pairs}
        terms: list[str] = []
        for f in fields:
            if not isinstance(f, str) or not _KEYWORD.match(f):
                raise ValueError(f"field {f!r} is not an AFLUX keyword")
            # a filtered keyword is returned anyway; naming it twice is redundant
            if f not in filtered and f not in terms:
                terms.append(f)
        terms.extend(term for _, term in pairs)
        if not terms:
            raise ValueError("empty query: give a matchbook or fields")
        return ",".join(terms)

    def _url(self, summons: str, page: int | str) -> str:
        # directives hold only URL-safe characters; leaving them out of quote() keeps the
        # "{page}" placeholder of the manifest's query template readable
        return (f"{self.base_url}?{urllib.parse.quote(summons, safe=_URL_SAFE)}"
                f",$paging({page},{self.page_size}),$format(json)")

    def build_query(self, matchbook: Mapping[str, Any] | str, fields: Sequence[str], page: int) -> str:
        """URL of one page of an AFLUX query.

        Parameters
        ----------
        matchbook : dict or str
            Filters: ``{"natoms": "4*,*60", "nspecies": "3"}`` becomes
            ``natoms(4*,*60),nspecies(3)``; a string is used as written.
        fields : sequence of str
            Keywords to return. They come first in the summons, because AFLUX sorts by
            the first keyword; keywords already filtered on are not repeated.
        page : int
            1-based page number.

        Returns
        -------
        str
            ``<base_url>?<fields>,<filters>,$paging(<page>,<page_size>),$format(json)``.
        """
        if isinstance(page, bool) or not isinstance(page, (int, np.integer)):
            raise TypeError(f"page must be an int, got {page!r}")
        if page < 1:
            raise ValueError(f"AFLUX pages start at 1, got {page}; $paging(0) would return the "
                             "whole result set in one response")
        return self._url(self._summons(matchbook, fields), int(page))

    # ---- HTTP ----------------------------------------------------------------------------

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff * 2 ** (attempt - 1)
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), _MAX_RETRY_AFTER))
            except ValueError:
                pass  # an HTTP-date; exponential backoff is good enough
        return delay

    def _get(self, url: str, page: int) -> bytes:
        """Body of a 200 response to ``url``, retrying transient failures."""
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT,
                                                       "Accept": "application/json"})
        last = "none"
        retry_after = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self._delay(attempt, retry_after))
            retry_after = None
            self.stats["http_requests"] += 1
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                status = f"HTTP {exc.code} {exc.reason}"
                if exc.code in _RETRY_STATUS or 500 <= exc.code < 600:
                    last = status
                    retry_after = exc.headers.get("Retry-After") if exc.headers else None
                    exc.close()
                    continue
                try:
                    message = _snippet(exc.read(), 300)
                except (OSError, http.client.HTTPException):
                    message = ""
                finally:
                    exc.close()
                raise AflowError(f"AFLUX rejected page {page} of {url}: {status}"
                                 + (f": {message}" if message else "")) from None
            except (OSError, http.client.HTTPException) as exc:
                # URLError, timeouts, resets and TLS errors are all OSErrors here
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                if isinstance(reason, TimeoutError):
                    last = f"no response within {self.timeout:g} s"
                elif isinstance(reason, BaseException):
                    last = f"{type(reason).__name__}: {reason}"
                else:
                    last = str(reason)
        raise AflowError(f"AFLUX request for page {page} of {url} failed after "
                         f"{self.retries + 1} attempts; last status: {last}")

    # ---- cache ---------------------------------------------------------------------------

    def _page_path(self, url: str) -> Path:
        return self.cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()}.json"

    def _read_manifest(self) -> dict:
        path = self.cache_dir / _MANIFEST
        try:
            manifest = json.loads(path.read_text())
            if not isinstance(manifest.get("queries"), dict):
                raise ValueError("no 'queries' object")
            return manifest
        except FileNotFoundError:
            pass
        except (ValueError, AttributeError) as exc:
            # the page files are the data; the manifest can be rebuilt from them
            warnings.warn(f"AFLOW cache manifest {path} is unreadable ({exc}); starting a new "
                          "one, cached pages are still used", AflowWarning, stacklevel=2)
        return {"version": _MANIFEST_VERSION, "queries": {}}

    def _note_page(self, manifest: dict, template: str, page: int, last: bool) -> None:
        """Record ``page`` of ``template`` in ``manifest`` and write it if that changed it."""
        key = hashlib.sha256(template.encode()).hexdigest()[:16]
        rec = manifest["queries"].setdefault(key, {"query": template, "page_size": self.page_size,
                                                   "pages_done": [], "last_page": None,
                                                   "complete": False})
        done = set(rec["pages_done"]) | {page}
        last_page = page if last else rec["last_page"]
        complete = last_page is not None and set(range(1, last_page + 1)) <= done
        if (sorted(done), last_page, complete) == (rec["pages_done"], rec["last_page"], rec["complete"]):
            return
        rec.update(pages_done=sorted(done), last_page=last_page, complete=complete,
                   updated=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        atomic_write_bytes(self.cache_dir / _MANIFEST, json.dumps(manifest, indent=1).encode())

    def cache_status(self, matchbook: Mapping[str, Any] | str, fields: Sequence[str]) -> dict | None:
        """The manifest record of a query (pages done, last page, complete), or None."""
        if self.cache_dir is None:
            return None
        template = self._url(self._summons(matchbook, fields), "{page}")
        key = hashlib.sha256(template.encode()).hexdigest()[:16]
        return self._read_manifest()["queries"].get(key)

    def _cached_page(self, url: str, page: int) -> list[dict] | None:
        path = self._page_path(url)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return _parse_page(body, url, page)
        except AflowError as exc:
            warnings.warn(f"cached AFLOW page {page} ({path}) is corrupt, fetching it again: "
                          f"{exc}", AflowWarning, stacklevel=3)
            return None

    # ---- paging --------------------------------------------------------------------------

    def iter_pages(self, matchbook: Mapping[str, Any] | str, fields: Sequence[str],
                   start_page: int = 1, max_pages: int | None = None) -> Iterator[list[dict]]:
        """Iterate over the raw entries of a query, page by page.

        Pages in the cache are read from disk; the others are fetched, cached, then
        yielded, so an interrupted run loses at most the page in flight. Stops after
        an empty page or one shorter than ``page_size``. The arguments are checked
        when this is called; HTTP starts with the first ``next()``.

        Parameters
        ----------
        matchbook, fields
            As in :meth:`build_query`.
        start_page : int
            First page to read.
        max_pages : int, optional
            Stop after this many pages.

        Returns
        -------
        iterator of list of dict
            The entries of each page, as AFLUX sent them.

        Raises
        ------
        AflowError
            (while iterating) A page could not be fetched or is not a JSON list of entries.
        """
        if isinstance(start_page, bool) or not isinstance(start_page, int) or start_page < 1:
            raise ValueError(f"start_page must be an int >= 1, got {start_page!r}")
        if max_pages is not None and (isinstance(max_pages, bool) or not isinstance(max_pages, int)
                                      or max_pages < 1):
            raise ValueError(f"max_pages must be None or an int >= 1, got {max_pages!r}")
        # validated here, not on the first next(), so that bad input fails where it is given
        summons = self._summons(matchbook, fields)
        return self._pages(summons, start_page, max_pages)

    def _pages(self, summons: str, page: int, max_pages: int | None) -> Iterator[list[dict]]:
        template = self._url(summons, "{page}")
        # read once per run: this process is the only writer (see the module docstring)
        manifest = self._read_manifest() if self.cache_dir is not None else None
        done = 0
        while max_pages is None or done < max_pages:
            url = self._url(summons, page)
            entries = self._cached_page(url, page) if self.cache_dir is not None else None
            if entries is not None:
                self.stats["cache_hits"] += 1
            else:
                body = self._get(url, page)
                entries = _parse_page(body, url, page)
                if self.cache_dir is not None:
                    atomic_write_bytes(self._page_path(url), body)
            if manifest is not None:
                # cache hits too: a manifest lost or written by an older run catches up
                self._note_page(manifest, template, page, last=len(entries) < self.page_size)
            yield entries
            done += 1
            if len(entries) < self.page_size:
                return
            page += 1

    # ---- the paper's query ---------------------------------------------------------------

    @staticmethod
    def polymorph_matchbook(natoms: Sequence[int] = (4, 60), species: Sequence[str] | None = None,
                            nspecies: int | Sequence[int] | None = None) -> dict[str, str]:
        """Matchbook of :meth:`fetch_polymorphs`, validated."""
        matchbook = {"natoms": _range_operator("natoms", tuple(natoms)
                                               if isinstance(natoms, (list, tuple)) else natoms)}
        if nspecies is not None:
            matchbook["nspecies"] = _range_operator(
                "nspecies", tuple(nspecies) if isinstance(nspecies, (list, tuple)) else nspecies)
        if species is not None:
            if isinstance(species, str):
                species = [s.strip() for s in species.split(",")]
            species = list(species)
            unknown = [s for s in species if s not in chemical_symbols[1:]]
            if unknown or not species:
                raise ValueError(f"species must be chemical symbols, got {species!r}"
                                 + (f" (unknown: {unknown})" if unknown else ""))
            # AND is order-free; sorting makes one URL, hence one cache entry, per set
            matchbook["species"] = ",".join(sorted(set(species)))
        return matchbook

    def iter_polymorphs(self, natoms: Sequence[int] = (4, 60), species: Sequence[str] | None = None,
                        nspecies: int | Sequence[int] | None = None,
                        fields: Sequence[str] = DEFAULT_FIELDS, max_pages: int | None = None,
                        progress: bool = True) -> Iterator[dict]:
        """Stream the normalised entries of :meth:`fetch_polymorphs`.

        Memory stays at one page, so the full data set (millions of entries) can go
        straight into :func:`write_aflow_csv`. The :class:`FetchReport` is in
        :attr:`last_report` once the iterator is exhausted.
        """
        if isinstance(fields, str):
            raise TypeError("fields must be a sequence of keywords, not a string")
        missing = [f for f in REQUIRED_FIELDS if f not in fields]
        if missing:
            raise ValueError(f"fields must include {', '.join(missing)}: entries are validated "
                             "and written with them")
        matchbook = self.polymorph_matchbook(natoms, species, nspecies)
        pages = self.iter_pages(matchbook, fields, max_pages=max_pages)
        return self._normalised(pages, progress)

    def _normalised(self, pages: Iterator[list[dict]], progress: bool) -> Iterator[dict]:
        report = FetchReport()
        self.last_report = report
        start = dict(self.stats)
        seen: set[str] = set()
        bar = tqdm(desc="AFLOW pages", unit="page", disable=not progress)
        try:
            for entries in pages:
                report.pages += 1
                report.entries += len(entries)
                for raw in entries:
                    try:
                        entry = normalize_entry(raw)
                    except InvalidEntryError as exc:
                        report.skipped[exc.reason] += 1
                        continue
                    if entry["auid"] in seen:
                        report.duplicates += 1
                        continue
                    seen.add(entry["auid"])
                    report.kept += 1
                    yield entry
                bar.update(1)
                bar.set_postfix(kept=report.kept, skipped=report.n_skipped)
        finally:
            bar.close()
            report.cache_hits = self.stats["cache_hits"] - start["cache_hits"]
            report.http_requests = self.stats["http_requests"] - start["http_requests"]
        if report.n_skipped or report.duplicates:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report.skipped.items())) or "none"
            warnings.warn(f"AFLOW: kept {report.kept} of {report.entries} entries; skipped "
                          f"{report.n_skipped} that failed validation ({reasons}) and "
                          f"{report.duplicates} duplicate auids", AflowWarning, stacklevel=2)

    def fetch_polymorphs(self, natoms: Sequence[int] = (4, 60), species: Sequence[str] | None = None,
                         nspecies: int | Sequence[int] | None = None,
                         fields: Sequence[str] = DEFAULT_FIELDS, max_pages: int | None = None,
                         progress: bool = True) -> list[dict]:
        """Entries with ``natoms[0] <= natoms <= natoms[1]``, validated and normalised.

        Parameters
        ----------
        natoms : (int, int)
            Inclusive range of atoms per cell; the paper uses (4, 60).
        species : sequence of str, optional
            Elements that must all be present (``species(A,B)``).
        nspecies : int or (int, int), optional
            Number of elements, exact or an inclusive range.
        fields : sequence of str
            Keywords to request; must include :data:`REQUIRED_FIELDS`.
        max_pages : int, optional
            Read at most this many pages.
        progress : bool
            Show a tqdm progress bar.

        Returns
        -------
        list of dict
            Entries as returned by :func:`normalize_entry`, first occurrence of each
            ``auid`` only. Invalid entries are skipped; the counts are in
            :attr:`last_report` and in an :class:`AflowWarning`.
        """
        return list(self.iter_polymorphs(natoms, species, nspecies, fields, max_pages, progress))


# --------------------------------------------------------------------------------------
# CSV


def _csv_row(entry: dict) -> list[str]:
    return [
        entry["auid"],
        entry["compound"],
        pretty_formula(entry["species"], entry["composition"]),
        ",".join(entry["species"]),
        ",".join(str(c) for c in entry["composition"]),
        str(entry["natoms"]),
        ",".join(repr(float(g)) for g in entry["geometry"]),
        ";".join(",".join(repr(float(x)) for x in p) for p in entry["positions_fractional"]),
        repr(float(entry["enthalpy_formation_atom"])),
        str(entry["spacegroup_relax"]),
    ]


def write_aflow_csv(entries: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> int:
    """Write entries atomically as the AFLOW CSV that ``read_aflow_csv`` reads.

    Columns, in order: ``auid, compound, pretty_formula, species, composition, nsites,
    geometry, positions_fractional, enthalpy_formation_atom, spacegroup_relax``.
    ``species`` is comma-joined in cell order (``"Ta,W,B"``), ``composition`` the
    counts in the cell in the same order (``"1,1,6"``), ``pretty_formula`` both
    concatenated (``"Ta1W1B6"``), ``geometry`` ``"a,b,c,alpha,beta,gamma"`` (Å,
    degrees), ``positions_fractional`` ``"x,y,z;x,y,z;..."`` (atoms in species order),
    floats written with ``repr`` so they read back exactly; energy in eV/atom.

    Parameters
    ----------
    entries : iterable of dict
        Raw or normalised entries; a generator is streamed row by row.
    path : str or path-like
        Output file; replaced only once all rows are written.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    ValueError
        An entry fails :func:`normalize_entry`; the message names its index and auid.
        The file at ``path`` is then left as it was.
    """
    n = 0
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(AFLOW_CSV_COLUMNS)
        for i, raw in enumerate(entries):
            try:
                entry = normalize_entry(raw)
            except InvalidEntryError as exc:
                raise ValueError(f"write_aflow_csv: entry {i} cannot be written: {exc}") from None
            writer.writerow(_csv_row(entry))
            n += 1
    return n
