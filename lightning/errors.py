"""Root of every error this package raises on purpose.

Each component defines its own subclass (``BlockstoreError(LightningError)`` …). A ``LightningError`` that reaches the
CLI is printed as one line, without a traceback unless ``-v`` is given, so its message must say what was wrong and,
where it can, what to do about it.
"""


class LightningError(Exception):
    """Base class for expected, user- or peer-caused failures."""


class LocalProtocolError(LightningError):
    """We were asked to do something the protocol forbids (our bug or our caller's)."""


class RemoteProtocolError(LightningError):
    """A peer sent something the protocol forbids."""


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc``, unwrapping nested exception groups (trio nurseries raise strict groups);
    ``[exc]`` for an exception that is not a group."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in leaf_exceptions(sub)]
    return [exc]
