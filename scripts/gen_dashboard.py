"""Write the operations dashboard (ops/dashboard.py) into template.yaml's OperationsDashboard.

    python scripts/gen_dashboard.py [--check]

The resource sits between the `# begin: dashboard` and `# end: dashboard` comments of
template.yaml; everything else in the template is left as it is. `--check` writes nothing and
exits 1 when the template's dashboard differs from the definition
(tests/unit/test_dashboard.py runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ops.dashboard import body_lines  # noqa: E402 (the repo root goes on the path first)

TEMPLATE = ROOT / "template.yaml"
BLOCK = re.compile(r"(\n( *)# begin: dashboard[^\n]*\n)(?:.*\n)*?(\2# end: dashboard\n)")
INDENT = " " * 8


def resource() -> str:
    lines = [
        "  OperationsDashboard:",
        "    Type: AWS::CloudWatch::Dashboard",
        "    Properties:",
        '      DashboardName: !Sub "${AWS::StackName}-operations"',
        "      DashboardBody: !Sub |",
        *(INDENT + line for line in body_lines()),
    ]
    return "\n".join(lines) + "\n"


def render(template: str) -> str:
    if not BLOCK.search(template):
        raise SystemExit("template.yaml has no '# begin: dashboard' ... '# end: dashboard' block")
    return BLOCK.sub(lambda m: m.group(1) + resource() + m.group(3), template, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--check", action="store_true", help="exit 1 when the template's dashboard is stale")
    args = parser.parse_args(argv)
    current = args.template.read_text()
    wanted = render(current)
    if args.check:
        if wanted != current:
            print(f"{args.template}: the dashboard differs from ops/dashboard.py; run make dashboard")
            return 1
        return 0
    if wanted != current:
        args.template.write_text(wanted)
        print(f"wrote {args.template}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
