"""spark-submit's application file for `framing score` and `framing ingest` on a cluster:

    spark-submit [spark options] scripts/framing_submit.py score INPUT --out DIR --engine spark

spark-submit runs a file, not a module; a file inside ``pipeline/`` would put that folder first on
sys.path, where its modules (``config``, ``metrics``, ``spark``…) would shadow installed ones. This
one lives where no module can be shadowed and only calls the ``framing`` CLI.
"""

from pipeline.cli import main

if __name__ == "__main__":
    main()
