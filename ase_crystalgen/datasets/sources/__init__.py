"""Clients of remote structure databases, apart from the file readers of :mod:`..readers`.

* :mod:`.aflow`: the AFLOW AFLUX REST client that downloads the polymorph entries of the
  conditional generation paper and writes them as the AFLOW CSV that
  :func:`~ase_crystalgen.datasets.read_aflow_csv` reads (standard library only; talks to
  the network).
"""
