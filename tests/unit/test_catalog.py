"""The model catalog, generated from the provider's schemas, and request validation by them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.catalog_bodies import full_body, minimal_body, value_for
from videogen.adapters.url_safety import image_reference_checker
from videogen.domain.catalog import CATALOG, ModelSpec, describe_catalog, get_model
from videogen.domain.catalog_rules import RULES
from videogen.domain.errors import RequestValidationError, UnknownModelError, UnsafeUrlError
from videogen.domain.validation import validate_request

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT.parent / "shared" / "aimlapi-docs"
CHEETAH_URL = "https://upload.wikimedia.org/wikipedia/commons/thumb/a/a9/Cheetah4.jpg/1200px-Cheetah4.jpg"
IMAGE_URL = "https://images.example.com/cat.png"
MODELS = list(CATALOG.values())


def _resolver(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
    table = {
        "upload.wikimedia.org": "198.35.26.112",
        "images.example.com": "93.184.216.34",
        "videos.example.com": "93.184.216.34",
        "audio.example.com": "93.184.216.34",
        "intranet.example.com": "10.0.0.7",
    }
    if host not in table:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]


CHECK_URL = image_reference_checker(strict_dns=True, resolver=_resolver)


def _invalid(body: Any, error: type[Exception] = RequestValidationError) -> Any:
    with pytest.raises(error) as excinfo:
        validate_request(body, check_url=CHECK_URL)
    assert type(excinfo.value) is error
    return excinfo.value


def _fields(exc: Any) -> list[str]:
    return [detail["field"] for detail in exc.details]


def _schema(model_id: str) -> dict[str, Any]:
    """The request schema of `model_id` as the provider's page documents it (the unified path)."""
    page = DOCS / CATALOG[model_id].page
    paths = json.loads(page.read_text())["paths"]
    for operations in paths.values():
        schema = (operations.get("post") or {}).get("requestBody", {}).get("content", {})
        schema = schema.get("application/json", {}).get("schema", {})
        if model_id in (schema.get("properties", {}).get("model", {}).get("enum") or []):
            return schema
    raise AssertionError(f"{model_id} is not on its page {page}")


# --- the catalog itself ------------------------------------------------------------------------


def test_the_committed_catalog_is_what_the_snapshot_gives() -> None:
    assert DOCS.is_dir(), f"the provider's docs snapshot is missing at {DOCS}"
    answer = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_catalog.py"), "--check"], capture_output=True, text=True
    )
    assert answer.returncode == 0, answer.stderr


def test_at_least_140_of_the_143_documented_models() -> None:
    assert len(CATALOG) >= 140
    vendors = {model.vendor for model in MODELS}
    assert {
        "MiniMax",
        "Kling AI",
        "Runway",
        "Google",
        "Alibaba Cloud",
        "ByteDance",
        "OpenAI",
        "PixVerse",
    } <= vendors


@pytest.mark.parametrize("model", MODELS, ids=[m.id for m in MODELS])
def test_every_model_keeps_the_fields_its_page_documents(model: ModelSpec) -> None:
    schema = _schema(model.id)
    documented = set(schema["properties"]) - {"model"}
    first_page = model.variants[0]
    assert {spec.name for spec in first_page} == documented
    required = set(schema.get("required", [])) - {"model"}
    assert {spec.name for spec in first_page if spec.required} >= required
    for spec in first_page:
        source = schema["properties"][spec.name]
        for key in ("enum", "minimum", "maximum", "maxLength", "minItems", "maxItems"):
            assert spec.schema.get(key) == source.get(key), (spec.name, key)
        assert "description" not in spec.schema  # the provider's prose is not copied


@pytest.mark.parametrize("model", MODELS, ids=[m.id for m in MODELS])
def test_every_model_accepts_its_smallest_and_its_fullest_request(model: ModelSpec) -> None:
    for body in (minimal_body(model), full_body(model)):
        got, cleaned = validate_request(body, check_url=CHECK_URL)
        assert got is model and cleaned == {k: v for k, v in body.items() if k != "model"}


