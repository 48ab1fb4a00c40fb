"""Bad input at scale: no bytes, value or file stops a decoder, importer or service.

Hypothesis feeds random bytes, deep nesting, huge values and text from every
Unicode category to the decoder, to each family's validation (by mutating
valid events field by field), to the importers, and to every service's
handler on a real PostgreSQL. The only outcomes allowed are a valid event,
an `EventValidationError` naming a field, an import issue naming a row and
column, or a bounded dead letter that the dead-letter table takes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import Incoming
from klimapuls.core.deadletter import MAX_DEAD_LETTER_BYTES, DeadLetter
from klimapuls.core.errors import EventValidationError
from klimapuls.core.identity import Verdict
from klimapuls.core.validation import EVENT_KINDS, decode_event, schema_name
from klimapuls.deadletter.handlers import DeadLetterHandler
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.importers import IMPORT_KINDS, convert
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.producer.readers import complete_envelope
from klimapuls.targets.handlers import TargetsHandler

EXAMPLES = Path(__file__).parent.parent.parent / "schemas" / "examples"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _example(kind: str) -> dict[str, Any]:
    path = EXAMPLES / f"{schema_name(kind)}.json"
    example: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return example


# Text from every Unicode category, surrogates and NUL included.
ANY_TEXT = st.text(st.characters(codec=None), max_size=40)
HUGE = st.one_of(
    st.integers(min_value=2**53, max_value=2**200),
    st.integers(max_value=-(2**53)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(min_size=5_000, max_size=20_000),
)
LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), ANY_TEXT, HUGE)
JSON_VALUE = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)


def _nested(depth: int, kind: str) -> str:
    return (
        ("[" * depth + "]" * depth)
        if kind == "list"
        else ('{"a":' * depth + "0" + "}" * depth)
    )


@st.composite
def mutated_event(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A valid example with some fields replaced, dropped or added."""
    event = dict(_example(kind))
    for name in draw(st.lists(st.sampled_from(sorted(event)), max_size=3)):
        action = draw(st.sampled_from(["replace", "drop", "nest"]))
        if action == "drop":
            event.pop(name, None)
        elif action == "nest":
            event[name] = json.loads(_nested(draw(st.integers(1, 40)), "list"))
        else:
            event[name] = draw(JSON_VALUE)
    if draw(st.booleans()):
        event[draw(ANY_TEXT)] = draw(JSON_VALUE)
    return event


def _body(event: dict[str, Any]) -> bytes:
    # NaN and huge numbers are valid JSON extensions Python writes; lone
    # surrogates are written escaped, as any JSON encoder may send them.
    return json.dumps(event, ensure_ascii=True).encode()


RAW = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            _nested(10_000, "list").encode(),
            _nested(10_000, "dict").encode(),
            b"\x00" * 50,
            b'{"schema": "co2_account.v1"' + b" " * 10_000,
            "\ufeff{}".encode(),
        ]
    ),
    ANY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _only_validation_errors(kind: str, raw: bytes) -> None:
    try:
        decode_event(kind, raw)
    except EventValidationError as exc:
        assert exc.issues and all(i.field for i in exc.issues)
        letter = DeadLetter.from_error(
            exc,
            kind=kind,
            origin="fuzz",
            payload=raw,
            rejected_by="fuzz",
            rejected_at=NOW,
        )
        body = letter.to_json()
        assert len(body) <= MAX_DEAD_LETTER_BYTES
        assert DeadLetter.from_json(body).payload_sha256 == letter.payload_sha256


@pytest.mark.parametrize("kind", EVENT_KINDS)
@FUZZ
@given(raw=RAW)
def test_the_decoder_takes_any_bytes(kind: str, raw: bytes) -> None:
    _only_validation_errors(kind, raw)


@pytest.mark.parametrize("kind", EVENT_KINDS)
@FUZZ
@given(data=st.data())
def test_every_schema_refuses_mutations_by_field_and_never_crashes(
    kind: str, data: st.DataObject
) -> None:
    _only_validation_errors(kind, _body(data.draw(mutated_event(kind))))


