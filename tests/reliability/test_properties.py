"""Properties that must hold for any input, searched with hypothesis.

Keys: normalisation is idempotent, and two keys collide exactly when their
normal forms are equal (so every case, surrounding-space or compatibility-form
variant collides, and nothing else does); a key holding a control, zero-width
or other invisible character is refused; register / get / list / describe /
unregister round-trip for arbitrary valid keys. Metrics: ``accuracy@token``, ``exact_match``, ``f1``
and ``dist-n`` stay in [0, 1] and ``ppl`` is at least 1 for non-negative NLLs,
or the input is refused with a ValueError or TypeError, never anything else.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_ml.registry import Registry, RegistryConflictError, RegistryNotFoundError, get_metric

from . import report

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Fewer examples where each one raises a conflict: its message names the distribution of
#: the new factory, which reads the installed metadata (about 0.1 s).
CONFLICTS = settings(PROPERTY, max_examples=30)

#: Characters ``str.strip()`` removes: surrounding space of any of these is not part of a key.
WHITESPACE = [chr(c) for c in range(0x3000 + 1) if chr(c).isspace()]


def build_a() -> str:
    return "a"


def build_b() -> str:
    return "b"


#: Printable code points that show nothing (Unicode's default-ignorable ones that
#: ``str.isprintable`` lets through): variation selectors, Hangul fillers, ...
IGNORABLE_PRINTABLE = [
    chr(c)
    for low, high in [
        (0x034F, 0x034F),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180F),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFFA0, 0xFFA0),
        (0xE0100, 0xE01EF),
    ]
    for c in range(low, high + 1)
]
#: Characters that may never be part of a key: control, format (zero-width), line and
#: paragraph separators, private use and unassigned code points, and the ones above.
invisible = st.one_of(
    st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Co", "Cn"]),
    st.sampled_from(IGNORABLE_PRINTABLE),
)
#: What keys are made of: letters, marks, numbers, punctuation, symbols and the space.
visible = st.characters(categories=["L", "M", "N", "P", "S"], include_characters=" ").filter(
    lambda char: char not in IGNORABLE_PRINTABLE
)


def valid(key: str) -> bool:
    return bool(key.strip())


def shows(text: str) -> bool:
    """Whether every character of ``text``, in its NFKC form, prints and shows."""
    folded = unicodedata.normalize("NFKC", text)
    return folded.isprintable() and not any(char in IGNORABLE_PRINTABLE for char in folded)


keys = st.text(alphabet=visible, min_size=1, max_size=24).filter(valid)


@st.composite
def variant_of(draw: st.DrawFn, key: str) -> str:
    """``key`` with random case flips (where lower-casing undoes them) and surrounding space."""
    chars = []
    for char in key:
        spellings = [s for s in {char, char.upper(), char.lower()} if s.lower() == char.lower()]
        chars.append(draw(st.sampled_from(sorted(spellings))))
    space = st.text(alphabet=st.sampled_from(WHITESPACE), max_size=3)
    return draw(space) + "".join(chars) + draw(space)


@PROPERTY
@given(name=st.text(max_size=24))
def test_normalisation_is_idempotent_or_a_clear_error(name: str) -> None:
    registry = Registry("widget")
    if not valid(name):
        report.record("bad_inputs_tried")
        with pytest.raises(ValueError, match="widget registry keys must be non-empty"):
            registry.normalize(name)
        return
    if not shows(name.strip()):
        report.record("bad_inputs_tried")
        with pytest.raises(ValueError, match="widget registry keys must hold only visible"):
            registry.normalize(name)
        return
    key = registry.normalize(name)
    assert registry.normalize(key) == key
    assert key == key.strip() and key == key.lower() and key.isprintable()
    assert key == unicodedata.normalize("NFKC", key).strip().lower()


@PROPERTY
@given(name=st.one_of(st.integers(), st.none(), st.binary(), st.lists(st.text())))
def test_a_key_that_is_not_a_string_is_a_type_error(name: Any) -> None:
    report.record("bad_inputs_tried")
    registry = Registry("widget")
    with pytest.raises(TypeError, match="widget registry keys must be strings"):
        registry.register(name, build_a)
    with pytest.raises(TypeError, match="must be strings"):
        registry.get(name)
    assert name not in registry


@CONFLICTS
@given(data=st.data(), key=keys)
def test_every_case_and_space_variant_is_the_same_key(data: st.DataObject, key: str) -> None:
    registry = Registry("widget")
    registry.register(key, build_a)
    variant = data.draw(variant_of(key))
    assert registry.get(variant) is build_a
    assert variant in registry
    report.record("bad_inputs_tried")  # a second registration that must be refused
    with pytest.raises(RegistryConflictError) as caught:
        registry.register(variant, build_b)
    assert caught.value.key == registry.normalize(key)
    assert registry.register(variant, build_a) is build_a  # the same object again: a no-op
    assert registry.list() == [registry.normalize(key)]


@PROPERTY
@given(before=keys, bad=invisible, after=keys)
def test_a_key_holding_an_invisible_character_is_refused(before: str, bad: str, after: str) -> None:
    """``ppl\\u200b`` is not a second ``ppl``, and ``\\n`` cannot forge a row of a listing."""
    registry = Registry("widget")
    name = before.strip() + bad + after.strip()
    report.record("bad_inputs_tried")
    with pytest.raises(ValueError, match="keys must hold only visible characters"):
        registry.register(name, build_a)
    with pytest.raises(ValueError, match="keys must hold only visible characters"):
        registry.get(name)
    assert name not in registry
    assert registry.list() == []


#: Fullwidth forms (U+FF01..U+FF5E) of the printable ASCII characters (U+0021..U+007E).
FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}


@CONFLICTS
@given(key=st.text(alphabet=sorted(FULLWIDTH), min_size=1, max_size=12), data=st.data())
def test_a_compatibility_form_of_a_key_is_the_same_key(key: str, data: st.DataObject) -> None:
    """``\\uff50\\uff50\\uff4c`` (fullwidth) and ``ppl`` are one key, in any mix."""
    registry = Registry("widget")
    registry.register(key, build_a)
    flips = data.draw(st.lists(st.booleans(), min_size=len(key), max_size=len(key)))
    variant = "".join(FULLWIDTH[c] if flip else c for c, flip in zip(key, flips, strict=True))
    assert registry.get(variant) is build_a and variant in registry
    report.record("bad_inputs_tried")  # a second registration that must be refused
    with pytest.raises(RegistryConflictError):
        registry.register(variant, build_b)
    assert registry.list() == [key.lower()]


@CONFLICTS
@given(first=keys, second=keys)
def test_two_keys_collide_exactly_when_their_normal_forms_are_equal(
    first: str, second: str
) -> None:
    registry = Registry("widget")
    registry.register(first, build_a)
    same = registry.normalize(first) == registry.normalize(second)
    if same:
        with pytest.raises(RegistryConflictError):
            registry.register(second, build_b)
        assert registry.get(second) is build_a
    else:
        with pytest.raises(RegistryNotFoundError):
            registry.get(second)
        registry.register(second, build_b)
        assert registry.get(second) is build_b and registry.get(first) is build_a
    assert len(registry.list()) == (1 if same else 2)


@PROPERTY
@given(names=st.lists(keys, min_size=1, max_size=12, unique_by=lambda k: k.strip().lower()))
def test_register_get_list_describe_unregister_round_trip(names: list[str]) -> None:
    registry = Registry("widget")
    factories = {}
    for name in names:

        def factory(name: str = name) -> str:
            return name

        factories[name] = factory
        assert registry.register(name, factory) is factory
    normal = {registry.normalize(name): name for name in names}
    assert registry.list() == sorted(normal)
    for key, name in normal.items():
        assert registry.get(name) is factories[name]
        assert registry.get(key) is factories[name]
        info = registry.describe(name)
        assert (info.key, info.source, info.status) == (key, "in-process", "loaded")
    for name in names:
        registry.unregister(name)
    assert registry.list() == []


# -- metrics ---------------------------------------------------------------------------------------

REFUSED = (ValueError, TypeError)

token_ids = st.integers(min_value=-100, max_value=50)


def assert_in_unit_interval(metric: str, *args: Any) -> None:
    try:
        value = get_metric(metric)(*args)
    except REFUSED:
        report.record("bad_inputs_tried")
        return
    assert 0.0 <= value <= 1.0, (metric, args, value)


@PROPERTY
@given(data=st.data(), lengths=st.lists(st.integers(0, 6), min_size=0, max_size=4))
def test_token_accuracy_is_a_fraction(data: st.DataObject, lengths: list[int]) -> None:
    targets = [data.draw(st.lists(token_ids, min_size=n, max_size=n)) for n in lengths]
    preds = [data.draw(st.lists(token_ids, min_size=n, max_size=n)) for n in lengths]
    assert_in_unit_interval("accuracy@token", preds, targets)


@PROPERTY
@given(pairs=st.lists(st.tuples(st.text(max_size=30), st.text(max_size=30)), max_size=5))
def test_exact_match_and_f1_are_fractions(pairs: list[tuple[str, str]]) -> None:
    preds, targets = [p for p, _ in pairs], [t for _, t in pairs]
    assert_in_unit_interval("exact_match", preds, targets)
    assert_in_unit_interval("f1", preds, targets)


@PROPERTY
@given(texts=st.lists(st.text(max_size=40), max_size=6))
def test_distinct_n_is_a_fraction(texts: list[str]) -> None:
    assert_in_unit_interval("dist-1", texts)
    assert_in_unit_interval("dist-2", texts)


@PROPERTY
@given(
    nlls=st.lists(
        st.floats(min_value=0.0, allow_nan=False, allow_infinity=True), min_size=1, max_size=8
    )
)
def test_perplexity_of_non_negative_nlls_is_at_least_one(nlls: list[float]) -> None:
    value = get_metric("ppl")(nlls)
    assert value >= 1.0 and not math.isnan(value), (nlls, value)
    if all(math.isfinite(n) for n in nlls) and max(nlls) < 700:
        assert value == pytest.approx(math.exp(math.fsum(nlls) / len(nlls)))
