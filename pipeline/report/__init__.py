"""What the runs show a person: the learner's report (build.py, page.py), its figures and the
explainer pictures each run logs (figures.py, explain.py).

    python -m pipeline.report     # report/index.html from the `learner` sweep's runs
"""
