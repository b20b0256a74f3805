"""vlnorm-verl: VL Norm loss aggregation for RLVR, as a verl 0.9.x plugin.

Importing this package has no side effects. verl loads :func:`vlnorm_verl.plugin.register`
through the ``verl.plugins`` entry point on ``import verl``, which registers the ``vl_norm``
advantage estimator and policy loss in every verl process.
"""

__version__ = "0.1.0"