@pytest.mark.parametrize("model", MODELS, ids=[m.id for m in MODELS])
def test_every_enum_value_is_accepted_and_one_outside_refused(model: ModelSpec) -> None:
    for spec in model.fields:
        if spec.enum is None:
            continue
        for option in spec.enum:
            body = {**minimal_body(model), spec.name: option}
            if any(rule.broken_by(model, body) for rule in RULES):
                continue
            validate_request(body, check_url=CHECK_URL)
        wrong = "not-an-option" if isinstance(spec.enum[0], str) else 987_654
        exc = _invalid({**minimal_body(model), spec.name: wrong})
        assert _fields(exc) == [spec.name] and "must be one of" in exc.details[0]["message"]


@pytest.mark.parametrize("model", MODELS, ids=[m.id for m in MODELS])
def test_ranges_hold_at_their_edges_and_no_further(model: ModelSpec) -> None:
    for spec in model.fields:
        if spec.kind not in ("integer", "number") or spec.enum is not None:
            continue
        step = 1 if spec.kind == "integer" else 0.5
        for edge, outside in ((spec.minimum, -step), (spec.maximum, step)):
            if edge is None:
                continue
            validate_request({**minimal_body(model), spec.name: edge}, check_url=CHECK_URL)
            exc = _invalid({**minimal_body(model), spec.name: edge + outside})
            assert _fields(exc) == [spec.name]


def test_no_limit_the_schema_does_not_state() -> None:
    # Kling's prompt, Veo's and Seedance's seeds: the schemas set no bound, so none is invented.
    kling = get_model("kling-video/v1.6/standard/text-to-video")
    assert kling.field("prompt").max_length is None  # type: ignore[union-attr]
    validate_request({"model": kling.id, "prompt": "x" * 10_000}, check_url=CHECK_URL)
    veo = get_model("google/veo3")
    validate_request({"model": veo.id, "prompt": "p", "seed": 2**40}, check_url=CHECK_URL)


def test_a_model_two_pages_document_differently_takes_what_either_takes() -> None:
    model = get_model("klingai/video-v2-6-pro-image-to-video")
    assert len(model.variants) == 2
    body = minimal_body(model)
    validate_request({**body, "provider": "kling"}, check_url=CHECK_URL)  # one page's field
    validate_request({**body, "tail_image_url": IMAGE_URL}, check_url=CHECK_URL)  # the other's
    exc = _invalid({**body, "provider": "kling", "tail_image_url": IMAGE_URL})  # no page takes both
    assert _fields(exc) == ["tail_image_url"]


def test_documented_fields_are_accepted() -> None:
    validate_request(
        {"model": "runway/gen4_turbo", "image_url": IMAGE_URL, "tail_image_url": IMAGE_URL},
        check_url=CHECK_URL,
    )
    validate_request(
        {"model": "pixverse/v5/text-to-video", "prompt": "p", "lip_sync_tts_content": "hello"},
        check_url=CHECK_URL,
    )


def test_a_documented_rule_between_fields_is_kept() -> None:
    body = {"model": "pixverse/v5/text-to-video", "prompt": "p", "resolution": "1080p", "duration": 8}
    exc = _invalid(body)
    assert _fields(exc) == ["duration"] and "1080p" in exc.details[0]["message"]
    validate_request({**body, "duration": 5}, check_url=CHECK_URL)
    validate_request({**body, "resolution": "720p"}, check_url=CHECK_URL)
    for rule in RULES:
        for page in rule.pages:
            assert (DOCS / page).exists(), page


def test_typical_seconds_come_from_the_pages_that_state_them() -> None:
    stated = [m for m in MODELS if m.typical_seconds_stated]
    assert len(stated) >= 60
    assert get_model("video-01-live2d").typical_seconds == 180
    assert all(10 <= m.typical_seconds <= 3600 for m in MODELS)


def test_video_01_is_on_the_unified_endpoint() -> None:
    for model_id in ("video-01", "video-01-live2d"):
        model = get_model(model_id)
        assert model.family == "unified"
        assert {"image_url", "enhance_prompt"} <= {spec.name for spec in model.fields}


def test_seed_request_in_unified_names_validates() -> None:
    body = {"model": "video-01", "prompt": "Cheetah turns toward the camera.", "image_url": CHEETAH_URL}
    model, cleaned = validate_request(body, check_url=CHECK_URL)
    assert model is CATALOG["video-01"]
    assert cleaned == {"prompt": "Cheetah turns toward the camera.", "image_url": CHEETAH_URL}
    assert body["model"] == "video-01"  # the input is not modified


