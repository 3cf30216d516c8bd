"""`python -m waf._worker`: one worker process of a multi-worker sidecar (started by waf/_workers.py)."""

import sys

from waf._workers import worker_main

sys.exit(worker_main())
