"""The paper's applications (Cao, Chen, Sridharan & Wu, ICML 2026): ``robust-score demo``
(:mod:`robust_score.paper.demo`, the Thm 1 and Thm 7 constructions in every sampler) and
``robust-score reproduce`` (:mod:`robust_score.paper.reproduce`, the constructions and the
learned-score experiments of :mod:`robust_score.paper.experiments`).

Application code, not library code: nothing under ``robust_score`` imports this package
except the command line (:mod:`robust_score.cli`), and that only inside the subcommand.
"""
