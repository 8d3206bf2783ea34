"""`python -m videogen_cli ...` == `videogen ...`."""

import sys

from videogen_cli.main import main

sys.exit(main())
