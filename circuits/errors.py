"""The exception types every package raises for problems a user can fix.

The CLI turns any ``CktLoopError`` into a one-line message and a non-zero exit.
"""


class CktLoopError(Exception):
    """A problem with user input or the environment, with a message naming it."""


class CircuitError(CktLoopError, ValueError):
    """A circuit, circuit file or device value that is not acceptable."""
