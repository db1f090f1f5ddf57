"""Imported first by a worker's multiprocessing fork server: it dies with its worker.

Steps and trials are forked from the fork server, so their parent-death signal fires when
the *fork server* exits, not the worker. Left alone, the fork server outlives a SIGKILLed
worker until it notices its pipe closed and has torn down its preloaded modules (seconds),
and a trial or step forked from it keeps running — and writing to MLflow — after the
worker's lease was taken over and its work handed to another worker. Importing this
module in the fork server (it is the first entry of ``childproc.PRELOAD``) asks the kernel
to SIGKILL the fork server the moment the worker dies, so its children get their own
signal at once. Importing it anywhere else would tie that process to its parent: nothing
else imports it.
"""

from __future__ import annotations

import os
import signal

from slipway.runtime.supervisor import die_with_parent

die_with_parent(signal.SIGKILL)
if os.getppid() == 1:  # the worker died before the signal was armed
    os._exit(1)
