"""The probe's one error type: bad input (missing files, malformed arrays, too little data for the fit).

Every check that rejects input raises :class:`ProbeError` with a message naming the problem; the CLI prints it
and exits with status 2, like the other sub-commands. The probe never returns a silent or NaN result.
"""

from __future__ import annotations


class ProbeError(ValueError):
    """Input the probe cannot measure: the message says what is wrong and, where possible, how to fix it."""
