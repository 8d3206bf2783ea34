"""The API and the simulator judge request bodies alike: a property test driven by the provider's
schemas. Bodies are drawn from each model's schema (`values`, below), then often broken in
one way (a field dropped, added, of the wrong type, out of its enum or range, null). The API's
validation (videogen.domain.catalog) and the simulator's (local/simulator/contract.py, jsonschema
on the provider's own pages) must give the same verdict on every one.

URLs are drawn from a pool of public https URLs: the API's URL safety rules are its own, stricter
than any schema, and are tested apart (tests/unit/test_catalog.py, test_urls.py)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.simulator.contract import load
from tests.catalog_bodies import URLS
from videogen.domain.catalog import CATALOG, ModelSpec
from videogen.domain.errors import RequestValidationError
from videogen.domain.validation import validate_request

EXAMPLES = 2500
MODELS = sorted(CATALOG)
SAFE_URLS = sorted(URLS.values())
_verdicts: dict[str, int] = {"agree": 0, "disagree": 0, "accepted": 0}


def _path(model: ModelSpec) -> str:
    if model.family == "unified":
        return "/v2/video/generations"
    return f"/v2/generate/video/{model.provider}/generation"


def values(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values a JSON Schema allows (the keywords the catalog keeps); a URL is a public https URL."""
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([values(option) for option in schema[key]])
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return st.one_of([values({**schema, "type": kind}) for kind in kinds])
    if kinds == "string":
        if schema.get("format") == "uri":
            return st.sampled_from(SAFE_URLS)
        low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
        return st.text(min_size=low, max_size=max(low, high))
    if kinds == "integer":
        return st.integers(schema.get("minimum", -(10**6)), schema.get("maximum", 10**6))
    if kinds == "number":
        return st.floats(schema.get("minimum", -1e6), schema.get("maximum", 1e6), allow_nan=False)
    if kinds == "boolean":
        return st.booleans()
    if kinds == "null":
        return st.none()
    if kinds == "array":
        low = schema.get("minItems", 0)
        return st.lists(
            values(schema.get("items", {})), min_size=low, max_size=max(low, schema.get("maxItems", 3))
        )
    if kinds == "object" or "properties" in schema:
        return objects(schema.get("properties", {}), schema.get("required", []))
    return st.one_of(st.integers(), st.text(max_size=5), st.booleans())  # a schema with no constraint


def objects(properties: Mapping[str, Any], required: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {name: values(properties[name]) for name in required if name in properties},
        optional={name: values(schema) for name, schema in properties.items() if name not in required},
    )


WRONG_VALUES = [None, 0, -1, 10**9, 1.5, "", "x", True, [], {}, ["x"], {"a": 1}]


@st.composite
def bodies(draw: st.DrawFn) -> tuple[ModelSpec, dict[str, Any]]:
    model = CATALOG[draw(st.sampled_from(MODELS))]
    fields = model.variants[0]
    schemas = {spec.name: spec.schema for spec in fields}
    body = copy.deepcopy(draw(objects(schemas, [spec.name for spec in fields if spec.required])))
    names = [spec.name for spec in model.variants[0]]
    mutation = draw(st.sampled_from(["none", "none", "drop", "add", "wrong", "wrong", "wrong"]))
    if mutation == "drop" and body:
        body.pop(draw(st.sampled_from(sorted(body))))
    elif mutation == "add":
        body[draw(st.sampled_from(["colour", "first_frame_image", "ratio", *names]))] = draw(
            st.sampled_from(WRONG_VALUES)
        )
    elif mutation == "wrong" and names:
        body[draw(st.sampled_from(names))] = draw(st.sampled_from(WRONG_VALUES))
    return model, {"model": model.id, **body}


def _api_accepts(body: Mapping[str, Any]) -> bool:
    try:
        validate_request(body, check_url=lambda url: None)
    except RequestValidationError:
        return False
    return True


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,  # the same 2,500 bodies every run, none replayed from an earlier one
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(bodies())
def test_the_api_and_the_simulator_agree_on_every_body(drawn: tuple[ModelSpec, dict[str, Any]]) -> None:
    model, body = drawn
    api = _api_accepts(body)
    simulator = load().check(_path(model), body) is None
    _verdicts["agree" if api == simulator else "disagree"] += 1
    _verdicts["accepted"] += api
    assert api == simulator, (model.id, body, load().check(_path(model), body))


def test_agreement_rate_over_enough_bodies() -> None:
    """Runs after the property test (same module, in order): how many it judged, and the rate."""
    judged = _verdicts["agree"] + _verdicts["disagree"]
    rate = _verdicts["agree"] / judged if judged else 0.0
    accepted = _verdicts["accepted"]
    print(f"\ncontract agreement: {_verdicts['agree']}/{judged} bodies ({rate:.1%}); {accepted} accepted")
    assert judged >= 2000 and rate == 1.0
    assert 0.2 * judged < _verdicts["accepted"] < 0.8 * judged  # both verdicts are exercised
