"""The one base class of every error a user fixes by changing their input.

A bad setting, an unknown name, a missing or damaged dataset, checkpoint or record: each error
class for such a case also derives from :class:`InputError`, and the command line reports any of
them the same way (``error: <message>``, exit code 2) without a traceback. The message says what to
do. Failures of the computation itself (a diverging loss) are not input errors.
"""


class InputError(Exception):
    """Bad input found by the harness; the message says what to do."""