def test_seed_request_in_legacy_names_points_to_the_unified_names() -> None:
    body = {
        "model": "video-01",
        "prompt": "Cheetah turns toward the camera.",
        "first_frame_image": CHEETAH_URL,
        "prompt_optimizer": True,
    }
    exc = _invalid(body)
    messages = {d["field"]: d["message"] for d in exc.details}
    assert "use image_url" in messages["first_frame_image"]
    assert "use enhance_prompt" in messages["prompt_optimizer"]


def test_catalog_is_immutable() -> None:
    with pytest.raises(TypeError):
        CATALOG["x"] = CATALOG["video-01"]  # type: ignore[index]
    with pytest.raises(TypeError):
        CATALOG["video-01"].field("prompt").schema["maxLength"] = 1  # type: ignore[index,union-attr]


def test_describe_catalog_is_json_and_complete() -> None:
    described = json.loads(json.dumps(describe_catalog()))
    assert [m["id"] for m in described] == list(CATALOG)
    video01 = next(m for m in described if m["id"] == "video-01")
    assert video01["inputs"] == ["text", "image"] and video01["vendor"] == "MiniMax"
    prompt = next(f for f in video01["fields"] if f["name"] == "prompt")
    assert prompt == {
        "name": "prompt",
        "type": "string",
        "required": True,
        "enum": None,
        "minimum": None,
        "maximum": None,
        "max_length": 2000,
        "default": None,
        "items": None,
        "min_items": None,
        "max_items": None,
        "description": "required string; at most 2000 characters",
    }


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "video-01", None, 42, [("model", "video-01")]])
def test_non_object_body(body: Any) -> None:
    exc = _invalid(body)
    assert _fields(exc) == ["body"]


@pytest.mark.parametrize("body", [{}, {"prompt": "p"}, {"model": None}])
def test_missing_model(body: dict[str, Any]) -> None:
    assert _fields(_invalid(body)) == ["model"]


@pytest.mark.parametrize("model", [42, ["video-01"], {"id": "video-01"}, True])
def test_model_must_be_a_string(model: Any) -> None:
    assert _fields(_invalid({"model": model, "prompt": "p"})) == ["model"]


@pytest.mark.parametrize("model", ["video-02", "", "VIDEO-01", "minimax/hailuo-03", "sora-2"])
def test_unknown_model(model: str) -> None:
    exc = _invalid({"model": model, "prompt": "p"}, UnknownModelError)
    assert exc.code == "unknown_model" and _fields(exc) == ["model"]
    assert exc.to_body()["error"]["code"] == "unknown_model"


def test_missing_required_fields_and_unknown_fields() -> None:
    exc = _invalid({"model": "openai/sora-2-i2v", "prompt": "p", "colour": "red"})
    assert _fields(exc) == ["image_url", "colour"]
    assert exc.details[1]["message"] == "is not accepted by model openai/sora-2-i2v"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("prompt", 5, "must be a string"),
        ("enhance_prompt", "yes", "must be a boolean"),
        ("image_url", 3, "must be a string"),
        ("prompt", None, "must be a string"),
    ],
)
def test_wrong_types(field: str, value: Any, expected: str) -> None:
    exc = _invalid({"model": "video-01", "prompt": "p", field: value})
    assert exc.details == [{"field": field, "message": expected}]


def test_integral_floats_become_ints_and_bools_are_not_numbers() -> None:
    _, cleaned = validate_request(
        {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "p", "duration": 5.0},
        check_url=CHECK_URL,
    )
    assert cleaned["duration"] == 5 and type(cleaned["duration"]) is int
    exc = _invalid({"model": "kling-video/v1.6/standard/text-to-video", "prompt": "p", "duration": True})
    assert _fields(exc) == ["duration"]


def test_lists_and_nested_objects_are_checked_item_by_item() -> None:
    model = next(m for m in MODELS if any(f.kind == "array" and f.items == "url" for f in m.fields))
    field = next(f for f in model.fields if f.kind == "array" and f.items == "url")
    body = {**minimal_body(model), field.name: [IMAGE_URL, "https://10.0.0.1/a.png"]}
    exc = _invalid(body, UnsafeUrlError)
    assert _fields(exc) == [f"{field.name}[1]"]
    luma = get_model("luma/ray-2")
    keyframes = {"frame0": {"type": "image", "url": IMAGE_URL}}
    validate_request({"model": luma.id, "prompt": "p", "keyframes": keyframes}, check_url=CHECK_URL)
    # A URL nested in an object is checked too, whatever other form the field also allows.
    unsafe = {"frame0": {"type": "image", "url": "https://169.254.169.254/latest/meta-data/"}}
    exc = _invalid({"model": luma.id, "prompt": "p", "keyframes": unsafe}, UnsafeUrlError)
    assert _fields(exc) == ["keyframes.frame0.url"]


