"""The two jobs of ``crystalgen demo`` (``make demo``).

* :func:`.grs.run_demo`: a generalized representative structure of a random Cu3Au alloy
  (EMT target, annealing, FIRE on the GRS potential);
* :func:`.generation.run_generation_demo`: perovskites from the shipped ``perov5-flow``
  model, relaxed with CHGNet (needs the ``ml`` and ``chgnet`` extras).

Their reusable parts live where they belong: random fcc alloys in :mod:`ase_crystalgen.build`,
the EMT relaxation in :mod:`ase_crystalgen.relaxation`, ``g(r)`` in
:mod:`ase_crystalgen.structures`.
"""
