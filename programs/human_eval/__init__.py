"""The paper's interactive human evaluation (Table 9) as a local web page: store, app and report."""
