"""Allocation: a period's cost split into owners, `__shared__`, `__idle__` and `__unallocated__`.

The method is docs/methodology/allocation.md; money is conserved exactly.
"""
