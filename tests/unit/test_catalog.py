"""The model catalog and request validation."""

from __future__ import annotations

import dataclasses
import json
import math
import socket
from typing import Any

import pytest

from videogen.adapters.url_safety import image_reference_checker
from videogen.domain.catalog import (
    CATALOG,
    FieldSpec,
    ModelSpec,
    describe_catalog,
    get_model,
    validate_request,
)
from videogen.domain.errors import RequestValidationError, UnknownModelError, UnsafeUrlError

CHEETAH_URL = "https://upload.wikimedia.org/wikipedia/commons/thumb/a/a9/Cheetah4.jpg/1200px-Cheetah4.jpg"
IMAGE_URL = "https://images.example.com/cat.png"

REQUIRED_IDS = {
    "video-01",
    "video-01-live2d",
    "minimax/hailuo-02",
    "kling-video/v1.6/standard/text-to-video",
    "klingai/v2.5-turbo/pro/image-to-video",
    "runway/gen4_turbo",
    "google/veo3",
    "luma/ray-2",
    "alibaba/wan2.1-t2v-plus",
    "pixverse/v5/text-to-video",
    "bytedance/seedance-1-0-lite-t2v",
    "openai/sora-2-t2v",
    "openai/sora-2-i2v",
}
PROVIDERS = {"minimax", "kling", "runway", "google", "luma-ai", "alibaba", "pixverse", "bytedance", "openai"}


def _resolver(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
    table = {
        "upload.wikimedia.org": "198.35.26.112",
        "images.example.com": "93.184.216.34",
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


def _minimal(model: ModelSpec) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model.id}
    for spec in model.fields:
        if spec.required:
            body[spec.name] = IMAGE_URL if spec.kind == "url" else "A cat walks across a sunlit room."
    return body


def _maximal(model: ModelSpec) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model.id}
    for spec in model.fields:
        if spec.enum is not None:
            body[spec.name] = spec.enum[-1]
        elif spec.kind == "url":
            body[spec.name] = IMAGE_URL
        elif spec.kind == "string":
            body[spec.name] = "x" * (spec.max_length or 10)
        elif spec.kind == "boolean":
            body[spec.name] = True
        elif spec.kind in ("integer", "number"):
            body[spec.name] = spec.maximum if spec.maximum is not None else 1
    return body


# --- the catalog itself ------------------------------------------------------------------------


def test_catalog_covers_the_required_models() -> None:
    assert set(CATALOG) >= REQUIRED_IDS
    assert all(CATALOG[model_id].id == model_id for model_id in CATALOG)


@pytest.mark.parametrize("model", list(CATALOG.values()), ids=list(CATALOG))
def test_catalog_entry_is_consistent(model: ModelSpec) -> None:
    names = [spec.name for spec in model.fields]
    assert len(names) == len(set(names)), "duplicate field"
    assert "model" not in names
    assert model.provider in PROVIDERS
    assert model.family == ("legacy" if model.id in {"video-01", "video-01-live2d"} else "unified")
    assert model.description
    assert 30 <= model.typical_seconds <= 600
    prompt = model.field("prompt")
    assert prompt is not None and prompt.kind == "string" and prompt.max_length
    assert model.field("nope") is None
    for spec in model.fields:
        assert spec.description, f"{spec.name} has no description"
        if spec.enum is not None:
            assert spec.enum, "empty enum"
            expected = {"integer": int, "string": str}[spec.kind]
            assert all(type(option) is expected for option in spec.enum)
        if spec.name == "duration":
            assert spec.kind == "integer" and spec.enum is not None
        if spec.name in {"enhance_prompt", "generate_audio", "camerafixed", "loop", "watermark"}:
            assert spec.kind == "boolean"
        if spec.name.endswith("image_url") or spec.name == "image_url":
            assert spec.kind == "url"
        if spec.name == "cfg_scale":
            assert (spec.kind, spec.minimum, spec.maximum) == ("number", 0, 1)
        if spec.name == "seed":
            assert spec.kind == "integer" and spec.minimum is not None and spec.maximum is not None
        if spec.minimum is not None and spec.maximum is not None:
            assert spec.minimum < spec.maximum
    if model.mode == "image-to-video" and model.id != "video-01":
        image = model.field("image_url")
        assert image is not None and image.required


