"""``manage.py benchmark``: the portal against a bare client, over real HTTP, on sandbox data.

:mod:`.run` orchestrates; :mod:`.pairs` declares what each pair starts and counts;
:mod:`.worker` is the syncing process (throwaway database); ``bare_*`` are the bare clients;
:mod:`.admin_timing` times the admin changelists over a million rows.
"""
