"""Factories read from source (for checks before torch) agree with the imported factories."""

from __future__ import annotations

import inspect
import re

import pytest

from codex_ml.catalogue.table import CATALOGUE
from codex_ml.config import ConfigError
from codex_ml.config.kwarg_types import check_kwarg_type
from codex_ml.config.signatures import static_signature
from codex_ml.plugins.lazy import load_target

TARGETS = sorted({target for table in CATALOGUE.values() for target in table.values()})


def _shape(signature: inspect.Signature) -> list[tuple[str, object, bool]]:
    return [
        (p.name, p.kind, p.default is inspect.Parameter.empty)
        for p in signature.parameters.values()
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_a_source_read_signature_is_the_imported_one_or_none(target: str) -> None:
    static = static_signature(target)
    if static is None:  # not sure from source alone: the check imports instead
        return
    assert _shape(static) == _shape(inspect.signature(load_target(target)))


def test_most_of_the_catalogue_is_checked_without_importing() -> None:
    read = [t for t in TARGETS if static_signature(t) is not None]
    assert len(read) >= len(TARGETS) - 2, sorted(set(TARGETS) - set(read))


@pytest.mark.parametrize(
    ("annotation", "good", "bad"),
    [
        ("int", 3, "abc"),
        ("float", 2, "fast"),
        ("int | None", 3, 2.5),
        ("Optional[str]", "x", 5),
        ("Sequence[str] | None", ["a"], 5),
        ("bool", True, "yes"),
        ("str | os.PathLike[str] | None", "p", 3),
    ],
)
def test_a_value_is_checked_against_its_annotation(
    annotation: str, good: object, bad: object
) -> None:
    check_kwarg_type("model.x", good, annotation)
    with pytest.raises(ConfigError, match=re.escape(f"model.x: expected {annotation}")):
        check_kwarg_type("model.x", bad, annotation)


@pytest.mark.parametrize(
    "annotation", ["torch.dtype", "Tokenizer", "Literal['a', 'b']", "int | Foo"]
)
def test_an_annotation_it_does_not_know_is_trusted(annotation: str) -> None:
    check_kwarg_type("model.x", object(), annotation)