def test_specific_limits_and_enums() -> None:
    assert get_model("video-01").field("prompt").max_length == 2000  # type: ignore[union-attr]
    assert get_model("minimax/hailuo-02").field("prompt").max_length == 2000  # type: ignore[union-attr]
    assert get_model("runway/gen4_turbo").field("prompt").max_length == 1000  # type: ignore[union-attr]
    hailuo = get_model("minimax/hailuo-02")
    assert hailuo.field("resolution").enum == ("768P", "1080P")  # type: ignore[union-attr]
    assert hailuo.field("duration").enum == (6, 10)  # type: ignore[union-attr]
    assert get_model("google/veo3").field("duration").enum == (4, 6, 8)  # type: ignore[union-attr]
    assert get_model("openai/sora-2-t2v").field("duration").enum == (4, 8, 12)  # type: ignore[union-attr]
    assert get_model("luma/ray-2").field("duration").enum == (5, 9)  # type: ignore[union-attr]
    assert get_model("pixverse/v5/text-to-video").field("duration").enum == (5, 8)  # type: ignore[union-attr]
    assert get_model("luma/ray-2").field("resolution").enum == ("540p", "720p", "1080p", "4k")  # type: ignore[union-attr]
    assert get_model("video-01-live2d").field("image_url").required  # type: ignore[union-attr]
    assert not get_model("video-01").field("image_url").required  # type: ignore[union-attr]
    runway = get_model("runway/gen4_turbo")
    assert runway.field("image_url").required and not runway.field("prompt").required  # type: ignore[union-attr]


def test_typical_seconds_follow_the_timing_notes() -> None:
    assert get_model("video-01").typical_seconds < 60
    slow = min(
        get_model(m).typical_seconds for m in ("google/veo3", "openai/sora-2-t2v", "openai/sora-2-i2v")
    )
    assert slow > max(get_model(m).typical_seconds for m in ("video-01", "runway/gen4_turbo"))


