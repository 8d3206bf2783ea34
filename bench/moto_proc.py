"""moto's server in a process of its own, for the benchmarks (see bench.common.moto_server).

Besides the HTTP API, it takes one command on stdin, a line of JSON
`{"load": "<file>", "table": "<name>"}`, and puts the file's items (a JSON list of DynamoDB
attribute maps) straight into moto's DynamoDB backend, then answers "loaded <n>" on stdout. That
fills a table with 50,000 finished generations in seconds; through the HTTP API (BatchWriteItem)
moto takes minutes. The table (its indexes included) is then exactly as if they had been written.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer

ACCOUNT = "123456789012"  # moto's default account


def _answer_dynamodb_as_json() -> None:
    """moto builds each DynamoDB answer as DynamoDB JSON, then walks it through its generic,
    model-driven serializer, node by node: for a page of 200 generations that is most of a
    Query's time in moto (seconds, where DynamoDB answers in milliseconds). The answer is already
    the wire format, so it is sent as it is (the generic path stays for anything json cannot
    encode, e.g. binary attributes)."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    generic = ActionResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        try:
            body = json.dumps(self.result)
        except (TypeError, ValueError):
            return generic(self, context)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    # moto re-sums an item's size at every attribute it sets (quadratic in the attributes): on a
    # 19-attribute record that is most of a PutItem's time in moto, work no DynamoDB does on the
    # caller's clock. The benchmark's items are all far below the 400 KB limit that sum enforces.
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[method-assign]
    _answer_dynamodb_as_json()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[ACCOUNT][args.region]
        items = json.loads(Path(command["load"]).read_text())
        for item in items:
            backend.put_item(command["table"], item)
        print(f"loaded {len(items)}", flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
