"""Getting started: the guided setup of a new tenant's first integration and its fit check.

The fit check (:mod:`.fitcheck`) reads both systems of a pair through the same clients a sync uses
and writes nothing to either; the views are thin callers of it, of the connection test and of the
operator actions the console already has.
"""
