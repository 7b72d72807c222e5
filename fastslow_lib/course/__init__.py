"""The course's own plumbing, apart from the method: the results file and claims table,
exercise checkers, and the search widget.

``results``, ``report``: every notebook; ``exercises``: every notebook's exercises;
``widgets``: notebooks/06_demo_and_scale.ipynb.
"""
