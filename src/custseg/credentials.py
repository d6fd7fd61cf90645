"""Database URLs and the credentials in them: where they come from and how they are hidden.

A URL is given on the command line or taken from the environment (``CUSTSEG_DB_URL``
for sources, ``CUSTSEG_STORE_URL`` for the store); a password left out of the URL is
taken from ``CUSTSEG_DB_PASSWORD`` so it never has to appear in a shell history or a
process list. Everything that prints or stores a URL prints :func:`mask_url` of it;
text that may quote one (a driver's error message, a source label) goes through
:func:`mask_text` first.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, unquote

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .errors import CustsegError

DB_URL_ENV = "CUSTSEG_DB_URL"
STORE_URL_ENV = "CUSTSEG_STORE_URL"
PASSWORD_ENV = "CUSTSEG_DB_PASSWORD"
MASK = "***"

#: Query-string keys whose values are secrets (BigQuery's inline key, libpq's options, tokens).
SECRET_KEYS = frozenset({"password", "passwd", "pwd", "sslpassword", "secret", "token", "access_token",
                         "credentials_base64", "credentials_info", "private_key", "api_key", "key"})

_FILE_SUFFIXES = {".duckdb": "duckdb", ".ddb": "duckdb", ".sqlite": "sqlite", ".sqlite3": "sqlite",
                  ".db": "sqlite"}
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
_QUERY_SECRET = re.compile(r"(?P<key>[?&;](?:%s)=)(?P<value>[^&\s;'\"]*)" % "|".join(sorted(SECRET_KEYS)),
                           re.IGNORECASE)


def resolve_url(url: str | URL | None, *, env: str = DB_URL_ENV, what: str = "database") -> URL:
    """The URL to connect to: ``url``, else the environment variable ``env``.

    A bare file path ending in ``.duckdb``/``.ddb`` (DuckDB) or ``.sqlite``/``.sqlite3``/``.db``
    (SQLite) is accepted as that file; ``postgresql://`` and ``postgres://`` use the psycopg
    driver; a password missing from a URL that names a user comes from ``CUSTSEG_DB_PASSWORD``.

    Raises
    ------
    CustsegError
        No URL given and none in the environment, or the text is not a database URL.
    """
    if url is None or (isinstance(url, str) and not url.strip()):
        url = os.environ.get(env, "").strip() or None
        if url is None:
            raise CustsegError(f"No {what} given: pass a database URL (for example duckdb:///cards.duckdb "
                               f"or postgresql://user@host/db) or set {env}.")
    if isinstance(url, URL):
        parsed = url
    else:
        parsed = _parse(str(url).strip())
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.username and parsed.password is None and os.environ.get(PASSWORD_ENV):
        parsed = parsed.set(password=os.environ[PASSWORD_ENV])
    return parsed


def _parse(text: str) -> URL:
    if "://" not in text:
        kind = _FILE_SUFFIXES.get(Path(text).suffix.lower())
        if kind is None:
            raise CustsegError(f"'{mask_text(text)}' is not a database URL; write it as dialect://... "
                               "(duckdb:///file.duckdb, sqlite:///file.sqlite, postgresql://user@host:5432/db, "
                               "bigquery://project/dataset) or give a .duckdb or .sqlite file.")
        return URL.create(kind, database=str(Path(text).expanduser()))
    try:
        return sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise CustsegError(f"'{mask_text(text)}' is not a valid database URL; write it as "
                           "dialect://user@host:port/database.") from None


def mask_url(url: str | URL) -> str:
    """The URL as it may be shown: password and secret query values replaced by ``***``."""
    if isinstance(url, str):
        try:
            url = _parse(url)
        except CustsegError:
            return mask_text(url)
    query = {k: (MASK if k.lower() in SECRET_KEYS else v) for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", MASK)


def mask_text(text: str, *secrets: str | None) -> str:
    """``text`` with every URL password, secret query value and each of ``secrets`` replaced by ``***``.

    Pass the password(s) in play as ``secrets``: drivers sometimes quote them outside a URL.
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", str(text))
    text = _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe=""), unquote(secret)}:
                text = text.replace(form, MASK)
    return text


def url_secrets(url: URL) -> tuple[str, ...]:
    """The secret values a URL carries (for :func:`mask_text`)."""
    found = [url.password] if url.password else []
    found += [v for k, v in url.query.items() if k.lower() in SECRET_KEYS and isinstance(v, str)]
    return tuple(str(s) for s in found if s)