def test_catalog_is_immutable() -> None:
    with pytest.raises(TypeError):
        CATALOG["x"] = CATALOG["video-01"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOG["video-01"].typical_seconds = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOG["video-01"].fields[0].max_length = 1  # type: ignore[misc]


def test_get_model() -> None:
    assert get_model("video-01") is CATALOG["video-01"]
    with pytest.raises(UnknownModelError) as excinfo:
        get_model("video-02")
    exc = excinfo.value
    assert exc.code == "unknown_model" and exc.http_status == 422
    assert exc.details[0]["field"] == "model"
    assert "did you mean 'video-01'" in exc.message
    assert all(model_id in exc.message for model_id in CATALOG)


def test_describe_catalog_is_json_and_complete() -> None:
    described = describe_catalog()
    json.dumps(described)
    assert [entry["id"] for entry in described] == list(CATALOG)
    for entry in described:
        model = CATALOG[entry["id"]]
        assert set(entry) == {"id", "provider", "mode", "description", "typical_seconds", "fields"}
        assert entry["typical_seconds"] == model.typical_seconds
        assert [f["name"] for f in entry["fields"]] == [s.name for s in model.fields]
        for field in entry["fields"]:
            assert set(field) == {
                "name",
                "type",
                "required",
                "enum",
                "minimum",
                "maximum",
                "max_length",
                "description",
            }
            assert field["enum"] is None or isinstance(field["enum"], list)
    hailuo = next(e for e in described if e["id"] == "minimax/hailuo-02")
    resolution = next(f for f in hailuo["fields"] if f["name"] == "resolution")
    assert resolution == {
        "name": "resolution",
        "type": "string",
        "required": False,
        "enum": ["768P", "1080P"],
        "minimum": None,
        "maximum": None,
        "max_length": None,
        "description": resolution["description"],
    }
    resolution["enum"].append("x")  # a copy: the catalog is untouched
    assert CATALOG["minimax/hailuo-02"].field("resolution").enum == ("768P", "1080P")  # type: ignore[union-attr]


# --- validate_request: accepted ----------------------------------------------------------------


def test_seed_request_in_unified_names_validates() -> None:
    body = {"model": "video-01", "prompt": "Cheetah turns toward the camera.", "image_url": CHEETAH_URL}
    model, cleaned = validate_request(body, check_url=CHECK_URL)
    assert model is CATALOG["video-01"]
    assert model.family == "legacy"
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


@pytest.mark.parametrize("model", list(CATALOG.values()), ids=list(CATALOG))
def test_every_model_accepts_a_minimal_request(model: ModelSpec) -> None:
    body = _minimal(model)
    got, cleaned = validate_request(body, check_url=CHECK_URL)
    assert got is model
    assert cleaned == {k: v for k, v in body.items() if k != "model"}


@pytest.mark.parametrize("model", list(CATALOG.values()), ids=list(CATALOG))
def test_every_model_accepts_every_field_at_its_limits(model: ModelSpec) -> None:
    body = _maximal(model)
    _, cleaned = validate_request(body, check_url=CHECK_URL)
    assert set(cleaned) == {spec.name for spec in model.fields}


def test_cleaned_fields_follow_catalog_order_and_drop_nulls() -> None:
    body = {
        "enhance_prompt": False,
        "duration": 10,
        "model": "minimax/hailuo-02",
        "last_image_url": None,
        "prompt": "p",
    }
    _, cleaned = validate_request(body, check_url=CHECK_URL)
    assert list(cleaned) == ["prompt", "duration", "enhance_prompt"]


def test_integral_floats_become_ints() -> None:
    _, cleaned = validate_request(
        {"model": "runway/gen4_turbo", "image_url": IMAGE_URL, "duration": 5.0, "seed": 42.0},
        check_url=CHECK_URL,
    )
    assert cleaned["duration"] == 5 and type(cleaned["duration"]) is int
    assert type(cleaned["seed"]) is int


def test_number_fields_take_ints_and_floats() -> None:
    for value in (0, 1, 0.5):
        _, cleaned = validate_request(
            {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "p", "cfg_scale": value},
            check_url=CHECK_URL,
        )
        assert cleaned["cfg_scale"] == value


def test_seedance_seed_may_be_minus_one() -> None:
    validate_request(
        {"model": "bytedance/seedance-1-0-lite-t2v", "prompt": "p", "seed": -1}, check_url=CHECK_URL
    )


def test_check_url_is_called_once_per_url_field_only() -> None:
    seen: list[str] = []
    body = {
        "model": "minimax/hailuo-02",
        "prompt": "p",
        "image_url": "https://a.example/1.png",
        "last_image_url": "https://b.example/2.png",
        "resolution": "768P",
    }
    validate_request(body, check_url=seen.append)
    assert seen == ["https://a.example/1.png", "https://b.example/2.png"]


def test_data_url_image_is_accepted() -> None:
    png = (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
    )
    _, cleaned = validate_request(
        {"model": "video-01-live2d", "prompt": "p", "image_url": png}, check_url=CHECK_URL
    )
    assert cleaned["image_url"] == png


# --- validate_request: refused -----------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "video-01", None, 42, [("model", "video-01")]])
def test_non_object_body(body: Any) -> None:
    exc = _invalid(body)
    assert exc.code == "validation_error"
    assert _fields(exc) == ["body"]


@pytest.mark.parametrize("body", [{}, {"prompt": "p"}, {"model": None}])
def test_missing_model(body: dict[str, Any]) -> None:
    exc = _invalid(body)
    assert _fields(exc) == ["model"]


@pytest.mark.parametrize("model", [42, ["video-01"], {"id": "video-01"}, True])
def test_model_must_be_a_string(model: Any) -> None:
    exc = _invalid({"model": model, "prompt": "p"})
    assert _fields(exc) == ["model"]


@pytest.mark.parametrize("model", ["video-02", "", "VIDEO-01", "minimax/hailuo-03", "sora-2"])
def test_unknown_model(model: str) -> None:
    exc = _invalid({"model": model, "prompt": "p"}, UnknownModelError)
    assert exc.code == "unknown_model"
    assert exc.http_status == 422
    assert _fields(exc) == ["model"]
    assert "video-01" in exc.message and "openai/sora-2-t2v" in exc.message
    assert exc.to_body()["error"]["code"] == "unknown_model"


@pytest.mark.parametrize("prompt", [None, "", "   \n\t"])
def test_missing_or_empty_prompt(prompt: Any) -> None:
    body: dict[str, Any] = {"model": "video-01"}
    if prompt is not None:
        body["prompt"] = prompt
    exc = _invalid(body)
    assert exc.code == "validation_error"
    assert _fields(exc) == ["prompt"]
    assert "required" in exc.details[0]["message"]


def test_missing_required_image() -> None:
    for model_id in (
        "video-01-live2d",
        "runway/gen4_turbo",
        "openai/sora-2-i2v",
        "klingai/v2.5-turbo/pro/image-to-video",
    ):
        exc = _invalid({"model": model_id, "prompt": "p"})
        assert _fields(exc) == ["image_url"], model_id


def test_field_the_model_does_not_take() -> None:
    exc = _invalid({"model": "video-01", "prompt": "p", "duration": 6})
    assert _fields(exc) == ["duration"]
    assert "video-01" in exc.details[0]["message"]
    exc = _invalid({"model": "openai/sora-2-t2v", "prompt": "p", "image_url": IMAGE_URL, "junk": 1})
    assert _fields(exc) == ["image_url", "junk"]


def test_non_string_keys_are_reported() -> None:
    exc = _invalid({"model": "video-01", "prompt": "p", 1: "x"})
    assert _fields(exc) == ["1"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("duration", 7, "must be one of 6, 10"),
        ("duration", 0, "must be one of"),
        ("duration", -6, "must be one of"),
        ("duration", "6", "must be an integer"),
        ("duration", 6.5, "must be an integer"),
        ("duration", True, "must be an integer"),
        ("duration", math.nan, "must be an integer"),
        ("duration", math.inf, "must be an integer"),
        ("resolution", "1080p", "did you mean '1080P'"),
        ("resolution", "4k", "must be one of '768P', '1080P'"),
        ("resolution", 1080, "must be a string"),
        ("enhance_prompt", "true", "must be true or false"),
        ("enhance_prompt", 1, "must be true or false"),
        ("image_url", 123, "must be a string"),
        ("image_url", "", "non-empty"),
        ("prompt", ["p"], "must be a string"),
    ],
)
def test_wrong_types_and_enums(field: str, value: Any, expected: str) -> None:
    body = {"model": "minimax/hailuo-02", "prompt": "p", field: value}
    exc = _invalid(body)
    assert _fields(exc) == [field]
    assert expected in exc.details[0]["message"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, "at most 1"),
        (-0.1, "at least 0"),
        ("0.5", "must be a finite number"),
        (True, "must be a finite number"),
        (math.nan, "must be a finite number"),
        (math.inf, "must be a finite number"),
        (None, None),
    ],
)
def test_cfg_scale_range(value: Any, expected: str | None) -> None:
    body = {"model": "kling-video/v1.6/standard/text-to-video", "prompt": "p", "cfg_scale": value}
    if expected is None:
        validate_request(body, check_url=CHECK_URL)
        return
    exc = _invalid(body)
    assert _fields(exc) == ["cfg_scale"]
    assert expected in exc.details[0]["message"]


