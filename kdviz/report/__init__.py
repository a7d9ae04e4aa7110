"""Figures and the Report, one module per view: data in, ``go.Figure`` / DataFrame / HTML out (no streamlit).

Shared look: :mod:`~kdviz.report.style` (colours, labels, orders). Dashboard views:
:mod:`~kdviz.report.attention_grid`, :mod:`~kdviz.report.input_views`, :mod:`~kdviz.report.alignment_views`,
:mod:`~kdviz.report.randomisation_figure`, :mod:`~kdviz.report.superfeature_figures`. The Report:
:mod:`~kdviz.report.summary` (reading a summary), :mod:`~kdviz.report.study_bars`, :mod:`~kdviz.report.logit_table`,
:mod:`~kdviz.report.covariation`, :mod:`~kdviz.report.findings`, bundled by :mod:`~kdviz.report.study`; the text
zoo's by :mod:`~kdviz.report.text_study`; the KED study's tables by :mod:`~kdviz.report.ked_study`.
"""
