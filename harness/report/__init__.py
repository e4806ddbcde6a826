"""Reports an auditor reads: per-scenario evidence in Allure, the timeline chart, the HTML report.

- `chart`: the timeline as a self-contained SVG;
- `evidence`: what each scenario attaches to Allure (and writes beside its timeline), and the
  run's environment, executor and categories;
- `render`: Allure 3 (npm `allure`) turns a run's results into HTML, keeping history;
- `inspect`: headless Chromium opens the rendered report and says what a person would see.
"""

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]  # the checkout: package.json, node_modules/, .git, reports/
