"""The engine: hosts in parallel (fleet), and on each host its run (hostrun) over one
session: check, lock, repair as transactions, re-check, release. It knows nothing of nginx.
"""
