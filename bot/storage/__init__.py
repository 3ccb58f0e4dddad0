"""The database backends behind :class:`bot.db.Database`: SQLite (embedded default) and PostgreSQL (scale-out).

Services and repositories only know :class:`bot.db.Database`; :func:`bot.storage.open_database`
picks the backend from the settings.
"""
