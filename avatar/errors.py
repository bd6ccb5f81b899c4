"""Errors a user can cause, and how the command line reports them."""


class AvatarError(Exception):
    """A problem with the user's input or environment, reported as one line without a traceback.

    The message says what is wrong and what to do about it. The command line exits with code 2.
    """

    exit_code = 2
