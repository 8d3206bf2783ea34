"""End-to-end demo over HTTP (== make demo): text-to-video and image-to-video, down to the MP4.

Starts a LocalStack (moto + the AIML API simulator with short jobs + the real handlers), then acts
as a client of the REST API with `requests` and the API key only (api.py): lists the models,
submits a Kling text-to-video and the seed's MiniMax video-01 image-to-video (the cheetah), prints
every status change as it happens, and when a generation is `completed` downloads its MP4 from the
presigned link into .local/outputs/<id>.mp4 and checks it is an MP4. Then "drop an image, get a
video": it uploads local/assets/upload-sample.png into the uploads bucket (boto3 against moto, the
prompt and the demo key's id in the object's metadata), and follows the generation the upload
handler made through the API down to its MP4 too. Last, one execution of the generation workflow
(Step Functions on moto, workflow.py) runs to SUCCEEDED: each state it enters, then its output
(the generation with its video link) is printed and that MP4 saved. Exit 0 when every video is on
disk, 1 on any failure or when the deadline passes.

    python -m local.demo [--timeout 120] [--real]

--real uses the real AIML API (needs AIML_API_KEY; spends credits; give it a longer --timeout).
It skips the upload: the provider could not fetch an image from the local bucket's 127.0.0.1 link.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings
from pathlib import Path

from local.demo.api import SIM_DURATIONS, Client, run, upload_sample
from local.demo.common import DemoError, shown_path
from local.demo.workflow import run_workflow
from local.stack import ROOT, LocalStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="overall deadline in seconds (default 120)"
    )
    parser.add_argument("--real", action="store_true", help="use the real AIML API (AIML_API_KEY)")
    parser.add_argument("--outputs", type=Path, default=ROOT / ".local" / "outputs")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stack = LocalStack(
        port=0,  # never clashes with a running `make local`
        poll_seconds=0.5,
        use_simulator=None if args.real else True,
        sim_durations=SIM_DURATIONS,
        parameter_overrides={"LogLevel": "WARNING"},  # the handlers' JSON logs would drown the story
        # each function's log and metric lines, as in its log group: `make dashboard` draws them
        log_dir=ROOT / ".local" / "demo-logs",
        write_endpoints=False,  # leave a running `make local`'s endpoints.json alone
    )
    try:
        with stack:
            provider = f"simulator {stack.simulator.url}" if stack.simulator else stack.provider_base_url
            print(
                f"local stack: API {stack.api_url}, moto {stack.aws_endpoint_url}, provider {provider}",
                flush=True,
            )
            jobs = run(
                Client(stack.api_url, stack.api_key),
                timeout=args.timeout,
                outputs=args.outputs,
                upload=None if args.real else (lambda: upload_sample(stack)),
            )
            workflow = run_workflow(stack, timeout=args.timeout, outputs=args.outputs)
    except DemoError as exc:
        print(f"DEMO FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 (anything unexpected still ends in one clear line and exit 1)
        traceback.print_exc()
        print(f"DEMO FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    print("\nsummary", flush=True)
    for job in jobs:
        path = " -> ".join(f"{status} ({at:.1f}s)" for at, status in job.history)
        print(f"  {job.label:15} {job.body['model']:42} {path}", flush=True)
        print(f"  {'':15} {job.size} bytes in {shown_path(job.file) if job.file else '-'}", flush=True)
    print(
        f"  {'workflow':15} {workflow['model']:42} {workflow['status']} (Step Functions execution)",
        flush=True,
    )
    print(f"  {'':15} {shown_path(args.outputs / (workflow['id'] + '.mp4'))}", flush=True)
    print("DEMO OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
