"""One package per source: `fetch_*` (HTTP, given a session) and pure `parse_*` functions.

Scrapers never touch the database and import nothing of the project but `models`.
"""