CSV_CELL = st.one_of(
    ANY_TEXT,
    st.sampled_from(
        ["", "1.234,5", "-1", "2024-13-45", "nan", "1e400", ";", '"', "x" * 200_000]
    ),
)


@pytest.mark.parametrize("import_kind", sorted(IMPORT_KINDS))
@FUZZ
@given(
    header=st.lists(ANY_TEXT, min_size=1, max_size=6),
    rows=st.lists(st.lists(CSV_CELL, max_size=8), max_size=6),
    delimiter=st.sampled_from([",", ";"]),
)
def test_the_importers_report_bad_rows_and_never_crash(
    import_kind: str, header: list[str], rows: list[list[str]], delimiter: str
) -> None:
    text = "\n".join(delimiter.join(r) for r in [header, *rows])

    def envelope(kind: str, event: dict[str, Any]) -> dict[str, Any]:
        return complete_envelope(kind, event, "fuzz", NOW)

    for item in convert(import_kind, text, envelope):
        assert item.event is not None or item.issues


HANDLERS: dict[str, Callable[..., Any]] = {
    "co2_account": Co2Handler,
    "fleet_status": FleetHandler,
    "mobility_count": MobilityHandler,
    "initiative_status": InitiativeHandler,
    "target": TargetsHandler,
}


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=st.data())
def test_no_service_stops_on_any_batch(engine: Engine, data: st.DataObject) -> None:
    """Every handler takes any batch: a verdict per message, dead letters stored."""
    letters = DeadLetterHandler(engine, lambda: NOW)
    for kind, make in HANDLERS.items():
        bodies = data.draw(
            st.lists(
                st.one_of(RAW, mutated_event(kind).map(_body)), min_size=1, max_size=8
            ),
            label=kind,
        )
        batch = [Incoming(kind, b, f"fuzz:0:{i}") for i, b in enumerate(bodies)]
        result = make(engine, lambda: NOW).handle(batch)
        assert len(result.verdicts) == len(batch)
        assert all(
            v in (Verdict.NEW, Verdict.DUPLICATE, Verdict.REJECTED)
            for v in result.verdicts
        )
        stored = letters.handle([d.to_json() for d in result.dead_letters])
        assert stored.stored + stored.duplicates == len(result.dead_letters)


DATE_LIKE = st.from_regex(
    r"\A\d{4}-\d{1,2}-\d{1,2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?"
    r"([Zz]|[+-]\d{2}(:?\d{2})?)?)?\Z"
)
NEAR_VALID = st.one_of(
    DATE_LIKE,
    st.integers(-5, 3000).map(float),
    st.booleans(),
    st.sampled_from(["", " ", "101", "1084", "DK", "movia", "energy", "bike", "in"]),
)


