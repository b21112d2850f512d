"""Charts and the HTML report (no Kedro import)."""
