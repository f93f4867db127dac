"""What the runs show a person: the learner's report and the explainer pictures each run logs.

build.py (the command) finds the runs (runs.py) and renders the page (page.py: questions.py,
accuracies.py, ladder.py, draw_digit.py); significance.py and verdicts.py test each comparison;
figures.py, explain.py and predictions.py are what each training run writes.

    python -m pipeline.report     # report/index.html from the `learner` experiment's runs
"""