@st.composite
def near_valid_event(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A valid example with a field or two nudged towards the edge of valid."""
    event = dict(_example(kind))
    for name in draw(st.lists(st.sampled_from(sorted(event)), max_size=2)):
        event[name] = draw(NEAR_VALID)
    return event


@pytest.mark.parametrize("kind", EVENT_KINDS)
@FUZZ
@given(data=st.data())
def test_the_compiled_validator_never_accepts_what_the_full_one_refuses(
    kind: str, data: st.DataObject
) -> None:
    """The fast path may only say yes where the full 2020-12 validator does.

    (Where it says no, the full validator decides, so a stricter fast path
    costs time, never correctness.)
    """
    from klimapuls.core.validation import _fast_check, schema_errors

    strategy = st.one_of(mutated_event(kind), near_valid_event(kind))
    event = json.loads(_body(data.draw(strategy)))
    name = schema_name(kind)
    if _fast_check(name)(event):
        assert not schema_errors(name, event), event


# Tricky date-times: the format checker's regular expression ends in `$`
# (a final newline passes it), it upper-cases first (`t`, `z`, and text that
# upper-cases to something else, such as "ß"), leap days, hour 24, offsets.
TRICKY_MOMENTS = st.one_of(
    DATE_LIKE,
    DATE_LIKE.map(lambda t: t + "\n"),
    st.sampled_from(
        [
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-06-01T24:00:00Z",
            "2026-06-01t12:00:00z",
            "2026-06-01T12:00:00.123456789+02:00",
            "2026-06-01T12:00:00+0200",
            "2026-06-01T12:00:00",
            "0000-01-01T00:00:00Z",
            "2026-06-01T12:00:60Z",
            "２０２６-06-01T12:00:00Z",
            "2026-06-01T12:00:00ßZ",
            "",
        ]
    ),
    ANY_TEXT,
)


@FUZZ
@given(text=TRICKY_MOMENTS)
def test_the_remembered_date_time_test_is_the_format_checkers(text: str) -> None:
    """The compiled validator's date-time test, remembered by text, says what
    jsonschema's `FormatChecker` says (twice: when it learns and remembers)."""
    from jsonschema import FormatChecker

    from klimapuls.core.validation import _format_test

    checker = FormatChecker()
    remembered = _format_test(checker, "date-time")
    assert remembered(text) == remembered(text) == checker.conforms(text, "date-time")


@FUZZ
@given(text=TRICKY_MOMENTS)
def test_the_remembered_parse_is_fromisoformat(text: str) -> None:
    """`parse_moment` (remembered by text) reads or refuses what it always did."""
    from klimapuls.core.mobility import parse_moment

    for _ in range(2):  # once learnt, once remembered
        try:
            expected: datetime | str = datetime.fromisoformat(text.upper())
        except ValueError as exc:
            expected = str(exc)
        try:
            got: datetime | str = parse_moment(text)
        except ValueError as exc:
            got = str(exc)
        assert got == expected
        if isinstance(got, datetime) and isinstance(expected, datetime):
            assert got.tzinfo == expected.tzinfo


@FUZZ
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.text(st.sampled_from('0123456789١٢٣ ,.-e"{}:'), max_size=120).map(
            lambda t: t.encode()
        ),
    )
)
def test_the_long_digit_search_is_the_regular_expressions(raw: bytes) -> None:
    """Runs are found as `\\d{19,}` and `\\d{16,}` find them in bytes (ASCII
    digits only)."""
    import re

    from klimapuls.core.validation import _LONG_RUN, _UNSAFE_RUN, _digit_runs

    runs = _digit_runs(raw)
    assert (_LONG_RUN in runs) == (re.search(rb"\d{19,}", raw) is not None)
    assert (_UNSAFE_RUN in runs) == (re.search(rb"\d{16,}", raw) is not None)


FLAT_VALUE = st.one_of(LEAF, st.sampled_from(["\x00", "\ud800", "ø", "\x7f", 2**53]))


@pytest.mark.parametrize("kind", EVENT_KINDS)
@FUZZ
@given(data=st.data())
def test_the_text_check_never_passes_what_the_walk_refuses(
    kind: str, data: st.DataObject
) -> None:
    """A body orjson parsed is taken as clean (`_parse`) only where the walk
    over every value finds nothing: NUL escapes, 2**53 and beyond, depth."""
    from klimapuls.core.validation import _parse, _walk_issues

    event = data.draw(
        st.one_of(
            mutated_event(kind),
            st.dictionaries(ANY_TEXT, st.one_of(FLAT_VALUE, JSON_VALUE), max_size=6),
        )
    )
    body = data.draw(
        st.sampled_from([_body(event), json.dumps(event, ensure_ascii=False)])
    )
    try:
        value, clean = _parse(body)
    except EventValidationError:
        return
    if clean:
        assert not _walk_issues(value), body


