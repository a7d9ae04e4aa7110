"""The study's views as Plotly figures (data in, ``go.Figure`` out): dashboard figures
(:mod:`~kdviz.report.figures`), superfeature figures (:mod:`~kdviz.report.superfeature_figures`) and the
Report's views, findings and one-file HTML (:mod:`~kdviz.report.study`)."""
