"""The embedded PostgreSQL's database compares text by its bytes.

Its server's own locale (libc's C.UTF-8) orders text by code point too,
but calls `strcoll` for every comparison of an index key; the builtin
provider (PostgreSQL 17 and later) compares the bytes: the same order, at
less of the server's time when a batch of counts is stored.
Given the session's server: its databases use the builtin C.UTF-8, text
sorts as before, and the case folding the queries use (Danish letters
included) is kept.
"""

from __future__ import annotations

import psycopg

from klimapuls.stack import EmbeddedPostgres


def test_a_new_embedded_database_compares_text_bytewise(
    postgres: EmbeddedPostgres, database_url: str
) -> None:
    uri = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(uri) as conn:
        assert conn.info.server_version >= 170000  # the wheel's server
        provider, locale = conn.execute(
            "SELECT datlocprovider, datlocale FROM pg_database "
            "WHERE datname = current_database()"
        ).fetchone() or (None, None)
        assert (provider, locale) == ("b", "C.UTF-8")
        words = ["Ærø", "zebra", "Zealand", "ø", "a", "Ø", "é"]
        ordered = conn.execute(
            "SELECT w FROM unnest(%s::text[]) AS w ORDER BY w", (words,)
        ).fetchall()
        # Code point order, as libc's C.UTF-8 gave.
        assert [w for (w,) in ordered] == sorted(words)
        lowered = conn.execute("SELECT lower('ÆRØ'), 'Ærø' ILIKE 'ærø'").fetchone()
        assert lowered == ("ærø", True)
