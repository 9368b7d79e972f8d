"""The one mark of an error in what a user gave (params, data, files, weights): its message
alone says what is wrong and what to do.

Stages and the command line print such an error as that sentence, without a Python
traceback, which would bury it; every other exception is a bug and keeps its traceback.
Each library error class that describes the user's input also derives from `UserError`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """An error in the user's input whose message is the whole report."""


class DataError(UserError, ValueError):
    """The user's data cannot be used as asked (e.g. a genre with too few tracks to split)."""


def exit_on_user_error(main: Callable[[], object]) -> None:
    """Run `main`; a UserError ends the process with its sentence alone on stderr and exit
    status 1 (DVC then names the stage that failed)."""
    try:
        main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
