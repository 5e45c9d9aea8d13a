"""Errors raised by the CLV models (they are domain errors, so the API renders them as problem+json)."""

from __future__ import annotations

from patronage.kit.errors import PatronageError


class CLVInputError(PatronageError, ValueError):
    """The data handed to a CLV model is not usable (wrong shape, negative counts, ``t_x > T`` ...)."""

    status = 422
    code = "clv_invalid_input"
    title = "The data is not valid input for a lifetime-value model"


class CLVFitError(PatronageError):
    """Maximum likelihood did not converge (too little data, or data the model cannot describe)."""

    status = 422
    code = "clv_fit_failed"
    title = "The lifetime-value model could not be fitted"
