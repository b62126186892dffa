"""Reports people read, built from recorded runs and stored samples.

- `oplog`: a run as an operation log / incident report in the operations template's
  terms (date and time, operation, reason, impact, duration, issues, follow-up), with the
  broken-versus-recovered evidence of every host; `markdown` and `html` render it.
- `capacity`: /var size over time per host and the day it fills, as a table and a chart.

Every function here returns text or writes the file it is given; none prints.
"""
