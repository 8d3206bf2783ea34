"""Generate the model catalog (layers/common/videogen/domain/catalog.json) from the AIML API's
own reference pages: the snapshot in ../shared/aimlapi-docs (see its README.md).

    python scripts/gen_catalog.py [--docs DIR] [--check]

For every model id in a request schema's `model` enum, the catalog keeps one request schema:
- the unified path `POST /v2/video/generations` when any page documents the model there, else the
  per-vendor path `POST /v2/generate/video/<vendor>/generation` its page documents;
- of several pages for the same model and path, the page that documents that model alone (a page
  listing several models is a family page), then the first page by path.
Each schema is kept as JSON Schema (OpenAPI's `nullable` becomes a null type; `example`, `title`
and the provider's prose descriptions are dropped, so no sentence of theirs is copied: the short
descriptions are written here, from each field's type and bounds). A default of the wrong type
("10" for an integer) is kept as the type it documents. The typical generation time is read from
the model's human page where it states one ("Generation takes about 55 seconds ..."), else null.

`--check` writes nothing and exits 1 when the committed catalog differs from what the snapshot
gives (tests/unit/test_catalog_generated.py runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT.parent / "shared" / "aimlapi-docs"
OUT = ROOT / "layers" / "common" / "videogen" / "domain" / "catalog.json"
TEMPLATE = ROOT / "template.yaml"
MODELS_DOC = ROOT / "docs" / "models.md"
# template.yaml's UploadDefaultModel allows the models that take an image_url, listed here.
_IMAGE_MODELS = re.compile(r"(\n( *)# begin: image models\n)(?:.*\n)*?(\2# end: image models\n)")
UNIFIED_PATH = "/v2/video/generations"
LEGACY_PATH = re.compile(r"^/v2/generate/video/([a-z0-9-]+)/generation$")
# Keywords kept from the provider's schemas: the ones that constrain a value.
KEPT = ("type", "enum", "default", "format", "minimum", "maximum", "minLength", "maxLength")
KEPT += ("minItems", "maxItems", "deprecated")
# The vendor a model's page sits under, in one spelling (the snapshot has both `Kling-AI` and `kling-ai`).
VENDORS = {
    "alibaba-cloud": "Alibaba Cloud",
    "beeble": "Beeble",
    "black-forest-labs": "Black Forest Labs",
    "bytedance": "ByteDance",
    "google": "Google",
    "kling-ai": "Kling AI",
    "kling": "Kling AI",
    "krea": "Krea",
    "kuaishou-technology": "Kling AI",
    "ltxv": "LTXV",
    "longcat": "LongCat",
    "luma-ai": "Luma AI",
    "magic": "Magic",
    "minimax": "MiniMax",
    "minimax-video": "MiniMax",
    "openai": "OpenAI",
    "pixverse": "PixVerse",
    "runway": "Runway",
    "sber-ai": "Sber AI",
    "tencent": "Tencent",
    "veed": "VEED",
    "xai": "xAI",
}
_TIME = re.compile(
    r"(?:takes?|take|time is)\s+(?:about|around|approximately)?\s*"
    r"(\d+)(?:\s*[\u2013-]\s*(\d+))?\s*(minutes?|seconds?)(?:\s+(\d+)\s+seconds?)?",
    re.IGNORECASE,
)
# The time an example run took, as the pages report it: "**Processing time**: ~1 min 20 sec."
_PROCESSING = re.compile(
    r"Processing time\W*~?\s*(?:(\d+)\s*min)?\s*(?:(\d+(?:\.\d+)?)\s*sec)?", re.IGNORECASE
)
_LESS_THAN_A_MINUTE = re.compile(r"less than a minute", re.IGNORECASE)
# A human page links the request schema it documents: [OpenAPI x](.../video-models/<Vendor>/<file>.json)
_SPEC_LINK = re.compile(r"\(https://[^)\s]*/video-models/([^)\s]+\.json)\)")


def request_schemas(docs: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(page, path, schema) of every POST request schema in the snapshot, in page order."""
    found = []
    for page in sorted((docs / "video-models").rglob("*.json")):
        if page.name == "universal-video-fetch.json":
            continue
        document = json.loads(page.read_text())
        for path, operations in sorted(document.get("paths", {}).items()):
            post = operations.get("post")
            if not post:
                continue
            schema = post["requestBody"]["content"]["application/json"]["schema"]
            found.append((page.relative_to(docs).as_posix(), path, schema))
    return found


