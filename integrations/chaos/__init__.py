"""The chaos proof (issue 13): the portal under kill -9, broker and database outages, and lost answers.

``manage.py chaos --tenants N --records N --kills N --seed S [--json]`` runs sandbox servers over
HTTP with faults (lost acknowledgements per Batch API item included), several tenants across the
built pairs, 2+ real ``qcluster`` processes on PostgreSQL + Redis, kills workers at random
moments, the web server once, restarts Redis once and cuts the database connections once, then
checks that every target equals its source: no duplicates, nothing lost, every record terminal,
no lock held past the stale window. See :mod:`.run` (the orchestration), :mod:`.driver` (the run
and its figures), :mod:`.workload` (what people change meanwhile) and :mod:`.verify` (the check).
"""
