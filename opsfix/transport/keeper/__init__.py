"""The connection keeper: a per-user daemon that keeps SSH connections open between runs
(daemon), and a run's side of it (link).
"""
