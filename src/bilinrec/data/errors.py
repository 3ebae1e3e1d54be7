"""Errors of the data layer; all are ``ValueError`` so callers (and the CLI) handle them alike."""


class DataFormatError(ValueError):
    """A ratings file (or archive) does not have the documented format."""


class VerificationError(ValueError):
    """A file does not match its published checksum or documented counts."""


class AcquisitionError(RuntimeError):
    """No copy of a dataset could be found or downloaded."""


def looks_like_html(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) is an HTML/XML page, e.g. a saved error page."""
    start = head.lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))
