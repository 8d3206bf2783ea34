"""Write the API's OpenAPI document, generated from the code, to openapi.json (`make openapi`)."""

from pathlib import Path

from videogen.entrypoints.http_api import openapi_document

if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "openapi.json"
    target.write_text(openapi_document())
    print(f"wrote {target}")
