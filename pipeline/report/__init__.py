"""`python -m pipeline.report`: the learner's report, from the MLflow runs of the learner sweeps.

build.py (the command) finds the runs (runs.py) and renders the page (page.py: questions.py,
accuracies.py, ladder.py, draw_digit.py + .js, markup.py); significance.py and verdicts.py test
each comparison; figures.py draws the charts that compare runs. The pictures of one run are
the run's own (pipeline/model/pictures.py), read back from MLflow.

    python -m pipeline.report     # report/index.html from the `learner` experiment's runs
"""
