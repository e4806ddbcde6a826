"""Pre-release DR certification and scheduled game days.

- `settings`: the profile's `[certification]` (which scenarios certify) and `[trends]` tables;
- `trends`, `trend_chart`: each run's figures in a history beside the reports, regressions flagged,
  a chart per scenario;
- `certificate`: the one-page certificate (HTML, and PDF printed by Chromium);
- `keys`, `bundle`: the evidence bundle (one archive, a manifest of sha256 sums, Ed25519-signed);
- `verify`: `gameday verify`: digests, signature, and every verdict recomputed from its timeline;
- `notify`: a short JSON summary of a run posted to a webhook;
- `command`: `gameday certify`, which runs the suite and produces all of the above.
"""
