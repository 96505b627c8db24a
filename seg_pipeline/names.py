"""Names that reach a file path or SQL text, checked where they come in.

The pipeline builds a few paths and SQL statements from names: table and column names in the
DDL and window replacement of :mod:`seg_pipeline.resources`, source names in landing paths,
campaign ids in export file names, plot folders. Those names come from code, the playbook or
run config; none may carry a quote, a semicolon, a path separator or ``..``. Values (dates,
ids, text from landing files) never become SQL text: they are bound parameters. A day reaches
a path only as a :class:`datetime.date` (``YYYY-MM-DD``), never as the partition key's text.
See ``docs/security.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path

# A table, column or macro name: lower-case ASCII, digits, underscores (temp tables start with
# one), at most 63 characters (PostgreSQL's limit, so names stay portable).
SQL_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# A name of the pipeline's own (a source, a campaign): starts with a letter.
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# One component of a path the pipeline writes: ASCII letters, digits, ``_``, ``-`` and ``.``,
# not starting with a dot (so never ``.`` or ``..``, never hidden), at most 200 characters.
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafeNameError(ValueError):
    """A name that would reach a path or SQL text is not a plain name; the message says which
    name, where it came from and what is allowed."""


def sql_identifier(name: object, what: str = "SQL identifier") -> str:
    """``name`` if it is a plain SQL identifier, optionally schema-qualified
    (``restricted.customer_pii``); raises :class:`UnsafeNameError` otherwise."""
    parts = name.split(".") if isinstance(name, str) else []
    if not 1 <= len(parts) <= 2 or not all(SQL_IDENTIFIER.fullmatch(p) for p in parts):
        raise UnsafeNameError(
            f"{what} {name!r} is not a plain SQL name (lower-case letters, digits and "
            "underscores, at most 63, optionally 'schema.'); it is never put into SQL"
        )
    return str(name)


def plain_name(name: object, what: str) -> str:
    """``name`` if it is a plain name (``^[a-z][a-z0-9_]{0,62}$``), else
    :class:`UnsafeNameError` naming ``what``."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise UnsafeNameError(
            f"{what} {name!r} must be lower-case letters, digits and underscores, starting "
            "with a letter (at most 63)"
        )
    return name


def path_under(
    root: Path | str, *parts: str, what: str = "path", follow_links: bool = True
) -> Path:
    """``root/parts...``, after checking that every component of ``parts`` is a plain file
    name (``/`` separates components), so the path stays inside ``root``; with
    ``follow_links`` (for what the pipeline writes) also once symbolic links are resolved.
    Raises :class:`UnsafeNameError` naming ``what`` otherwise."""
    components = [c for part in parts for c in str(part).split("/")]
    for component in components:
        if not FILE_NAME.fullmatch(component):
            raise UnsafeNameError(
                f"{what}: {component!r} is not a plain file name (letters, digits, '_', '-', "
                f"'.', not starting with a dot); nothing is written outside {root}"
            )
    path = Path(root).joinpath(*components)
    base = Path(root).resolve()
    if follow_links and not path.resolve().is_relative_to(base):
        raise UnsafeNameError(f"{what}: {path} leads outside {base} (a symbolic link?)")
    return path


def iso_day(text: object, what: str) -> date:
    """The day written as ``YYYY-MM-DD`` in ``text``; :class:`UnsafeNameError` naming
    ``what`` for anything else."""
    if isinstance(text, str) and _ISO_DAY.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise UnsafeNameError(f"{what} must be a day as YYYY-MM-DD, not {text!r}")


def setting_path(env: Mapping[str, str], name: str, default: Path | None) -> Path | None:
    """The folder or file that the environment variable ``name`` sets (``default`` when unset
    or empty). Control characters (a newline, NUL) are refused naming the variable: such a
    path is a mistake or an attack, and would be cut or misread by other tools."""
    value = env.get(name)
    if not value:
        return default
    if _CONTROL.search(value):
        raise UnsafeNameError(f"{name} holds a control character: {value!r}")
    return Path(value)


def check_export_folders(export_dir: Path | str, delivery_dir: Path | str | None) -> None:
    """Refuse a delivery folder (personal data) that is the audience export folder
    (pseudonymous), inside it or around it: a day's folder of one would replace the other's,
    and personal data would sit among the files sent as pseudonymous."""
    if delivery_dir is None:
        return
    export, delivery = Path(export_dir).resolve(), Path(delivery_dir).resolve()
    if export.is_relative_to(delivery) or delivery.is_relative_to(export):
        raise UnsafeNameError(
            f"SEG_DELIVERY_DIR ({delivery}) and SEG_EXPORT_DIR ({export}) must be separate "
            "folders, neither inside the other: the delivery export holds personal data"
        )
