"""Errors whose message a student reads: each carries an i18n key and its parameters.

Core raises these (they are ValueErrors, so plain callers need not know about them);
a page translates ``key`` with ``core.i18n.t`` and shows it with ``st.error``.
"""


class UserError(ValueError):
    """Bad input or a run that cannot go on, with a message that says what to change."""

    phase: int | None = None  # the row of a schedule table the problem is in, when there is one

    def __init__(self, key: str, english: str, **params):
        self.key = key
        self.params = params
        super().__init__(english.format(**params))


class QuotaExceeded(UserError):
    """A session asked for more runs, or bigger ones, than the server's limits allow now."""


class TrainingDiverged(UserError):
    """The loss became NaN or exploded; the message names the step and learning rate."""


class RunCancelled(Exception):
    """Raised inside the training loop when the user pressed Cancel."""