@pytest.mark.parametrize("kind", EVENT_KINDS)
@FUZZ
@given(data=st.data())
def test_the_flat_value_check_never_passes_what_the_walk_refuses(
    kind: str, data: st.DataObject
) -> None:
    """`_clean` (all text checked at once) may only say yes where the walk
    over every value finds nothing."""
    from klimapuls.core.validation import _clean, _walk_issues

    event = data.draw(
        st.one_of(
            mutated_event(kind),
            st.dictionaries(st.one_of(ANY_TEXT, st.integers()), FLAT_VALUE),
            st.dictionaries(
                ANY_TEXT,
                st.one_of(
                    FLAT_VALUE,
                    st.lists(FLAT_VALUE, max_size=3),
                    st.dictionaries(
                        st.one_of(ANY_TEXT, st.integers()), FLAT_VALUE, max_size=3
                    ),
                ),
            ),
        )
    )
    if _clean(event):
        assert not _walk_issues(event), event
    elif all(type(k) is str for k in event) and all(
        _flat_or_one_level(v) for v in event.values()
    ):
        # Text keys, one level deep at most: the quick answer is the whole answer.
        assert _walk_issues(event), event


def _scalar(value: Any) -> bool:
    return type(value) in (str, int, float, bool) or value is None


def _flat_or_one_level(value: Any) -> bool:
    """A scalar, an object of text keys and scalars, or a list of scalars."""
    if type(value) is dict:
        return all(type(k) is str and _scalar(v) for k, v in value.items())
    if type(value) is list:
        return all(_scalar(v) for v in value)
    return _scalar(value)


def _reference_by_value(value: Any) -> Any:
    """Numbers by value as `content_digest` first computed them (no shortcut)."""
    from decimal import Decimal

    if isinstance(value, dict):
        return {k: _reference_by_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reference_by_value(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite():
        if value == value.to_integral_value():
            return int(value)
    number = float(value)
    return int(number) if number.is_integer() else number


def _reference_sha256(content: Any) -> str:
    import hashlib

    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


DIGEST_TEXT = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x80), max_size=8),
    ANY_TEXT,
)
DIGEST_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**64), 2**64),
    st.floats(),
    st.floats(-1e20, 1e20).map(float.__round__).map(float),
    st.sampled_from([0.0, -0.0, 1e16, 1e15, 1e-5, 1e-4, 82.0, 2.5, 1e308]),
    st.decimals(allow_nan=False, places=2),
    DIGEST_TEXT,
)
DIGEST_EVENT = st.dictionaries(
    DIGEST_TEXT,
    st.one_of(
        DIGEST_LEAF,
        st.lists(DIGEST_LEAF, max_size=3),
        st.dictionaries(DIGEST_TEXT, DIGEST_LEAF, max_size=3),
    ),
    max_size=14,
)


@FUZZ
@given(event=st.one_of(DIGEST_EVENT, mutated_event("mobility_count")))
def test_digests_are_byte_for_byte_the_first_ones(event: dict[str, Any]) -> None:
    """Stored `payload_sha256` values still match: the flat shortcuts and
    orjson's canonical text give exactly the digests `json.dumps` gave."""
    from klimapuls.core.identity import (
        _canonical,
        _has_whole_float,
        content_digest,
        legacy_digest,
    )

    content = {k: v for k, v in event.items() if k != "reported_at"}
    by_value = _reference_by_value(content)
    digests: list[str] = []
    for digest, first in (
        (lambda: content_digest(event), lambda: _reference_sha256(by_value)),
        (lambda: legacy_digest(event), lambda: _reference_sha256(content)),
    ):
        try:
            expected = first()
        except (TypeError, ValueError) as exc:  # what json.dumps cannot write
            with pytest.raises(type(exc)):
                digest()
            continue
        assert digest() == expected
        digests.append(expected)
    if len(digests) == 2 and digests[0] != digests[1]:
        assert _has_whole_float(content)  # else identity_of skips the legacy one
    if digests:
        text = json.dumps(by_value, sort_keys=True, separators=(",", ":"))
        assert _canonical(by_value) == text.encode()
