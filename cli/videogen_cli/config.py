"""Where the API is, and with which key: flags, then environment, then `.local/endpoints.json`.

Each setting is taken from the first of:
1. its flag (`--api-url`, `--api-key`, `--uploads-bucket`, ...);
2. its environment variable (`VIDEOGEN_API_URL`, `VIDEOGEN_API_KEY`, ...);
3. an endpoints file: the one named by `--endpoints-file` / `VIDEOGEN_ENDPOINTS_FILE`, else
   `.local/endpoints.json` (the file `make local` writes) in the current folder or the nearest
   parent that has one. It is only used when it describes the same API: an API URL given by flag
   or environment that differs from the file's `api_url` ignores the file entirely, so a deployed
   stack is never mixed with the local stack's key, bucket or moto endpoint.

A file found in a parent folder was not chosen by the user (anyone who can write to a shared
parent, `/tmp` say, could plant one), so it is refused unless its `api_url` and
`aws_endpoint_url` are on this machine (loopback): otherwise it could send the API key, or
AWS-signed upload requests, elsewhere. The same goes for plain http: the key would cross the
network in clear, so an `http://` API URL is refused unless its host is loopback.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from videogen_cli.errors import UsageError

ENDPOINTS_FILE = Path(".local") / "endpoints.json"
DEFAULT_UPLOAD_PREFIX = "uploads/"

# setting -> (environment variable, endpoints.json key)
SOURCES: dict[str, tuple[str, str | None]] = {
    "api_url": ("VIDEOGEN_API_URL", "api_url"),
    "api_key": ("VIDEOGEN_API_KEY", "api_key"),
    "uploads_bucket": ("VIDEOGEN_UPLOADS_BUCKET", "uploads_bucket"),
    "upload_prefix": ("VIDEOGEN_UPLOAD_PREFIX", "upload_prefix"),
    "aws_endpoint_url": ("VIDEOGEN_AWS_ENDPOINT_URL", "aws_endpoint_url"),
    "region": ("VIDEOGEN_REGION", "region"),
    "owner": ("VIDEOGEN_OWNER", "owner"),
}


@dataclass(frozen=True)
class Config:
    api_url: str | None
    api_key: str | None
    uploads_bucket: str | None = None
    upload_prefix: str = DEFAULT_UPLOAD_PREFIX
    aws_endpoint_url: str | None = None
    region: str | None = None
    owner: str | None = None
    endpoints_file: Path | None = None  # the endpoints.json the settings came from, if any
    origin: dict[str, str] = field(default_factory=dict)  # setting -> "flag" | "env" | file path

    def require_api(self) -> tuple[str, str]:
        """The API URL and key, or a usage error that says how to give them."""
        if not self.api_url or not self.api_key:
            missing = " and ".join(
                name for name, value in (("API URL", self.api_url), ("API key", self.api_key)) if not value
            )
            raise UsageError(
                f"no {missing}",
                hints=[
                    "  give --api-url and --api-key, or set VIDEOGEN_API_URL and VIDEOGEN_API_KEY,",
                    "  or run `make local` in the repository (it writes .local/endpoints.json).",
                ],
            )
        return self.api_url, self.api_key

    def public_view(self) -> dict[str, Any]:
        """The settings with the API key masked (for `videogen config`)."""
        view: dict[str, Any] = {
            "api_url": self.api_url,
            "api_key": mask(self.api_key),
            "uploads_bucket": self.uploads_bucket,
            "upload_prefix": self.upload_prefix,
            "aws_endpoint_url": self.aws_endpoint_url,
            "region": self.region,
            "owner": self.owner,
            "endpoints_file": str(self.endpoints_file) if self.endpoints_file else None,
        }
        view["from"] = dict(self.origin)
        return view


def mask(secret: str | None) -> str | None:
    if not secret:
        return secret
    return secret[:3] + "…" if len(secret) > 8 else "…"


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is this machine: `localhost`, 127.0.0.0/8 or ::1."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host.rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def find_endpoints_file(start: Path) -> Path | None:
    """`.local/endpoints.json` in `start` or the nearest parent that has one."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / ENDPOINTS_FILE
        if candidate.is_file():
            return candidate
    return None