def choose(candidates: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
    """The pages of the path a model is submitted to, the one that documents it alone first."""
    unified = [c for c in candidates if c[1] == UNIFIED_PATH]
    pool = unified or [c for c in candidates if LEGACY_PATH.match(c[1])]
    if not pool:
        raise ValueError(f"no submit path for {candidates[0][2]['properties']['model']}")
    path = pool[0][1]

    def rank(candidate: tuple[str, str, dict[str, Any]]) -> tuple[int, str]:
        ids = candidate[2]["properties"]["model"].get("enum") or []
        return (0 if len(ids) == 1 else 1, candidate[0])

    return sorted((c for c in pool if c[1] == path), key=rank)


def _fields(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(properties, required) of a request schema, as the catalog keeps them."""
    properties = {k: v for k, v in schema.get("properties", {}).items() if k != "model"}
    required = [name for name in schema.get("required", []) if name != "model"]
    # A property marked `"required": true` (an OpenAPI slip on one page) is taken at its word.
    required += [n for n, v in properties.items() if v.get("required") is True and n not in required]
    return {name: clean(value) for name, value in properties.items()}, required


def clean(schema: Any) -> Any:
    """A property's schema as JSON Schema, without prose."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {k: schema[k] for k in KEPT if k in schema}
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    if "default" in out:
        out["default"] = _typed_default(out["default"], schema.get("type"))
        if out["default"] is None:
            out.pop("default")
    if "properties" in schema:
        out["properties"] = {name: clean(value) for name, value in schema["properties"].items()}
    if isinstance(schema.get("required"), list):
        out["required"] = list(schema["required"])
    if "items" in schema:
        out["items"] = clean(schema["items"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            out[key] = [clean(option) for option in schema[key]]
    return out


# Image requirements the pages state in a field's description, read into numbers. The MiniMax
# pages: "format must be JPG, JPEG, or PNG; aspect ratio should be greater than 2:5 and less
# than 5:2; the shorter side must exceed 300 pixels; file size must not exceed 20MB".
_SPEC_FORMATS = re.compile(r"format must be ([A-Z]+(?:,? (?:or )?[A-Z]+)*)")
_SPEC_RATIO = re.compile(r"aspect ratio should be greater than (\d+):(\d+) and less than (\d+):(\d+)")
_SPEC_SHORT_SIDE = re.compile(r"shorter side must exceed (\d+) pixels")
_SPEC_MAX_MB = re.compile(r"file size must not exceed (\d+) ?MB")
# The Sora pages: "The image dimensions must match ... - 16:9 — 1280x720 ...".
_SPEC_MATCH = re.compile(r"image dimensions must match")
_SPEC_SIZE = re.compile(r"(?m)^(\d+p) with aspect ratios:|(\d+):(\d+) \u2014 (\d+)x(\d+)")


def image_spec(description: str) -> dict[str, Any] | None:
    """The requirements an image field's description states, or None."""
    spec: dict[str, Any] = {}
    if formats := _SPEC_FORMATS.search(description):
        names = re.findall(r"[A-Z]+", formats.group(1))
        spec["formats"] = sorted({"jpeg" if name in ("JPG", "JPEG") else name.lower() for name in names})
    if ratio := _SPEC_RATIO.search(description):
        low_w, low_h, high_w, high_h = map(int, ratio.groups())
        spec["ratio_above"], spec["ratio_below"] = low_w / low_h, high_w / high_h
    if side := _SPEC_SHORT_SIDE.search(description):
        spec["short_side_above"] = int(side.group(1))
    if size := _SPEC_MAX_MB.search(description):
        spec["max_bytes"] = int(size.group(1)) * 1024 * 1024
    if _SPEC_MATCH.search(description):
        sizes: dict[str, list[list[int]]] = {}
        resolution = None
        for match in _SPEC_SIZE.finditer(description):
            if match.group(1):
                resolution = match.group(1)
            elif resolution:
                sizes.setdefault(resolution, []).append([int(match.group(4)), int(match.group(5))])
        spec["sizes_by_resolution"] = sizes
    return spec or None


def _typed_default(value: Any, kind: Any) -> Any:
    if kind == "integer" and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "number" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    if kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def human_pages(docs: Path, model_ids: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The human pages: by the schema page they link, and by model id (of the pages whose examples
    name the model, quoted, the one naming the fewest models, then the first by path)."""
    by_spec: dict[str, str] = {}
    named: dict[str, list[tuple[int, str]]] = {}
    for page in sorted((docs / "video-models").rglob("*.md")):
        if page.name == "README.md":
            continue
        text = page.read_text()
        where = page.relative_to(docs).as_posix()
        for spec in _SPEC_LINK.findall(text):
            by_spec.setdefault("video-models/" + spec, where)
        found = [m for m in model_ids if f'"{m}"' in text or f"'{m}'" in text]
        for model_id in found:
            named.setdefault(model_id, []).append((len(found), where))
    return by_spec, {model_id: min(pages)[1] for model_id, pages in named.items()}


def typical_seconds(docs: Path, human: str | None) -> tuple[int | None, str | None]:
    """The generation time the model's human page states (the first figure, midpoint of a range)."""
    if human is None:
        return None, None
    text = (docs / human).read_text()
    match = _TIME.search(text)
    if match:
        low = int(match.group(1))
        high = int(match.group(2) or low)
        unit = 60 if match.group(3).lower().startswith("minute") else 1
        seconds = (low + high) / 2 * unit + int(match.group(4) or 0)
        return round(seconds), human
    processing = _PROCESSING.search(text)
    if processing and (processing.group(1) or processing.group(2)):
        seconds = int(processing.group(1) or 0) * 60 + float(processing.group(2) or 0)
        return round(seconds), human
    if _LESS_THAN_A_MINUTE.search(text):
        return 45, human
    return None, None


def _is_url(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "uri" or "uri" in [o.get("format") for o in schema.get("anyOf", [])]


def inputs(properties: dict[str, Any]) -> list[str]:
    """What a model takes in: text, image, images, video, audio, reference images."""
    kinds = set()
    for name, schema in properties.items():
        lowered = name.lower()
        if lowered == "prompt":
            kinds.add("text")
        is_list = schema.get("type") == "array"
        urls = _is_url(schema) or (is_list and _is_url(schema.get("items", {}))) or lowered.endswith("_url")
        if not urls and schema.get("type") not in ("object", "array"):
            continue
        if "reference" in lowered and "image" in lowered:
            kinds.add("reference images")
        elif "image" in lowered or "frame" in lowered or lowered == "keyframes":
            kinds.add("images" if is_list else "image")
        elif "video" in lowered or lowered in ("character", "reference"):
            kinds.add("video")
        elif "audio" in lowered or "sound" in lowered:
            kinds.add("audio")
    order = ["text", "image", "images", "reference images", "video", "audio"]
    return [kind for kind in order if kind in kinds]


def mode(model_id: str, properties: dict[str, Any], required: list[str]) -> str:
    lowered = model_id.lower()
    for words, name in (
        (("lip-sync", "lipsync", "lip_sync", "avatar"), "lip-sync"),
        (("effects",), "effects"),
        (("extend",), "extend"),
        (("motion-control", "act_two", "animate", "aleph"), "animate"),
        (("video-to-video", "v2v", "edit", "reference-to-video", "r2v"), "video-to-video"),
        (("image-to-video", "i2v", "img2video"), "image-to-video"),
        (("text-to-video", "t2v"), "text-to-video"),
    ):
        if any(word in lowered for word in words):
            return name
    takes = inputs({name: properties[name] for name in required if name in properties})
    if "video" in takes:
        return "video-to-video"
    if "image" in takes or "images" in takes:
        return "image-to-video"
    return "text-to-video" if "image" not in inputs(properties) else "text/image-to-video"


def build(docs: Path) -> dict[str, Any]:
    by_model: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for page, path, schema in request_schemas(docs):
        for model_id in schema.get("properties", {}).get("model", {}).get("enum") or []:
            by_model.setdefault(model_id, []).append((page, path, schema))
    by_spec, by_name = human_pages(docs, sorted(by_model))
    models = []
    for model_id in sorted(by_model):
        pages = choose(by_model[model_id])
        page, path, schema = pages[0]
        properties, required = _fields(schema)
        # Where several pages document the model at this path and disagree, none of them can be
        # called the current one: a body one of them accepts is accepted.
        alternatives = []
        for other_page, _, other in pages[1:]:
            other_properties, other_required = _fields(other)
            variant = {"page": other_page, "properties": other_properties, "required": other_required}
            known = [{"properties": properties, "required": required}] + [
                {"properties": a["properties"], "required": a["required"]} for a in alternatives
            ]
            if {"properties": other_properties, "required": other_required} not in known:
                alternatives.append(variant)
        legacy = LEGACY_PATH.match(path)
        folder = page.split("/")[1].lower()
        images = {}
        for name, prop in schema.get("properties", {}).items():
            found = image_spec(prop.get("description", "")) if isinstance(prop, dict) else None
            if found:
                images[name] = {**found, "page": page}
        human = by_spec.get(page) or by_name.get(model_id)
        seconds, source = typical_seconds(docs, human)
        models.append(
            {
                "id": model_id,
                "vendor": VENDORS.get(folder, page.split("/")[1]),
                "provider": legacy.group(1) if legacy else folder,
                "family": "legacy" if legacy else "unified",
                "page": page,
                "mode": mode(model_id, properties, required),
                "inputs": inputs(properties),
                "typical_seconds": seconds,
                "typical_seconds_page": source,
                "human_page": human,
                "properties": properties,
                "required": required,
                "alternatives": alternatives,
                "images": images,
            }
        )
    return {
        "source": "the AIML API's reference pages (aimlapi/api-docs, commit f14fa72f)",
        "generated_by": "scripts/gen_catalog.py",
        "models": models,
    }


def render(catalog: dict[str, Any]) -> str:
    return json.dumps(catalog, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def render_template(catalog: dict[str, Any], template: str) -> str:
    """template.yaml with the models that take an image_url as UploadDefaultModel's AllowedValues."""
    models = sorted(m["id"] for m in catalog["models"] if "image_url" in m["properties"])

    def lines(match: re.Match[str]) -> str:
        indent = match.group(2)
        return match.group(1) + "".join(f"{indent}- {model}\n" for model in models) + match.group(3)

    rendered, count = _IMAGE_MODELS.subn(lines, template)
    if count != 1:
        raise ValueError("template.yaml has no '# begin: image models' / '# end: image models' block")
    return rendered


def render_models_doc(catalog: dict[str, Any]) -> str:
    """docs/models.md: the models per vendor and one row per model."""
    models = catalog["models"]
    vendors: dict[str, int] = {}
    for model in models:
        vendors[model["vendor"]] = vendors.get(model["vendor"], 0) + 1
    lines = [
        "# Models",
        "",
        "<!-- written by `make catalog` (scripts/gen_catalog.py) from the docs snapshot: do not edit -->",
        "",
        f"{len(models)} models from {catalog['source']}. `GET /models` lists each with its fields;",
        "a request is checked against its model's schema before anything is recorded or paid.",
        "Refresh: put a newer copy of the provider's `docs/api-references/video-models/` in",
        "`../shared/aimlapi-docs/video-models/`, run `make catalog`, review the diff, run `make test`.",
        "",
        "| vendor | models |",
        "|---|---|",
        *[f"| {vendor} | {count} |" for vendor, count in sorted(vendors.items())],
        "",
        "| model | vendor | mode | takes | typical time | path |",
        "|---|---|---|---|---|---|",
    ]
    for model in models:
        seconds = f"{model['typical_seconds']} s" if model["typical_seconds"] else "not stated"
        path = "unified" if model["family"] == "unified" else f"legacy ({model['provider']})"
        takes = ", ".join(model["inputs"])
        lines.append(
            f"| `{model['id']}` | {model['vendor']} | {model['mode']} | {takes} | {seconds} | {path} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--docs", type=Path, default=DOCS, help="the snapshot (default ../shared/aimlapi-docs)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed catalog is stale")
    args = parser.parse_args(argv)
    catalog = build(args.docs)
    text = render(catalog)
    template = render_template(catalog, TEMPLATE.read_text())
    outputs = ((args.out, text), (TEMPLATE, template), (MODELS_DOC, render_models_doc(catalog)))
    if args.check:
        stale = [p for p, want in outputs if not p.exists() or p.read_text() != want]
        for path in stale:
            print(f"{path} is stale: run `make catalog`", file=sys.stderr)
        return 1 if stale else 0
    for path, want in outputs:
        path.write_text(want)
    print(f"{args.out.relative_to(ROOT)}: {len(json.loads(text)['models'])} models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
