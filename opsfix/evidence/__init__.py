"""What a run found and did, and every form it is kept or shown in: results, the run
history and state database, text/JSON, JUnit, metrics, reports and live progress.
"""