def test_every_problem_is_reported_at_once() -> None:
    body = {"model": "minimax/hailuo-02", "duration": 7, "resolution": "720p", "camerafixed": True}
    exc = _invalid(body)
    assert exc.code == "validation_error"
    assert set(_fields(exc)) == {"prompt", "duration", "resolution", "camerafixed"}
    assert "and 1 more" in exc.message


def test_values_for_every_field_kind_are_valid() -> None:
    for model in MODELS:
        for spec in model.fields:
            value_for(spec.name, spec.schema)  # never raises: the contract tests build on it


# --- URL safety ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://images.example.com/a.png",
        "https://127.0.0.1/a.png",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://100.64.0.1/a.png",
        "https://[fd12::1]/a.png",
        "https://localhost/a.png",
        "https://intranet.example.com/a.png",  # resolves to 10.0.0.7
        "https://nx.example.com/a.png",  # does not resolve (strict)
        "https://user:pw@images.example.com/a.png",
        "data:image/svg+xml;base64,PHN2Zy8+",
    ],
)
def test_unsafe_image_url_alone_raises_unsafe_url(url: str) -> None:
    exc = _invalid({"model": "video-01", "prompt": "p", "image_url": url}, UnsafeUrlError)
    assert exc.code == "unsafe_url"
    assert exc.http_status == 422
    assert _fields(exc) == ["image_url"]
    assert exc.to_body()["error"]["details"] == exc.details


def test_several_unsafe_urls_alone_still_raise_unsafe_url() -> None:
    body = {
        "model": "minimax/hailuo-02",
        "prompt": "p",
        "image_url": "https://10.0.0.1/a.png",
        "last_image_url": "https://localhost/b.png",
    }
    exc = _invalid(body, UnsafeUrlError)
    assert _fields(exc) == ["image_url", "last_image_url"]


def test_unsafe_url_with_other_problems_is_a_validation_error_naming_both() -> None:
    body = {"model": "video-01", "image_url": "https://10.0.0.1/a.png"}
    exc = _invalid(body)
    assert exc.code == "validation_error"
    assert _fields(exc) == ["prompt", "image_url"]


def test_unsafe_url_checker_is_not_bypassed_for_lenient_dns() -> None:
    lenient = image_reference_checker(strict_dns=False, resolver=_resolver)
    validate_request(
        {"model": "video-01", "prompt": "p", "image_url": "https://nx.example.com/a.png"}, check_url=lenient
    )
    with pytest.raises(UnsafeUrlError):
        validate_request(
            {"model": "video-01", "prompt": "p", "image_url": "https://intranet.example.com/a.png"},
            check_url=lenient,
        )


def test_other_errors_from_check_url_propagate() -> None:
    def broken(url: str) -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        validate_request({"model": "video-01", "prompt": "p", "image_url": IMAGE_URL}, check_url=broken)


def test_image_rules_the_pages_state_in_words_are_kept_with_their_page() -> None:
    minimax = get_model("video-01").images["image_url"]
    assert (minimax.formats, minimax.ratio_above, minimax.ratio_below) == (("jpeg", "png"), 0.4, 2.5)
    assert (minimax.short_side_above, minimax.max_bytes) == (300, 20 * 1024 * 1024)
    assert minimax.problems("png", 480, 360, 1000) == []
    assert minimax.problems("webp", 480, 360, 1000) == ["must be a JPEG or PNG image (it is WEBP)"]
    assert minimax.problems("png", 1000, 400, 1000) == [
        "must have a width / height between 0.4 and 2.5 (it is 1000x400)"
    ]
    sora = get_model("openai/sora-2-pro-i2v").images["image_url"]
    assert sora.problems("png", 1792, 1024, 1000, "1080p") == []
    assert sora.problems("png", 1280, 720, 1000, "1080p") == [
        "must be exactly 1792x1024, 1024x1792 (it is 1280x720)"
    ]
    for model in MODELS:
        for spec in model.images.values():
            assert (DOCS / spec.page).exists()