@pytest.mark.parametrize(("seed", "ok"), [(0, True), (4_294_967_295, True), (-1, False), (2**32, False)])
def test_seed_range(seed: int, ok: bool) -> None:
    body = {"model": "runway/gen4_turbo", "image_url": IMAGE_URL, "seed": seed}
    if ok:
        validate_request(body, check_url=CHECK_URL)
    else:
        assert _fields(_invalid(body)) == ["seed"]


@pytest.mark.parametrize(
    ("model_id", "limit"),
    [("video-01", 2000), ("minimax/hailuo-02", 2000), ("runway/gen4_turbo", 1000)],
)
def test_oversized_prompt(model_id: str, limit: int) -> None:
    body = _minimal(CATALOG[model_id])
    body["prompt"] = "x" * limit
    validate_request(body, check_url=CHECK_URL)
    body["prompt"] = "x" * (limit + 1)
    exc = _invalid(body)
    assert _fields(exc) == ["prompt"]
    assert f"at most {limit} characters" in exc.details[0]["message"]


def test_every_problem_is_reported_at_once() -> None:
    body = {
        "model": "minimax/hailuo-02",
        "duration": 7,
        "resolution": "720p",
        "image_url": "http://images.example.com/a.png",
        "camerafixed": True,
    }
    exc = _invalid(body)
    assert exc.code == "validation_error"
    assert _fields(exc) == ["prompt", "image_url", "resolution", "duration", "camerafixed"]
    assert "and 2 more" in exc.message


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


def test_fieldspec_defaults() -> None:
    spec = FieldSpec("x", "string")
    assert (spec.required, spec.enum, spec.minimum, spec.maximum, spec.max_length, spec.description) == (
        False,
        None,
        None,
        None,
        None,
        "",
    )