def read_endpoints_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"cannot read {path}: not a JSON object")
    return data


def _same_api(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _owner_from_file(data: Mapping[str, Any], api_key: str | None) -> str | None:
    """`owner`, or the caller's id from `api_key_ids` ({key: id}) when the stack writes one."""
    ids = data.get("api_key_ids")
    if api_key and isinstance(ids, dict) and isinstance(ids.get(api_key), str):
        return str(ids[api_key])
    owner = data.get("owner")
    return owner if isinstance(owner, str) and owner else None


def _endpoints_file(
    flags: Mapping[str, str | None], env: Mapping[str, str], cwd: Path
) -> tuple[Path | None, bool]:
    """The endpoints file and whether the user chose it (named it, or it is in the current folder)."""
    named = flags.get("endpoints_file") or env.get("VIDEOGEN_ENDPOINTS_FILE")
    if named:
        path = Path(named).expanduser()
        path = path if path.is_absolute() else cwd / path
        if not path.is_file():
            raise UsageError(f"no endpoints file at {path}")
        return path, True
    found = find_endpoints_file(cwd)
    if found is None:
        return None, False
    return found, found.parent.parent == cwd.resolve()


def _refuse_remote_endpoints(path: Path, data: Mapping[str, Any]) -> None:
    """A parent folder's endpoints file may only point at this machine."""
    for key in ("api_url", "aws_endpoint_url"):
        url = data.get(key)
        if isinstance(url, str) and url and not is_loopback_url(url):
            raise UsageError(
                f"not using {path}: it is in a parent folder and its {key} is not on this machine ({url})",
                hints=[
                    "  a file found above the current folder may only point at localhost;",
                    f"  to use it anyway, name it: --endpoints-file {path} (or VIDEOGEN_ENDPOINTS_FILE)",
                ],
            )


def resolve(
    flags: Mapping[str, str | None],
    env: Mapping[str, str],
    cwd: Path,
) -> Config:
    """Settings from flags (None = not given), then `env`, then the endpoints file (see above)."""
    values: dict[str, str | None] = {}
    origin: dict[str, str] = {}
    for name, (var, _) in SOURCES.items():
        if flags.get(name):
            values[name], origin[name] = flags[name], "flag"
        elif env.get(var):
            values[name], origin[name] = env[var], f"env {var}"

    path, chosen = _endpoints_file(flags, env, cwd)
    data: dict[str, Any] = {}
    if path is not None:
        data = read_endpoints_file(path)
        file_url = data.get("api_url")
        given_url = values.get("api_url")
        if given_url and not (isinstance(file_url, str) and _same_api(given_url, file_url)):
            data, path = {}, None  # another API: nothing of the local stack applies
        elif not chosen:
            _refuse_remote_endpoints(path, data)
    for name, (_, key) in SOURCES.items():
        if name in values or key is None or path is None:
            continue
        if name == "owner":
            owner = _owner_from_file(data, values.get("api_key"))
            if owner:
                values[name], origin[name] = owner, str(path)
            continue
        raw = data.get(key)
        if isinstance(raw, str) and raw:
            values[name], origin[name] = raw, str(path)

    api_url = values.get("api_url")
    if api_url:
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"the API URL must be http(s)://host/...: {api_url!r}")
        if parts.scheme == "http" and not is_loopback_url(api_url):
            raise UsageError(
                f"refusing plain http to {parts.hostname}: the API key would cross the network unencrypted",
                hints=["  use the https:// URL (http is only for this machine: localhost, 127.0.0.1, ::1)"],
            )
        api_url = api_url.rstrip("/")
    prefix = values.get("upload_prefix") or DEFAULT_UPLOAD_PREFIX
    return Config(
        api_url=api_url,
        api_key=values.get("api_key"),
        uploads_bucket=values.get("uploads_bucket"),
        upload_prefix=prefix,
        aws_endpoint_url=values.get("aws_endpoint_url"),
        region=values.get("region"),
        owner=values.get("owner"),
        endpoints_file=path,
        origin=origin,
    )
